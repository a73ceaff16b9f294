import Foundation

/// What `info` says about change archival: the segments, the recoverable window, the slot's health.
///
/// It exists so that on-call can see at a glance how far back and how recently the database can be
/// recovered, and so that a lost slot (a broken chain) is impossible to miss.
public struct ChangeArchiveStatus: Codable, Sendable {
    public var segments: Int
    public var transactions: Int
    public var storedBytes: Int64
    /// From the oldest full backup aligned with the archive to the newest archived commit.
    public var recoverableFrom: Date?
    public var recoverableUntil: Date?
    /// Seconds since the newest archived commit (the recovery point's age).
    public var newestCommitAgeSeconds: Double?
    public var slot: SlotHealth?
    /// Why the chain cannot continue, if it cannot.
    public var broken: String?
    /// The DDL recorded in the segments, and the times `restore --at` cannot reach because of each.
    public var ddl: [RecordedDDLWindow] = []
    /// The encryption of the connection `info` read the slot through (nil without a database).
    public var connection: TLSStatus? = nil

    public static func read(_ repository: Repository, database: ConnectionString?) async throws -> ChangeArchiveStatus {
        // The window is the repository's own source's: another database's backups and segments are flagged by info, never counted.
        let view = try RepositorySourceView.load(repository)
        let segments = view.own(try ChangeSegmentManifest.all(repository.storage))
        let fulls = view.own(try repository.entries().compactMap(\.manifest)).filter { $0.type == .full && $0.snapshot.origin == "replication-slot" }
        let newest = segments.compactMap(\.lastCommitTime).max()
        // The window starts at the oldest aligned full that the unbroken tail of the segment chain reaches back to.
        var chainStart = segments.last.flatMap { LSN.parse($0.startLSN) }
        for (earlier, later) in zip(segments.dropLast(), segments.dropFirst()).reversed() {
            guard let start = LSN.parse(later.startLSN), let end = LSN.parse(earlier.endLSN), start <= end else { break }
            chainStart = LSN.parse(earlier.startLSN)
        }
        let firstFull = chainStart.flatMap { start in fulls.first { (LSN.parse($0.snapshot.walLSN) ?? 0) >= start } }
        var status = ChangeArchiveStatus(
            segments: segments.count, transactions: segments.reduce(0) { $0 + $1.transactions },
            storedBytes: segments.reduce(0) { $0 + $1.file.storedBytes }, recoverableFrom: firstFull?.snapshot.time,
            recoverableUntil: firstFull == nil ? nil : newest, newestCommitAgeSeconds: newest.map { Date().timeIntervalSince($0) },
            slot: nil, broken: nil, ddl: RecordedDDLWindow.list(segments: segments, fulls: fulls))
        // A pass that could not read the slot leaves it where it was: the chain cannot advance.
        status.broken = ChangeArchiveStall.read(repository.storage)?.brokenReason
        guard let database else { return status }
        let session = try await DatabaseSession.connect(database, name: "ftbackup-info")
        defer { session.close() }
        status.connection = try await session.withConnection { $0.tlsStatus }
        // Refuses (exit 78) a slot under this database's name that belongs to another database.
        let archivalSlot = try await ArchivalSlot.resolve(session)
        var slot = try await SlotHealth.read(session, slot: archivalSlot.name)
        slot.name = archivalSlot.name
        slot.note = archivalSlot.legacyNote
        slot.lagSeconds = status.newestCommitAgeSeconds
        status.slot = slot
        let identity = try await session.withConnection { try DatabaseIdentity.of($0) }
        if let recorded = try RepositorySource.read(repository.storage), recorded.key == SourceKey(identity),
           recorded.source.databaseOid != identity.databaseOid {
            status.broken = "the repository's database (oid \(recorded.source.databaseOid)) is gone: \(identity.database) now has oid \(identity.databaseOid), "
                + "a database created again under its name whose changes are not archived here: use a new repository, or take ftbackup backup --type full --reattach"
        } else if !slot.exists && !segments.isEmpty {
            status.broken = "the replication slot is gone: run ftbackup setup, then take a new full backup"
        } else if slot.walStatus == "lost" {
            status.broken = "the replication slot is lost (its WAL was removed): run ftbackup teardown and setup, then take a new full backup"
        }
        return status
    }
}
