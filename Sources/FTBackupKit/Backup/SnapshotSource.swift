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

/// The snapshot of a temporary logical replication slot, so a full backup lines up exactly with the
/// change stream: it holds every transaction committed before the slot's consistent point, and a
/// point-in-time restore replays exactly the archived transactions whose commit LSN is at or after it.
///
/// `CREATE_REPLICATION_SLOT … TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT` runs on a replication
/// connection that must then stay open and idle until every importer has taken the snapshot; release
/// closes it, which drops the temporary slot.
public final class ReplicationSlotSnapshotSource: SnapshotSource, @unchecked Sendable {
    private let database: ConnectionString
    /// Nil: `FTBACKUP_SLOT_WAIT`, else 60 s (read when the slot is made, so a bad value fails the backup, not its set-up).
    private let waitSeconds: Double?
    private let lock = NSLock()
    private var replication: DatabaseSession?

    public init(database: ConnectionString, waitSeconds: Double? = nil) {
        self.database = database
        self.waitSeconds = waitSeconds
    }

    public func export(on coordinator: DatabaseSession) async throws -> ExportedSnapshot {
        let waitSeconds = try waitSeconds ?? SlotCreation.configuredWaitSeconds(default: 60)
        let replication = try await DatabaseSession.connect(database, name: "ftbackup-slot", replication: true)
        lock.withLock { self.replication = replication }
        let slot = "ftbackup_full_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
        let created = try await SlotCreation.boundedWait(replication, inspector: coordinator, seconds: waitSeconds, what: "creating temporary slot \(slot)") {
            try await replication.withConnection { try $0.simpleQuery("CREATE_REPLICATION_SLOT \(slot) TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT") }
        }
        guard let row = created.first else { throw PostgresError(message: "CREATE_REPLICATION_SLOT returned no row") }
        let snapshot = try row.requiredString("snapshot_name")
        try await coordinator.withConnection { try $0.beginTransaction(importingSnapshot: snapshot) }
        // Taken after the slot exists, so never earlier than the snapshot: a restore --at between the two picks an older full, never a newer one.
        let at = try await coordinator.query("SELECT extract(epoch FROM clock_timestamp()) AS at").first!.epochDate("at")!
        return ExportedSnapshot(origin: "replication-slot", id: snapshot, time: at, walLSN: try row.requiredString("consistent_point"))
    }

    public func release(on coordinator: DatabaseSession) async {
        try? await coordinator.execute("COMMIT")
        lock.withLock {
            replication?.close()
            replication = nil
        }
    }
}
