import Foundation

/// When each restorable point became available, from the repository's own records: a full backup
/// makes its consistent instant restorable once it has finished (`stoppedAt`), a change segment
/// makes its last commit restorable once it is sealed (`createdAt`).
///
/// It exists to measure RPO as it was really delivered: at any instant, what a dead source would
/// have lost is the time since the newest point already safe in the repository. The worst such lag
/// over the history window is the RPO the policy is met or missed by.
struct RecoveryPointHistory {
    struct Event: Equatable {
        var availableAt: Date
        var restorableUntil: Date
    }

    var events: [Event]

    init(fulls: [BackupManifest], segments: [ChangeSegmentManifest]) {
        var events = fulls.map { Event(availableAt: $0.stoppedAt, restorableUntil: $0.snapshot.time) }
        let aligned = fulls.filter { $0.snapshot.origin == "replication-slot" }
        // A segment counts only once an aligned full exists to replay it from.
        if let firstAligned = aligned.first {
            for segment in segments {
                guard let last = segment.lastCommitTime else { continue }
                events.append(Event(availableAt: max(segment.createdAt, firstAligned.stoppedAt), restorableUntil: last))
            }
        }
        self.events = events.sorted { $0.availableAt < $1.availableAt }
    }

    /// The newest point restorable at `date`.
    func newestPoint(at date: Date) -> Date? {
        events.filter { $0.availableAt <= date }.map(\.restorableUntil).max()
    }

    /// The longest lag of the newest restorable point behind the clock between `start` and `end`:
    /// sampled just before each new point became available, and at `end`.
    func worstGap(from start: Date, to end: Date) -> (seconds: Double, endedAt: Date?) {
        var worst: (Double, Date?) = (0, nil)
        var newest: Date? = events.filter { $0.availableAt < start }.map(\.restorableUntil).max()
        for event in events where event.availableAt >= start && event.availableAt <= end {
            if let newest {
                let lag = event.availableAt.timeIntervalSince(newest)
                if lag > worst.0 { worst = (lag, event.availableAt) }
            }
            newest = max(newest ?? event.restorableUntil, event.restorableUntil)
        }
        if let newest, end.timeIntervalSince(newest) > worst.0 { worst = (end.timeIntervalSince(newest), end) }
        return worst
    }
}

/// The rows each table must hold after a restore: the full's counts, plus inserts, minus deletes,
/// truncates resetting, of the transactions replay applies (commit LSN from the full's consistent
/// point, up to the last commit at or before the point restored).
///
/// Counted independently of the replay itself (by reading the segments again), so a drill checks the
/// restore rather than repeating its arithmetic. Reading the segments also checks their digests.
enum ExpectedRowCounts {
    static func compute(full: BackupManifest, segments: [ChangeSegmentManifest], until target: Date?,
                        storage: any RepositoryStorage) throws -> (counts: [String: Int64], changes: Int) {
        var counts = Dictionary(full.tables.map { ("\($0.schema).\($0.name)", $0.rows) }, uniquingKeysWith: { first, _ in first })
        guard let target, let consistentPoint = LSN.parse(full.snapshot.walLSN) else { return (counts, 0) }
        let limit = PgOutputDecoder.postgresMicroseconds(from: target)
        var names: [UInt32: String] = [:]
        var applying = false
        var lastApplied: UInt64 = 0
        var changes = 0
        scan: for segment in segments {
            var stop = false
            try PointInTimeRestore.forEachRow(segment, storage: storage) { row in
                guard !stop, let kind = row.data.first else { return }
                switch kind {
                case UInt8(ascii: "B"):
                    guard case .begin(let final, let time, _) = try PgOutputDecoder.decode(row.data) else { return }
                    if final < consistentPoint || final <= lastApplied {
                        applying = false
                    } else if time > limit {
                        stop = true
                    } else {
                        applying = true
                        lastApplied = final
                    }
                case UInt8(ascii: "R"):
                    if case .relation(let relation) = try PgOutputDecoder.decode(row.data) { names[relation.relid] = "\(relation.namespace).\(relation.name)" }
                case UInt8(ascii: "I"), UInt8(ascii: "D"):
                    guard applying, row.data.count >= 5 else { return }
                    let relid = row.data[1...4].reduce(0) { $0 << 8 | UInt32($1) }
                    guard let name = names[relid], counts[name] != nil else { return }
                    counts[name]! += kind == UInt8(ascii: "I") ? 1 : -1
                    changes += 1
                case UInt8(ascii: "U"):
                    if applying { changes += 1 }
                case UInt8(ascii: "T"):
                    guard applying, case .truncate(let relids, _, _) = try PgOutputDecoder.decode(row.data, byteText: segment.byteText) else { return }
                    for relid in relids { if let name = names[relid], counts[name] != nil { counts[name] = 0 } }
                default:
                    break
                }
            }
            if stop { break scan }
        }
        return (counts, changes)
    }
}
