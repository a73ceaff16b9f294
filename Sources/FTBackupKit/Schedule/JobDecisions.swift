import Foundation

/// Decides, from the policy, the repository and the scheduler's state, whether each job is due now.
///
/// Backups are due by the repository's own records (the newest full's start, the newest restorable
/// point's arrival, the newest drill), so a tick that failed or never ran is caught up by the next one;
/// lifecycle jobs and drills start only inside the policy's window.
struct JobDecisions {
    let repository: Repository
    let repositoryPath: String
    let policy: Policy
    let now: Date
    let state: SchedulerState
    /// The change archive as `info` sees it (slot health needs the database).
    let changes: ChangeArchiveStatus?
    /// How long the tick has been running (a full taken by this tick is dated after `now`, not in the future).
    var elapsed: TimeInterval = 0

    func decide(_ job: ScheduledJob) throws -> JobDecision {
        let (due, reason) = try evaluate(job)
        if due, let retry = backoffUntil(job) {
            let failures = state.jobs[job.rawValue]?.consecutiveFailures ?? 0
            return JobDecision(job: job, due: false,
                               reason: "due (\(reason)), but failed \(failures) times in a row; next attempt at \(Timestamps.iso8601UTC(retry)) (last failure \(state.jobs[job.rawValue]?.lastFailure ?? "?"))")
        }
        return JobDecision(job: job, due: due, reason: reason)
    }

    /// A job that keeps failing is retried at the next tick once, then after a delay that doubles with each
    /// failure in a row (two ticks, four, …), at most an hour for the backups and six for the heavy rest: a
    /// broken drill must not restore a whole database every five minutes. Nil when the job may run now
    /// (also when the clock went back behind the last attempt).
    func backoffUntil(_ job: ScheduledJob) -> Date? {
        guard let jobState = state.jobs[job.rawValue], let failures = jobState.consecutiveFailures, failures >= 2,
              let last = jobState.lastAttemptAt, now >= last else { return nil }
        let cap: Double = job == .full || job == .incremental ? 3600 : 6 * 3600
        let delay = min(cap, policy.scheduling.tick.nominalSeconds * pow(2, Double(min(failures - 1, 20))))
        let retry = last.addingTimeInterval(delay)
        // A quarter tick of slack: timers fire a little early or late, and a tick a few seconds before
        // the retry time must not push the attempt a whole tick further.
        return now.addingTimeInterval(policy.scheduling.tick.nominalSeconds / 4) < retry ? retry : nil
    }

    private func ownFulls() throws -> [BackupManifest] {
        let view = try RepositorySourceView.load(repository)
        return view.own(try repository.entries().compactMap(\.manifest)).filter { $0.type == .full }
    }

    private func age(_ date: Date) -> String { DrillClock.describe(now.timeIntervalSince(date)) }

    /// A record dated more than five minutes after the tick's clock: the clock went back (or ran ahead
    /// when it was written). Its age cannot be trusted, so the job is due rather than skipped until the
    /// clock catches up, which could stop backups for as long as the jump.
    private func inFuture(_ date: Date) -> Bool { date.timeIntervalSince(now.addingTimeInterval(elapsed)) > 300 }
    private func future(_ what: String, _ date: Date) -> String {
        "\(what) is dated \(Timestamps.iso8601UTC(date)), after the clock (\(Timestamps.iso8601UTC(now))): the clock went back"
    }

    private func evaluate(_ job: ScheduledJob) throws -> (Bool, String) {
        switch job {
        case .full:
            guard let newest = try ownFulls().last else { return (true, "no full backup yet") }
            let interval = policy.full.schedule.interval
            if inFuture(newest.startedAt) { return (true, future("newest full \(newest.label)", newest.startedAt)) }
            if now.timeIntervalSince(newest.startedAt) >= interval.nominalSeconds {
                return (true, "newest full \(newest.label) started \(age(newest.startedAt)) ago (schedule \(policy.full.schedule.rawValue))")
            }
            if try ChangeArchiver.needsNewFull(repositoryPath: repositoryPath) {
                return (true, "a schema change or recorded DDL since the newest full \(newest.label)")
            }
            if let broken = changes?.broken, let since = state.chainBrokenSince, newest.startedAt < since {
                return (true, "the change archive's chain broke (\(broken)); no full since")
            }
            return (false, "newest full \(newest.label) started \(age(newest.startedAt)) ago (schedule \(policy.full.schedule.rawValue))")
        case .incremental:
            guard policy.changeArchival.enabled else { return (false, "change archival is disabled in the policy") }
            if let slot = changes?.slot, slot.active {
                return (false, "a follower (pid \(slot.activePID ?? 0)) covers change archival")
            }
            let view = try RepositorySourceView.load(repository)
            let sealed = view.own(try ChangeSegmentManifest.all(repository.storage)).map(\.createdAt).max()
            let fullDone = try ownFulls().last?.stoppedAt
            guard let newest = [sealed, fullDone].compactMap({ $0 }).max() else { return (false, "no full backup yet (the full comes first)") }
            let interval = policy.incremental.schedule.interval
            if inFuture(newest) { return (true, future("the newest recovery point", newest)) }
            if now.timeIntervalSince(newest) >= interval.nominalSeconds {
                return (true, "newest recovery point sealed \(age(newest)) ago (schedule \(policy.incremental.schedule.rawValue))")
            }
            return (false, "newest recovery point sealed \(age(newest)) ago (schedule \(policy.incremental.schedule.rawValue))")
        case .maintenance:
            return periodic(.maintenance, every: policy.scheduling.maintenance.interval, window: false)
        case .lifecycle:
            return periodic(.lifecycle, every: policy.scheduling.lifecycle.interval, window: true)
        case .drill:
            guard try ownFulls().last != nil else { return (false, "no full backup to drill yet") }
            guard policy.scheduling.inWindow(now) else { return (false, "outside the window \(policy.scheduling.windowText) UTC") }
            guard let last = try DrillRecord.all(repository).last else { return (true, "no drill yet") }
            if inFuture(last.startedAt) { return (true, future("last drill \(last.label)", last.startedAt)) }
            if now.timeIntervalSince(last.startedAt) >= policy.drillInterval.nominalSeconds {
                return (true, "last drill \(last.label) \(age(last.startedAt)) ago (every \(policy.drillInterval))")
            }
            return (false, "last drill \(last.label) \(age(last.startedAt)) ago (every \(policy.drillInterval))")
        }
    }

    private func periodic(_ job: ScheduledJob, every interval: Period, window: Bool) -> (Bool, String) {
        let last = state.jobs[job.rawValue]?.lastSuccessAt
        if let last, !inFuture(last), now.timeIntervalSince(last) < interval.nominalSeconds {
            return (false, "last done \(age(last)) ago (every \(interval))")
        }
        if window && !policy.scheduling.inWindow(now) {
            return (false, "outside the window \(policy.scheduling.windowText) UTC")
        }
        if let last, inFuture(last) { return (true, future("its last success", last)) }
        return (true, last.map { "last done \(age($0)) ago (every \(interval))" } ?? "never done")
    }
}

/// Durations in words for log lines.
enum DrillClock {
    static func describe(_ seconds: Double) -> String {
        let value = max(0, seconds)
        if value < 120 { return String(format: "%.0fs", value) }
        if value < 7200 { return String(format: "%.0fmin", value / 60) }
        if value < 172_800 { return String(format: "%.1fh", value / 3600) }
        return String(format: "%.1fd", value / 86_400)
    }
}
