import Foundation

/// Section 3, backups: for each day of the period a verified full or not; for each hour of the
/// incremental retention (7 days) restorable or not, with every gap and its times; when expiry last
/// ran; what the repository stores. Only the repository's own source counts.
public struct BackupCoverage: Codable, Sendable {
    public enum DayStatus: String, Codable, Sendable {
        /// A full started that day and verified.
        case verified
        /// A full started that day but no verify confirms it.
        case unverified
        case missing
        /// Older than the full retention: its backups are gone by policy, nothing to show.
        case expired
        /// Today, before its full.
        case pending
    }

    public struct Day: Codable, Sendable, Equatable {
        public var day: String
        public var status: DayStatus
        public var backups: [String]
    }

    public enum HourStatus: String, Codable, Sendable { case restorable, gap, pending }

    public struct Hour: Codable, Sendable, Equatable {
        public var start: Date
        public var status: HourStatus
    }

    public struct Gap: Codable, Sendable, Equatable {
        public var from: Date
        public var to: Date
        public var reason: String
    }

    public struct StorageUse: Codable, Sendable, Equatable {
        public var backupsBytes: Int64
        public var segmentsBytes: Int64
        public var archivesBytes: Int64
        public var lifecycleBytes: Int64
        public var totalBytes: Int64
    }

    public var policy: [ComplianceReport.PolicyValue]
    public var days: [Day]
    public var hours: [Hour]
    public var gaps: [Gap]
    public var newestRestorablePoint: Date?
    public var newestFull: String?
    public var lastExpiryAt: Date?
    public var storage: StorageUse
    public var findings: [ComplianceReport.Finding]

    static func make(_ repository: Repository, policy: Policy, period: ReportPeriod, now: Date) throws -> BackupCoverage {
        let view = try RepositorySourceView.load(repository)
        let fulls = view.own(try repository.entries().compactMap(\.manifest)).filter { $0.type == .full }
        let segments = view.own(try ChangeSegmentManifest.all(repository.storage))
        var findings: [ComplianceReport.Finding] = []
        let calendar = ReportPeriod.calendar
        let retentionStart = now.addingTimeInterval(-policy.full.retention.nominalSeconds)
        var days: [Day] = []
        for day in period.days(until: now) {
            let next = calendar.date(byAdding: .day, value: 1, to: day)!
            let started = fulls.filter { $0.startedAt >= day && $0.startedAt < next }
            let verified = started.filter { VerificationRecord.read(repository, label: $0.label)?.confirms($0) == true }
            let status: DayStatus
            if !verified.isEmpty { status = .verified }
            else if next <= retentionStart { status = .expired }
            else if !started.isEmpty { status = .unverified }
            else if next > now { status = .pending }
            else { status = .missing }
            let text = ReportPeriod.dayText(day)
            if status == .missing { findings.append(.init(.backups, .error, "\(text): no full backup (policy: \(policy.full.schedule.rawValue), kept \(policy.full.retention))")) }
            if status == .unverified {
                findings.append(.init(.backups, .error, "\(text): full \(started.map(\.label).joined(separator: ", ")) not verified; run ftbackup verify --set LABEL"))
            }
            days.append(Day(day: text, status: status, backups: started.map(\.label)))
        }

        // Hour by hour over the incremental retention (ending with the current hour's start), within
        // the period: older hours' segments are gone by policy, so they have nothing to show.
        let spans = RestorableSpans(fulls: fulls, segments: segments)
        let currentHour = Date(timeIntervalSince1970: (now.timeIntervalSince1970 / 3600).rounded(.down) * 3600)
        let windowStart = max(period.from, currentHour.addingTimeInterval(-Double(max(1, Int(policy.incremental.retention.nominalSeconds / 3600))) * 3600))
        let windowEnd = min(period.to, currentHour)
        let hourCount = max(0, Int(windowEnd.timeIntervalSince(windowStart) / 3600))
        let end = min(period.to, now)
        let newest = spans.newestPoint
        let fresh = newest.map { now.timeIntervalSince($0) <= policy.rpo.nominalSeconds } ?? false
        var hours: [Hour] = []
        for index in 0..<hourCount {
            let start = windowStart.addingTimeInterval(Double(index) * 3600)
            let end = start.addingTimeInterval(3600)
            let status: HourStatus
            if spans.covers(start, end) { status = .restorable }
            else if fresh, let newest, end > newest, spans.covers(start, newest) || start >= newest { status = .pending }
            else { status = .gap }
            hours.append(Hour(start: start, status: status))
        }
        var gaps: [Gap] = []
        if hourCount > 0 {
            if let first = spans.spans.first, first.start > windowStart {
                gaps.append(Gap(from: windowStart, to: min(first.start, end), reason: "no slot-aligned full backup before \(Timestamps.display(first.start))"))
            } else if spans.spans.isEmpty {
                gaps.append(Gap(from: windowStart, to: end, reason: "nothing restorable by restore --at: no slot-aligned full backup (run ftbackup setup, then a full)"))
            }
            for (earlier, later) in zip(spans.spans, spans.spans.dropFirst()) where later.start > windowStart && earlier.end < end {
                gaps.append(Gap(from: max(earlier.end, windowStart), to: min(later.start, end),
                                reason: earlier.brokenBefore.map { "change segments not contiguous: \($0)" } ?? "no change segment continues \(earlier.lastSegment ?? "the full")"))
            }
            if let newest, !fresh, newest < end {
                gaps.append(Gap(from: max(newest, windowStart), to: end, reason: "the newest restorable point is older than the \(policy.rpo) RPO objective"))
            }
        }
        for gap in gaps {
            findings.append(.init(.backups, .error, "not restorable from \(Timestamps.display(gap.from)) to \(Timestamps.display(gap.to)): \(gap.reason)"))
        }
        let state = try? SchedulerState.read(repository)
        return BackupCoverage(
            policy: [.init(name: "full backups", value: "\(policy.full.schedule.rawValue), kept \(policy.full.retention)"),
                     .init(name: "incremental", value: "\(policy.incremental.schedule.rawValue), kept \(policy.incremental.retention)"),
                     .init(name: "RPO objective", value: policy.rpo.description)],
            days: days, hours: hours, gaps: gaps, newestRestorablePoint: newest, newestFull: fulls.last?.label,
            lastExpiryAt: state?.jobs["maintenance"]?.lastSuccessAt, storage: try storageUse(repository.storage), findings: findings)
    }

    static func storageUse(_ storage: any RepositoryStorage) throws -> StorageUse {
        func size(_ folder: String) throws -> Int64 {
            try storage.list(folder).reduce(0) { $0 + ($1.isDirectory ? try size($1.path) : $1.size) }
        }
        let backups = try size(Repository.backupsFolder), segments = try size("changes"), archives = try size(ArchiveStore.folder)
        let lifecycle = try size("lifecycle")
        return StorageUse(backupsBytes: backups, segmentsBytes: segments, archivesBytes: archives, lifecycleBytes: lifecycle,
                          totalBytes: try size(""))
    }
}
