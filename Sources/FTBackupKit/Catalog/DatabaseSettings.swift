import Foundation

/// One setting stored for the database itself (`ALTER DATABASE … SET name = value`) or for one role in
/// it (`ALTER ROLE r IN DATABASE … SET …`).
///
/// It exists because these settings live in the shared catalog `pg_db_role_setting`, outside every
/// schema, so `pg_dump` without `--create` leaves them out, while the application depends on them (its
/// TimeZone, search_path, timeouts): a backup records them and a whole-database restore applies them.
public struct DatabaseSetting: Codable, Sendable, Equatable, CustomStringConvertible {
    /// The role the setting is for; nil for every role.
    public var role: String?
    public var name: String
    /// As the server stores it (`Europe/Berlin`, `"$user", public`, `5s`).
    public var value: String

    public init(role: String?, name: String, value: String) {
        self.role = role
        self.name = name
        self.value = value
    }

    public var description: String { "\(role.map { "role \($0): " } ?? "")\(name)=\(value)" }
}

/// Reads a database's settings, and writes them into another database as they were.
enum DatabaseSettings {
    /// The current database's settings: the database's own first, then each role's, each in stored order.
    static func read(_ session: DatabaseSession) async throws -> [DatabaseSetting] {
        try await session.query("""
            SELECT r.rolname AS role, c.setting
            FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole
            CROSS JOIN LATERAL unnest(s.setconfig) WITH ORDINALITY AS c(setting, position)
            WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
            ORDER BY s.setrole <> 0, r.rolname, c.position
            """).rows.map { row in
            let setting = try row.requiredString("setting")
            let parts = setting.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return DatabaseSetting(role: try row.string("role"), name: String(parts[0]), value: parts.count > 1 ? String(parts[1]) : "")
        }
    }

    /// Makes the connected database's settings exactly `settings`: what it held before is reset (for the
    /// database and for each role that had settings in it), then each recorded one is set. A role the
    /// target lacks is skipped and named in the returned warnings.
    static func apply(_ settings: [DatabaseSetting], _ connection: PGConnection) throws -> [String] {
        let database = try connection.escapeIdentifier(try connection.query("SELECT current_database() AS db").first!.requiredString("db"))
        let roles = Set(try connection.query("SELECT rolname AS name FROM pg_roles").rows.map { try $0.requiredString("name") })
        let held = try connection.query("""
            SELECT r.rolname AS role FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole
            WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
            """).rows.map { try $0.string("role") }
        var statements: [String] = []
        for role in held {
            statements.append(role == nil ? "ALTER DATABASE \(database) RESET ALL"
                                           : "ALTER ROLE \(try connection.escapeIdentifier(role!)) IN DATABASE \(database) RESET ALL")
        }
        var warnings: [String] = []
        for setting in settings {
            if let role = setting.role, !roles.contains(role) {
                warnings.append("database setting \(setting) not restored: the target server has no role \(role)")
                continue
            }
            let owner = try setting.role.map { "ALTER ROLE \(try connection.escapeIdentifier($0)) IN DATABASE \(database)" } ?? "ALTER DATABASE \(database)"
            statements.append("\(owner) SET \(try connection.escapeIdentifier(setting.name)) TO \(try valueSQL(setting, connection))")
        }
        do {
            try connection.transaction { for statement in statements { try connection.execute(statement) } }
        } catch let error as PostgresError {
            let status: ExitStatus = error.sqlState == "42501" ? .permission : .failure
            throw FTBackupError(status, "the data is restored, but the database's settings could not be applied: \(error.message)",
                                hint: "run as the database's owner or a superuser (a role's settings need CREATEROLE), or apply them by hand: \(statements.joined(separator: "; "))")
        }
        return warnings
    }

    /// The value as pg_dump writes it: one literal, or for a list whose elements the server quotes as
    /// identifiers (`search_path`, …) one literal per element, so `"$user", public` stays two elements.
    static func valueSQL(_ setting: DatabaseSetting, _ connection: PGConnection) throws -> String {
        guard listQuoted.contains(setting.name.lowercased()) else { return try connection.escapeLiteral(setting.value) }
        return try splitList(setting.value).map { try connection.escapeLiteral($0) }.joined(separator: ", ")
    }

    /// Settings whose list elements the server quotes as identifiers (pg_dump's `variable_is_guc_list_quote`).
    static let listQuoted: Set<String> = ["local_preload_libraries", "search_path", "session_preload_libraries",
                                          "shared_preload_libraries", "temp_tablespaces", "unix_socket_directories"]

    /// Splits a stored list (`"$user", public`, `""`) into its elements: comma-separated, each one a
    /// double-quoted identifier (`""` inside for a quote) or a bare word, whitespace around them dropped.
    static func splitList(_ text: String) throws -> [String] {
        var elements: [String] = []
        var characters = Array(text)[...]
        func skipSpaces() { while let first = characters.first, first.isWhitespace { characters.removeFirst() } }
        skipSpaces()
        if characters.isEmpty { return [] }
        while true {
            var element = ""
            if characters.first == "\"" {
                characters.removeFirst()
                while true {
                    guard let next = characters.popFirst() else {
                        throw FTBackupError(.dataError, "cannot read the stored list \(text): a quote is not closed")
                    }
                    if next == "\"" {
                        if characters.first == "\"" { characters.removeFirst(); element.append("\"") } else { break }
                    } else {
                        element.append(next)
                    }
                }
            } else {
                while let next = characters.first, next != ",", !next.isWhitespace { element.append(next); characters.removeFirst() }
            }
            elements.append(element)
            skipSpaces()
            guard let next = characters.popFirst() else { return elements }
            guard next == "," else { throw FTBackupError(.dataError, "cannot read the stored list \(text): unexpected \(next)") }
            skipSpaces()
        }
    }
}
