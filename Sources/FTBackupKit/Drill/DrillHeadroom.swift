import Foundation

/// Turns one drill's measured rates into the size and change volume at which the RTO would be missed.
///
/// The model is linear and says so: every phase but replay grows with the database's size (seconds
/// per GiB as measured), replay with the changes since the full it starts from (changes per second as
/// measured); at worst a restore replays one full-backup interval of changes. It exists so that an
/// on-call lead can read from a drill whether next year's database still restores within the RTO.
enum DrillHeadroom {
    static let gib = 1_073_741_824.0

    static func compute(phases: [DrillRecord.Phase], databaseBytes: Int64, restoredRawBytes: Int64, changesReplayed: Int,
                        segmentBytesReplayed: Int64, dailyChangeBytes: Int64, fullInterval: Period, rto: Period) -> DrillRecord.Headroom {
        let seconds = Dictionary(phases.map { ($0.name, $0.seconds) }, uniquingKeysWith: +)
        let replaySeconds = seconds["replay"] ?? 0
        let sizeSeconds = phases.filter { $0.name != "replay" }.reduce(0) { $0 + $1.seconds }
        let dataRate = (seconds["data"] ?? 0) > 0 ? Double(restoredRawBytes) / 1_048_576 / seconds["data"]! : nil
        let perGiB = databaseBytes > 0 ? sizeSeconds / (Double(databaseBytes) / gib) : nil
        let replayRate = replaySeconds > 0.05 && changesReplayed > 0 ? Double(changesReplayed) / replaySeconds : nil
        let changesPerByte = segmentBytesReplayed > 0 && changesReplayed > 0 ? Double(changesReplayed) / Double(segmentBytesReplayed) : nil
        let dailyChanges = changesPerByte.map { $0 * Double(dailyChangeBytes) }
        let intervalDays = fullInterval.nominalSeconds / 86_400
        let worstChanges = dailyChanges.map { $0 * intervalDays }
        let worstReplay = zip2(worstChanges, replayRate).map { $0 / $1 }
        let budget = rto.nominalSeconds
        let missedAtSize = perGiB.map { perGiB -> Int64 in
            Int64(max(0, budget - (worstReplay ?? 0)) / perGiB * gib)
        }
        let missedAtChanges = replayRate.map { rate in max(0, budget - sizeSeconds) / max(intervalDays, 1.0 / 24) * rate }
        var statement = "RTO \(rto): "
        if let missedAtSize {
            statement += "missed at about \(ByteCount.format(missedAtSize)) of database (now \(ByteCount.format(databaseBytes)), \(String(format: "%.1f", perGiB ?? 0)) s per GiB"
            statement += worstReplay.map { String(format: ", with %.0f s of worst-case replay)", $0) } ?? ")"
        } else {
            statement += "size headroom unknown (database size not measured)"
        }
        if let missedAtChanges, let replayRate {
            statement += String(format: "; or at about %.0f changes per day at today's size (now %.0f, replay %.0f changes/s, one full every %@)",
                                missedAtChanges, dailyChanges ?? 0, replayRate, fullInterval.description)
        } else {
            statement += "; change-volume headroom unknown (no replay to measure: the point restored had no changes after its full)"
        }
        return DrillRecord.Headroom(databaseBytes: databaseBytes, restoredRawBytes: restoredRawBytes, dataMiBPerSecond: dataRate,
                                    sizeSecondsPerGiB: perGiB, replayChangesPerSecond: replayRate, dailyChangeBytes: dailyChangeBytes,
                                    dailyChanges: dailyChanges, worstReplayChanges: worstChanges, worstReplaySeconds: worstReplay,
                                    rtoMissedAtDatabaseBytes: missedAtSize, rtoMissedAtDailyChanges: missedAtChanges, statement: statement)
    }

    private static func zip2<A, B>(_ a: A?, _ b: B?) -> (A, B)? {
        guard let a, let b else { return nil }
        return (a, b)
    }
}
