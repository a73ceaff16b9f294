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
}

/// Restores a full backup into a target database: plan → verify the files → safety checks →
/// pre-data DDL → per table, in parallel: `COPY … FROM STDIN FREEZE` checked against the file's
/// SHA-256, its indexes and primary/unique keys, `ANALYZE` → sequences → the rest of post-data
/// (foreign keys, policies, triggers) in parallel → materialized views refreshed → with `--clean`, the
/// foreign keys and views other schemas held on the dropped ones put back (`OutsideDependants`).
///
/// Building each table's indexes as soon as its data is in keeps both cores busy: one worker builds
/// indexes while another still loads, instead of a data phase followed by an index phase.
public enum RestoreRunner {
    /// Returns the plan alone for `dryRun`, else restores and returns the report.
    ///
    /// `afterData` (point-in-time restore's replay) runs once the data and sequences are in and only
    /// the primary, unique and exclusion keys exist (replay finds rows by them); secondary indexes,
    /// foreign keys, policies and statistics are built after it, which is faster than maintaining
    /// them change by change.
    public static func run(_ options: RestoreOptions, afterData: (@Sendable () async throws -> Void)? = nil) async throws -> RestoreReport {
        let started = Date()
        let repository = Repository.local(options.repositoryPath)
        let lock = try RepositoryLock.acquire(repositoryRoot: options.repositoryPath, kind: .read, exclusive: false, command: "restore")
        defer { lock.release() }
        let manifest = try repository.backup(label: options.label)
        if options.label == nil {
            for problem in try RepositorySourceView.load(repository).foreign { options.logger.warning("left out: \(problem)") }
        }
        let (plan, tables) = try RestorePlan.make(manifest: manifest, schemas: options.schemas, target: options.target.redacted,
                                                  jobs: options.jobs, clean: options.clean, noOwner: options.noOwner)
        if options.dryRun { return RestoreReport(plan: plan, phases: [:], seconds: 0) }
        let logger = options.logger
        var phases: [String: Double] = [:]
        func timed<T>(_ name: String, _ body: () async throws -> T) async throws -> T {
            let start = Date()
            let value = try await body()
            phases[name] = Date().timeIntervalSince(start)
            logger.info("restore phase done", metadata: ["phase": .string(name), "seconds": .string(String(format: "%.2f", phases[name]!))])
            return value
        }

        // 1. Every file we will read must be whole before the target is touched.
        try await timed("verify") {
            let subset = manifestSubset(manifest, tables: tables)
            let result = try await BackupVerifier.verify(repository, manifest: subset, decompress: false, jobs: options.jobs)
            if let first = result.badFiles.first {
                throw FTBackupError(.dataError, "backup \(manifest.label) is damaged, nothing was restored: \(result.badFiles.count) bad file(s), first: \(first.problem ?? first.path)",
                                    hint: "run ftbackup verify --set \(manifest.label); restore another backup with --set")
            }
        }

        let target = try await DatabaseSession.connect(options.target, name: "ftbackup-restore")
        defer { target.close() }
        let pgRestore = try PostgresTools.path(of: "pg_restore", serverVersionNumber: max(manifest.source.serverVersionNumber,
                                                                                            target.serverVersionNumber))
        let dumpFile = try materializeSchemaDump(repository, manifest: manifest)
        defer { try? FileManager.default.removeItem(atPath: dumpFile) }
        // ftbackup's own objects (publication, schema, event triggers) are never restored.
        let contents = try RestoreContents.read(pgRestore, dumpFile: dumpFile)
        let listFile = try contents.writeList()
        defer { try? FileManager.default.removeItem(atPath: listFile) }
        // Every role the script pg_restore will run names (owners, grants, default privileges, policies, user mappings).
        let dumpRoles = try DumpRoles.read(pgRestore, dumpFile: dumpFile, listFile: listFile, schemas: plan.wholeDatabase ? nil : plan.schemas)
        try await checkTarget(target, manifest: manifest, plan: plan, tables: tables, roles: dumpRoles, options: options)
        // The evidence retired data will be removed by must be sound before anything is loaded.
        if !options.keepRetired { try await RetiredDataReapplier.preflight(repositoryPath: options.repositoryPath, session: target) }
        let child = options.target.forChildProcess()
        var common = ["--exit-on-error", "--no-password"]
        if !child.conninfo.isEmpty { common.append("--dbname=\(child.conninfo)") }
        if options.noOwner { common += ["--no-owner", "--no-privileges"] }
        if !plan.wholeDatabase { common += plan.schemas.flatMap { ["--schema", $0] } }

        // What other schemas hold on the ones --clean drops (foreign keys, views, policies) is saved and put back at the end.
        var dependants = OutsideDependants()
        defer { dependants.removeFiles() }
        var touched = false
        if options.clean {
            // What pg_restore would create but --clean does not drop must not exist yet: refused before anything is dropped.
            let clashes = try await contents.clashes(target, plan: plan)
            if !clashes.isEmpty {
                throw FTBackupError(.usage, "target \(target.target) already has \(clashes.count) object(s) the restore would create outside the schemas --clean drops: \(clashes.prefix(10).joined(separator: ", ")); nothing was dropped",
                                    hint: "drop them from the target first (they come back from the backup), or restore into an empty database")
            }
            try await timed("clean") {
                dependants = try await OutsideDependants.capture(target, schemas: plan.schemas, options: options)
                let saved = dependants
                let taken = try await CleanDrop.run(target, plan: plan, dependants: saved, cascade: options.cascade)
                touched = true
                for object in taken { logger.warning("--cascade dropped \(object)") }
            }
        }
        var warnings: [String] = []
        do {
            if !plan.wholeDatabase {
                // pg_restore --schema restores a schema's objects but not the schema itself.
                for schema in plan.schemas where schema != "public" {
                    try await target.execute("CREATE SCHEMA \(try target.escapeIdentifier(schema))")
                }
            }
            try await timed("pre-data") {
                try await runTool(pgRestore, common + ["--section=pre-data", "--single-transaction", "--use-list=\(listFile)", dumpFile], child.environment, options.target)
            }
            try await timed("data") {
                try await loadTables(tables, manifest: manifest, repository: repository, options: options, keysOnly: afterData != nil)
            }
            try await timed("sequences") {
                // pg_dump leaves out the values of sequences owned by tables whose data it skipped: set them all.
                try await runTool(pgRestore, common + ["--section=data", "--single-transaction", "--use-list=\(listFile)", dumpFile], child.environment, options.target)
                try await target.withConnection { connection in
                    try connection.transaction {
                        for sequence in manifest.sequences where plan.schemas.contains(sequence.schema) {
                            let name = try connection.escapeLiteral(try connection.qualifiedName(sequence.schema, sequence.name))
                            try connection.query("SELECT setval(\(name)::regclass, $1::bigint, $2::boolean)", [sequence.lastValue, sequence.isCalled])
                        }
                    }
                }
            }
            if let afterData {
                try await timed("replay") { try await afterData() }
                try await timed("indexes") { try await buildSecondaryIndexes(tables, options: options) }
            }
            try await timed("post-data") {
                // What the data phase built already (indexes, primary keys, unique constraints) is left out.
                let postList = try postDataList(contents, builtFor: tables)
                defer { try? FileManager.default.removeItem(atPath: postList) }
                var environment = child.environment
                environment["PGOPTIONS"] = "-c maintenance_work_mem=512MB -c synchronous_commit=off"
                try await runTool(pgRestore, common + ["--section=post-data", "--jobs=\(options.jobs)", "--use-list=\(postList)", dumpFile],
                                  environment, options.target)
            }
            try await timed("refresh") {
                for view in manifest.materializedViews where plan.schemas.contains(view.schema) {
                    try await target.execute("REFRESH MATERIALIZED VIEW \(try target.qualifiedName(view.schema, view.name))")
                }
            }
            if !dependants.isEmpty {
                try await timed("dependants") { warnings = try await dependants.putBack(target, options: options) }
            }
        } catch {
            // From here on the target was changed: say exactly how it was left and what to run.
            throw RestoreFailure.describe(error, target: target, plan: plan, options: options, dropped: touched, dependants: &dependants)
        }
        if afterData != nil {
            try await timed("analyze") {
                for table in tables { try await target.execute("ANALYZE \(try target.qualifiedName(table.schema, table.name))") }
            }
        }
        var retired: RetiredDataReapplier.Report?
        if !options.keepRetired {
            retired = try await timed("retired") {
                try await RetiredDataReapplier.run(target: options.target, repositoryPath: options.repositoryPath, schemas: plan.schemas,
                                                   policy: try options.policy ?? PolicyLoader.parse(PolicyLoader.builtInDefault, source: "(built-in)"),
                                                   logger: logger)
            }
        }
        return RestoreReport(plan: plan, phases: phases, seconds: Date().timeIntervalSince(started),
                             retired: retired, warnings: warnings.isEmpty ? nil : warnings)
    }

    static func manifestSubset(_ manifest: BackupManifest, tables: [BackupManifest.Table]) -> BackupManifest {
        var subset = manifest
        subset.tables = tables
        return subset
    }

    /// The schema dump, decompressed and checked, in a private temporary file (pg_restore -j needs a seekable file).
    static func materializeSchemaDump(_ repository: Repository, manifest: BackupManifest) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ftbackup-\(manifest.label)-\(UUID().uuidString).pgdump").path
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

    /// Loads every table over `jobs` connections, largest first, each in its own transaction that
    /// truncates and then COPYs with FREEZE; a file whose SHA-256 does not match aborts its COPY.
    /// `keysOnly`: build only the indexes behind primary, unique and exclusion constraints, and leave
    /// ANALYZE for later (a replay follows).
    static func loadTables(_ tables: [BackupManifest.Table], manifest: BackupManifest, repository: Repository,
                           options: RestoreOptions, keysOnly: Bool = false) async throws {
        let queue = WorkQueue(tables.sorted { $0.file.rawBytes > $1.file.rawBytes })
        let progress = ProgressReporter(title: "restore \(manifest.label)", expectedBytes: tables.reduce(0) { $0 + $1.file.rawBytes },
                                        expectedItems: tables.count, logger: options.logger, quiet: !options.showProgress)
        defer { progress.end() }
        let folder = repository.backupFolder(manifest.label)
        let storage = repository.storage
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<max(1, min(options.jobs, tables.count)) {
                group.addTask {
                    let session = try await DatabaseSession.connect(options.target, name: "ftbackup-load-\(worker)")
                    defer { session.close() }
                    try await session.execute(SessionSettings.copy(encoding: manifest.source.encoding)
                        + "; SET synchronous_commit = off; SET maintenance_work_mem = '512MB'; SET search_path = ''")
                    while let table = queue.next() {
                        try Task.checkCancellation()
                        let rows = try await withTaskCancellationHandler {
                            try await session.withConnection { connection -> Int64 in
                                let name = try connection.qualifiedName(table.schema, table.name)
                                let columns = try table.columns.map { try connection.escapeIdentifier($0) }.joined(separator: ", ")
                                return try connection.transaction {
                                    try connection.execute("TRUNCATE ONLY \(name)")
                                    return try connection.copyIn("COPY \(name) (\(columns)) FROM STDIN WITH (FREEZE)") { write in
                                        try StoredFileReader.read(storage, folder: folder, file: table.file) { raw in
                                            try write(raw)
                                            progress.advance(bytes: raw.count)
                                        }
                                    }.rows
                                }
                            }
                        } onCancel: {
                            session.cancel()
                        }
                        guard rows == table.rows else {
                            throw FTBackupError(.dataError, "\(table.schema).\(table.name): loaded \(rows) rows but the backup recorded \(table.rows)")
                        }
                        for index in table.indexes where !keysOnly || index.constraint != nil { try await session.execute(index.sql) }
                        if !keysOnly { try await session.execute("ANALYZE \(try session.qualifiedName(table.schema, table.name))") }
                        progress.finished(item: "\(table.schema).\(table.name)", metadata: ["rows": .string("\(rows)")])
                    }
                }
            }
            try await group.waitForAll()
        }
    }


    /// pg_restore's table of contents (ftbackup's own entries already out) without the entries the data phase built.
    static func postDataList(_ contents: RestoreContents, builtFor tables: [BackupManifest.Table]) throws -> String {
        var built = Set<String>()
        for table in tables {
            for index in table.indexes {
                if let constraint = index.constraint {
                    built.insert("CONSTRAINT \(table.schema) \(table.name) \(constraint)")
                } else {
                    built.insert("INDEX \(table.schema) \(index.name)")
                }
            }
        }
        return try contents.writeList { built.contains("\($0.type) \($0.schema ?? "-") \($0.tag)") }
    }

    /// The secondary indexes left out by a keys-only load, built over `jobs` connections.
    static func buildSecondaryIndexes(_ tables: [BackupManifest.Table], options: RestoreOptions) async throws {
        let queue = WorkQueue(tables.flatMap { $0.indexes.filter { $0.constraint == nil } })
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<max(1, options.jobs) {
                group.addTask {
                    let session = try await DatabaseSession.connect(options.target, name: "ftbackup-index-\(worker)")
                    defer { session.close() }
                    try await session.execute("SET maintenance_work_mem = '512MB'; SET search_path = ''")
                    while let index = queue.next() { try await session.execute(index.sql) }
                }
            }
            try await group.waitForAll()
        }
    }
}
