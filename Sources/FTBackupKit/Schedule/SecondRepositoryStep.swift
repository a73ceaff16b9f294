import Foundation

/// What `ftbackup run` does for the policy's second repository (`repository.second`): after each job that
/// wrote to the repository it syncs to the second (``RepositorySync``), after maintenance it also expires
/// the second by the same policy, and at a tick where no job ran it catches up a second that is behind
/// (or was never synced).
///
/// It exists so that the off-site copy follows the schedule by itself, and so that a copy that falls
/// behind is seen: a failed sync marks the job's outcome (`second=failed`) and the tick's exit code, and
/// `schedule/state.json` records since when the second is behind, which `status` and its metrics
/// (`ftbackup_second_repository_lag_seconds`) report. Retention applies to each repository's own history:
/// a sync copies only what the first still holds, so it never brings back what expiry removed from the second.
enum SecondRepositoryStep {
    /// Syncs (and after maintenance expires) the second repository, recording the result in `state`.
    static func run(after job: ScheduledJob?, second: String, options: SchedulerTick.Options,
                    state: inout SchedulerState) -> SecondRepositoryOutcome {
        var record = state.secondRepository.flatMap { $0.location == second ? $0 : nil } ?? .init(location: second)
        do {
            let sync = try RepositorySync.run(from: options.repositoryPath, to: second)
            var detail = "synced to \(second): copied \(sync.copiedFiles) file(s), \(sync.keptFiles) already there"
            if job == .maintenance {
                let expiry = try BackupExpiry.run(repositoryPath: second, policy: options.policy, dryRun: false)
                detail += "; expired \(expiry.removed.count) backup(s) and \(expiry.removedSegments.count) segment(s) there"
            }
            record.lastSyncAt = options.now
            record.behindSince = nil
            record.lastFailure = nil
            state.secondRepository = record
            return SecondRepositoryOutcome(location: second, ok: true, detail: detail)
        } catch {
            let failure = JobRunner.failure(error)
            record.behindSince = record.behindSince ?? options.now
            record.lastFailure = "\(Timestamps.iso8601UTC(options.now)): \(failure.message)"
            state.secondRepository = record
            options.logger.error("second repository sync failed", metadata: ["second": .string(second), "error": .string(failure.message)])
            return SecondRepositoryOutcome(location: second, ok: false, detail: failure.description, exitCode: failure.status.rawValue)
        }
    }

    /// True when a tick in which no job ran should still sync: the second is behind, was never synced, or is new.
    static func needsCatchUp(second: String, state: SchedulerState) -> Bool {
        guard let record = state.secondRepository, record.location == second else { return true }
        return record.behindSince != nil || record.lastSyncAt == nil
    }
}
