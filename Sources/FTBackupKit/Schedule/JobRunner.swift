import Foundation

/// Runs one scheduled job through the same entry points as its own command.
enum JobRunner {
    /// The job's result in a few words, for its log line, and the rows and bytes it handled (its metrics
    /// file's); throws as its command would fail.
    static func run(_ job: ScheduledJob, options: SchedulerTick.Options) async throws -> (detail: String, totals: JobTotals?) {
        let repository = try Repository.open(options.repositoryPath)
        switch job {
        case .full:
            let manifest = try await BackupRunner.runFull(BackupOptions(database: options.database, repositoryPath: options.repositoryPath,
                                                                        policy: options.policy, jobs: options.jobs, logger: options.logger,
                                                                        showProgress: false))
            let results = try await withReadLock(options, command: "run: verify --newest") {
                try await BackupVerifier.verify(repository, label: manifest.label, jobs: options.jobs)
            }
            guard results.allSatisfy(\.ok) else {
                throw FTBackupError(.dataError, "full backup \(manifest.label) was taken but does not verify", hint: "ftbackup verify --set \(manifest.label)")
            }
            return ("full backup \(manifest.label), verified", JobTotals(full: manifest))
        case .incremental:
            let report = try await ChangeArchiver.runIncremental(database: options.database, repositoryPath: options.repositoryPath,
                                                                 policy: options.policy, logger: options.logger)
            if let pid = report.coveredByFollower { return ("covered by the follower (pid \(pid))", nil) }
            return (report.segment.map { "segment \($0.label), \($0.transactions) transactions" } ?? "nothing to seal", JobTotals.incremental(report))
        case .maintenance:
            let segments = try await withReadLock(options, command: "run: verify --segments") {
                try await SegmentVerifier.verify(repository, jobs: options.jobs)
            }
            let bad = segments.filter { $0.state == .bad }
            let expiry = try BackupExpiry.run(repositoryPath: options.repositoryPath, policy: options.policy, dryRun: false)
            if !bad.isEmpty {
                throw FTBackupError(.dataError, "\(bad.count) change segment(s) failed verification, first \(bad[0].name); expiry ran and removed \(expiry.removed.count) backup(s)",
                                    hint: "ftbackup verify --segments names the files")
            }
            return ("\(segments.count) segments verified; expired \(expiry.removed.count) backup(s) and \(expiry.removedSegments.count) segment(s)", nil)
        case .lifecycle:
            let archive = try await ToolDataArchiver.run(ArchiveOptions(database: options.database, repositoryPath: options.repositoryPath,
                                                                        policy: options.policy, logger: options.logger))
            var prune = AuditPruner.Options(database: options.database, repositoryPath: options.repositoryPath, policy: options.policy)
            prune.logger = options.logger
            let pruned = try await AuditPruner.run(prune)
            let verified = try await withReadLock(options, command: "run: verify --archives --evidence") {
                try await RepositoryVerifier.verify(repository, RepositoryVerifier.Request(parts: [.archives, .evidence], jobs: options.jobs))
            }
            guard verified.ok else {
                throw FTBackupError(.dataError, "lifecycle ran, but \(verified.badFiles.count) archive or evidence file(s) do not verify",
                                    hint: "ftbackup verify --archives --evidence names them")
            }
            // One job, two kinds of rows: the metrics file counts both (each kind's own is in ftbackup_suite.prom).
            return ("archived \(archive.rows) tool_data rows; pruned \(pruned.rows) audit rows; archives and evidence verified",
                    JobTotals(rows: archive.rows + pruned.rows, bytes: nil))
        case .drill:
            let record = try await DrillRunner.run(DrillOptions(source: options.database, repositoryPath: options.repositoryPath,
                                                                policy: options.policy, jobs: options.jobs, logger: options.logger))
            guard record.passed else {
                throw FTBackupError(.drillFailed, "drill \(record.label) missed: \(record.reasons.joined(separator: "; "))",
                                    hint: "see runbooks/drill-failed.md")
            }
            return ("drill \(record.label) passed: RTO \(String(format: "%.1f", record.rto.measuredSeconds)) s, RPO \(String(format: "%.1f", record.rpo.measuredSeconds)) s",
                    JobTotals(drill: record))
        }
    }

    static func withReadLock<T>(_ options: SchedulerTick.Options, command: String, _ body: () async throws -> T) async throws -> T {
        let lock = try RepositoryLock.acquire(repositoryRoot: options.repositoryPath, kind: .read, exclusive: false, command: command)
        defer { lock.release() }
        return try await body()
    }

    /// Any error as ftbackup reports it: a message and an exit code.
    static func failure(_ error: Error) -> FTBackupError {
        switch error {
        case let error as FTBackupError: return error
        case let error as PostgresError: return FTBackupError(error.exitStatus, error.description)
        case let error as CodecError: return FTBackupError(.dataError, error.description)
        default: return FTBackupError(.failure, "\(error)")
        }
    }
}
