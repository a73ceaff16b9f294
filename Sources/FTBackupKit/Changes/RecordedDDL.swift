import Foundation

/// One DDL command as `ftbackup.ddl_log` recorded it, with the commit that carried it.
public struct RecordedDDL: Codable, Sendable, Equatable {
    public var commandTag: String
    public var objectType: String?
    public var objectIdentity: String?
    public var schema: String?
    public var statement: String?
    /// The commit LSN and time of the transaction that ran it: replay from a full whose consistent
    /// point is at or before this LSN, up to a time at or after this time, would cross it.
    public var commitLSN: String
    public var commitTime: Date

    /// "ALTER TABLE public.t (table)"; a command with no object identity (GRANT) shows its statement.
    public var description: String {
        let statementLine = statement.map { $0.split(whereSeparator: \.isNewline).joined(separator: " ").prefix(200) }.map { "(\($0))" }
        return "\(commandTag) \(objectIdentity ?? statementLine ?? "?")\(objectType.map { " (\($0))" } ?? "")"
    }

    /// A `REFRESH MATERIALIZED VIEW`: it changes no definition, so it is no barrier to a restore
    /// (restore --at refreshes the materialized views after replay, from the data as at TIME).
    public var isRefresh: Bool { commandTag == "REFRESH MATERIALIZED VIEW" }

    /// Whether a restore of `schemas` (empty: the whole database) is affected: a whole-database
    /// restore by any DDL; a `--schema` restore by DDL on an object in, or being, a chosen schema, and
    /// by DDL whose schema is not known — recorded without one although its object lives in a schema
    /// (SET SCHEMA, whose old schema the trigger cannot see; GRANT/REVOKE and default privileges) — or
    /// that may rename or move a schema's objects (ALTER SCHEMA, ALTER EXTENSION). Objects outside
    /// schemas (an extension itself, a publication, a server) do not block a `--schema` restore.
    func affects(schemas: [String]) -> Bool {
        guard !schemas.isEmpty else { return true }
        if ["ALTER SCHEMA", "ALTER EXTENSION"].contains(commandTag) { return true }
        if let schema { return schemas.contains(schema) }
        if objectType == "schema" {
            return objectIdentity.map { schemas.contains($0) || schemas.contains(unquoted($0)) } ?? true
        }
        return !Self.outsideSchemas.contains(objectType ?? "")
    }

    /// Object types (as the event trigger functions name them) that belong to no schema.
    static let outsideSchemas: Set<String> = [
        "extension", "publication", "publication relation", "publication namespace", "subscription", "foreign-data wrapper",
        "server", "user mapping", "event trigger", "language", "access method", "role", "tablespace", "database",
    ]

    private func unquoted(_ name: String) -> String {
        name.hasPrefix("\"") && name.hasSuffix("\"") && name.count >= 2
            ? String(name.dropFirst().dropLast()).replacingOccurrences(of: "\"\"", with: "\"") : name
    }

    /// Reads a decoded `ddl_log` row (values by column name; commit filled in later).
    static func fromRow(_ relation: RelationDescription, _ values: [TupleValue]) -> RecordedDDL? {
        func value(_ name: String) -> String? {
            guard let index = relation.columns.firstIndex(where: { $0.name == name }), index < values.count,
                  case .text(let text) = values[index] else { return nil }
            return text
        }
        guard let tag = value("command_tag") else { return nil }
        return RecordedDDL(commandTag: tag, objectType: value("object_type"), objectIdentity: value("object_identity"),
                           schema: value("schema_name"), statement: value("statement").map { String($0.prefix(500)) },
                           commitLSN: "0/0", commitTime: Date(timeIntervalSince1970: 0))
    }
}
