import Foundation

/// Which database a lifecycle record belongs to: the server's system identifier, the database's
/// name and its oid.
///
/// A `pending` archive or partition export is settled by looking at the database it came from; a
/// copy of that database (a staging clone, a restored drill target) still holds the rows the source
/// already deleted, and settling against it would throw away the only copy of them. Records carry
/// their source, and settling happens only against that very database.
public struct DatabaseIdentity: Codable, Sendable, Equatable, CustomStringConvertible {
    /// `pg_control_system()`; nil when the role may not read it.
    public var systemIdentifier: String?
    public var database: String
    public var databaseOid: Int64

    public var description: String { "database \(database) (oid \(databaseOid)\(systemIdentifier.map { ", system \($0)" } ?? ""))" }

    static func of(_ connection: PGConnection) throws -> DatabaseIdentity {
        let system = try? connection.query("SELECT system_identifier::text AS id FROM pg_control_system()").first?.string("id")
        let row = try connection.query("SELECT current_database() AS name, oid::int8 AS oid FROM pg_database WHERE datname = current_database()").first!
        return DatabaseIdentity(systemIdentifier: system ?? nil, database: try row.requiredString("name"), databaseOid: try row.int64("oid"))
    }

    /// The same database (a copy has another oid or another name; another cluster another system identifier).
    public func isSame(as other: DatabaseIdentity) -> Bool {
        guard database == other.database, databaseOid == other.databaseOid else { return false }
        // Read by one and not the other: not known to be the same, so not treated as the same.
        return systemIdentifier == other.systemIdentifier
    }
}
