import Foundation

extension PointInTimeRestore {
    /// Applies the transactions with commit LSN ≥ `from`, in order, until the first commit after `until`.
    /// Then reads on (the rest of the last segment, then `following`) only for the first heartbeat after TIME.
    /// Only the segments `selection` reads are opened; with `--schema`, changes of other schemas' relations
    /// are passed over undecoded.
    static func replay(_ segments: [ChangeSegmentManifest], following: [ChangeSegmentManifest] = [], selection: SegmentSelection,
                       storage: any RepositoryStorage,
                       options: RestoreOptions, from consistentPoint: UInt64, until target: Date, schemas: [String],
                       ignoring ignored: Set<String>) async throws -> (Int, Int, [String]) {
        let session = try await DatabaseSession.connect(options.target, name: "ftbackup-replay")
        defer { session.close() }
        try await session.execute(ChangeArchiver.decodingSettings + "; SET session_replication_role = replica; SET synchronous_commit = off")
        // (synchronous_commit is off for the replay's own batches: the restore is only done once the final COMMIT returns.)
        let limit = PgOutputDecoder.postgresMicroseconds(from: target)
        let schemaFilter = Set(schemas)
        return try await session.withConnection { connection -> (Int, Int, [String]) in
            let applier = ChangeApplier(connection: connection, schemas: schemaFilter, ignoring: ignored)
            var transactions = 0
            var lastApplied: UInt64 = 0
            var applying = false
            var stop = false
            var sinceCommit = 0
            var after: [String: [String]]?
            try connection.execute("BEGIN")
            var filter = ReplayRelationFilter(schemas: schemaFilter, segmentsSkipped: selection.skipsAny)
            for segment in segments + following where !stop || after == nil {
                let isUsed = segments.contains(where: { $0.label == segment.label })
                if selection.skipsAny, let heartbeat = segment.index?.lastHeartbeat {
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
                try connection.execute("SET client_encoding = \(try connection.escapeLiteral(segment.encoding ?? "UTF8"))")
                applier.byteText = segment.byteText
                try forEachRow(segment, storage: storage) { row in
                    if stop {
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
                    switch message {
                    case .begin(let final, let time, _):
                        if final < consistentPoint || final <= lastApplied {
                            applying = false  // before the full, or already applied from an earlier segment
                        } else if time > limit {
                            stop = true
                        } else {
                            applying = true
                            lastApplied = final
                            applier.commitTime = time
                        }
                    case .commit:
                        if applying {
                            transactions += 1
                            sinceCommit += 1
                            applying = false
                            if sinceCommit >= 1000 {
                                try connection.execute("COMMIT; BEGIN")
                                sinceCommit = 0
                            }
                        }
                    case .relation:
                        try applier.apply(message, at: row.lsn)  // descriptions are kept even from skipped transactions
                    default:
                        if applying { try applier.apply(message, at: row.lsn) }
                    }
                }
            }
            try connection.execute("SET client_encoding = 'UTF8'")
            let warnings = try SequencesAtTime.apply(connection, before: applier.sequences, after: after, schemas: schemaFilter)
            try connection.execute("COMMIT")
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
