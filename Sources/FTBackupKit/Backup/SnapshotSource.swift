import Foundation

/// A snapshot that worker connections can import, held open by its coordinator until released.
public struct ExportedSnapshot: Sendable {
    public var origin: String
    public var id: String
    public var time: Date
    public var walLSN: String
}

/// Where a backup's consistent snapshot comes from.
///
/// This is the one seam between "all tables as of one instant" and how that instant is made:
/// today `pg_export_snapshot()` in a REPEATABLE READ transaction; for change archival a temporary
/// logical replication slot's exported snapshot, so that the change stream starts exactly there.
public protocol SnapshotSource: Sendable {
    /// Opens the snapshot on `coordinator`; it stays importable until `release`.
    func export(on coordinator: DatabaseSession) async throws -> ExportedSnapshot
    func release(on coordinator: DatabaseSession) async
}

/// `pg_export_snapshot()` inside a REPEATABLE READ, READ ONLY transaction on the coordinator.
public struct TransactionSnapshotSource: SnapshotSource {
    public init() {}

    public func export(on coordinator: DatabaseSession) async throws -> ExportedSnapshot {
        try await coordinator.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        let row = try await coordinator.query("""
            SELECT pg_export_snapshot() AS id, extract(epoch FROM now()) AS at,
                   CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text AS lsn
            """).first!
        return ExportedSnapshot(origin: "pg_export_snapshot", id: try row.requiredString("id"),
                                time: try row.epochDate("at")!, walLSN: try row.requiredString("lsn"))
    }

    public func release(on coordinator: DatabaseSession) async {
        try? await coordinator.execute("COMMIT")
    }
}
