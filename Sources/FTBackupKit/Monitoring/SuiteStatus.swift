import Foundation

/// `ftbackup status`: the whole suite judged on one screen, with the Nagios plugin's exit codes so
/// existing monitoring (Nagios, Icinga, Sensu, check_mk) can call it as it is.
public struct SuiteStatus: Codable, Sendable {
    /// Nagios plugin states; the raw value is the exit code.
    public enum Level: Int32, Codable, Sendable, Comparable {
        case ok = 0, warning = 1, critical = 2, unknown = 3
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        public var name: String { ["OK", "WARNING", "CRITICAL", "UNKNOWN"][Int(rawValue)] }
    }

    public struct Problem: Codable, Sendable, Equatable {
        public var level: Level
        public var message: String
    }

    public var level: Level
    public var problems: [Problem]
    public var health: RepositoryHealth
    /// The compliance report's findings for the current month (nil: not computed).
    public var reportFindings: [ComplianceReport.Finding]?

    /// The thresholds, from the policy: a full is late after its interval plus 2 hours (26 h for daily)
    /// and critical after twice that; the recovery point is late past `objectives.rpo` (with change
    /// archival on) and critical past twice it; a drill is missing after its interval plus 5 days (35 d
    /// for monthly); a failed last drill, a broken change archive or no full at all are critical; report
    /// findings are a warning.
    public static func evaluate(_ health: RepositoryHealth, policy: Policy, reportFindings: [ComplianceReport.Finding]?) -> SuiteStatus {
        var problems: [Problem] = []
        let now = health.checkedAt
        func hours(_ seconds: Double) -> String { String(format: "%.1f h", seconds / 3600) }
        let fullLate = policy.full.schedule.interval.nominalSeconds + 2 * 3600
        if let full = health.newestFull {
            let age = now.timeIntervalSince(full.finishedAt)
            if age > 2 * fullLate {
                problems.append(Problem(level: .critical, message: "newest full \(full.label) is \(hours(age)) old (limit \(hours(2 * fullLate)))"))
            } else if age > fullLate {
                problems.append(Problem(level: .warning, message: "newest full \(full.label) is \(hours(age)) old (limit \(hours(fullLate)))"))
            }
        } else {
            problems.append(Problem(level: .critical, message: "no complete full backup in the repository"))
        }
        if let broken = health.changeArchiveBroken {
            problems.append(Problem(level: .critical, message: "change archive broken: \(broken)"))
        }
        if policy.changeArchival.enabled, let age = health.recoveryPointAgeSeconds {
            let rpo = policy.rpo.nominalSeconds
            if age > 2 * rpo {
                problems.append(Problem(level: .critical, message: "newest restorable point is \(Int(age)) s old, over twice the RPO objective \(policy.rpo)"))
            } else if age > rpo {
                problems.append(Problem(level: .warning, message: "newest restorable point is \(Int(age)) s old, over the RPO objective \(policy.rpo)"))
            }
        }
        if let status = health.slot?.walStatus, status != "reserved", status != "lost" {
            problems.append(Problem(level: .warning, message: "replication slot wal_status is \(status): its WAL is at risk"))
        }
        let drillLate = policy.drillInterval.nominalSeconds + 5 * 86400
        if let drill = health.lastDrill {
            if !drill.passed {
                problems.append(Problem(level: .critical, message: "last drill \(drill.label) failed: \(drill.reasons.first ?? "see its record")"))
            }
            if now.timeIntervalSince(drill.finishedAt) > drillLate {
                problems.append(Problem(level: .warning, message: "last drill \(drill.label) is \(Int(now.timeIntervalSince(drill.finishedAt) / 86400)) days old (limit \(Int(drillLate / 86400)))"))
            }
        } else {
            problems.append(Problem(level: .warning, message: "no restore drill recorded"))
        }
        if let second = health.secondRepository, let lag = health.secondRepositoryLagSeconds, lag > 0 {
            let why = second.lastFailure.map { ": \($0)" } ?? (second.lastSyncAt == nil ? ": no tick has synced it yet" : "")
            let level: Level = lag > fullLate ? .critical : .warning
            problems.append(Problem(level: level, message: "second repository \(second.location) is behind\(lag.isFinite ? " by \(hours(lag))" : "")\(why)"))
        }
        if let findings = reportFindings, !findings.isEmpty {
            problems.append(Problem(level: .warning, message: "compliance report: \(findings.count) finding(s), first: \(findings[0].message)"))
        }
        let level = problems.map(\.level).max() ?? .ok
        return SuiteStatus(level: level, problems: problems, health: health, reportFindings: reportFindings)
    }
}

extension SuiteStatus {
    /// `status --output json` when the repository or database could not be read: `level` 3 (UNKNOWN) and
    /// one problem, the keys every status has, so a consumer reads `level` and `problems` alike.
    public struct Unreadable: Encodable, Sendable {
        public var level = Level.unknown
        public var problems: [Problem]

        public init(message: String) { problems = [Problem(level: .unknown, message: message)] }
    }
}
