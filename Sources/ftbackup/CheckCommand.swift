import ArgumentParser
import FTBackupKit
import Foundation

/// `ftbackup check`: can we reach the database, what is in it, can we write the repository.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check the database connection, its schemas and the repository folder.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reportingFailures {
            let policy = try global.policy()
            let report = try await Checker.run(database: try global.connectionString(),
                                               repositoryPath: try global.repositoryPath(required: false),
                                               secondRepositoryPath: policy.repository.second)
            if global.output == .json {
                printLine(try JSONOutput.encode(report))
            } else {
                printLine(CheckCommand.render(report))
            }
            if let repository = report.repository, !repository.writable {
                throw FTBackupError(.cannotWrite, "repository \(repository.path) is not writable: \(repository.problem ?? "unknown reason")",
                                    hint: "fix its permissions or point --repo / FTBACKUP_REPO elsewhere")
            }
            if let second = report.secondRepository, !second.writable {
                throw FTBackupError(.cannotWrite, "second repository \(second.path) is not writable: \(second.problem ?? "unknown reason")",
                                    hint: "fix its permissions or credentials (the policy's repository.second_env_file for an s3:// second)")
            }
            return .success
        }
    }

    static func render(_ report: CheckReport) -> String {
        var lines: [String] = []
        lines.append("server:     \(report.server)")
        lines.append("version:    PostgreSQL \(report.serverVersion)")
        lines.append("connection: \(report.tls.summary)\(report.tlsRequired ? "; TLS required for this host" : "")")
        lines.append("database:   \(report.database) (\(ByteCount.format(report.databaseBytes)))")
        let logical = report.logicalDecodingReady ? "ready for logical decoding" : "NOT ready for logical decoding (needs wal_level=logical)"
        lines.append("wal_level:  \(report.walLevel), max_replication_slots=\(report.maxReplicationSlots), max_wal_senders=\(report.maxWalSenders): \(logical)")
        lines.append("schemas:    \(report.schemas.filter { $0.kind == .shared }.count) shared, \(report.toolSchemaCount) tool, \(report.schemas.filter { $0.kind == .other }.count) other")
        if !report.missingSharedSchemas.isEmpty {
            lines.append("            missing shared schemas: \(report.missingSharedSchemas.joined(separator: ", "))")
        }
        let width = max(6, report.schemas.map(\.name.count).max() ?? 0)
        lines.append("  " + "schema".padding(toLength: width, withPad: " ", startingAt: 0) + "  kind    tables        size")
        for schema in report.schemas {
            let tables = String(schema.tables)
            let size = ByteCount.format(schema.bytes)
            lines.append("  " + schema.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                         + schema.kind.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0) + "  "
                         + String(repeating: " ", count: max(0, 6 - tables.count)) + tables + "  "
                         + String(repeating: " ", count: max(0, 10 - size.count)) + size)
        }
        if !report.invalidIndexes.isEmpty {
            lines.append("invalid indexes: \(report.invalidIndexes.count) (left out of backups, as pg_dump does; drop and create them again)")
            for index in report.invalidIndexes {
                lines.append("  \(index.schema).\(index.index) on \(index.table): \(index.definition)")
            }
        }
        if let repository = report.repository {
            let state = repository.writable ? (repository.exists ? "writable" : "will be created (parent is writable)")
                                            : "NOT writable: \(repository.problem ?? "")"
            lines.append("repository: \(repository.path): \(state)")
        } else {
            lines.append("repository: not given (--repo or FTBACKUP_REPO)")
        }
        if let second = report.secondRepository {
            let state = second.writable ? (second.exists ? "writable" : "writable (empty: the first sync fills it)") : "NOT writable: \(second.problem ?? "")"
            lines.append("second:     \(second.path): \(state)")
        }
        lines.append("checked at: \(Timestamps.display(report.checkedAt))")
        return lines.joined(separator: "\n")
    }
}
