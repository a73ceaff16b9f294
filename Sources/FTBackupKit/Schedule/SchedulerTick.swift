import Foundation
import Logging

/// `ftbackup run`: one scheduler tick. Reads the policy and the repository and does what is due, in
/// order: full, incremental, maintenance (verify segments, expire), lifecycle, drill; with the policy's
/// `repository.second`, a sync to it after each job that ran (``SecondRepositoryStep``).
///
/// It exists so that a systemd timer or a cron line every few minutes is the whole schedule: a tick
/// takes `locks/run.lock` (a second tick at the same time does nothing), a failed job is recorded and
/// retried at the next tick while the others still run, and `dryRun` says what is due and why.
public enum SchedulerTick {
    public struct Options: Sendable {
        public var database: ConnectionString
        public var repositoryPath: String
        public var policy: Policy
        public var jobs: Int
        public var dryRun: Bool
        /// The tick's clock (tests move it forward; everything else reads the repository).
        public var now: Date
        public var logger: Logger

        public init(database: ConnectionString, repositoryPath: String, policy: Policy, jobs: Int = 2, dryRun: Bool = false,
                    now: Date = Date(), logger: Logger = Logger(label: "ftbackup")) {
            self.database = database
            self.repositoryPath = repositoryPath
            self.policy = policy
            self.jobs = jobs
            self.dryRun = dryRun
            self.now = now
            self.logger = logger
        }
    }

    public struct Report: Codable, Sendable {
        public var startedAt: Date
        public var dryRun: Bool
        /// Set when another tick holds the lock: this one did nothing.
        public var lockedOut: String?
        /// Set when the scheduler's state file was unreadable and was set aside (the tick went on without it).
        public var stateWarning: String? = nil
        public var jobs: [JobOutcome]
        /// The sync of a tick at which no job ran, catching up a second repository that is behind.
        public var secondRepository: SecondRepositoryOutcome? = nil
        /// Every sync to the second repository this tick made.
        public var secondRepositorySyncs: [SecondRepositoryOutcome] { jobs.compactMap(\.secondRepository) + (secondRepository.map { [$0] } ?? []) }
        public var failed: Bool { jobs.contains { $0.status == .failed } || secondRepositorySyncs.contains { !$0.ok } }
        /// The exit code: 0, or the first failed job's, else the first failed sync's.
        public var exitCode: Int32 {
            jobs.first { $0.status == .failed }?.exitCode ?? secondRepositorySyncs.first { !$0.ok }.map { $0.exitCode ?? 1 } ?? 0
        }
    }

    public static func run(_ options: Options, onJob: (JobOutcome) -> Void = { _ in }) async throws -> Report {
        let repository = try Repository.open(options.repositoryPath)
        let lock: RepositoryLock
        do {
            lock = try RepositoryLock.acquire(repositoryRoot: options.repositoryPath, kind: .run, exclusive: true,
                                              command: options.dryRun ? "run --dry-run" : "run")
        } catch let error as FTBackupError where error.status == .locked {
            return Report(startedAt: options.now, dryRun: options.dryRun, lockedOut: error.message, jobs: [])
        }
        defer { lock.release() }
        let tickStarted = Date()
        var (state, stateWarning) = try SchedulerState.readOrSetAside(repository, now: options.now, dryRun: options.dryRun)
        if let stateWarning { options.logger.warning("\(stateWarning)") }
        var outcomes: [JobOutcome] = []
        for job in ScheduledJob.allCases {
            var outcome: JobOutcome
            do {
                // Decided just before the job runs: a full taken a moment ago makes the incremental not due.
                let changes = try? await ChangeArchiveStatus.read(repository, database: options.database)
                if changes?.broken != nil { if state.chainBrokenSince == nil { state.chainBrokenSince = options.now } } else { state.chainBrokenSince = nil }
                let decision = try JobDecisions(repository: repository, repositoryPath: options.repositoryPath, policy: options.policy,
                                                now: options.now, state: state, changes: changes,
                                                elapsed: Date().timeIntervalSince(tickStarted)).decide(job)
                if !decision.due {
                    outcome = JobOutcome(job: job, status: .skipped, reason: decision.reason)
                } else if options.dryRun {
                    outcome = JobOutcome(job: job, status: .due, reason: decision.reason)
                } else {
                    outcome = await perform(job, reason: decision.reason, options: options)
                    var jobState = state.jobs[job.rawValue] ?? SchedulerState.JobState()
                    jobState.lastAttemptAt = options.now
                    if outcome.status == .failed {
                        jobState.lastFailure = "\(Timestamps.iso8601UTC(options.now)): \(outcome.detail ?? "")"
                        jobState.consecutiveFailures = (jobState.consecutiveFailures ?? 0) + 1
                    } else {
                        jobState.lastSuccessAt = options.now
                        jobState.lastFailure = nil
                        jobState.consecutiveFailures = nil
                    }
                    state.jobs[job.rawValue] = jobState
                    if outcome.status == .ran, let second = options.policy.repository.second {
                        outcome.secondRepository = SecondRepositoryStep.run(after: job, second: second, options: options, state: &state)
                    }
                    try state.write(repository)
                }
            } catch {
                let failure = JobRunner.failure(error)
                outcome = JobOutcome(job: job, status: .failed, reason: "could not decide", detail: failure.message, exitCode: failure.status.rawValue)
            }
            options.logger.info("scheduler job", metadata: ["job": .string(job.rawValue), "status": .string(outcome.status.rawValue)])
            onJob(outcome)
            outcomes.append(outcome)
        }
        var catchUp: SecondRepositoryOutcome?
        if !options.dryRun, let second = options.policy.repository.second, !outcomes.contains(where: { $0.status == .ran }),
           SecondRepositoryStep.needsCatchUp(second: second, state: state) {
            catchUp = SecondRepositoryStep.run(after: nil, second: second, options: options, state: &state)
            try state.write(repository)
        }
        return Report(startedAt: options.now, dryRun: options.dryRun, lockedOut: nil, stateWarning: stateWarning, jobs: outcomes,
                      secondRepository: catchUp)
    }

    static func perform(_ job: ScheduledJob, reason: String, options: Options) async -> JobOutcome {
        let started = Date()
        do {
            let result = try await JobRunner.run(job, options: options)
            return JobOutcome(job: job, status: .ran, reason: reason, detail: result.detail, seconds: Date().timeIntervalSince(started),
                              totals: result.totals)
        } catch {
            let failure = JobRunner.failure(error)
            return JobOutcome(job: job, status: .failed, reason: reason, detail: failure.description,
                              seconds: Date().timeIntervalSince(started), exitCode: failure.status.rawValue)
        }
    }
}
