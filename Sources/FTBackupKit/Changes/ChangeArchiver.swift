import Foundation
import Logging

/// `ftbackup backup --type incr`: seals the changes decoded since the last pass into a segment.
///
/// Order of a pass, and why it is crash-safe: write the heartbeat (it carries every sequence's value,
/// since sequences are not decoded, and proves the archive reaches this instant) → peek the slot's
/// changes up to the current WAL position through `COPY … TO STDOUT (FORMAT binary)` into a
/// compressed, checksummed segment → fsync and rename → write the segment's manifest → only then
/// advance the slot. Killed before the advance, the next pass reads the same transactions again;
/// replay skips commits it has applied (by commit LSN), so nothing is lost and nothing applied twice.
public enum ChangeArchiver {
    public struct Report: Codable, Sendable {
        /// The sealed segment; nil when a running follower covers change archival.
        public var segment: ChangeSegmentManifest?
        /// Set when `ftbackup follow` holds the slot: it seals segments itself, nothing to do here.
        public var coveredByFollower: Int?
        public var removedIncomplete: [String]
        public var slotLagBytes: Int64
    }

    /// The pinned output settings of every decoding session: values replay exactly as they were.
    /// The client encoding is set for the decoding alone (``decodingEncoding(_:)``). The empty
    /// search_path makes `regclass`/`regtype` values decode qualified (`app.items`, never a bare `items`
    /// that the database's own search_path resolved) and, on the replay session, read back as the same object.
    static let decodingSettings = """
        SET DateStyle = ISO; SET IntervalStyle = postgres; SET TimeZone = 'UTC';
        SET extra_float_digits = 3; SET bytea_output = hex; SET statement_timeout = 0; SET synchronous_commit = on;
        SET search_path = ''; SET xmloption = content; SET array_nulls = on
        """

    public static func runIncremental(database: ConnectionString, repositoryPath: String, policy: Policy,
                                      logger: Logger = Logger(label: "ftbackup")) async throws -> Report {
        let lock = try RepositoryLock.acquire(repositoryRoot: repositoryPath, kind: .write, exclusive: true, command: "backup --type incr")
        defer { lock.release() }
        // One writer of the change archive at a time; a running follower covers this pass.
        let changesLock: RepositoryLock
        do {
            changesLock = try RepositoryLock.acquire(repositoryRoot: repositoryPath, kind: .changes, exclusive: true, command: "backup --type incr")
        } catch let error as FTBackupError where error.status == .locked && error.message.contains("command=follow") {
            let pid = error.message.split(separator: " ").first { $0.hasPrefix("pid=") }.flatMap { Int($0.dropFirst(4)) }
            logger.info("a follower covers change archival; nothing to do", metadata: ["follower_pid": .string("\(pid ?? 0)")])
            return Report(segment: nil, coveredByFollower: pid ?? 0, removedIncomplete: [], slotLagBytes: 0)
        }
        defer { changesLock.release() }
        let storage = try RepositoryStorageFactory.open(repositoryPath)
        let session = try await DatabaseSession.connect(database, name: "ftbackup-incr")
        defer { session.close() }
        try await session.execute(decodingSettings)
        let encoding = try await decodingEncoding(session)
        let identity = try await session.withConnection { try DatabaseIdentity.of($0) }
        try RepositorySource.claim(repositoryPath: repositoryPath, identity: identity, command: "backup --type incr")
        let slotName = try await ChangeArchivalNames.slot(session)

        let slot = try await SlotHealth.check(session, slot: slotName)
        if slot.active {
            // The follower streams the slot and seals segments every few seconds: it covers this pass.
            logger.info("a follower covers change archival; nothing to do", metadata: ["follower_pid": .string("\(slot.activePID ?? 0)")])
            return Report(segment: nil, coveredByFollower: slot.activePID ?? 0, removedIncomplete: [], slotLagBytes: slot.lagBytes)
        }
        let removed = try removeIncompleteSegments(storage)
        // The heartbeat commits synchronously, so the WAL is flushed through it (and through every earlier
        // commit, even asynchronous ones): decoding reads only flushed WAL, and this pass must reach it.
        try await writeHeartbeat(session)
        let upto = try await session.query("SELECT pg_current_wal_flush_lsn()::text AS lsn").first!.requiredString("lsn")

        // Labels sort in archive order: the slot position this segment starts from, then the time.
        let label = ChangeSegmentManifest.newLabel(startingAt: LSN.parse(slot.confirmedFlushLSN) ?? 0)
        let compression = policy.compression
        let slotLiteral = try session.escapeLiteral(slotName)
        let uptoLiteral = try session.escapeLiteral(upto)
        let publication = try session.escapeLiteral(ChangeArchivalNames.publication)
        // A failure to read the slot repeats on every pass until its cause is fixed: it is recorded for info.
        let (file, summary): (BackupManifest.StoredFile, ChangeStreamSummary)
        do { (file, summary) = try await session.withConnection { connection -> (BackupManifest.StoredFile, ChangeStreamSummary) in
            let writer = try CompressedFileWriter(storage: storage, path: ChangeSegmentManifest.dataPath(label), compression: compression)
            var parser = ChangeRowCopyParser()
            var summary = ChangeStreamSummary()
            // Only the decoding runs in that encoding: the session's other statements and results stay UTF8.
            try connection.execute("SET client_encoding = \(try connection.escapeLiteral(encoding))")
            defer { try? connection.execute("SET client_encoding = 'UTF8'") }
            do {
                try connection.copyOut("""
                    COPY (SELECT lsn, xid, data FROM pg_logical_slot_peek_binary_changes(\(slotLiteral), \(uptoLiteral)::pg_lsn, NULL,
                          'proto_version', '1', 'publication_names', \(publication))) TO STDOUT (FORMAT binary)
                    """) { chunk in
                    try writer.write(chunk)
                    try parser.feed(chunk) { try summary.observe($0) }
                }
                try parser.finish()
                Failpoint.hit("incr.before-rename")
                var stored = try writer.finish()
                stored.path = "\(label).seg.zst"
                return (stored, summary)
            } catch {
                writer.abort()
                throw error
            }
        } } catch {
            ChangeArchiveStall.record(error, storage: storage)
            throw error
        }
        guard let endLSN = summary.lastEndLSN ?? (summary.maxRowLSN > 0 ? summary.maxRowLSN : nil) else {
            try? storage.remove(ChangeSegmentManifest.dataPath(label))
            throw FTBackupError(.failure, "the slot returned no transaction, not even this pass's heartbeat",
                                hint: "check that publication \(ChangeArchivalNames.publication) is FOR ALL TABLES (ftbackup setup)")
        }
        // Read after the peek, so after every commit the segment holds: proves what a restore to those times may assume.
        let largeObjects = try await LargeObjectState.read(session)
        let segment = try ChangeSegmentManifest.seal(label: label, slot: slotName, source: identity, startLSN: LSN.parse(slot.confirmedFlushLSN) ?? 0,
                                                     endLSN: endLSN, summary: summary, file: file, encoding: encoding, largeObjects: largeObjects,
                                                     storage: storage, logger: logger)
        Failpoint.hit("incr.before-advance")
        try await session.query("SELECT pg_replication_slot_advance($1, $2::pg_lsn)", [slotName, LSN.format(endLSN)])
        try ChangeArchiveStall.clear(storage)
        let lag = try await session.query("""
            SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS lag FROM pg_replication_slots WHERE slot_name = $1
            """, [slotName]).first?.int64("lag") ?? 0
        logger.info("change segment sealed", metadata: [
            "segment": .string(label), "transactions": .string("\(segment.transactions)"),
            "end_lsn": .string(segment.endLSN), "stored_bytes": .string("\(file.storedBytes)"),
        ])
        return Report(segment: segment, coveredByFollower: nil, removedIncomplete: removed, slotLagBytes: lag)
    }

    /// The client_encoding changes are decoded in (recorded in each segment; replay applies its rows
    /// in it). UTF8 when the database's encoding converts to UTF8 and back without loss or failure
    /// (UTF8 itself, LATIN1): names and values then arrive as the UTF-8 the rest of ftbackup reads, so a
    /// LATIN1 database's `données` is archived and replayed as itself. Any other encoding is decoded
    /// in itself, converting nothing: a byte that is not valid UTF-8 in a SQL_ASCII database is archived
    /// as it is (forcing UTF8 made every later pass fail on it), and replay sends it back in that encoding.
    static func decodingEncoding(_ session: DatabaseSession) async throws -> String {
        let encoding = try await session.query("SELECT current_setting('server_encoding') AS encoding").first!.requiredString("encoding")
        return ["UTF8", "LATIN1"].contains(encoding) ? "UTF8" : encoding
    }

    /// One heartbeat row with every sequence's state: replayed, it sets sequences as of that instant.
    /// Its `at` is when the reading began, so a restore knows a heartbeat `at` after TIME holds values
    /// read after TIME (an upper bound for each ascending sequence's value at TIME; see `SequencesAtTime`).
    static func writeHeartbeat(_ session: DatabaseSession) async throws {
        let readFrom = try await session.query("SELECT clock_timestamp()::text AS t").first!.requiredString("t")
        var values: [String: [String]] = [:]
        for sequence in try await TableDiscovery.sequences(session) {
            values["\(sequence.schema).\(sequence.name)"] = [sequence.lastValue, sequence.isCalled ? "t" : "f"]
        }
        let json = String(decoding: try JSONEncoder().encode(values), as: UTF8.self)
        try await session.query("INSERT INTO \(ChangeArchivalNames.schema).\(ChangeArchivalNames.heartbeat) (at, sequences) VALUES ($1::timestamptz, $2::jsonb)",
                                [readFrom, json])
    }

    /// Segment files without a manifest (a pass killed before it finished) and temporary files.
    static func removeIncompleteSegments(_ storage: any RepositoryStorage) throws -> [String] {
        let entries = try storage.list(ChangeSegmentManifest.folder)
        let manifests = Set(entries.filter { $0.path.hasSuffix(".json") }.map { String($0.path.dropLast(5)) })
        var removed: [String] = []
        for entry in entries where !entry.path.hasSuffix(".json") {
            let base = entry.path.hasSuffix(".seg.zst") ? String(entry.path.dropLast(8)) : entry.path
            if entry.path.contains(".tmp-") || !manifests.contains(base) {
                try storage.remove(entry.path)
                removed.append(entry.path)
            }
        }
        return removed
    }
}

extension ChangeArchiver {
    /// True when a segment sealed after the newest full backup records a schema change, or any
    /// segment holds DDL committed after that full's consistent point (`ftbackup.ddl_log` rows: DDL
    /// with no later DML counts too), or reads large objects that differ from that full's.
    public static func needsNewFull(repositoryPath: String) throws -> Bool {
        let storage = try RepositoryStorageFactory.open(repositoryPath)
        let repository = Repository(storage: storage)
        let view = try RepositorySourceView.load(repository)
        guard let full = view.own(try repository.entries().compactMap(\.manifest)).last(where: { $0.type == .full }) else { return false }
        return try view.own(ChangeSegmentManifest.all(storage)).contains {
            ($0.createdAt > full.stoppedAt && !($0.schemaChanges ?? []).isEmpty) || !$0.ddl(after: full).isEmpty
                || LargeObjectRefusal.changed(full: full, reading: $0.largeObjects)
        }
    }
}

/// The archival slot's state, as `info` and every archival pass see it.
public struct SlotHealth: Codable, Sendable {
    /// The slot's name (set by `info`).
    public var name: String?
    /// Set when the slot has the name older versions gave (still used: it belongs to this database).
    public var note: String?
    public var exists: Bool
    public var walStatus: String?
    public var active: Bool
    public var activePID: Int?
    public var confirmedFlushLSN: String
    public var lagBytes: Int64
    public var lagSeconds: Double?

    /// Reads the slot's state; throws when the chain cannot continue (slot missing or lost).
    static func check(_ session: DatabaseSession, slot slotName: String) async throws -> SlotHealth {
        let health = try await read(session, slot: slotName)
        guard health.exists else {
            throw FTBackupError(.unavailable, "replication slot \(slotName) does not exist on \(session.target): the change archive chain is broken",
                                hint: "run ftbackup setup, then take a new full backup (ftbackup backup --type full)")
        }
        if health.walStatus == "lost" {
            throw FTBackupError(.unavailable, "replication slot \(slotName) is lost (its WAL was removed, max_slot_wal_keep_size): the change archive chain is broken",
                                hint: "run ftbackup teardown, ftbackup setup, then take a new full backup")
        }
        return health
    }

    public static func read(_ session: DatabaseSession, slot slotName: String) async throws -> SlotHealth {
        guard let row = try await session.query("""
            SELECT wal_status, active, active_pid, coalesce(confirmed_flush_lsn, restart_lsn)::text AS confirmed,
                   pg_wal_lsn_diff(pg_current_wal_lsn(), coalesce(confirmed_flush_lsn, restart_lsn))::bigint AS lag
            FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()
            """, [slotName]).first else {
            return SlotHealth(exists: false, walStatus: nil, active: false, activePID: nil, confirmedFlushLSN: "0/0", lagBytes: 0, lagSeconds: nil)
        }
        return SlotHealth(exists: true, walStatus: try row.string("wal_status"), active: try row.bool("active") ?? false,
                          activePID: try row.int("active_pid"), confirmedFlushLSN: try row.string("confirmed") ?? "0/0",
                          lagBytes: (try? row.int64("lag")) ?? 0, lagSeconds: nil)
    }
}
