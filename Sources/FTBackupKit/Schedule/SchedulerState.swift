import Foundation

/// What `ftbackup run` remembers between ticks: each job's last success, last attempt and last
/// failure, and since when the change archive's chain has been seen broken
/// (`schedule/state.json`, written atomically).
///
/// Due-ness of backups and drills is read from the repository itself; this file only covers what the
/// repository does not record (maintenance and lifecycle rounds, failures to retry, the break).
public struct SchedulerState: Codable, Sendable, Equatable {
    public static let path = "schedule/state.json"

    public struct JobState: Codable, Sendable, Equatable {
        public var lastSuccessAt: Date?
        public var lastAttemptAt: Date?
        public var lastFailure: String?
        /// Failures in a row since the last success (absent in state files written before it existed).
        public var consecutiveFailures: Int?

        public init(lastSuccessAt: Date? = nil, lastAttemptAt: Date? = nil, lastFailure: String? = nil, consecutiveFailures: Int? = nil) {
            self.lastSuccessAt = lastSuccessAt
            self.lastAttemptAt = lastAttemptAt
            self.lastFailure = lastFailure
            self.consecutiveFailures = consecutiveFailures
        }
    }

    /// Where the second repository (the policy's `repository.second`) stands: when it was last brought in
    /// step, and since when it has been behind (a sync after a job failed).
    public struct SecondRepositoryState: Codable, Sendable, Equatable {
        public var location: String
        public var lastSyncAt: Date?
        /// Set by the first failed sync after a job wrote to the repository; cleared by the next sync that succeeds.
        public var behindSince: Date?
        public var lastFailure: String?

        public init(location: String, lastSyncAt: Date? = nil, behindSince: Date? = nil, lastFailure: String? = nil) {
            self.location = location
            self.lastSyncAt = lastSyncAt
            self.behindSince = behindSince
            self.lastFailure = lastFailure
        }
    }

    public var jobs: [String: JobState] = [:]
    public var chainBrokenSince: Date?
    public var secondRepository: SecondRepositoryState?

    public init() {}

    static func read(_ repository: Repository) throws -> SchedulerState {
        guard try repository.storage.exists(path) else { return SchedulerState() }
        do {
            return try BackupManifest.decoder().decode(SchedulerState.self, from: Data(try repository.storage.readAll(path)))
        } catch {
            throw FTBackupError(.dataError, "scheduler state \(repository.storage.location)/\(path) is unreadable: \((error as? FTBackupError)?.message ?? "\(error)")",
                                hint: "remove it: the next tick runs every job that is due by the repository's own records")
        }
    }

    /// The state to tick with: an unreadable file (damaged, truncated, edited by hand) is copied aside to
    /// `schedule/state.json.unreadable-<UTC time>` and the tick starts from an empty state, because the
    /// backups' due-ness comes from the repository itself: a bad state file must never stop backups.
    /// Returns the warning to log, if any.
    static func readOrSetAside(_ repository: Repository, now: Date, dryRun: Bool) throws -> (state: SchedulerState, warning: String?) {
        do {
            return (try read(repository), nil)
        } catch let error as FTBackupError where error.status == .dataError {
            if dryRun { return (SchedulerState(), "\(error.message); a real tick moves it aside and starts from an empty state") }
            let aside = "\(path).unreadable-\(DrillTarget.timestamp(now))"
            try repository.storage.writeAll(aside, try repository.storage.readAll(path))
            try repository.storage.remove(path)
            return (SchedulerState(), "\(error.message); moved to \(aside), this tick starts from an empty state (backups are due by the repository's own records)")
        }
    }

    func write(_ repository: Repository) throws {
        try repository.storage.writeAll(Self.path, Array(try JSONOutput.encode(self, microseconds: true).utf8) + [0x0A])
    }
}
