import Foundation
import Yams

/// Reads a policy file strictly: every key must be known, every value valid, and every error names
/// the file, the key's path and its line, so a typo in a retention period can never pass silently.
public enum PolicyLoader {
    /// The policy file used when none is given: `FTBACKUP_POLICY`, else `policies/default.yaml`
    /// under the current directory, else the built-in defaults (identical to that file).
    public static func load(path: String?) throws -> Policy {
        if let path { return try load(fileAt: path) }
        if let env = ProcessInfo.processInfo.environment["FTBACKUP_POLICY"], !env.isEmpty { return try load(fileAt: env) }
        let local = "policies/default.yaml"
        if FileManager.default.fileExists(atPath: local) { return try load(fileAt: local) }
        return try parse(builtInDefault, source: "(built-in default policy)")
    }

    public static func load(fileAt path: String) throws -> Policy {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw FTBackupError(.configuration, "cannot read policy file \(path): \(error.localizedDescription)",
                                hint: "pass an existing file with --policy")
        }
        return try parse(text, source: path)
    }

    public static func parse(_ text: String, source: String) throws -> Policy {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw FTBackupError(.configuration, "\(source): the policy file is empty")
            }
            root = node
        } catch let error as FTBackupError {
            throw error
        } catch {
            throw FTBackupError(.configuration, "\(source): not valid YAML: \(error)")
        }
        let reader = NodeReader(source: source)
        let top = try reader.mapping(root, path: "", keys: ["version", "backup", "lifecycle", "objectives", "drills", "schedule", "database", "monitoring", "encryption", "repository"])

        let version = try reader.int(top.required("version"), path: "version", range: 1...1)

        let backup = try reader.mapping(top.required("backup"), path: "backup",
                                        keys: ["full", "incremental", "change_archival", "compression", "exclude"])
        func kind(_ key: String) throws -> Policy.BackupKind {
            let node = try reader.mapping(backup.required(key), path: "backup.\(key)", keys: ["schedule", "retention"])
            return Policy.BackupKind(
                schedule: try reader.enumeration(node.required("schedule"), path: "backup.\(key).schedule"),
                retention: try reader.period(node.required("retention"), path: "backup.\(key).retention"))
        }
        let archival = try reader.mapping(backup.required("change_archival"), path: "backup.change_archival",
                                          keys: ["enabled", "seal_every", "seal_bytes"])
        let compression = try reader.mapping(backup.optional("compression"), path: "backup.compression",
                                             keys: ["codec", "level", "workers"])
        let codec: CompressionCodec = try compression.optional("codec").map {
            try reader.enumeration($0, path: "backup.compression.codec")
        } ?? .zstd
        let levelRange = codec == .zstd ? 1...19 : codec == .gzip ? 1...9 : 0...0
        let level = try compression.optional("level").map {
            try reader.int($0, path: "backup.compression.level", range: levelRange)
        } ?? (codec == .zstd ? 1 : codec == .gzip ? 6 : 0)

        let lifecycle = try reader.mapping(top.required("lifecycle"), path: "lifecycle",
                                           keys: ["archive_tool_data", "audit_retention", "legal_hold_organizations", "application_triggers"])
        let archive = try reader.mapping(lifecycle.required("archive_tool_data"), path: "lifecycle.archive_tool_data",
                                         keys: ["status", "after", "age_column", "age_column_overrides", "references"])
        let overrides = try reader.mapping(archive.optional("age_column_overrides"),
                                           path: "lifecycle.archive_tool_data.age_column_overrides", keys: nil)
        var overrideMap: [String: String] = [:]
        for key in overrides.keys {
            overrideMap[key] = try reader.identifier(overrides.required(key),
                                                     path: "lifecycle.archive_tool_data.age_column_overrides.\(key)")
        }
        var references: [Policy.Reference] = []
        for (index, item) in try reader.sequence(archive.optional("references"),
                                                 path: "lifecycle.archive_tool_data.references").enumerated() {
            let path = "lifecycle.archive_tool_data.references[\(index)]"
            let reference = try reader.mapping(item, path: path, keys: ["from", "to"])
            let from = try reader.columnPath(reference.required("from"), path: path + ".from")
            let to = try reader.columnPath(reference.required("to"), path: path + ".to")
            references.append(Policy.Reference(fromSchema: from.0, fromTable: from.1, fromColumn: from.2,
                                               toSchema: to.0, toTable: to.1, toColumn: to.2))
        }

        let objectives = try reader.mapping(top.required("objectives"), path: "objectives", keys: ["rto", "rpo"])
        let drills = try reader.mapping(top.required("drills"), path: "drills", keys: ["schedule", "every", "checks"])
        guard drills.optional("schedule") != nil || drills.optional("every") != nil else {
            throw reader.error("drills.schedule", drills.anchor, "required key is missing (or give drills.every)")
        }
        var checks: [Policy.DrillCheck] = []
        for (index, item) in try reader.sequence(drills.optional("checks"), path: "drills.checks").enumerated() {
            let path = "drills.checks[\(index)]"
            let check = try reader.mapping(item, path: path, keys: ["name", "sql", "expect", "timeout"])
            let name = try reader.string(check.required("name"), path: path + ".name")
            if checks.contains(where: { $0.name == name }) { throw reader.error(path + ".name", item, "'\(name)' is named twice") }
            checks.append(Policy.DrillCheck(name: name, sql: try reader.string(check.required("sql"), path: path + ".sql"),
                                            expect: try reader.string(check.required("expect"), path: path + ".expect"),
                                            timeout: try check.optional("timeout").map { try reader.period($0, path: path + ".timeout") }))
        }
        let scheduling = try SchedulingReader.read(reader, top.optional("schedule"))
        let database = try reader.mapping(top.optional("database"), path: "database", keys: ["require_tls"])
        let requireTLS = try database.optional("require_tls").map { try reader.bool($0, path: "database.require_tls") }
        let monitoring = try reader.mapping(top.optional("monitoring"), path: "monitoring", keys: ["metrics_dir"])
        let metricsDirectory = try monitoring.optional("metrics_dir").map { try reader.string($0, path: "monitoring.metrics_dir") }
        let encryption = try reader.mapping(top.optional("encryption"), path: "encryption", keys: ["key_file"])
        let encryptionKeyFile = try encryption.optional("key_file").map { try reader.string($0, path: "encryption.key_file") }
        let repository = try RepositorySettingsReader.read(reader, top.optional("repository"))

        var policy = Policy(
            version: version,
            full: try kind("full"),
            incremental: try kind("incremental"),
            changeArchival: Policy.ChangeArchival(
                enabled: try reader.bool(archival.required("enabled"), path: "backup.change_archival.enabled"),
                sealEvery: try reader.period(archival.required("seal_every"), path: "backup.change_archival.seal_every"),
                sealBytes: try reader.byteSize(archival.required("seal_bytes"), path: "backup.change_archival.seal_bytes")),
            compression: Policy.Compression(
                codec: codec, level: level,
                workers: try compression.optional("workers").map {
                    try reader.int($0, path: "backup.compression.workers", range: 0...64)
                } ?? 0),
            exclude: try reader.sequence(backup.optional("exclude"), path: "backup.exclude").enumerated().map {
                let path = "backup.exclude[\($0.offset)]"
                let text = try reader.string($0.element, path: path)
                guard text.split(separator: ".", omittingEmptySubsequences: false).count == 2 else {
                    throw reader.error(path, $0.element, "'\(text)' is not a schema.table pattern")
                }
                return text
            },
            archiveToolData: Policy.ArchiveToolData(
                status: try reader.string(archive.required("status"), path: "lifecycle.archive_tool_data.status"),
                after: try reader.period(archive.required("after"), path: "lifecycle.archive_tool_data.after"),
                ageColumn: try reader.identifier(archive.required("age_column"), path: "lifecycle.archive_tool_data.age_column"),
                ageColumnOverrides: overrideMap,
                references: references),
            auditRetention: try reader.period(lifecycle.required("audit_retention"), path: "lifecycle.audit_retention"),
            legalHoldOrganizations: try reader.sequence(lifecycle.optional("legal_hold_organizations"),
                                                        path: "lifecycle.legal_hold_organizations").enumerated().map {
                let path = "lifecycle.legal_hold_organizations[\($0.offset)]"
                let text = try reader.string($0.element, path: path)
                guard UUID(uuidString: text) != nil else { throw reader.error(path, $0.element, "'\(text)' is not a UUID") }
                return text.lowercased()
            },
            applicationTriggers: try lifecycle.optional("application_triggers").map {
                try reader.enumeration($0, path: "lifecycle.application_triggers")
            } ?? .skip,
            rto: try reader.period(objectives.required("rto"), path: "objectives.rto"),
            rpo: try reader.period(objectives.required("rpo"), path: "objectives.rpo"),
            drillSchedule: try drills.optional("schedule").map { try reader.enumeration($0, path: "drills.schedule") } ?? .monthly,
            drillEvery: try drills.optional("every").map { try reader.period($0, path: "drills.every") },
            drillChecks: checks,
            scheduling: scheduling,
            requireTLS: requireTLS,
            metricsDirectory: metricsDirectory,
            encryptionKeyFile: encryptionKeyFile,
            source: source)
        policy.repository = repository
        return policy
    }

    /// The same policy as `policies/default.yaml`, for a binary run outside the project folder.
    public static let builtInDefault = """
    version: 1
    backup:
      full: { schedule: daily, retention: 30d }
      incremental: { schedule: hourly, retention: 7d }
      change_archival: { enabled: true, seal_every: 60s, seal_bytes: 64MiB }
      compression: { codec: zstd, level: 1, workers: 0 }
      exclude: []
    lifecycle:
      archive_tool_data:
        status: completed
        after: 2y
        age_column: completed_at
        age_column_overrides: { sprint_00_woop: updated_at }
        references:
          - { from: sprint_02_dream.tool_data.source_know_thyself_id, to: sprint_01_know_thyself.tool_data.id }
      audit_retention: 7y
      legal_hold_organizations: []
      application_triggers: skip
    objectives: { rto: 4h, rpo: 1h }
    drills:
      schedule: monthly
      checks:
        - { name: accounts present, sql: "SELECT count(*) > 0 FROM users.accounts", expect: t }
        - { name: companies present, sql: "SELECT count(*) > 0 FROM organizations.companies", expect: t }
    schedule:
      tick: 5min
      window: "02:00-05:00"
      lifecycle: monthly
      maintenance: daily
      randomized_delay: 1min
      follower: true
    """
}

/// Walks a YAML node tree with errors that name file, key path and line.
struct NodeReader {
    let source: String

    /// A mapping whose keys have been checked against the allowed set.
    struct Mapping {
        let reader: NodeReader
        let path: String
        let values: [String: Node]
        let keys: [String]
        let anchor: Node?

        func optional(_ key: String) -> Node? { values[key] }

        func required(_ key: String) throws -> Node {
            guard let node = values[key] else {
                let full = path.isEmpty ? key : "\(path).\(key)"
                throw reader.error(full, anchor, "required key is missing")
            }
            return node
        }
    }

    func error(_ path: String, _ node: Node?, _ message: String) -> FTBackupError {
        let line = node?.mark.map { " (line \($0.line))" } ?? ""
        return FTBackupError(.configuration, "\(source): \(path)\(line): \(message)",
                             hint: "see policies/default.yaml for every key and its format")
    }

    func mapping(_ node: Node?, path: String, keys allowed: [String]?) throws -> Mapping {
        guard let node else { return Mapping(reader: self, path: path, values: [:], keys: [], anchor: nil) }
        guard case .mapping(let mapping) = node else { throw error(path.isEmpty ? "(top level)" : path, node, "expected a mapping of keys") }
        var values: [String: Node] = [:]
        var order: [String] = []
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode else { throw error(path, keyNode, "keys must be plain names") }
            let key = scalar.string
            let full = path.isEmpty ? key : "\(path).\(key)"
            if let allowed, !allowed.contains(key) {
                throw error(full, keyNode, "unknown key (known here: \(allowed.joined(separator: ", ")))")
            }
            if values[key] != nil { throw error(full, keyNode, "key appears twice") }
            values[key] = value
            order.append(key)
        }
        return Mapping(reader: self, path: path, values: values, keys: order, anchor: node)
    }

    func sequence(_ node: Node?, path: String) throws -> [Node] {
        guard let node else { return [] }
        guard case .sequence(let sequence) = node else { throw error(path, node, "expected a list") }
        return Array(sequence)
    }

    func string(_ node: Node, path: String) throws -> String {
        guard case .scalar(let scalar) = node, !scalar.string.isEmpty else { throw error(path, node, "expected a value") }
        return scalar.string
    }

    func int(_ node: Node, path: String, range: ClosedRange<Int>) throws -> Int {
        let text = try string(node, path: path)
        guard let value = Int(text), range.contains(value) else {
            throw error(path, node, "'\(text)' is not a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    func bool(_ node: Node, path: String) throws -> Bool {
        let text = try string(node, path: path)
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(path, node, "'\(text)' is not true or false")
        }
    }

    func period(_ node: Node, path: String) throws -> Period {
        let text = try string(node, path: path)
        guard let period = Period(parsing: text) else {
            throw error(path, node, "'\(text)' is not a period such as 30d, 7d, 2y, 1h or 90min")
        }
        return period
    }

    func byteSize(_ node: Node, path: String) throws -> Int64 {
        let text = try string(node, path: path)
        let digits = text.prefix { $0.isNumber }
        let units: [String: Int64] = ["": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30]
        guard let value = Int64(digits), value > 0,
              let unit = units[String(text.dropFirst(digits.count)).trimmingCharacters(in: .whitespaces)] else {
            throw error(path, node, "'\(text)' is not a size such as 64MiB")
        }
        return value * unit
    }

    func enumeration<E: RawRepresentable & CaseIterable>(_ node: Node, path: String) throws -> E where E.RawValue == String {
        let text = try string(node, path: path)
        guard let value = E(rawValue: text) else {
            throw error(path, node, "'\(text)' is not one of \(E.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }

    func identifier(_ node: Node, path: String) throws -> String {
        let text = try string(node, path: path)
        guard text.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            throw error(path, node, "'\(text)' is not a column or schema name")
        }
        return text
    }

    func columnPath(_ node: Node, path: String) throws -> (String, String, String) {
        let text = try string(node, path: path)
        let parts = text.split(separator: ".").map(String.init)
        guard parts.count == 3 else { throw error(path, node, "'\(text)' is not schema.table.column") }
        return (parts[0], parts[1], parts[2])
    }
}
