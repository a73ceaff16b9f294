import Foundation

/// Tables whose storage or definition changed between the backup's snapshot and the moment the
/// backup held their locks: the snapshot cannot read them, so the backup must be taken again.
///
/// It exists because a table rewrite is not MVCC-safe. `ALTER TABLE … ADD COLUMN … DEFAULT
/// clock_timestamp()`, `ALTER COLUMN … TYPE`, `TRUNCATE`, `VACUUM FULL` and `CLUSTER` give the table a new
/// file (relfilenode) whose rows carry the rewriting transaction's id. A snapshot taken before that
/// transaction committed still describes the table from the old catalog, but COPY reads the new file:
/// it sees no rows at all, and the backup would hold an empty table that looks complete.
public struct TablesChangedAfterSnapshot: Error, Sendable, CustomStringConvertible {
    /// One line per table: `schema.name: what changed`.
    public var changes: [String]

    public var description: String { "tables changed after the backup's snapshot: \(changes.joined(separator: "; "))" }
}

/// Compares, once the coordinator holds ACCESS SHARE on every table it will copy, what the backup's
/// snapshot sees of each table with what a fresh catalog read sees.
///
/// The comparison is by oid: the table's file (`relfilenode`, and its TOAST table's), the version of
/// its `pg_class` row (`xmin`: any ALTER, rename or move writes a new one; statistics are updated in
/// place and never do), and the version of each of its `pg_attribute` rows (a column added, dropped or
/// retyped). After the locks are held nothing that conflicts with ACCESS SHARE can commit on these
/// tables until the backup ends, so a fresh read taken now is the state COPY and pg_dump will read;
/// if it equals the snapshot's view, data and DDL both come from the snapshot's instant. A table
/// dropped after the snapshot fails its lock (`LOCK TABLE` resolves names in the current catalog)
/// and counts as changed too. A table created after the snapshot is invisible to discovery and to
/// pg_dump alike (both read the catalog through the snapshot), so the backup is consistent without it.
enum SnapshotTableCheck {
    struct TableState: Equatable {
        var schema: String
        var name: String
        var fileNode: String
        var toastFileNode: String
        var rowVersion: String
        var columnVersions: String
    }

    static let stateSQL = """
        SELECT c.oid::text AS oid, n.nspname AS schema, c.relname AS name, c.relfilenode::text AS file_node,
               coalesce(t.relfilenode::text, '') AS toast_file_node, c.xmin::text AS row_version,
               coalesce((SELECT string_agg(a.attnum || '@' || a.xmin, ',' ORDER BY a.attnum) FROM pg_attribute a
                         WHERE a.attrelid = c.oid AND a.attnum > 0), '') AS column_versions
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
        WHERE c.oid = ANY($1::oid[])
        """

    /// Throws `TablesChangedAfterSnapshot` naming every table that changed; returns when none did.
    static func verify(_ tables: [TableToCopy], coordinator: DatabaseSession, database: ConnectionString) async throws {
        guard !tables.isEmpty else { return }
        let oids = "{" + tables.map { String($0.oid) }.joined(separator: ",") + "}"
        let seen = try await states(coordinator, oids: oids)
        // A new connection in autocommit: its catalog read takes a new snapshot, after every lock was granted.
        let fresh = try await DatabaseSession.connect(database, name: "ftbackup-catalog-check")
        defer { fresh.close() }
        let current = try await states(fresh, oids: oids)
        let changes = tables.compactMap { table -> String? in
            let name = "\(table.schema).\(table.name)"
            guard let before = seen[table.oid] else { return "\(name): not visible to the snapshot" }
            guard let now = current[table.oid] else { return "\(name): dropped" }
            return difference(before, now).map { "\(name): \($0)" }
        }
        if !changes.isEmpty { throw TablesChangedAfterSnapshot(changes: changes) }
    }

    /// Runs discovery and locking, turning the errors an object dropped after the snapshot causes into
    /// `TablesChangedAfterSnapshot`. Name lookups (`LOCK TABLE`, a sequence's `SELECT`) and catalog
    /// functions (`pg_get_indexdef`, `pg_get_constraintdef`) read the current catalog, not the
    /// snapshot: a table or index the snapshot still sees but that was dropped since fails them
    /// (`relation … does not exist`, `cache lookup failed`).
    static func failingOnDroppedObjects<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PostgresError where error.sqlState == "42P01"
                    || (error.sqlState == "XX000" && error.message.hasPrefix("cache lookup failed")) {
            throw TablesChangedAfterSnapshot(changes: ["an object the snapshot sees was dropped or renamed since (\(error.message))"])
        }
    }

    /// What changed, in words; nil when nothing did.
    static func difference(_ before: TableState, _ now: TableState) -> String? {
        if before.fileNode != now.fileNode || before.toastFileNode != now.toastFileNode {
            return "rewritten (file \(before.fileNode) is now \(now.fileNode))"
        }
        if before.schema != now.schema || before.name != now.name { return "renamed to \(now.schema).\(now.name)" }
        if before.columnVersions != now.columnVersions { return "columns changed" }
        if before.rowVersion != now.rowVersion { return "definition changed" }
        return nil
    }

    static func states(_ session: DatabaseSession, oids: String) async throws -> [Int64: TableState] {
        var result: [Int64: TableState] = [:]
        for row in try await session.query(stateSQL, [oids]).rows {
            guard let oid = Int64(try row.requiredString("oid")) else { continue }
            result[oid] = TableState(schema: try row.requiredString("schema"), name: try row.requiredString("name"),
                                     fileNode: try row.requiredString("file_node"), toastFileNode: try row.requiredString("toast_file_node"),
                                     rowVersion: try row.requiredString("row_version"), columnVersions: try row.requiredString("column_versions"))
        }
        return result
    }
}
