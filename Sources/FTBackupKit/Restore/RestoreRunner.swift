import Foundation
import Logging

/// What a restore run needs to know.
public struct RestoreOptions: Sendable {
    public var target: ConnectionString
    public var repositoryPath: String
    public var label: String?
    public var schemas: [String]
    public var jobs: Int
    public var clean: Bool
    public var confirmed: Bool
    public var noOwner: Bool
    public var dryRun: Bool
    public var logger: Logger
    public var showProgress: Bool
    /// Leave in the restored database what archive and prune runs had removed from the source
    /// (`--keep-retired`); by default it is removed again (`RetiredDataReapplier`).
    public var keepRetired = false
    /// The policy (application triggers, legal hold) for removing retired data again; nil: the built-in default.
    public var policy: Policy?
    /// With `--clean`: drop also what depends on the restored schemas elsewhere and cannot be saved and
    /// put back (`--cascade`); without it such a restore is refused before anything is dropped.
    public var cascade = false
    /// Restore a backup with binary data files into a server of another major version than its source
    /// (`--allow-version-change`); without it that restore is refused before the target is touched.
    public var allowVersionChange = false
    /// Leave the restored tables without planner statistics (`--skip-analyze`), as `pg_restore` does:
    /// autovacuum gathers them after the restore. By default every restored table is analyzed.
    public var skipAnalyze = false

    public init(target: ConnectionString, repositoryPath: String, label: String? = nil, schemas: [String] = [], jobs: Int = 2,
                clean: Bool = false, confirmed: Bool = false, noOwner: Bool = false, dryRun: Bool = false,
                logger: Logger = Logger(label: "ftbackup"), showProgress: Bool = true) {
        self.target = target
        self.repositoryPath = repositoryPath
        self.label = label
        self.schemas = schemas
        self.jobs = jobs
        self.clean = clean
        self.confirmed = confirmed
        self.noOwner = noOwner
        self.dryRun = dryRun
        self.logger = logger
        self.showProgress = showProgress
    }

    /// The policy retired data is removed again by: the one given, else the built-in default.
    func retentionPolicy() throws -> Policy {
        try policy ?? PolicyLoader.parse(PolicyLoader.builtInDefault, source: "(built-in)")
    }
}

/// Restores a full backup into a target database: plan → verify the files → safety checks →
/// pre-data DDL → per table, in parallel: `COPY … FROM STDIN FREEZE` checked against the file's
/// SHA-256, its indexes and keys, `ANALYZE` → sequences → the rest of post-data (foreign keys,
/// policies, triggers) in parallel → materialized views refreshed → with `--clean`, the foreign keys
/// and views other schemas held on the dropped ones put back (`OutsideDependants`) → retired data
/// removed again (`RetiredDataReapplier`) → the backup's event triggers, last of the restore's DDL
/// (`PostDataSteps`) → the database's settings.
///
/// Building each table's indexes as soon as its data is in keeps both cores busy: one worker builds
/// indexes while another still loads, instead of a data phase followed by an index phase.
public enum RestoreRunner {
    /// Returns the plan alone for `dryRun`, else restores and returns the report.
    ///
    /// `afterData` (point-in-time restore's replay) runs once the data and sequences are in and the
    /// keys exist (replay finds rows by them). A table the replay changes a lot (`replayFootprint`: more
    /// rows than would make autovacuum analyze it, or truncated; every table when nothing is known) gets
    /// its other indexes and statistics after it, faster than maintaining them change by change; the
    /// others get them right after their load, as in a plain restore. Foreign keys and policies follow the replay.
    public static func run(_ options: RestoreOptions, replayFootprint: ReplayFootprint? = nil,
                           afterData: (@Sendable () async throws -> Void)? = nil) async throws -> RestoreReport {
        let ahead = SessionsConnectedAhead()
        return try await ahead.scope.closing {
            try await run(options, replayFootprint: replayFootprint, ahead: ahead, afterData: afterData)
        }
    }

    /// Sessions a restore's caller connects ahead of the steps that use them (`SessionsAhead`): the restore's own and
    /// the capture's (`OutsideDependants.capture`) while the caller plans; `afterData`'s, which the restore starts
    /// once the last table's load has begun. Each nil is connected on time. Every one, and the restore's own (its load
    /// workers', its removal of retired data's), is adopted by `scope`, which the caller finishes.
    final class SessionsConnectedAhead: @unchecked Sendable {
        var target: SessionsAhead?
        var capture: SessionsAhead?
        var afterData: SessionsAhead?
        let scope = SessionsAheadScope()
    }

    static func run(_ options: RestoreOptions, replayFootprint: ReplayFootprint?, ahead: SessionsConnectedAhead,
                    afterData: (@Sendable () async throws -> Void)?) async throws -> RestoreReport {
        var options = options
        // Every session of the restore is maintenance work: a role's or database's statement_timeout (an application
        // role's 30 s) cancelled index builds, ANALYZE and replay-era statements on sessions that did not reset it.
        options.target = options.target.addingServerOptions(RestoreRunner.maintenanceSessionOptions)
        let started = Date()
        let repository = try Repository.open(options.repositoryPath)
        let lock = try RepositoryLock.acquire(repositoryRoot: options.repositoryPath, kind: .read, exclusive: false, command: "restore")
        defer { lock.release() }
        let manifest = try repository.backup(label: options.label)
        if options.label == nil {
            for problem in try RepositorySourceView.load(repository).foreign { options.logger.warning("left out: \(problem)") }
        }
        let (plan, tables) = try RestorePlan.make(manifest: manifest, schemas: options.schemas, target: options.target.redacted,
                                                  jobs: options.jobs, clean: options.clean, noOwner: options.noOwner)
        if options.dryRun { return RestoreReport(plan: plan, phases: [:], seconds: 0) }
        PostgresTools.probeAhead()
        let logger = options.logger
        let clock = RestorePhaseClock(logger: logger)
        func timed<T>(_ name: String, _ body: () async throws -> T) async throws -> T { try await clock.timed(name, body) }

        // 1. Every file we will read must be whole before the target is touched. The schema dump is read
        // and listed meanwhile, on threads of their own (it touches no database).
        let target = try await (ahead.target ?? Self.targetSession(options.target)).take()
        defer { target.close() }
        try await RestoreTargetLock.acquire(target)
        // The tools' sessions too outlive a database's idle timeouts (ftbackup's own set them off when they connect).
        if target.serverVersionNumber >= 90600 {
            options.target = options.target.addingServerOptions(target.serverVersionNumber >= 140000
                ? "-c idle_session_timeout=0 -c idle_in_transaction_session_timeout=0" : "-c idle_in_transaction_session_timeout=0")
        }
        // The removal of retired data fires the application's triggers as the policy says: its own sessions as given.
        let reapplyTarget = options.target
        if try await applicationEventTriggersWouldFire(target) {
            // A target with event triggers of its own (restoring into the source itself, in place): the restore's DDL
            // runs as a replica's, so they do not fire (ftbackup's, ENABLE ALWAYS, still record it).
            options.target = options.target.addingServerOptions("-c session_replication_role=replica")
            try await target.execute("SET session_replication_role = replica")
        }
        let pgRestore = try PostgresTools.path(of: "pg_restore", serverVersionNumber: max(manifest.source.serverVersionNumber,
                                                                                            target.serverVersionNumber))
        async let prepared = RestorePreparation.make(repository, manifest: manifest, plan: plan, tables: tables, pgRestore: pgRestore)
        // With --clean, what other schemas hold on the dropped ones is read (and their views dumped) meanwhile too: the
        // drop checks it is still what was read (`OutsideDependants.checkUnchanged`), and refuses if not.
        let captureOptions = options
        async let captured = captureAhead(captureOptions.clean, target, schemas: plan.schemas, options: captureOptions, session: ahead.capture)
        let verified: Result<Void, any Error>
        do {
            try await timed("verify") {
                let subset = manifestSubset(manifest, tables: tables)
                let result = try await BackupVerifier.verify(repository, manifest: subset, decompress: false, jobs: options.jobs)
                if let first = result.badFiles.first {
                    throw FTBackupError(.dataError, "backup \(manifest.label) is damaged, nothing was restored: \(result.badFiles.count) bad file(s), first: \(first.problem ?? first.path)",
                                        hint: "run ftbackup verify --set \(manifest.label); restore another backup with --set")
                }
            }
            verified = .success(())
        } catch {
            verified = .failure(error)
        }
        let preparation: RestorePreparation
        do {
            preparation = try await prepared
        } catch {
            (try? (await captured).get())?.removeFiles()
            try verified.get()  // a damaged backup is named first
            throw error
        }
        defer { preparation.removeFiles() }
        // What other schemas hold on the ones --clean drops (foreign keys, views, policies) is saved and put back at the end.
        let capture = await captured
        var dependants = (try? capture.get()) ?? OutsideDependants()
        defer { dependants.removeFiles() }
        try verified.get()
        let (dumpFile, contents, indexes, listFile, dumpRoles) =
            (preparation.dumpFile, preparation.contents, preparation.indexes, preparation.listFile, preparation.roles)
        for index in indexes.notInDump { logger.warning("index \(index) is not in the backup's schema dump (it was invalid at the source): not built") }
        try await checkTarget(target, manifest: manifest, plan: plan, tables: tables, roles: dumpRoles, options: options)
        // The evidence retired data will be removed by must be sound before anything is loaded.
        if !options.keepRetired {
            try await RetiredDataReapplier.preflight(repositoryPath: options.repositoryPath, policy: try options.retentionPolicy(), session: target)
        }
        let child = options.target.forChildProcess()
        var common = ["--exit-on-error", "--no-password"]
        if !child.conninfo.isEmpty { common.append("--dbname=\(child.conninfo)") }
        if options.noOwner { common += ["--no-owner", "--no-privileges"] }
        if !plan.wholeDatabase { common += plan.schemas.flatMap { ["--schema", $0] } }

        var touched = false
        // From the drop on, an interrupted run keeps what it saved of other schemas' objects and says where.
        var interruptAction: UUID?
        defer { if let interruptAction { TemporaryFiles.cancelInterruptAction(interruptAction) } }
        // What pre-data creates outside the schemas --clean drops (the target had none: checked below or by checkTarget).
        let createdOutside = contents.outsideCleanedSchemas(plan, eventTriggers: false).map(\.name)
        // The data phase's sessions connect while the drop and pre-data run, the replay's as the load queue drains, the
        // removal of retired data's during post-data: each holds its slot beside a step that connects on its own (a
        // pg_restore, the load workers), so only where the server has room for them beside the steps' own.
        let connectAhead = try await ConnectionHeadroom.free(target) >= Self.sessionsAheadNeed(options.jobs)
        let loadSessions = ahead.scope.adopt(loadSessions(tables, options: options))
        if connectAhead { loadSessions.start() }
        if options.clean {
            // What pg_restore would create but --clean does not drop must not exist yet: refused before anything is dropped.
            let clashes = try await contents.clashes(target, plan: plan)
            if !clashes.isEmpty {
                throw FTBackupError(.usage, "target \(target.target) already has \(clashes.count) object(s) the restore would create outside the schemas --clean drops: \(clashes.prefix(10).joined(separator: ", ")); nothing was dropped",
                                    hint: "drop them from the target first (they come back from the backup), or restore into an empty database")
            }
            try await timed("clean") {
                dependants = try capture.get()
                // What an earlier run killed after its drop had saved comes back with this run's own; all of it is
                // kept outside the temporary folder before anything is dropped (a SIGKILL leaves it for the rerun).
                let identity = try await target.withConnection { try DatabaseIdentity.of($0) }
                try await dependants.adopt(target, identity: identity, schemas: plan.schemas, logger: logger)
                let untilDrop = try await dependants.persist(target, identity: identity, schemas: plan.schemas)
                let saved = dependants
                // From here an interrupt keeps the files (the drop may be under way); before, it removed them.
                if let untilDrop { TemporaryFiles.cancelInterruptAction(untilDrop) }
                interruptAction = RestoreFailure.keepOnInterrupt(saved, dropped: true, target: target, plan: plan, clock: clock,
                                                                 createdOutside: createdOutside)
                // A signal handled meanwhile may have run the action that removed the saved files: the drop never starts then.
                TemporaryFiles.yieldToInterrupt()
                let publicRelations = Set(contents.entries.filter {
                    $0.schema == "public" && ["TABLE", "VIEW", "MATERIALIZED VIEW", "SEQUENCE", "FOREIGN TABLE"].contains($0.type)
                }.map(\.tag))
                let taken = try await CleanDrop.run(target, plan: plan, dependants: saved, cascade: options.cascade, publicRelations: publicRelations)
                touched = true
                for object in taken { logger.warning("--cascade dropped \(object)") }
            }
        }
        var warnings: [String] = []
        var preDataRolledBack = false
        var keysNotBack: OutsideDependants.KeysNotPutBack?
        var retired: RetiredDataReapplier.Report?
        // From the first statement on, an interrupted run says how the target may be left and what to run (--clean: from the drop).
        if interruptAction == nil {
            interruptAction = RestoreFailure.keepOnInterrupt(OutsideDependants(), dropped: false, target: target, plan: plan, clock: clock,
                                                             createdOutside: createdOutside)
        }
        do {
            clock.enter("schemas")
            if !plan.wholeDatabase {
                // pg_restore --schema restores a schema's objects but not the schema itself.
                for schema in plan.schemas where schema != "public" {
                    try await target.execute("CREATE SCHEMA \(try target.escapeIdentifier(schema))")
                }
            }
            try await timed("pre-data") {
                do {
                    try await runTool(pgRestore, common + ["--section=pre-data", "--single-transaction", "--use-list=\(listFile)", dumpFile], child.environment, options.target)
                } catch {
                    preDataRolledBack = true  // one transaction: nothing of it was committed
                    throw error
                }
                // Partitioned tables' keys (empty until their partitions' are attached), so each partition's key attaches once built.
                try await indexes.run(indexes.beforeData, on: target)
            }
            // Partitions whose root the restore brings back are analyzed through it (`PartitionedStatistics`).
            let parents = (manifest.partitionedTables ?? []).filter { plan.schemas.contains($0.schema) }
            let statistics = options.skipAnalyze ? PartitionedStatistics.none
                : try await PartitionedStatistics.read(target, restored: parents, tables: tables)
            var postData = PostDataSteps(pgRestore: pgRestore, arguments: common + ["--jobs=\(PostDataSteps.jobs(options.jobs, tables: tables))"], dumpFile: dumpFile,
                                         environment: child.environment, contents: contents, builtLines: indexes.builtLines,
                                         materializedViews: manifest.materializedViews.filter { plan.schemas.contains($0.schema) },
                                         options: options)
            // Tables whose other indexes and ANALYZE wait for the replay (none without one).
            var afterReplay: Set<String> = []
            if afterData != nil {
                var settled: Set<String> = []
                if let replayFootprint {
                    settled = replayFootprint.settledBefore(tables, threshold: try await .read(target), hierarchy: statistics.root(of:))
                }
                afterReplay = Set(tables.map(IndexBuildPlan.key)).subtracting(settled)
                logger.info("restore indexes before the replay", metadata: ["tables": .string("\(settled.count)"), "after": .string("\(afterReplay.count)")])
            }
            let afterDataSessions = connectAhead ? ahead.afterData : nil
            let startAfterDataSessions: @Sendable () -> Void = { afterDataSessions?.start() }
            try await timed("data") {
                try await loadTables(tables, indexes: indexes, manifest: manifest, repository: repository, options: options,
                                     keysOnly: afterReplay, statistics: statistics, sessions: loadSessions,
                                     whenDrained: startAfterDataSessions)
            }
            try await timed("sequences") {
                // pg_dump leaves out the values of sequences owned by tables whose data it skipped: set them all
                // (pg_restore's data section runs only for what that does not cover, such as large objects).
                if contents.dataSectionNeeded(settingSequencesItself: Set(manifest.sequences.map { "\($0.schema).\($0.name)" })) {
                    try await runTool(pgRestore, common + ["--section=data", "--single-transaction", "--use-list=\(listFile)", dumpFile], child.environment, options.target)
                }
                try await target.withConnection { connection in
                    try connection.transaction {
                        for sequence in manifest.sequences where plan.schemas.contains(sequence.schema) {
                            let name = try connection.escapeLiteral(try connection.qualifiedName(sequence.schema, sequence.name))
                            try connection.query("SELECT setval(\(name)::regclass, $1::bigint, $2::boolean)", [sequence.lastValue, sequence.isCalled])
                        }
                    }
                }
            }
            // A whole-database replay's foreign keys are checked before it, on the full's rows (see `ForeignKeysBeforeReplay`
            // for when they are not).
            if afterData != nil, plan.wholeDatabase, afterReplay.isEmpty, (manifest.tablesNotCopied ?? []).isEmpty {
                let ahead = ForeignKeysBeforeReplay.entries(contents, left: postData.left, unlogged: try await ForeignKeysBeforeReplay.unlogged(target))
                if !ahead.isEmpty, try await timed("foreign-keys", {
                    try await ForeignKeysBeforeReplay.add(ahead, postData: postData, target: target, logger: logger)
                }) {
                    postData.builtLines.formUnion(ahead.map(\.line))
                }
            }
            if let afterData {
                try await timed("replay") { try await afterData() }
                // The other indexes and ANALYZE of the tables loaded with their keys only.
                try await timed("indexes") {
                    try await IndexAndAnalyzePhase.run(tables, indexes: indexes, options: options, statistics: statistics, keysOnly: afterReplay)
                }
            }
            if !statistics.rootsWithoutPartitions.isEmpty {
                try await timed("partitioned-analyze") { try await statistics.analyzeRootsWithoutPartitions(options: options) }
            }
            let retiredSession = ahead.scope.adopt(RetiredDataReapplier.session(reapplyTarget))
            if connectAhead && !options.keepRetired { retiredSession.start() }
            // Post-data only after every index build and ANALYZE: started beside them (tried twice), foreign keys
            // queued for table locks held up the builds behind them and were checked before their tables had
            // statistics; the whole restore took 13.5-14.6 s against 11.8-12.0 s, paired.
            (warnings, keysNotBack) = try await postData.run(target, dependants: dependants, clock: clock)
            if keysNotBack != nil {
                dependants.keepOnly(&keysNotBack!, target: target)
                // An interrupt from here names the keys' script; the saved files too only if the script could not be
                // written (`keepOnly` keeps them then, and `dependants` still holds them).
                if let interruptAction { TemporaryFiles.cancelInterruptAction(interruptAction) }
                interruptAction = RestoreFailure.keepOnInterrupt(dependants, dropped: touched, target: target, plan: plan, clock: clock,
                                                                 createdOutside: createdOutside, keysNotBack: keysNotBack)
            }
            if !options.keepRetired {
                retired = try await timed("retired") {
                    try await RetiredDataReapplier.run(target: reapplyTarget, repositoryPath: options.repositoryPath, schemas: plan.schemas,
                                                       policy: try options.retentionPolicy(),
                                                       logger: logger, session: retiredSession)
                }
            }
            // After the removal of retired data too: its temporary tables are DDL an application's event trigger would log.
            try await timed("event-triggers") { try await postData.createEventTriggers() }
        } catch {
            // A failure that is the echo of a signal being handled: the handler says how the target was left.
            TemporaryFiles.yieldToInterrupt()
            // From here on the target was changed: say exactly how it was left and what to run.
            // A failure after the dependants' put-back (retired data, event triggers): they are back, nothing to keep for later.
            if clock.phases["dependants"] != nil {
                dependants.removeFiles()
                dependants = OutsideDependants()
            }
            // What a rerun with --clean would refuse to find: pre-data (one transaction) created it outside the schemas --clean drops.
            let rerunClashes = clock.phases["pre-data"] == nil ? [] : ((try? await contents.clashes(target, plan: plan)) ?? [])
            throw RestoreFailure.describe(error, phase: clock.phase, target: target, plan: plan, options: options, dropped: touched,
                                          dependants: &dependants, rerunClashes: rerunClashes, keysNotBack: keysNotBack,
                                          preDataRolledBack: preDataRolledBack)
        }
        if options.skipAnalyze, let warning = try await statisticsWarning(target) {
            logger.warning("\(warning)")
            warnings.append(warning)
        }
        if plan.wholeDatabase, let settings = manifest.databaseSettings {
            // Last, so no setting (a default_transaction_read_only, a statement_timeout) reaches the restore's own sessions.
            let skipped = try await timed("settings") { try await target.withConnection { try DatabaseSettings.apply(settings, $0) } }
            for warning in skipped { logger.warning("\(warning)") }
            warnings += skipped
        }
        // Everything else is done; the keys the restored rows reject fail the restore, their statements kept.
        if let keysNotBack { throw RestoreFailure.keysNotPutBack(keysNotBack, plan: plan) }
        return RestoreReport(plan: plan, phases: clock.phases, seconds: Date().timeIntervalSince(started),
                             retired: retired, warnings: warnings.isEmpty ? nil : warnings, analyzed: !options.skipAnalyze)
    }

    /// What every session of a restore sets at connection: no statement timeout of the role's or the database's.
    static let maintenanceSessionOptions = "-c statement_timeout=0"

    /// The free connection slots a restore of `jobs` needs to connect sessions ahead (`SessionsAhead`), its own one
    /// already connected: at its peak a parallel post-data `pg_restore` (`jobs` workers, the leader's two) beside the
    /// removal of retired data's session, one more than without; and two to spare for the server's other clients.
    static func sessionsAheadNeed(_ jobs: Int) -> Int { max(1, jobs) + 5 }

    /// The restore's own session to `target` (given with `maintenanceSessionOptions`), not yet connecting.
    static func targetSession(_ target: ConnectionString) -> SessionsAhead {
        SessionsAhead(1, target: target, name: "ftbackup-restore", setup: "")
    }

    /// With `clean`, `OutsideDependants.capture`, its failure kept for the moment the drop needs it (a damaged backup or
    /// a refused target is named first); without, nothing to capture.
    static func captureAhead(_ clean: Bool, _ target: DatabaseSession, schemas: [String], options: RestoreOptions,
                             session: SessionsAhead? = nil) async -> Result<OutsideDependants, any Error> {
        guard clean else { return .success(OutsideDependants()) }
        do {
            return .success(try await OutsideDependants.capture(target, schemas: schemas, options: options, session: session))
        } catch {
            return .failure(error)
        }
    }

    /// True when the target has event triggers of its own that fire in an ordinary session (not ftbackup's) and
    /// this role may set `session_replication_role` (a superuser: only superusers create event triggers), and none
    /// is enabled `REPLICA` (those would fire in a replica's session instead).
    static func applicationEventTriggersWouldFire(_ target: DatabaseSession) async throws -> Bool {
        try await target.query("""
            SELECT current_setting('is_superuser') = 'on'
                   AND EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtenabled = 'O' AND evtname NOT LIKE 'ftbackup\\_%')
                   AND NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtenabled = 'R') AS fires
            """).first?.bool("fires") ?? false
    }

    /// With `--skip-analyze`, statistics come from autovacuum: say so when the target will never gather them.
    static func statisticsWarning(_ target: DatabaseSession) async throws -> String? {
        let row = try await target.query("SELECT current_setting('autovacuum') = 'on' AND current_setting('track_counts') = 'on' AS gathers").first!
        if try row.bool("gathers") == true { return nil }
        return "--skip-analyze: autovacuum (or track_counts) is off on \(target.target), so the restored tables have no planner statistics until you run vacuumdb --analyze-only"
    }

    static func manifestSubset(_ manifest: BackupManifest, tables: [BackupManifest.Table]) -> BackupManifest {
        var subset = manifest
        subset.tables = tables
        return subset
    }

    /// The schema dump, decompressed and checked, in a private temporary file (pg_restore -j needs a seekable file).
    static func materializeSchemaDump(_ repository: Repository, manifest: BackupManifest) throws -> String {
        let path = try TemporaryFiles.path("\(manifest.label)-\(UUID().uuidString).pgdump")
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LocalStorage.failure("cannot create", path, errno) }
        defer { close(fd) }
        do {
            try StoredFileReader.read(repository.storage, folder: repository.backupFolder(manifest.label), file: manifest.schemaDump) { raw in
                var offset = 0
                while offset < raw.count {
                    let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if written < 0 { if errno == EINTR { continue }; throw LocalStorage.failure("cannot write", path, errno) }
                    offset += written
                }
            }
        } catch {
            unlink(path)
            throw error
        }
        return path
    }

    static func runTool(_ tool: String, _ arguments: [String], _ environment: [String: String], _ secrets: ConnectionString) async throws {
        let thread = ConnectionThread(name: "ftbackup-pg_restore")
        defer { thread.shutdown() }
        try await thread.run { try PostgresTools.run(tool, arguments, environment: environment, secrets: secrets) }
    }
}
