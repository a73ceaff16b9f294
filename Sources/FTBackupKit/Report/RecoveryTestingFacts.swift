import Foundation

/// Section 4, recovery testing: every drill of the period with its measured RTO and RPO against the
/// objectives, and each month with or without a drill. A month that ended without a drill is a
/// finding; the current month is one only when the newest drill is older than the drill interval.
public struct RecoveryTestingFacts: Codable, Sendable {
    public struct Drill: Codable, Sendable, Equatable {
        public var label: String
        public var startedAt: Date
        public var passed: Bool
        public var rtoSeconds: Double
        public var rtoObjectiveSeconds: Double
        public var rpoSeconds: Double
        public var rpoObjectiveSeconds: Double
        public var reasons: [String]
    }

    public enum MonthStatus: String, Codable, Sendable { case passed, failed, missing, pending }

    public struct Month: Codable, Sendable, Equatable {
        public var month: String
        public var drills: Int
        public var status: MonthStatus
    }

    public var policy: [ComplianceReport.PolicyValue]
    public var drills: [Drill]
    public var months: [Month]
    public var newestDrill: String?
    public var findings: [ComplianceReport.Finding]

    static func make(_ repository: Repository, policy: Policy, period: ReportPeriod, now: Date) throws -> RecoveryTestingFacts {
        var findings: [ComplianceReport.Finding] = []
        // A record dated after the clock is no drill of any month (the evidence section names it).
        let records = try DrillRecord.all(repository).filter { $0.startedAt.timeIntervalSince(now) <= RecordChainWalk.clockSkew }
        let drills = records.filter { period.contains($0.startedAt) }.map {
            Drill(label: $0.label, startedAt: $0.startedAt, passed: $0.passed, rtoSeconds: $0.rto.measuredSeconds,
                  rtoObjectiveSeconds: $0.rto.objectiveSeconds, rpoSeconds: $0.rpo.measuredSeconds, rpoObjectiveSeconds: $0.rpo.objectiveSeconds,
                  reasons: $0.reasons)
        }
        for drill in drills where !drill.passed {
            findings.append(.init(.recoveryTesting, .error, "drill \(drill.label) FAILED: \(drill.reasons.joined(separator: "; "))"))
        }
        let calendar = ReportPeriod.calendar
        var months: [Month] = []
        for month in period.months(until: now) {
            let next = calendar.date(byAdding: .month, value: 1, to: month)!
            let inMonth = records.filter { $0.startedAt >= month && $0.startedAt < next }
            let text = ReportPeriod.monthText(month)
            let status: MonthStatus
            if inMonth.contains(where: \.passed) { status = .passed }
            else if !inMonth.isEmpty { status = .failed }
            else if next > now {
                let newest = records.last?.startedAt
                status = newest.map { now.timeIntervalSince($0) <= policy.drillInterval.nominalSeconds } == true ? .pending : .missing
            } else { status = .missing }
            if status == .missing {
                findings.append(.init(.recoveryTesting, .error, next > now
                    ? "\(text): no drill yet and the newest is more than \(policy.drillInterval) old (policy: drills every \(policy.drillInterval))"
                    : "\(text): no restore drill (policy: drills every \(policy.drillInterval))"))
            }
            months.append(Month(month: text, drills: inMonth.count, status: status))
        }
        return RecoveryTestingFacts(
            policy: [.init(name: "drills", value: "every \(policy.drillInterval)"), .init(name: "RTO objective", value: policy.rto.description),
                     .init(name: "RPO objective", value: policy.rpo.description)],
            drills: drills, months: months, newestDrill: records.last?.label, findings: findings)
    }
}
