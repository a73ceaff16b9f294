import Foundation
@testable import FTBackupKit

/// A repository with a known history for the compliance report's tests, built around `now`:
/// one real full backup's manifest rewritten to one full a day (dated in the past, each with its
/// verified.json) and hourly change segment manifests continuing them, LSNs growing with time.
///
/// Only manifests are written: the report reads manifests, never backup or segment data. Every
/// rewritten field is named here: label, start/stop times, snapshot time, origin and WAL position
/// of the fulls; label, LSNs, commit and creation times of the segments.
enum ReportKnownHistory {
    /// The LSN the history gives instant `date` (1000 bytes a second from `base`).
    static func lsn(_ date: Date, base: Date) -> UInt64 { 0x1_0000_0000 + UInt64(max(0, date.timeIntervalSince(base)) * 1000) }

    static func dayStart(_ date: Date) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        return calendar.startOfDay(for: date)
    }

    /// Fulls at 01:00 UTC on each of the last `days` days (and today, when it is past 01:00).
    static func writeFulls(_ template: BackupManifest, into repository: Repository, days: Int, base: Date, now: Date) throws {
        for offset in (0...days).reversed() {
            let start = dayStart(now).addingTimeInterval(Double(-offset) * 86_400 + 3600)
            guard start < now else { continue }
            var manifest = template
            manifest.label = "\(DrillTarget.timestamp(start))-F"
            manifest.startedAt = start
            manifest.stoppedAt = start.addingTimeInterval(60)
            manifest.snapshot.time = start
            manifest.snapshot.origin = "replication-slot"
            manifest.snapshot.walLSN = LSN.format(lsn(start, base: base))
            try repository.storage.writeAll(repository.manifestPath(manifest.label), try manifest.encoded())
            try VerificationRecord(label: manifest.label, verifiedAt: manifest.stoppedAt.addingTimeInterval(60), files: manifest.files.count,
                                   bytes: manifest.files.reduce(0) { $0 + $1.storedBytes }).write(to: repository)
        }
    }

    /// One segment an hour from `from` until `now` (the last one ending five minutes before `now`),
    /// leaving out the segment of the hour starting at `missing`.
    static func writeSegments(into repository: Repository, source: DatabaseIdentity, from: Date, base: Date, now: Date, missing: Date) throws {
        var start = from
        while start < now.addingTimeInterval(-300) {
            let end = min(start.addingTimeInterval(3600), now.addingTimeInterval(-300))
            defer { start = end }
            if start == missing { continue }
            let label = "\(LSN.sortable(lsn(start, base: base)))-\(DrillTarget.timestamp(start))-1"
            let manifest = ChangeSegmentManifest(
                formatVersion: 1, label: label, slot: SourceKey(source).archivalSlot, source: source,
                startLSN: LSN.format(lsn(start, base: base)), endLSN: LSN.format(lsn(end, base: base)), transactions: 2,
                firstCommitLSN: LSN.format(lsn(start, base: base) + 10), lastCommitLSN: LSN.format(lsn(end, base: base) - 10),
                firstCommitTime: start.addingTimeInterval(1), lastCommitTime: end.addingTimeInterval(-1), relations: [], schemaChanges: nil,
                ddl: nil, createdAt: end.addingTimeInterval(1),
                file: .init(path: "\(label).seg.zst", codec: .zstd, storedBytes: 100, sha256: String(repeating: "0", count: 64), rawBytes: 100))
            try repository.storage.writeAll(ChangeSegmentManifest.manifestPath(label), try manifest.encoded())
        }
    }

    /// A drill record as the drill writes it (through its own writer, so it is chained).
    static func writeDrill(into repository: Repository, at date: Date, passed: Bool, rto: Double, rpo: Double) throws {
        let record = DrillRecord(
            label: DrillTarget.timestamp(date), ftbackupVersion: FTBackupVersion.current, startedAt: date, finishedAt: date.addingTimeInterval(rto),
            passed: passed, reasons: passed ? [] : ["RTO missed"], point: date.addingTimeInterval(-600), method: "point-in-time", backup: "x",
            segments: [], transactionsReplayed: 0, changesReplayed: 0, schemas: nil, source: "db", sourceServerVersion: "15", target: "db",
            targetServerVersion: "15", scratchDatabase: nil, kept: false, leftoversRemoved: [], phases: [],
            rto: .init(objectiveSeconds: 14_400, measuredSeconds: rto, met: rto <= 14_400),
            rpo: .init(objectiveSeconds: 3600, newestPointAt: nil, ageAtStartSeconds: nil, worstGapSeconds: rpo, worstGapEndedAt: nil,
                       historyDays: 30, measuredSeconds: rpo, met: rpo <= 3600),
            headroom: .init(databaseBytes: 1, restoredRawBytes: 1, dataMiBPerSecond: nil, sizeSecondsPerGiB: nil, replayChangesPerSecond: nil,
                            dailyChangeBytes: 0, dailyChanges: nil, worstReplayChanges: nil, worstReplaySeconds: nil,
                            rtoMissedAtDatabaseBytes: nil, rtoMissedAtDailyChanges: nil, statement: "-"),
            tables: [], checks: [])
        try record.write(to: repository)
    }
}
