import Foundation
import Logging

/// `ftbackup drill`: restores the newest restorable point (or `--at`) as on-call would, validates the
/// result, measures RTO and RPO against the policy's objectives, and keeps a record in `drills/`.
///
/// The restore goes through the same code as `restore --at` (`PointInTimeRestore`), or a plain
/// `RestoreRunner` restore when the point is a full backup with nothing archived after it. Before the
/// target is created, the backup's files and the segments to replay are read back: a damaged
/// repository fails the drill at verification with nothing created.
public enum DrillRunner {
    static let historyDays = 30
    static let restorePhases = ["clean", "verify", "pre-data", "data", "sequences", "foreign-keys", "replay", "indexes", "partitioned-analyze",
                                "post-data", "refresh", "dependants", "analyze", "retired", "event-triggers", "settings"]

    public static func run(_ options: DrillOptions) async throws -> DrillRecord {
        let started = Date()
        let logger = options.logger
        let repository = try Repository.open(options.repositoryPath)
        // Shared with restores and verifies, exclusive of expiry: nothing the drill reads goes away under it.
        let lock = try RepositoryLock.acquire(repositoryRoot: options.repositoryPath, kind: .read, exclusive: false, command: "drill")
        defer { lock.release() }
        var phases: [DrillRecord.Phase] = []
        func timed<T>(_ name: String, _ body: () async throws -> T) async throws -> T {
            let start = Date()
            let value = try await body()
            phases.append(DrillRecord.Phase(name: name, seconds: Date().timeIntervalSince(start)))
            logger.info("drill phase done", metadata: ["phase": .string(name), "seconds": .string(String(format: "%.2f", phases.last!.seconds))])
            return value
        }

        let source = try await DatabaseSession.connect(options.source, name: "ftbackup-drill-source")
        defer { source.close() }
        let identity = try await source.withConnection { try DatabaseIdentity.of($0) }
        let view = try RepositorySourceView.load(repository)
        if let key = view.key, key != SourceKey(identity) {
            throw FTBackupError(.usage, "repository \(options.repositoryPath) belongs to \(key), not to the database connected to (\(identity))",
                                hint: "pass the repository's own source with --db")
        }
        let entries = try repository.entries()
        let fulls = view.own(entries.compactMap(\.manifest)).filter { $0.type == .full }
        let segments = view.own(try ChangeSegmentManifest.all(repository.storage))
        guard let newestFull = fulls.last else {
            throw FTBackupError(.usage, "no complete full backup in \(repository.storage.location): nothing to drill",
                                hint: "take one with ftbackup backup --type full")
        }

        // As restore: a newer full that cannot be read is never passed over in silence (the drill would
        // measure the older one and pass while the newest backup is unusable).
        if let damaged = entries.last(where: { $0.status == .unreadable && $0.label > newestFull.label && Repository.isFullLabel($0.label) }) {
            throw FTBackupError(.dataError, "drill stopped: backup \(damaged.label), newer than \(newestFull.label), is unreadable: \(damaged.problem ?? "")",
                                hint: "run ftbackup verify; see runbooks/drill-failed.md")
        }

        // RPO as delivered: the newest restorable point now, and the worst lag over the history window.
        let history = RecoveryPointHistory(fulls: fulls, segments: segments)
        let newestPoint = history.newestPoint(at: started)
        let worst = history.worstGap(from: started.addingTimeInterval(-Double(historyDays) * 86_400), to: started)

        // The point: --at, else the newest archived commit (or heartbeat) when it is newer than the newest full.
        let newestCommit = segments.compactMap(\.lastCommitTime).max()
        let pointInTime: Date? = options.at ?? newestCommit.flatMap { $0 > newestFull.snapshot.time ? $0 : nil }
        var restoreOptions = RestoreOptions(target: options.source, repositoryPath: options.repositoryPath, schemas: options.schemas,
                                            jobs: options.jobs, logger: logger, showProgress: options.showProgress)
        restoreOptions.policy = options.policy
        let full: BackupManifest
        var used: [ChangeSegmentManifest] = []
        var segmentBytes: Int64 = 0
        if let pointInTime {
            let (plan, chain) = try await timed("read") { try await PointInTimeRestore.makePlan(repository, options: restoreOptions, at: pointInTime) }
            full = try repository.backup(label: plan.full)
            used = chain
            segmentBytes = plan.segmentBytes
        } else {
            full = newestFull
            _ = try RestorePlan.make(manifest: full, schemas: options.schemas, target: "", jobs: options.jobs, clean: false, noOwner: false)
        }
        let point = pointInTime ?? full.snapshot.time
        let selected = options.schemas.isEmpty ? Set(full.schemas) : Set(options.schemas)
        let tables = full.tables.filter { selected.contains($0.schema) }

        // Verification before anything is created: the full's files (size, SHA-256) and every segment replay reads.
        let expected = try await timed("verify") { () -> [String: Int64] in
            var subset = full
            subset.tables = tables
            let result = try await BackupVerifier.verify(repository, manifest: subset, decompress: false, jobs: options.jobs)
            if let first = result.badFiles.first {
                throw FTBackupError(.dataError, "drill stopped at verification, nothing was created: backup \(full.label) has \(result.badFiles.count) bad file(s), first: \(first.problem ?? first.path)",
                                    hint: "run ftbackup verify; see runbooks/drill-failed.md")
            }
            do {
                return try ExpectedRowCounts.compute(full: full, segments: used, until: pointInTime, storage: repository.storage).counts
            } catch let error as FTBackupError {
                throw FTBackupError(.dataError, "drill stopped at verification, nothing was created: \(error.message)", hint: "run ftbackup verify --segments; see runbooks/drill-failed.md")
            } catch let error as CodecError {
                throw FTBackupError(.dataError, "drill stopped at verification, nothing was created: a change segment is damaged: \(error.description)",
                                    hint: "run ftbackup verify --segments; see runbooks/drill-failed.md")
            }
        }

        let (server, serverConnection) = try await DrillTarget.openServer(source: source, sourceIdentity: identity,
                                                                          sourceConnection: options.source, explicit: options.target)
        defer { server.close() }
        let leftovers = try await DrillTarget.removeLeftovers(server, connection: serverConnection, logger: logger)
        let scratch = try await timed("create-target") {
            try await DrillTarget.create(on: server, connection: serverConnection, source: source, at: started)
        }
        logger.info("drill target created", metadata: ["database": .string(scratch.name), "point": .string(Timestamps.iso8601UTCMicroseconds(point))])
        restoreOptions.target = scratch.connectionString

        let label = try DrillRecord.newLabel(repository, at: started)
        var record: DrillRecord
        do {
            var transactions = 0, changes = 0
            let restore: RestoreReport?
            if Failpoint.isActive("drill.restore-fails") { throw FTBackupError(.failure, "failpoint drill.restore-fails: the restore failed") }
            if let pointInTime {
                let report = try await PointInTimeRestore.run(restoreOptions, at: pointInTime)
                restore = report.fullRestore
                transactions = report.transactionsApplied
                changes = report.changesApplied
                // What restore --at does besides the full's restore, whose phases include the replay: its planning
                // (reading the manifests and segments).
                phases.append(DrillRecord.Phase(name: "restore-plan", seconds: max(0, report.seconds - (report.fullRestore?.seconds ?? 0))))
            } else {
                restore = try await RestoreRunner.run(restoreOptions)
            }
            for name in restorePhases {
                if let seconds = restore?.phases[name] { phases.append(DrillRecord.Phase(name: name == "verify" ? "restore-verify" : name, seconds: seconds)) }
            }
            Failpoint.hit("drill.after-restore")
            let validated = try await timed("validation") {
                try await validate(scratch.connectionString, options: options, full: full, tables: tables, expected: expected,
                                   schemas: selected, retired: restore?.retired, point: point, segments: segments)
            }
            let measuredRTO = Date().timeIntervalSince(started)
            let databaseBytes = try await source.query("SELECT pg_database_size(current_database())::int8 AS n").first!.int64("n")
            let serverVersion = try await source.query("SHOW server_version").first?.string("server_version") ?? nil
            record = DrillRecord(
                label: label, ftbackupVersion: FTBackupVersion.current, startedAt: started, finishedAt: Date(), passed: false, reasons: [],
                point: point, method: pointInTime == nil ? "full" : "point-in-time", backup: full.label, segments: used.map(\.label),
                transactionsReplayed: transactions, changesReplayed: changes, schemas: options.schemas.isEmpty ? nil : options.schemas.sorted(),
                source: "\(identity.database) on \(options.source.redacted)", sourceServerVersion: serverVersion ?? full.source.serverVersion,
                target: scratch.connectionString.redacted, targetServerVersion: scratch.serverVersion, scratchDatabase: scratch.name,
                kept: options.keep, leftoversRemoved: leftovers, phases: phases,
                rto: DrillRecord.RTO(objectiveSeconds: options.policy.rto.nominalSeconds, measuredSeconds: measuredRTO,
                                     met: measuredRTO <= options.policy.rto.nominalSeconds),
                rpo: DrillRecord.RPO(objectiveSeconds: options.policy.rpo.nominalSeconds, newestPointAt: newestPoint,
                                     ageAtStartSeconds: newestPoint.map { started.timeIntervalSince($0) }, worstGapSeconds: worst.seconds,
                                     worstGapEndedAt: worst.endedAt, historyDays: historyDays, measuredSeconds: worst.seconds,
                                     met: worst.seconds <= options.policy.rpo.nominalSeconds),
                headroom: DrillHeadroom.compute(phases: phases, databaseBytes: databaseBytes,
                                                restoredRawBytes: tables.reduce(0) { $0 + $1.file.rawBytes }, changesReplayed: changes,
                                                segmentBytesReplayed: segmentBytes, dailyChangeBytes: dailyChangeBytes(segments, now: started),
                                                fullInterval: options.policy.full.schedule.interval, rto: options.policy.rto),
                tables: validated.tables, checks: validated.checks)
            record.reasons = reasons(record)
            record.passed = record.reasons.isEmpty
            if options.keep { try await scratch.keep(label: label) } else { try await scratch.drop() }
        } catch {
            // A drill that fails still keeps what --keep asked for, marked so the next drill leaves it.
            if options.keep { try? await scratch.keep(label: label) } else { try? await scratch.drop() }
            throw error
        }
        try record.write(to: repository)
        await RecordChainAnchor.anchorOnce(options.source, kind: DrillRecord.chainKind, folder: DrillRecord.folder, name: "\(label).json",
                                           storage: repository.storage, logger: logger)
        logger.info("drill done", metadata: ["label": .string(label), "passed": .string("\(record.passed)"),
                                             "rto_seconds": .string(String(format: "%.1f", record.rto.measuredSeconds)),
                                             "rpo_seconds": .string(String(format: "%.1f", record.rpo.measuredSeconds))])
        return record
    }

    static func validate(_ target: ConnectionString, options: DrillOptions, full: BackupManifest, tables: [BackupManifest.Table],
                         expected: [String: Int64], schemas: Set<String>, retired: RetiredDataReapplier.Report?, point: Date,
                         segments: [ChangeSegmentManifest]) async throws -> (tables: [DrillRecord.TableCount], checks: [DrillRecord.Check]) {
        let session = try await DatabaseSession.connect(target, name: "ftbackup-drill-validate")
        defer { session.close() }
        try await session.execute("SET default_transaction_read_only = on; SET statement_timeout = 0")
        var removed: [String: Int64] = [:]
        for tool in retired?.tools ?? [] { for (table, rows) in tool.rows { removed[table, default: 0] += rows } }
        var counts = try await DrillValidation.rowCounts(session, tables: tables, expected: expected, retired: removed)
        if (retired?.pruneRows ?? 0) > 0 {
            // Prune's cut-off was applied again to the audit tables: they may hold fewer rows, never more.
            for index in counts.indices where !counts[index].ok && (counts[index].schema == "audit" || counts[index].table == "audit_log") {
                if counts[index].rows <= counts[index].expectedRows {
                    counts[index].ok = true
                    counts[index].note = "audit rows past retention removed again by the restore"
                }
            }
        }
        var checks = try await DrillValidation.sequences(session, schemas: schemas)
        let pgRestore = try PostgresTools.path(of: "pg_restore", serverVersionNumber: max(full.source.serverVersionNumber, session.serverVersionNumber))
        let repository = try Repository.open(options.repositoryPath)
        let dumpFile = try RestoreRunner.materializeSchemaDump(repository, manifest: full)
        defer { try? FileManager.default.removeItem(atPath: dumpFile) }
        let contents = try RestoreContents.read(pgRestore, dumpFile: dumpFile, encoding: full.source.encoding,
                                                schemas: full.schemas, roles: full.roles)
        checks += try await DrillValidation.schemaObjects(session, contents: contents, schemas: schemas)
        checks += try await DrillValidation.policyChecks(session, checks: options.policy.drillChecks)
        if options.compare {
            checks += try await DrillComparison.compare(restored: session, source: options.source, tables: tables, point: point, segments: segments)
        }
        return (counts, checks)
    }

    /// Stored change bytes per day over the history window (at least one day's span).
    static func dailyChangeBytes(_ segments: [ChangeSegmentManifest], now: Date) -> Int64 {
        let since = now.addingTimeInterval(-Double(historyDays) * 86_400)
        let recent = segments.filter { ($0.lastCommitTime ?? .distantPast) >= since }
        guard let first = recent.compactMap({ $0.firstCommitTime ?? $0.lastCommitTime }).min() else { return 0 }
        let days = max(1, now.timeIntervalSince(max(first, since)) / 86_400)
        return Int64(Double(recent.reduce(0) { $0 + $1.file.storedBytes }) / days)
    }

    static func reasons(_ record: DrillRecord) -> [String] {
        var reasons: [String] = []
        if !record.rto.met {
            reasons.append("RTO missed: the restore took \(Int(record.rto.measuredSeconds)) s, the objective is \(Int(record.rto.objectiveSeconds)) s")
        }
        if !record.rpo.met {
            reasons.append(String(format: "RPO missed: the newest restorable point lagged %.1f s behind (worst over %d days%@), the objective is %.0f s",
                                  record.rpo.measuredSeconds, record.rpo.historyDays,
                                  record.rpo.worstGapEndedAt.map { ", ending \(Timestamps.iso8601UTC($0))" } ?? "", record.rpo.objectiveSeconds))
        }
        for table in record.tables where !table.ok {
            reasons.append("table \(table.schema).\(table.table): \(table.rows) rows, expected \(table.expectedRows)")
        }
        for check in record.checks where !check.ok {
            reasons.append("\(check.kind) check \(check.name) failed: \(check.detail ?? "")")
        }
        return reasons
    }
}
