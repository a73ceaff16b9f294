import Foundation

/// Removes backups the policy no longer asks for, without ever removing the way back.
///
/// It exists so that the repository does not grow without bound while a restore stays possible:
/// the newest full backup is always kept, nothing is removed until its successor has verified OK,
/// a full stays while a kept incremental builds on it, and nothing is removed while a backup,
/// restore, verify or drill is running. `plan` is a pure function of the backups, their
/// verification records, the policy and the clock, so every rule is testable without a server;
/// `run` takes the locks, plans and removes.
public enum BackupExpiry {
    /// How long a backup folder without a manifest is left alone, counted from the start time in its label.
    public static let incompleteGrace = Period(1, .hours)

    /// Decides keep or remove for every backup folder in `entries` (as `Repository.entries()` lists
    /// them, oldest first). `verifications` holds the verification record of each backup that has one.
    /// With `source` (the repository's, ``RepositorySourceView``), a backup of another database is
    /// never removed and never counted as anyone's successor: it is kept for an operator.
    public static func plan(entries: [Repository.Entry], verifications: [String: VerificationRecord],
                            policy: Policy, now: Date, source: SourceKey? = nil) -> ExpiryPlan {
        let foreign = Dictionary(entries.compactMap(\.manifest).compactMap { manifest in
            source?.mismatch(of: manifest).map { (manifest.label, $0) }
        }, uniquingKeysWith: { first, _ in first })
        let own = entries.compactMap(\.manifest).filter { foreign[$0.label] == nil }
        let fulls = own.filter { $0.type == .full }.sorted { $0.label < $1.label }
        let newestFull = fulls.last?.label
        let window = PointInTimeWindow(fulls: fulls, policy: policy, now: now)

        /// The next newer complete full backup: what a restore falls back on once `label` is gone.
        func successor(of label: String) -> BackupManifest? { fulls.first { $0.label > label } }

        func decide(_ manifest: BackupManifest, retention: Period, neededBy incremental: String? = nil) -> (ExpiryPlan.Action, String) {
            if manifest.label == newestFull { return (.keep, "newest full") }
            if manifest.stoppedAt >= cutoff(retention, before: now) { return (.keep, "within \(retention) retention") }
            if let incremental { return (.keep, "base of kept incremental \(incremental)") }
            if manifest.label == window.base?.label {
                return (.keep, "base of the \(policy.incremental.retention) point-in-time window: restores its oldest instant")
            }
            guard let successor = successor(of: manifest.label) else { return (.keep, "no newer full backup") }
            guard verifications[successor.label]?.confirms(successor) == true else {
                return (.keep, "successor \(successor.label) not verified")
            }
            return (.remove, "older than \(retention) retention")
        }

        // Incrementals first: a full is kept while any kept incremental's changes are replayed on it.
        // Incrementals do not exist yet and their manifest names no base; until it does, an
        // incremental's base is taken to be the newest complete full that precedes it. This map is
        // the only place that notion lives.
        var decisions: [String: (ExpiryPlan.Action, String)] = [:]
        var neededBy: [String: String] = [:]  // full label → the oldest kept incremental built on it
        for manifest in own where manifest.type == .incr {
            let decision = decide(manifest, retention: policy.incremental.retention)
            decisions[manifest.label] = decision
            if decision.0 == .keep, let base = fulls.last(where: { $0.label < manifest.label }), neededBy[base.label] == nil {
                neededBy[base.label] = manifest.label
            }
        }
        for manifest in fulls {
            decisions[manifest.label] = decide(manifest, retention: policy.full.retention, neededBy: neededBy[manifest.label])
        }

        let items = entries.map { entry -> ExpiryPlan.Item in
            let (action, reason): (ExpiryPlan.Action, String)
            switch entry.status {
            case .complete where foreign[entry.label] != nil:
                (action, reason) = (.keep, "another source, left for an operator: \(foreign[entry.label]!)")
            case .complete:
                (action, reason) = decisions[entry.label] ?? (.keep, "not a known backup type")
            case .incomplete:
                (action, reason) = decideIncomplete(label: entry.label, now: now)
            case .unreadable:
                (action, reason) = (.keep, "unreadable manifest, left for an operator: \(entry.problem ?? "unknown problem")")
            }
            return ExpiryPlan.Item(label: entry.label, type: entry.manifest?.type, status: entry.status,
                                   stoppedAt: entry.manifest?.stoppedAt, storedBytes: entry.manifest?.totals.storedBytes,
                                   action: action, reason: reason)
        }
        return ExpiryPlan(evaluatedAt: now, items: items)
    }

    /// Takes the repository's write and read locks exclusively (no backup, restore, verify or drill
    /// may be running: it fails at once with exit 75 if one is), plans, and unless `dryRun` removes.
    public static func run(repositoryPath: String, policy: Policy, dryRun: Bool, now: Date = Date()) throws -> ExpiryReport {
        try run(try Repository.open(repositoryPath), lockRoot: repositoryPath, policy: policy, dryRun: dryRun, now: now)
    }

    /// `run` on any storage; the locks live under `lockRoot` (a local folder: see ``RepositoryLock``).
    static func run(_ repository: Repository, lockRoot: String, policy: Policy, dryRun: Bool, now: Date) throws -> ExpiryReport {
        let command = dryRun ? "expire --dry-run" : "expire"
        let writeLock = try RepositoryLock.acquire(repositoryRoot: lockRoot, kind: .write, exclusive: true, command: command)
        defer { writeLock.release() }
        let readLock = try RepositoryLock.acquire(repositoryRoot: lockRoot, kind: .read, exclusive: true, command: command)
        defer { readLock.release() }

        let entries = try repository.entries()
        let source = try RepositorySourceView.load(repository).key
        var verifications: [String: VerificationRecord] = [:]
        for entry in entries where entry.status == .complete {
            verifications[entry.label] = VerificationRecord.read(repository, label: entry.label)
        }
        let plan = plan(entries: entries, verifications: verifications, policy: policy, now: now, source: source)
        let segments = planSegments(try ChangeSegmentManifest.all(repository.storage), entries: entries, policy: policy, now: now,
                                    source: source)
        var removed: [String] = []
        var removedSegments: [String] = []
        if !dryRun {
            for item in plan.removals {
                try remove(item.label, from: repository)
                removed.append(item.label)
            }
            for item in segments where item.action == .remove {
                // Manifest first: a segment without one is incomplete, never replayed.
                try repository.storage.remove(ChangeSegmentManifest.manifestPath(item.label))
                try repository.storage.remove(ChangeSegmentManifest.dataPath(item.label))
                try repository.storage.remove(ChangeSegmentManifest.verificationPath(name: item.label))
                removedSegments.append(item.label)
            }
        }
        return ExpiryReport(repository: repository.storage.location, dryRun: dryRun, fullRetention: policy.full.retention.description,
                            incrementalRetention: policy.incremental.retention.description, plan: plan, removed: removed,
                            segments: segments, removedSegments: removedSegments)
    }

    /// Change segments go once their last commit is older than the incremental retention (the
    /// point-in-time window), except those a restore of any instant inside the window still replays:
    /// every segment ending after the consistent point of the window's base, the newest aligned full
    /// at or before the window's oldest instant (``PointInTimeWindow``), which the backup plan keeps.
    /// With `source`, another database's segments are kept for an operator and its fulls count for nothing.
    public static func planSegments(_ segments: [ChangeSegmentManifest], entries: [Repository.Entry], policy: Policy,
                                    now: Date, source: SourceKey? = nil) -> [ExpiryReport.SegmentItem] {
        let fulls = entries.compactMap(\.manifest).filter { $0.type == .full && source?.mismatch(of: $0) == nil }
        let window = PointInTimeWindow(fulls: fulls, policy: policy, now: now)
        let newestAligned = fulls.last { $0.snapshot.origin == "replication-slot" }?.label
        let retention = policy.incremental.retention
        return segments.map { segment in
            let (action, reason): (ExpiryPlan.Action, String)
            if let problem = source?.mismatch(of: segment) {
                (action, reason) = (.keep, "another source, left for an operator: \(problem)")
            } else if let base = window.base, window.needs(segmentEndingAt: segment.endLSN) {
                (action, reason) = (.keep, base.label == newestAligned
                    ? "replayed from the newest full \(base.label)"
                    : "replayed from full \(base.label), the base of the \(retention) point-in-time window")
            } else if let last = segment.lastCommitTime, last >= window.start {
                (action, reason) = (.keep, "within \(retention) retention")
            } else {
                (action, reason) = (.remove, "older than \(retention) retention, before the window's base full")
            }
            return ExpiryReport.SegmentItem(label: segment.label, lastCommitTime: segment.lastCommitTime,
                                            storedBytes: segment.file.storedBytes, action: action, reason: reason)
        }
    }

    /// Removes one backup so that an interruption at any point leaves nothing that looks complete:
    /// the manifest goes first (durably: the storage syncs the folder), so what is left is at worst
    /// an incomplete folder that the next expiry or backup removes; then the rest of the folder.
    static func remove(_ label: String, from repository: Repository) throws {
        try repository.storage.remove(repository.manifestPath(label))
        try repository.storage.remove(repository.backupFolder(label))
    }

    /// A folder without a manifest is a backup that died. Since expiry holds the write lock no
    /// backup can be writing it, but one started less than `incompleteGrace` ago is left alone all
    /// the same; one whose name is not a label (no start time) is never touched.
    static func decideIncomplete(label: String, now: Date) -> (ExpiryPlan.Action, String) {
        guard let started = startTime(ofLabel: label) else {
            return (.keep, "incomplete (no manifest), not named like a backup: left for an operator")
        }
        if started < cutoff(incompleteGrace, before: now) {
            return (.remove, "incomplete (no manifest), started more than \(incompleteGrace) ago")
        }
        return (.keep, "incomplete (no manifest), started less than \(incompleteGrace) ago")
    }

    /// The UTC start time a label begins with (`20261125T140501Z-F` → 2026-11-25 14:05:01 UTC).
    static func startTime(ofLabel label: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = .gmt
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.date(from: String(label.prefix(16)))
    }

    /// `now` minus `period`, with months and years as calendar units in UTC (as the policy defines them).
    static func cutoff(_ period: Period, before now: Date) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        let (component, count): (Calendar.Component, Int) = switch period.unit {
        case .seconds: (.second, period.value)
        case .minutes: (.minute, period.value)
        case .hours: (.hour, period.value)
        case .days: (.day, period.value)
        case .weeks: (.day, 7 * period.value)
        case .months: (.month, period.value)
        case .years: (.year, period.value)
        }
        return calendar.date(byAdding: component, value: -count, to: now) ?? now.addingTimeInterval(-period.nominalSeconds)
    }
}
