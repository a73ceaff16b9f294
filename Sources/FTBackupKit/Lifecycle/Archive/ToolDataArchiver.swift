import Foundation
import Logging

/// What an archive run needs to know.
public struct ArchiveOptions: Sendable {
    public var database: ConnectionString
    public var repositoryPath: String
    public var policy: Policy
    public var schemas: [String]
    public var batchSize: Int
    public var dryRun: Bool
    public var logger: Logger

    public init(database: ConnectionString, repositoryPath: String, policy: Policy, schemas: [String] = [],
                batchSize: Int = 1000, dryRun: Bool = false, logger: Logger = Logger(label: "ftbackup")) {
        self.database = database
        self.repositoryPath = repositoryPath
        self.policy = policy
        self.schemas = schemas
        self.batchSize = batchSize
        self.dryRun = dryRun
        self.logger = logger
    }
}

/// What an archive run did (or, dry, would do), per tool schema; also written as the run's log.
public struct ArchiveReport: Codable, Sendable {
    public struct SchemaSummary: Codable, Sendable, Equatable {
        public var schema: String
        public var ageColumn: String
        /// tool_data rows archived.
        public var rows: Int64
        /// Rows of the schema's dependant tables archived with them.
        public var dependantRows: Int64
        /// Sum of the rows' sizes in the database (pg_column_size), tool_data and dependants.
        public var bytes: Int64
        public var oldest: String?
        public var newest: String?
        /// Qualifying rows kept because another tool's live data references them.
        public var keptReferenced: Int64
        public var keptReferencedIds: [String]
        public var archives: [String]
    }

    public struct Reconciled: Codable, Sendable {
        public var archive: String
        public var action: String
    }

    public var run: String
    public var dryRun: Bool
    public var cutoff: Date
    public var policy: String
    public var batchSize: Int
    public var reconciled: [Reconciled]
    public var schemas: [SchemaSummary]
    public var longestBatchSeconds: Double
    public var seconds: Double

    public var rows: Int64 { schemas.reduce(0) { $0 + $1.rows } }
}

/// Archives completed tool data past the policy's age: per batch, lock the rows, stream them (and
/// their dependants) out with COPY into a zstd-compressed, checksummed archive, read it back and
/// check it, write the archive's manifest as `pending`, delete the rows in the same transaction,
/// commit, then mark the manifest `committed`.
///
/// A run killed anywhere leaves either rows in the database (the pending archive is discarded next
/// run) or rows gone with a verified archive (the pending archive is marked committed next run): no
/// row is ever both deleted and missing from a verified archive, and none is archived twice.
public enum ToolDataArchiver {
    public static func run(_ options: ArchiveOptions) async throws -> ArchiveReport {
        let started = Date()
        guard options.batchSize > 0 else { throw FTBackupError(.usage, "--batch must be positive") }
        let store = ArchiveStore(storage: LocalStorage(root: options.repositoryPath))
        let lock = options.dryRun ? nil : try RepositoryLock.acquire(repositoryRoot: options.repositoryPath, kind: .write,
                                                                        exclusive: true, command: "lifecycle archive")
        defer { lock?.release() }
        let session = try await DatabaseSession.connect(options.database, name: "ftbackup-archive")
        defer { session.close() }
        try await session.execute(SessionSettings.copy(encoding: "UTF8"))

        let reconciled = options.dryRun ? [] : try await reconcile(store, session: session, logger: options.logger)
        let plans = try await ToolSchemaArchivePlan.discover(session, policy: options.policy, requested: options.schemas)
        let settings = options.policy.archiveToolData
        // One cut-off for the whole run, computed by the database.
        let cutoff = try await session.query("SELECT extract(epoch FROM now() - $1::interval) AS at", [settings.after.sqlInterval])
            .first!.epochDate("at")!
        let run = RunLabel.make(started)
        let hold = PostgresArray.text(options.policy.legalHoldOrganizations)
        let parameters: [any SQLParameter] = [settings.status, Timestamps.iso8601UTC(cutoff), hold]

        var summaries: [ArchiveReport.SchemaSummary] = []
        var longest = 0.0
        for plan in plans {
            var summary = try await survey(session, plan: plan, parameters: parameters)
            if !options.dryRun && summary.rows > 0 {
                let outcome = try await session.withConnection { connection in
                    try archiveSchema(connection, plan: plan, store: store, run: run, cutoff: cutoff, parameters: parameters,
                                      batchSize: options.batchSize, policy: options.policy)
                }
                summary.rows = outcome.rows
                summary.dependantRows = outcome.dependantRows
                summary.bytes = outcome.bytes
                summary.oldest = outcome.oldest
                summary.newest = outcome.newest
                summary.archives = outcome.archives
                longest = max(longest, outcome.longestBatch)
                options.logger.info("archived tool data", metadata: [
                    "schema": .string(plan.schema), "rows": .string("\(outcome.rows)"),
                    "dependant_rows": .string("\(outcome.dependantRows)"), "archives": .string("\(outcome.archives.count)"),
                ])
            }
            summaries.append(summary)
        }
        let report = ArchiveReport(run: run, dryRun: options.dryRun, cutoff: cutoff, policy: options.policy.source,
                                   batchSize: options.batchSize, reconciled: reconciled, schemas: summaries,
                                   longestBatchSeconds: longest, seconds: Date().timeIntervalSince(started))
        if !options.dryRun { try store.writeRunLog(kind: "archive", run: run, report) }
        return report
    }

    /// What a run would archive in one schema: the same predicate the batches use, counted.
    static func survey(_ session: DatabaseSession, plan: ToolSchemaArchivePlan,
                       parameters: [any SQLParameter]) async throws -> ArchiveReport.SchemaSummary {
        let q = { (name: String) in try session.escapeIdentifier(name) }
        let table = try session.qualifiedName(plan.schema, "tool_data")
        let age = try q(plan.ageColumn)
        var dependantRows = "0::bigint", dependantBytes = "0::bigint"
        for dependant in plan.dependants {
            let name = try session.qualifiedName(plan.schema, dependant.table)
            let key = try q(dependant.keyColumn)
            dependantRows += " + (SELECT count(*) FROM \(name) d WHERE d.\(key) IN (SELECT id FROM picked))"
            dependantBytes += " + (SELECT coalesce(sum(\(try ToolSchemaArchivePlan.rowSize(alias: "d", columns: dependant.columns, q))), 0) FROM \(name) d WHERE d.\(key) IN (SELECT id FROM picked))"
        }
        let row = try await session.query("""
            WITH picked AS (SELECT t.id, t.\(age) AS age, \(try ToolSchemaArchivePlan.rowSize(alias: "t", columns: plan.toolDataColumns, q)) AS size
                            FROM \(table) t WHERE \(try plan.predicate(q)))
            SELECT (SELECT count(*) FROM picked) AS rows, (SELECT coalesce(sum(size), 0) FROM picked) + \(dependantBytes) AS bytes,
                   \(dependantRows) AS dependant_rows, (SELECT min(age)::text FROM picked) AS oldest, (SELECT max(age)::text FROM picked) AS newest
            """, parameters).first!
        var kept: [String] = []
        var keptCount: Int64 = 0
        let unreferenced = try plan.unreferenced(q)
        if !unreferenced.isEmpty {
            let keptRows = try await session.query("""
                SELECT t.id::text AS id, count(*) OVER () AS total FROM \(table) t
                WHERE \(try plan.qualifies(q)) AND NOT (\(unreferenced)) ORDER BY t.id LIMIT 50
                """, parameters)
            kept = try keptRows.rows.map { try $0.requiredString("id") }
            keptCount = try keptRows.first.map { try $0.int64("total") } ?? 0
        }
        return ArchiveReport.SchemaSummary(schema: plan.schema, ageColumn: plan.ageColumn, rows: try row.int64("rows"),
                                           dependantRows: try row.int64("dependant_rows"), bytes: try row.int64("bytes"),
                                           oldest: try row.string("oldest"), newest: try row.string("newest"),
                                           keptReferenced: keptCount, keptReferencedIds: kept, archives: [])
    }

    struct SchemaOutcome: Sendable {
        var rows: Int64 = 0
        var dependantRows: Int64 = 0
        var bytes: Int64 = 0
        var oldest: String?
        var newest: String?
        var archives: [String] = []
        var longestBatch = 0.0
    }

    /// Archives one schema batch by batch (each batch one transaction), on the session's thread.
    static func archiveSchema(_ connection: PGConnection, plan: ToolSchemaArchivePlan, store: ArchiveStore, run: String,
                              cutoff: Date, parameters: [any SQLParameter], batchSize: Int, policy: Policy) throws -> SchemaOutcome {
        let q = { (name: String) in try connection.escapeIdentifier(name) }
        let table = try connection.qualifiedName(plan.schema, "tool_data")
        let age = try q(plan.ageColumn)
        try connection.execute("CREATE TEMP TABLE IF NOT EXISTS ftbackup_batch (id uuid PRIMARY KEY) ON COMMIT DELETE ROWS")
        var outcome = SchemaOutcome()
        var batch = 0
        while true {
            let batchStarted = Date()
            try connection.execute("BEGIN")
            var committing = false
            var name: String?
            do {
                let picked = try connection.query("""
                    WITH locked AS (SELECT t.id FROM \(table) t WHERE \(try plan.predicate(q)) ORDER BY t.id LIMIT \(batchSize) FOR UPDATE OF t)
                    INSERT INTO pg_temp.ftbackup_batch SELECT id FROM locked
                    """, parameters).affectedRows ?? 0
                if picked == 0 {
                    try connection.execute("ROLLBACK")
                    break
                }
                batch += 1
                let archiveName = "\(run)-\(plan.schema)-\(String(format: "%04d", batch))"
                name = archiveName
                let stats = try connection.query("""
                    SELECT array_to_json(array_agg(t.id::text ORDER BY t.id))::text AS ids, min(t.\(age))::text AS oldest,
                           max(t.\(age))::text AS newest,
                           coalesce(sum(\(try ToolSchemaArchivePlan.rowSize(alias: "t", columns: plan.toolDataColumns, q))), 0) AS bytes
                    FROM \(table) t WHERE t.id IN (SELECT id FROM pg_temp.ftbackup_batch)
                    """).first!
                let ids = try JSONDecoder().decode([String].self, from: Data(try stats.requiredString("ids").utf8))
                // Lock the dependants too: an update committed between their COPY and their DELETE would be lost.
                for dependant in plan.dependants {
                    try connection.query("""
                        SELECT 1 FROM \(try connection.qualifiedName(plan.schema, dependant.table)) d
                        WHERE d.\(try q(dependant.keyColumn)) IN (SELECT id FROM pg_temp.ftbackup_batch) FOR UPDATE
                        """)
                }
                var bytes = try stats.int64("bytes")
                var tables: [ArchiveManifest.ArchivedTable] = []
                let targets = [("tool_data", "id", plan.toolDataColumns)] + plan.dependants.map { ($0.table, $0.keyColumn, $0.columns) }
                for (index, (tableName, key, columns)) in targets.enumerated() {
                    let name = try connection.qualifiedName(plan.schema, tableName)
                    if index > 0 {
                        bytes += try connection.query("""
                            SELECT coalesce(sum(\(try ToolSchemaArchivePlan.rowSize(alias: "d", columns: columns, q))), 0) AS b
                            FROM \(name) d WHERE d.\(try q(key)) IN (SELECT id FROM pg_temp.ftbackup_batch)
                            """).first!.int64("b")
                    }
                    tables.append(try archiveTable(connection, store: store, archive: archiveName, index: index, schema: plan.schema,
                                                   table: tableName, key: key, columns: columns, compression: policy.compression))
                }
                guard Int64(ids.count) == tables[0].rows else {
                    throw FTBackupError(.failure, "\(plan.schema): archived \(tables[0].rows) tool_data rows for \(ids.count) ids; nothing deleted")
                }
                var manifest = ArchiveManifest(
                    formatVersion: 1, name: archiveName, run: run, schema: plan.schema, status: .pending, createdAt: Date(),
                    committedAt: nil, cutoff: cutoff, ageColumn: plan.ageColumn, statusValue: policy.archiveToolData.status,
                    policySource: policy.source, ids: ids, oldest: try stats.string("oldest"), newest: try stats.string("newest"),
                    tables: tables, restoredIds: [])
                try store.write(manifest)
                Failpoint.hit("archive.after-write")

                // Dependants first (their foreign keys point at tool_data), then tool_data; each count must match the archive.
                for archived in tables.reversed() {
                    let deleted = try connection.query("""
                        DELETE FROM \(try connection.qualifiedName(plan.schema, archived.name)) d
                        WHERE d.\(try q(archived.keyColumn)) IN (SELECT id FROM pg_temp.ftbackup_batch)
                        """).affectedRows ?? -1
                    guard Int64(deleted) == archived.rows else {
                        throw FTBackupError(.failure, "\(plan.schema).\(archived.name): would delete \(deleted) rows but archived \(archived.rows); rolled back")
                    }
                }
                committing = true
                try connection.execute("COMMIT")
                Failpoint.hit("archive.after-commit")
                manifest.status = .committed
                manifest.committedAt = Date()
                try store.write(manifest)

                outcome.rows += tables[0].rows
                outcome.dependantRows += tables.dropFirst().reduce(0) { $0 + $1.rows }
                outcome.bytes += bytes
                if let oldest = manifest.oldest, outcome.oldest == nil || oldest < outcome.oldest! { outcome.oldest = oldest }
                if let newest = manifest.newest, outcome.newest == nil || newest > outcome.newest! { outcome.newest = newest }
                outcome.archives.append(archiveName)
                outcome.longestBatch = max(outcome.longestBatch, Date().timeIntervalSince(batchStarted))
            } catch {
                if !committing {
                    if connection.isAlive { try? connection.execute("ROLLBACK") }
                    // The delete did not commit: the rows are still in the database, the files are surplus.
                    if let name { try? store.storage.remove(store.folder(name)) }
                }
                // After COMMIT was sent the outcome may be unknown: the pending manifest stays for the next run to reconcile.
                throw error
            }
        }
        return outcome
    }

    /// COPYs one table's rows of the batch into the archive and reads the file back to check it.
    static func archiveTable(_ connection: PGConnection, store: ArchiveStore, archive: String, index: Int, schema: String,
                             table: String, key: String, columns: [String],
                             compression: Policy.Compression) throws -> ArchiveManifest.ArchivedTable {
        let name = try connection.qualifiedName(schema, table)
        let list = try columns.map { try connection.escapeIdentifier($0) }.joined(separator: ", ")
        let path = "\(index).copy\(compression.codec.fileExtension)"
        let writer = try CompressedFileWriter(storage: store.storage, path: "\(store.folder(archive))/\(path)", compression: compression)
        let copied: CopyOutcome
        var file: BackupManifest.StoredFile
        do {
            copied = try connection.copyOut("""
                COPY (SELECT \(list) FROM \(name) d WHERE d.\(try connection.escapeIdentifier(key)) IN (SELECT id FROM pg_temp.ftbackup_batch)) TO STDOUT
                """) { try writer.write($0) }
            file = try writer.finish()
            file.path = path
        } catch {
            writer.abort()
            throw error
        }
        // Verify before anything is deleted: digest, framing, length, and one line per row.
        var lines: Int64 = 0
        try StoredFileReader.read(store.storage, folder: store.folder(archive), file: file) { raw in
            for byte in raw where byte == 0x0A { lines += 1 }
        }
        guard lines == copied.rows else {
            throw FTBackupError(.dataError, "archive \(archive)/\(path) holds \(lines) rows, \(copied.rows) were copied; nothing deleted")
        }
        return ArchiveManifest.ArchivedTable(schema: schema, name: table, keyColumn: key, columns: columns, rows: copied.rows, file: file)
    }

    /// Settles archives a killed run left `pending`, and removes folders a run left without a manifest.
    static func reconcile(_ store: ArchiveStore, session: DatabaseSession, logger: Logger) async throws -> [ArchiveReport.Reconciled] {
        var actions: [ArchiveReport.Reconciled] = []
        for (name, manifest) in try store.all() {
            guard let manifest else {
                // Killed while writing files: the delete comes after the manifest, so no row was deleted.
                try store.storage.remove(store.folder(name))
                actions.append(.init(archive: name, action: "removed files of a run killed before its manifest"))
                continue
            }
            guard manifest.status == .pending else { continue }
            let table = try session.qualifiedName(manifest.schema, "tool_data")
            let present = try await session.query("SELECT count(*) AS n FROM \(table) WHERE id::text = ANY($1::text[])",
                                                   [PostgresArray.text(manifest.ids)]).first!.int64("n")
            if present == Int64(manifest.ids.count) {
                try store.storage.remove(store.folder(name))
                actions.append(.init(archive: name, action: "discarded: the delete never committed, the rows are still in the database"))
            } else if present == 0 {
                var committed = manifest
                committed.status = .committed
                committed.committedAt = Date()
                try store.write(committed)
                actions.append(.init(archive: name, action: "marked committed: the rows were deleted, the archive holds them"))
            } else {
                throw FTBackupError(.dataError, "archive \(name) is pending and \(present) of its \(manifest.ids.count) rows are still in \(manifest.schema).tool_data",
                                    hint: "someone re-inserted archived rows; compare the archive with the database before going on (runbooks/lifecycle-archive-and-prune.md)")
            }
            logger.warning("reconciled an archive left pending by an interrupted run", metadata: ["archive": .string(name), "action": .string(actions.last!.action)])
        }
        return actions
    }
}
