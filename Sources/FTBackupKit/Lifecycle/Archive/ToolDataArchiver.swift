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
    /// Eligible rows kept because a row that stays references their closure.
    public struct Blocked: Codable, Sendable, Equatable {
        public var reference: String
        public var rows: Int64
        /// Up to 50 of the kept tool_data ids.
        public var ids: [String]
    }

    public struct SchemaSummary: Codable, Sendable, Equatable {
        public var schema: String
        public var ageColumn: String
        /// tool_data rows archived.
        public var rows: Int64
        /// Rows of the closure's other tables archived with them.
        public var dependantRows: Int64
        /// Sum of the rows' sizes in the database (pg_column_size), tool_data and dependants.
        public var bytes: Int64
        public var oldest: String?
        public var newest: String?
        /// Qualifying rows kept because another tool's live data references them (policy references).
        public var keptReferenced: Int64
        public var keptReferencedIds: [String]
        /// Qualifying rows kept because a foreign key from a row that stays points into their closure.
        @DefaultEmpty public var blocked: [Blocked]
        /// The tables archived with tool_data, and the foreign key that brings each in.
        @DefaultEmpty public var closure: [String]
        @DefaultEmpty public var silencedTriggers: [String]
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

/// Archives completed tool data past the policy's age: per batch, lock the rows and everything
/// that depends on them (`ArchiveClosure`), stream each table's rows out with COPY into a
/// zstd-compressed, checksummed archive, read it back and check it, write the archive's manifest as
/// `pending`, delete the rows — each DELETE carrying its own guard, each count checked against the
/// archive — in the same transaction, commit, then mark the manifest `committed`.
///
/// A run killed anywhere leaves either rows in the database (the pending archive is discarded next
/// run) or rows gone with a verified archive (the pending archive is marked committed next run): no
/// row is ever both deleted and missing from a verified archive, and none is archived twice.
public enum ToolDataArchiver {
    public static func run(_ options: ArchiveOptions) async throws -> ArchiveReport {
        let started = Date()
        guard (1...10_000_000).contains(options.batchSize) else { throw FTBackupError(.usage, "--batch must be between 1 and 10000000") }
        let store = ArchiveStore(storage: try RepositoryStorageFactory.open(options.repositoryPath))
        let lock = options.dryRun ? nil : try RepositoryLock.acquire(repositoryRoot: options.repositoryPath, kind: .write,
                                                                        exclusive: true, command: "lifecycle archive")
        defer { lock?.release() }
        let session = try await DatabaseSession.connect(options.database, name: "ftbackup-archive")
        defer { session.close() }
        try await session.execute(SessionSettings.copy(encoding: "UTF8") + "; " + SessionSettings.qualifiedNames)
        let identity = try await session.withConnection { try DatabaseIdentity.of($0) }
        try RepositorySource.claim(repositoryPath: options.repositoryPath, identity: identity, command: "lifecycle archive",
                                   record: !options.dryRun)

        let reconciled = options.dryRun ? [] : try await session.withConnection { connection in
            try reconcile(store, connection: connection, logger: options.logger)
        }
        let anchor = options.dryRun ? nil : await RecordChainAnchor.open(options.database, storage: store.storage, logger: options.logger)
        defer { anchor?.close() }
        return try await session.withConnection { connection in
            try archive(connection, store: store, options: options, reconciled: reconciled, started: started, anchor: anchor)
        }
    }

    static func archive(_ connection: PGConnection, store: ArchiveStore, options: ArchiveOptions,
                        reconciled: [ArchiveReport.Reconciled], started: Date, anchor: RecordChainAnchor? = nil) throws -> ArchiveReport {
        let plans = try ToolSchemaArchivePlan.discover(connection, policy: options.policy, requested: options.schemas)
        let settings = options.policy.archiveToolData
        // One cut-off for the whole run, computed by the database.
        let cutoff = try connection.query("SELECT extract(epoch FROM now() - $1::interval) AS at", [settings.after.sqlInterval])
            .first!.epochDate("at")!
        let run = RunLabel.make(started)
        let hold = PostgresArray.text(options.policy.legalHoldOrganizations)
        let parameters: [any SQLParameter] = [settings.status, Timestamps.iso8601UTC(cutoff), hold]

        var summaries: [ArchiveReport.SchemaSummary] = []
        var longest = 0.0
        for plan in plans {
            let triggers = try ApplicationTriggerGuard.decide(connection, oids: plan.members.map(\.relation.oid), event: .delete,
                                                              policy: options.policy.applicationTriggers, work: "lifecycle archive of \(plan.schema)")
            var summary = try survey(connection, plan: plan, parameters: parameters)
            summary.silencedTriggers = triggers.silenced.map(\.description)
            if !options.dryRun && summary.rows > 0 {
                let outcome = try BatchArchiver(connection: connection, plan: plan, store: store, triggers: triggers, run: run, cutoff: cutoff,
                                                parameters: parameters, batchSize: options.batchSize, policy: options.policy,
                                                source: try DatabaseIdentity.of(connection)).archive()
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
        if !options.dryRun { try store.writeRunLog(kind: "archive", run: run, report, anchor: anchor) }
        return report
    }

    /// What a run would archive in one schema: the same closure and blocking rules the batches use,
    /// over every eligible row at once, in a transaction that is rolled back (no row is locked).
    static func survey(_ connection: PGConnection, plan: ToolSchemaArchivePlan,
                       parameters: [any SQLParameter]) throws -> ArchiveReport.SchemaSummary {
        let closure = ArchiveClosure(connection: connection, plan: plan)
        let q = closure.q
        try connection.execute("BEGIN")
        defer { try? connection.execute("ROLLBACK") }
        try closure.create()
        _ = try closure.selectRoots(limit: nil, lock: false, parameters: parameters)
        try closure.expand(lock: false)
        try closure.removeBlocked()
        let root = try connection.query("""
            SELECT count(*) AS rows, min(c.\(try q(plan.ageColumn)))::text AS oldest, max(c.\(try q(plan.ageColumn)))::text AS newest,
                   coalesce(sum(\(try ToolSchemaArchivePlan.rowSize(alias: "c", columns: plan.toolDataColumns, q))), 0) AS bytes
            \(try closure.rows(0))
            """).first!
        var dependantRows: Int64 = 0, bytes = try root.int64("bytes")
        for index in plan.members.indices.dropFirst() {
            let row = try connection.query("""
                SELECT count(*) AS n, coalesce(sum(\(try ToolSchemaArchivePlan.rowSize(alias: "c", columns: plan.members[index].columns.writable, q))), 0) AS b
                \(try closure.rows(index))
                """).first!
            dependantRows += try row.int64("n")
            bytes += try row.int64("b")
        }
        let blocked = try connection.query("""
            SELECT reason, count(*) AS n, array_to_json((array_agg(id::text ORDER BY id))[1:50])::text AS ids
            FROM pg_temp.ftbackup_blocked GROUP BY reason ORDER BY reason
            """).rows.map { row in
            ArchiveReport.Blocked(reference: try row.requiredString("reason").replacingOccurrences(of: "referenced by ", with: ""),
                                  rows: try row.int64("n"),
                                  ids: try JSONDecoder().decode([String].self, from: Data(try row.requiredString("ids").utf8)))
        }
        var kept: [String] = []
        var keptCount: Int64 = 0
        let unreferenced = try plan.unreferenced(q)
        if !unreferenced.isEmpty {
            let keptRows = try connection.query("""
                SELECT t.id::text AS id, count(*) OVER () AS total FROM \(try closure.table(0)) t
                WHERE \(try plan.qualifies(q)) AND NOT (\(unreferenced)) ORDER BY t.id LIMIT 50
                """, parameters)
            kept = try keptRows.rows.map { try $0.requiredString("id") }
            keptCount = try keptRows.first.map { try $0.int64("total") } ?? 0
        }
        let closureTables = plan.edges.map { "\(plan.members[$0.child].relation) via \($0.key.name) (\($0.key.onDelete.sql))" }
        return ArchiveReport.SchemaSummary(schema: plan.schema, ageColumn: plan.ageColumn, rows: try root.int64("rows"),
                                           dependantRows: dependantRows, bytes: bytes,
                                           oldest: try root.string("oldest"), newest: try root.string("newest"),
                                           keptReferenced: keptCount, keptReferencedIds: kept, blocked: blocked,
                                           closure: closureTables, silencedTriggers: [], archives: [])
    }

    /// Settles archives a killed run left `pending`, and removes folders a run left without a manifest.
    static func reconcile(_ store: ArchiveStore, connection: PGConnection, logger: Logger) throws -> [ArchiveReport.Reconciled] {
        var actions: [ArchiveReport.Reconciled] = []
        let here = try DatabaseIdentity.of(connection)
        for (name, manifest) in try store.all() {
            guard let manifest else {
                // Killed while writing files: the delete comes after the manifest, so no row was deleted.
                try store.storage.remove(store.folder(name))
                actions.append(.init(archive: name, action: "removed files of a run killed before its manifest"))
                continue
            }
            if !manifest.unarchivingIds.isEmpty, manifest.source.map({ $0.isSame(as: here) }) ?? true {
                let settled = try Unarchiver.settleInterrupted(connection, store: store, manifest: manifest)
                actions.append(.init(archive: name, action: "settled an interrupted unarchive: \(settled.restoredIds.count - manifest.restoredIds.count) of \(manifest.unarchivingIds.count) ids had come back"))
                logger.warning("settled an interrupted unarchive", metadata: ["archive": .string(name), "action": .string(actions.last!.action)])
                continue
            }
            guard manifest.status == .pending else { continue }
            if let source = manifest.source, !source.isSame(as: here) {
                logger.warning("left an interrupted archive pending: it belongs to another database", metadata: [
                    "archive": .string(name), "source": .string(source.description), "connected": .string(here.description)])
                actions.append(.init(archive: name, action: "left pending: it came from \(source), this is \(here)"))
                continue
            }
            let table = try connection.qualifiedName(manifest.schema, "tool_data")
            let present = try connection.query("SELECT count(*) AS n FROM \(table) WHERE id::text = ANY($1::text[])",
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
