import Foundation
@testable import FTBackupKit

/// Objects of the zoo whose backup or restore belongs to another open item of issue 10 (the item number
/// per object). Their fixture sections run only when enabled: `FTBACKUP_ZOO_PENDING=all`, or a comma
/// list of item numbers (`2,3`). Once an item is merged, its objects move into the main zoo.
enum ZooPending: String, CaseIterable, Sendable {
    case invalidIndex = "invalid index"
    case invalidIndexBuild = "invalid index build"
    case replicaIdentityUsingIndex = "replica identity using index"
    case clusterOn = "cluster on"
    case indexStatisticsTarget = "index statistics target"
    case commentsOnIndexesAndKeyConstraints = "comments on indexes and key constraints"
    case extensionConfigTable = "extension config table"
    case tableWithNoColumns = "table with no columns"
    case databaseLevelSettings = "database-level settings"

    /// The item of issue 10 that fixes the backup or restore of this object.
    var item: Int {
        switch self {
        case .invalidIndex, .invalidIndexBuild: 2
        case .replicaIdentityUsingIndex, .clusterOn, .indexStatisticsTarget, .commentsOnIndexesAndKeyConstraints: 3
        case .extensionConfigTable: 4
        case .tableWithNoColumns: 5
        case .databaseLevelSettings: 8
        }
    }

    /// The items whose objects the tests include (`FTBACKUP_ZOO_PENDING`).
    static var enabledItems: Set<Int> {
        // Every item of issue 10 is merged: all of them unless a list narrows it (to bisect a failure).
        let value = ProcessInfo.processInfo.environment["FTBACKUP_ZOO_PENDING"] ?? "all"
        if value.trimmingCharacters(in: .whitespaces) == "all" { return Set(allCases.map(\.item)) }
        return Set(value.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) })
    }

    var isEnabled: Bool { Self.enabledItems.contains(item) }
}

/// The object zoo (`Zoo/zoo.sql`): every kind of object a Fast Track database may grow, built into a
/// test database by the suite, and the changes the point-in-time test makes to every table.
enum ZooFixture {
    /// One block of the fixture file, run as one batch.
    struct Section: Sendable {
        var name: String
        /// Set for an object another item fixes; the section runs only when it is enabled.
        var pending: ZooPending?
        /// A change made after the full backup (the `-- changes` part).
        var isChange: Bool
        /// The statement is meant to fail (a CREATE INDEX CONCURRENTLY that leaves an invalid index).
        var fails: Bool
        var sql: String
    }

    static var text: String { String(decoding: PackageResources.zoo_sql, as: UTF8.self) }

    /// The file's sections in order. `-- section: NAME`, `-- pending: NAME[, fails] item N`, `-- changes`,
    /// `-- pending changes: NAME item N`.
    static func sections() throws -> [Section] {
        var sections: [Section] = []
        var current: Section?
        var inChanges = false
        func header(_ line: String, prefix: String) throws -> (String, ZooPending?, Bool) {
            var body = String(line.dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces)
            guard let range = body.range(of: " item ", options: .backwards), let item = Int(body[range.upperBound...]) else {
                return (body, nil, false)
            }
            body = String(body[..<range.lowerBound])
            let fails = body.hasSuffix(", fails")
            if fails { body = String(body.dropLast(", fails".count)) }
            guard let pending = ZooPending(rawValue: body), pending.item == item else {
                throw FTBackupError(.usage, "zoo.sql: pending section \"\(body)\" item \(item) is not a ZooPending case with that item")
            }
            return (body, pending, fails)
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("-- section: ") {
                if let current { sections.append(current) }
                current = Section(name: String(line.dropFirst("-- section: ".count)), pending: nil, isChange: false, fails: false, sql: "")
            } else if line.hasPrefix("-- pending: ") {
                if let current { sections.append(current) }
                let (name, pending, fails) = try header(line, prefix: "-- pending: ")
                current = Section(name: name, pending: pending, isChange: false, fails: fails, sql: "")
            } else if line == "-- changes" {
                if let current { sections.append(current) }
                inChanges = true
                current = Section(name: "changes", pending: nil, isChange: true, fails: false, sql: "")
            } else if line.hasPrefix("-- pending changes: ") {
                if let current { sections.append(current) }
                let (name, pending, _) = try header(line, prefix: "-- pending changes: ")
                current = Section(name: name, pending: pending, isChange: inChanges, fails: false, sql: "")
            } else if !line.hasPrefix("--") {
                current?.sql += line + "\n"
            }
        }
        if let current { sections.append(current) }
        return sections
    }

    /// Builds the zoo in the database (the enabled pending objects too).
    static func build(_ session: DatabaseSession) async throws {
        for section in try sections() where !section.isChange && (section.pending?.isEnabled ?? true) {
            do {
                try await session.execute(section.sql)
                if section.fails { throw FTBackupError(.failure, "zoo section \(section.name) was meant to fail") }
            } catch let error as PostgresError where section.fails {
                _ = error
            }
        }
    }

    /// Changes every zoo table (the enabled pending ones too), as after a full backup.
    static func change(_ session: DatabaseSession) async throws {
        for section in try sections() where section.isChange && (section.pending?.isEnabled ?? true) {
            try await session.execute(section.sql)
        }
    }

    /// The pending sections the tests leave out, for the record.
    static var leftOut: [ZooPending] { ZooPending.allCases.filter { !$0.isEnabled } }

    /// The database's own settings and the per-role settings in it (`ALTER DATABASE/ROLE … SET`), for comparing.
    static func databaseSettings(_ session: DatabaseSession) async throws -> [String] {
        try await session.query("""
            SELECT coalesce(r.rolname, '') || ':' || array_to_string(s.setconfig, ',') AS s
            FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole
            WHERE d.datname = current_database() ORDER BY 1
            """).rows.map { try $0.requiredString("s") }
    }
}
