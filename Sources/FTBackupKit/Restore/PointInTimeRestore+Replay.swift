import Foundation

extension PointInTimeRestore {
    /// The replay's session, not yet connecting (`SessionsAhead.start`).
    static func replaySession(_ options: RestoreOptions) -> SessionsAhead {
        SessionsAhead(1, target: options.target, name: "ftbackup-replay",
                      setup: ChangeArchiver.decodingSettings + "; SET session_replication_role = replica; SET synchronous_commit = off"
                          + "; SET enable_hashjoin = off; SET enable_mergejoin = off")
    }

    /// Applies the transactions with commit LSN ≥ `from`, in order, until the first commit after `until`.
    /// Then reads on (the rest of the last segment, then `following`) only for the first heartbeat after TIME.
    /// Only the segments `selection` (default: all) reads are opened; with `--schema`, changes of other schemas' relations
    /// are passed over undecoded.
    ///
    /// Changes go out pipelined (`ReplayPipeline`); source transactions are grouped into one target
    /// transaction until `grouping.transactions` of them or `grouping.bytes` of change data, and a group commits
    /// only once every result in it was read and checked. The last group commits after the last
    /// transaction at or before TIME, with the sequences: the state at TIME, exactly.
    static func replay(_ segments: [ChangeSegmentManifest], following: [ChangeSegmentManifest] = [], selection: SegmentSelection? = nil,
                       storage: any RepositoryStorage,
                       options: RestoreOptions, from consistentPoint: UInt64, until target: Date, schemas: [String],
                       ignoring ignored: Set<String>, grouping: ReplayGrouping = .standard,
                       session ahead: SessionsAhead? = nil) async throws -> (Int, Int, [String]) {
        let selection = selection ?? .all(segments, following: following)  // nil: every segment is read
        let session = try await (ahead ?? replaySession(options)).take()
        defer { session.close() }
        // (synchronous_commit is off for the replay's own batches: the restore is only done once the final COMMIT returns.
        // Batched UPDATEs and DELETEs join up to 64 keys to their table: probing the key's index per key is what they
        // need, where the planner chose a hash join over the whole table for a table of a few thousand rows, 50 times slower.)
        let limit = PgOutputDecoder.postgresMicroseconds(from: target)
        let schemaFilter = Set(schemas)
        return try await session.withConnection { connection -> (Int, Int, [String]) in
            let applier = ChangeApplier(connection: connection, schemas: schemaFilter, ignoring: ignored, grouping: grouping)
            let pipeline = applier.pipeline
            var transactions = 0
            var lastApplied: UInt64 = 0
            var applying = false
            var stop = false
            var sinceCommit = 0
            var bytesSinceCommit = 0
            var after: [String: [String]]?
            try connection.execute("BEGIN")
            try pipeline.start()
            var filter = ReplayRelationFilter(schemas: schemaFilter, segmentsSkipped: selection.skipsAny)
            // Descriptions from before the full's first segment: a follower's stream describes a relation once.
            for segment in selection.describers {
                try forEachRow(segment, storage: storage) { row in
                    guard row.data.first == UInt8(ascii: "R") else { return }
                    var message = try PgOutputDecoder.decode(row.data, byteText: segment.byteText)
                    _ = filter.keep(&message)
                    try applier.apply(message, at: row.lsn)
                }
            }
            for segment in segments + following where !stop || after == nil {
                let isUsed = segments.contains(where: { $0.label == segment.label })
                if selection.skipsAny, let heartbeat = segment.checkedIndex?.lastHeartbeat {
                    // The heartbeat table as this segment knew it: its heartbeats are read even where it is not described.
                    var description = PgOutputMessage.relation(heartbeat.relation)
                    _ = filter.keep(&description)
                    try applier.apply(description, at: 0)
                }
                guard selection.reads(segment) else {
                    // Skipped (it names none of the schemas): its newest heartbeat is applied as if read.
                    guard isUsed else { continue }
                    if let heartbeat = selection.heartbeat(of: segment), let commit = LSN.parse(heartbeat.commitLSN),
                       commit >= consistentPoint, commit > lastApplied {
                        guard let insert = Data(base64Encoded: heartbeat.insert) else {
                            throw FTBackupError(.dataError, "change segment \(segment.label)'s index holds an unreadable heartbeat",
                                                hint: "run ftbackup verify --segments; a whole-database restore --at reads the segment itself")
                        }
                        try applier.apply(try PgOutputDecoder.decode(Array(insert), byteText: segment.byteText), at: commit)
                    }
                    if let last = segment.lastCommitLSN.flatMap(LSN.parse), last >= consistentPoint { lastApplied = max(lastApplied, last) }
                    continue
                }
                // The following segments are never replayed: every commit up to TIME is in `segments`.
                if !isUsed { stop = true }
                // Values go back in the encoding they were decoded in, byte for byte (UTF8 for older segments).
                try applier.flush()
                try pipeline.synchronously { try $0.execute("SET client_encoding = \(try $0.escapeLiteral(segment.encoding ?? "UTF8"))") }
                applier.byteText = segment.byteText
                try forEachRow(segment, storage: storage) { row in
                    if stop {
                        try applier.flush()
                        try pipeline.finish()  // every change up to TIME is checked; only reads from here
                        // Past TIME: only the first heartbeat whose reading began after TIME is wanted.
                        guard after == nil, let kind = row.data.first, [UInt8(ascii: "R"), UInt8(ascii: "I")].contains(kind) else { return }
                        let message = try PgOutputDecoder.decode(row.data, byteText: segment.byteText)
                        if case .relation = message { try applier.apply(message, at: row.lsn) }
                        if case .insert(let relid, let new) = message, let heartbeat = try applier.heartbeat(relid, new),
                           try readAfter(heartbeat.at, limit, connection) {
                            after = heartbeat.sequences
                        }
                        return
                    }
                    guard filter.wants(row.data) else { return }
                    var message = try PgOutputDecoder.decode(row.data, byteText: segment.byteText)
                    if !filter.keep(&message) { return }
                    if applying { bytesSinceCommit += row.data.count }
                    switch message {
                    case .begin(let final, let time, _):
                        if final < consistentPoint || final <= lastApplied {
                            applying = false  // before the full, or already applied from an earlier segment
                        } else if time > limit {
                            stop = true
                        } else {
                            applying = true
                            lastApplied = final
                            applier.begin(commitLSN: final, commitTime: time)
                        }
                    case .commit:
                        if applying {
                            transactions += 1
                            sinceCommit += 1
                            applying = false
                            if sinceCommit >= grouping.transactions || bytesSinceCommit >= grouping.bytes {
                                // (synchronously: reads and checks every outstanding result first)
                                try applier.flush()
                                try pipeline.synchronously { try $0.execute("COMMIT; BEGIN") }
                                pipeline.committedThrough = lastApplied
                                sinceCommit = 0
                                bytesSinceCommit = 0
                            }
                        }
                    case .relation:
                        try applier.apply(message, at: row.lsn)  // descriptions are kept even from skipped transactions
                    default:
                        if applying { try applier.apply(message, at: row.lsn) }
                    }
                }
            }
            try applier.flush()
            try pipeline.finish()
            try connection.execute("SET client_encoding = 'UTF8'")
            let warnings = try SequencesAtTime.apply(connection, before: applier.sequences, after: after, schemas: schemaFilter)
            try connection.execute("COMMIT")
            StatisticsCounts.reportNow(connection)
            return (transactions, applier.changesApplied, warnings)
        }
    }

    /// True when a heartbeat's reading began after `limit` (PostgreSQL microseconds); a heartbeat
    /// without `at` (none is written so) counts as read at its commit, which is after `limit` too.
    static func readAfter(_ at: String?, _ limit: Int64, _ connection: PGConnection) throws -> Bool {
        guard let at else { return true }
        return try connection.query("SELECT $1::timestamptz > '2000-01-01 00:00:00+00'::timestamptz + $2::bigint * interval '1 microsecond' AS later",
                                    [at, String(limit)]).first?.bool("later") ?? false
    }
}

/// Carries the replay's figures out of the restore's callback.
final class ReplayTally: @unchecked Sendable {
    private let lock = NSLock()
    private var figures = (0, 0, 0.0)
    private var sequenceWarnings: [String] = []
    func set(transactions: Int, changes: Int, seconds: Double, warnings: [String]) {
        lock.withLock { figures = (transactions, changes, seconds); sequenceWarnings = warnings }
    }
    var value: (Int, Int, Double) { lock.withLock { figures } }
    var warnings: [String] { lock.withLock { sequenceWarnings } }
}
