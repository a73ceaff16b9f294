import Foundation
import Logging

/// What a backup run needs to know.
public struct BackupOptions: Sendable {
    public var database: ConnectionString
    public var repositoryPath: String
    public var policy: Policy
    public var jobs: Int
    /// Where the snapshot comes from; nil picks it: a temporary replication slot when change
    /// archival is set up (so the full lines up with the change stream), else `pg_export_snapshot()`.
    public var snapshotSource: (any SnapshotSource)?
    public var logger: Logger
    public var showProgress: Bool
    /// Called once the snapshot is taken and every table locked, before any table is copied: the
    /// backup is running. Tests use it to write and record an instant in the middle of a backup.
    public var whileRunning: (@Sendable () async throws -> Void)?
    /// Called right after each attempt's snapshot is taken (attempt 1, 2, …), before tables are
    /// discovered and locked. Tests use it to commit DDL that the snapshot does not see.
    public var afterSnapshot: (@Sendable (_ attempt: Int) async throws -> Void)?
    /// Re-attach the repository to a database of its source's name whose oid changed (dropped and
    /// created again, or restored into a new database): see `RepositorySource.claim`.
    public var reattach = false
    /// Write tables whose types allow it in binary COPY (``BinaryCopyEligibility``); false: every table
    /// in text (`backup --copy-format text`), for a backup meant for another PostgreSQL version.
    public var allowBinaryCopy = true

    public init(database: ConnectionString, repositoryPath: String, policy: Policy, jobs: Int,
                snapshotSource: (any SnapshotSource)? = nil,
                logger: Logger = Logger(label: "ftbackup"), showProgress: Bool = true) {
        self.database = database
        self.repositoryPath = repositoryPath
        self.policy = policy
        self.jobs = jobs
        self.snapshotSource = snapshotSource
        self.logger = logger
        self.showProgress = showProgress
    }
}

/// Takes a full backup: every table through its own `COPY … TO STDOUT` stream → zstd → SHA-256 →
/// the repository, all in one snapshot, with the DDL from `pg_dump` on that same snapshot, and the
/// manifest written last.
public enum BackupRunner {
    /// How many times a full backup is started before it gives up on a database that keeps changing under it.
    static let maxAttempts = 3

    /// Takes a full backup, taking it again (twice at most) when its snapshot cannot be used:
    /// - a table was rewritten, altered or dropped after the snapshot was taken (the snapshot would read
    ///   a rewritten table as empty; see `SnapshotTableCheck`): at once, with a new snapshot;
    /// - the application asked for an ACCESS EXCLUSIVE lock (TRUNCATE, ALTER …) while the backup held its
    ///   snapshot: as with `pg_dump -j`, the schema dump cannot lock, so the backup starts over a few seconds later.
    /// Each retake is logged with its reason; after the last attempt the backup fails (exit 75) and
    /// writes nothing.
    public static func runFull(_ options: BackupOptions) async throws -> BackupManifest {
        var attempt = 1
        while true {
            do {
                return try await runFullOnce(options, attempt: attempt)
            } catch let error as TablesChangedAfterSnapshot {
                guard attempt < maxAttempts else {
                    throw FTBackupError(.locked, "no backup written: on each of \(maxAttempts) attempts a table changed after the backup's snapshot "
                                        + "(last: \(error.changes.joined(separator: "; ")))",
                                        hint: "DDL that rewrites or alters tables (ALTER TABLE, TRUNCATE, VACUUM FULL, CLUSTER) kept committing as the backup started; run the backup again once it is over")
                }
                options.logger.warning("backup taken again: a table changed after its snapshot", metadata: [
                    "attempt": .string("\(attempt)"), "reason": "table_changed_after_snapshot",
                    "tables": .string(error.changes.joined(separator: "; ")),
                ])
                attempt += 1
            } catch let error as FTBackupError where attempt < maxAttempts && isLockConflict(error) {
                options.logger.warning("backup taken again: it met a conflicting lock request", metadata: [
                    "attempt": .string("\(attempt)"), "reason": "lock_conflict", "error": .string(error.message),
                ])
                attempt += 1
                try await Task.sleep(for: .seconds(2))
            }
        }
    }

    static func isLockConflict(_ error: FTBackupError) -> Bool {
        let text = error.message
        return text.contains("deadlock detected") || text.contains("could not obtain lock")
            || (text.contains("statement timeout") && text.contains("LOCK TABLE"))
    }

    static func runFullOnce(_ options: BackupOptions, attempt: Int = 1) async throws -> BackupManifest {
        let repository = try Repository.open(options.repositoryPath)
        let lock = try RepositoryLock.acquire(repositoryRoot: options.repositoryPath, kind: .write, exclusive: true,
                                              command: "backup --type full")
        defer { lock.release() }
        Failpoint.pause("backup.holding-write-lock")
        let logger = options.logger

        let startedAt = Date()
        let coordinator = try await DatabaseSession.connect(options.database, name: "ftbackup-coordinator")
        defer { coordinator.close() }
        // The repository belongs to one database: refused before anything is written or removed.
        let identity = try await coordinator.withConnection { try DatabaseIdentity.of($0) }
        try RepositorySource.claim(repositoryPath: options.repositoryPath, identity: identity, command: "backup --type full",
                                   reattach: options.reattach)
        for label in try repository.removeIncompleteBackups() {
            logger.warning("removed incomplete backup left by an interrupted run", metadata: ["label": .string(label)])
        }
        var source = try await sourceDescription(coordinator)
        source.systemIdentifier = identity.systemIdentifier
        source.databaseOid = identity.databaseOid
        // Found before any work starts: a missing pg_dump must not cost a whole table copy.
        let pgDump = try PostgresTools.path(of: "pg_dump", serverVersionNumber: source.serverVersionNumber)
        try await coordinator.execute(SessionSettings.copy() + "; " + SessionSettings.qualifiedNames)
        let superuser = try await coordinator.query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").first?.bool("rolsuper") ?? false
        if superuser { try await coordinator.execute("SET deadlock_timeout = '100ms'") }
        let snapshotSource: any SnapshotSource
        if let chosen = options.snapshotSource {
            snapshotSource = chosen
        } else if try await ArchivalSlot.resolve(coordinator).exists {
            snapshotSource = ReplicationSlotSnapshotSource(database: options.database)
        } else {
            snapshotSource = TransactionSnapshotSource()
        }
        // On failure the snapshot ends with the coordinator's connection (closed by the defer above).
        let snapshot = try await snapshotSource.export(on: coordinator)
        try await options.afterSnapshot?(attempt)

        let (materializedViews, tables, partitioned, notCopied, schemas, roles, sequences, databaseSettings, largeObjects) = try await SnapshotTableCheck.failingOnDroppedObjects {
            let materializedViews = try await TableDiscovery.populatedMaterializedViews(coordinator)
            var tables = try await TableDiscovery.tables(coordinator, policy: options.policy)
            // Binary text values travel in UTF8 (the sessions' client encoding): other databases stay text, as does a backup told so.
            if source.encoding != "UTF8" || !options.allowBinaryCopy { for index in tables.indices { tables[index].format = .text } }
            let partitioned = try await TableDiscovery.partitionedTables(coordinator, policy: options.policy)
            let notCopied = try await TableDiscovery.notCopied(coordinator, policy: options.policy)
            let schemas = try await TableDiscovery.schemas(coordinator)
            let roles = try await TableDiscovery.roles(coordinator)
            let databaseSettings = try await DatabaseSettings.read(coordinator)
            let largeObjects = try await LargeObjectState.read(coordinator)
            try await lockTables(tables, coordinator: coordinator)
            // With every lock held: a table rewritten or altered since the snapshot would be copied wrong (empty).
            try await SnapshotTableCheck.verify(tables, coordinator: coordinator, database: options.database)
            return (materializedViews, tables, partitioned, notCopied, schemas, roles, try await TableDiscovery.sequences(coordinator), databaseSettings, largeObjects)
        }
        try await options.whileRunning?()

        let label = try repository.newLabel(type: .full, at: startedAt)
        let folder = repository.backupFolder(label)
        try repository.storage.makeFolder(folder)
        logger.info("backup started", metadata: [
            "label": .string(label), "tables": .string("\(tables.count)"), "jobs": .string("\(options.jobs)"),
            "snapshot": .string(snapshot.id), "consistent_at": .string(Timestamps.iso8601UTC(snapshot.time)),
        ])
        let progress = ProgressReporter(title: "backup \(label)", expectedBytes: tables.reduce(0) { $0 + $1.estimatedBytes },
                                        expectedItems: tables.count, logger: logger, quiet: !options.showProgress)
        do {
            async let dump = dumpSchema(options: options, pgDump: pgDump, superuser: superuser, snapshot: snapshot,
                                        storage: repository.storage, folder: folder)
            let (copiedByWorkers, deferred) = try await copyTables(tables, options: options, encoding: source.encoding, snapshot: snapshot,
                                                                   storage: repository.storage, folder: folder, progress: progress)
            // Tables a worker could not lock (an ACCESS EXCLUSIVE request waits behind the coordinator's
            // lock) are copied by the coordinator, which already holds their lock in the same snapshot.
            var copied = copiedByWorkers
            let encoding = source.encoding
            for (index, table) in deferred {
                let entry = try await coordinator.withConnection { connection in
                    try copyOne(table, index: index, connection: connection, encoding: encoding, storage: repository.storage, folder: folder,
                                compression: options.policy.compression, progress: progress)
                }
                copied.append((index, entry))
            }
            copied.sort { $0.0 < $1.0 }
            let schemaDump = try await dump
            progress.end()
            await snapshotSource.release(on: coordinator)

            let manifest = BackupManifest(
                formatVersion: BackupManifest.currentFormatVersion, label: label, type: .full,
                toolVersion: FTBackupVersion.current, source: source, startedAt: startedAt, stoppedAt: Date(),
                snapshot: .init(origin: snapshot.origin, id: snapshot.id, time: snapshot.time, walLSN: snapshot.walLSN),
                copyFormat: copied.contains { $0.1.copyFormat == .binary } ? "binary" : "text", policySource: options.policy.source, compression: options.policy.compression,
                schemaDump: schemaDump, schemas: schemas, roles: roles, tables: copied.map(\.1), tablesNotCopied: notCopied,
                sequences: sequences, materializedViews: materializedViews,
                totals: .init(tables: copied.count, rows: copied.reduce(0) { $0 + $1.1.rows },
                              rawBytes: copied.reduce(0) { $0 + $1.1.file.rawBytes } + schemaDump.rawBytes,
                              storedBytes: copied.reduce(0) { $0 + $1.1.file.storedBytes } + schemaDump.storedBytes),
                databaseSettings: databaseSettings,
                partitionedTables: partitioned, largeObjects: largeObjects)
            // The manifest goes last: temp file, fsync, rename, fsync the folder.
            try repository.storage.writeAll(repository.manifestPath(label), try manifest.encoded())
            logger.info("backup finished", metadata: [
                "label": .string(label), "rows": .string("\(manifest.totals.rows)"),
                "raw_bytes": .string("\(manifest.totals.rawBytes)"), "stored_bytes": .string("\(manifest.totals.storedBytes)"),
                "seconds": .string(String(format: "%.1f", manifest.duration)),
            ])
            return manifest
        } catch {
            progress.end()
            // Without a manifest the folder is never usable; remove what we can now, the next run removes the rest.
            try? repository.storage.remove(folder)
            throw error
        }
    }

    static func sourceDescription(_ session: DatabaseSession) async throws -> BackupManifest.Source {
        let row = try await session.query("""
            SELECT current_setting('server_version') AS version, current_setting('server_version_num') AS num,
                   current_database() AS db, pg_encoding_to_char(encoding) AS encoding
            FROM pg_database WHERE datname = current_database()
            """).first!
        // pg_control_system() needs pg_read_all_stats or superuser on some setups: optional.
        let system = try? await session.query("SELECT system_identifier::text AS id FROM pg_control_system()").first?.string("id")
        return BackupManifest.Source(server: session.target, serverVersion: try row.requiredString("version"),
                                     serverVersionNumber: try row.requiredInt("num"), systemIdentifier: system ?? nil,
                                     database: try row.requiredString("db"), encoding: try row.requiredString("encoding"))
    }

    /// `pg_dump -Fc` of everything except table data, on the backup's snapshot, zstd-compressed.
    static func dumpSchema(options: BackupOptions, pgDump: String, superuser: Bool, snapshot: ExportedSnapshot,
                           storage: any RepositoryStorage, folder: String) async throws -> BackupManifest.StoredFile {
        let child = options.database.forChildProcess()
        let thread = ConnectionThread(name: "ftbackup-pg_dump")
        defer { thread.shutdown() }
        let compression = options.policy.compression
        let database = options.database
        return try await thread.run {
            let writer = try CompressedFileWriter(storage: storage, path: "\(folder)/schema.pgdump.zst", compression: compression)
            do {
                // pg_dump's table locks are already held by the coordinator; it may still queue behind an
                // ACCESS EXCLUSIVE request that waits for the coordinator: bounded, so it fails instead of stalling.
                var arguments = ["--format=custom", "--compress=0", "--snapshot=\(snapshot.id)", "--exclude-table-data=*.*",
                                 "--exclude-schema=\(ChangeArchivalNames.schema)",
                                 "--no-password", "--lock-wait-timeout=5000"]
                if !child.conninfo.isEmpty { arguments += ["--dbname=\(child.conninfo)"] }
                var environment = child.environment
                // If a deadlock forms with the application, the backup's pg_dump detects it first and is the one to fail.
                if superuser { environment["PGOPTIONS"] = "-c deadlock_timeout=100ms" }
                try PostgresTools.run(pgDump, arguments, environment: environment, secrets: database) { try writer.write($0) }
                var file = try writer.finish()
                file.path = "schema.pgdump.zst"
                return file
            } catch {
                writer.abort()
                throw error
            }
        }
    }
}
