import Foundation
import Logging

/// Takes out of a restored database what retention had already removed from the source.
///
/// A full backup taken before an archive or a prune run still holds those rows; restoring it (or
/// restoring to a time before the run) would bring back data the organization has retired — audit
/// rows past their 7 years, tool data that lives only in its archive. After every `restore` and
/// `restore --at` (unless `--keep-retired`), the lifecycle's own records are applied again to the
/// restored schemas:
/// - every committed archive: its rows (minus ids put back by `unarchive`) are deleted again,
///   children before parents, matched by each table's primary key against the archive's own rows
///   (a table without one by the whole row, one row per archived copy), counted per table;
/// - the newest prune-audit run: audit rows older than its cut-off (and not under its legal hold,
///   nor the current policy's) are pruned again with the same checked batches, and their evidence
///   is written as `lifecycle/prune-audit-reapplied/<run>.json`.
/// Application triggers are silenced as in the lifecycle commands. The restore's report says what
/// was removed again; a record of it is kept as `lifecycle/reapplied/<run>.json`.
public enum RetiredDataReapplier {
    public struct ArchiveReapplied: Codable, Sendable, Equatable {
        public var archive: String
        /// Rows deleted again, per `schema.table`.
        public var rows: [String: Int64]
        /// Tables of the archive left alone, and why (not restored, no key).
        @DefaultEmpty public var skipped: [String]
    }

    public struct Report: Codable, Sendable {
        public var run: String
        public var schemas: [String]
        public var archives: [ArchiveReapplied]
        /// Archives whose run was interrupted (`pending`): not applied, since their delete may not have committed.
        @DefaultEmpty public var pendingArchives: [String]
        /// The prune run whose cut-off was applied again, that cut-off, and the rows it removed.
        public var pruneRun: String?
        public var pruneCutoff: String?
        public var pruneRows: Int64
        public var silencedTriggers: [String]

        public var archivedRows: Int64 { archives.reduce(0) { $0 + $1.rows.values.reduce(0, +) } }
    }

    public static func run(target: ConnectionString, repositoryPath: String, schemas: [String], policy: Policy,
                           logger: Logger) async throws -> Report {
        let started = Date()
        let storage = LocalStorage(root: repositoryPath)
        let store = ArchiveStore(storage: storage)
        let session = try await DatabaseSession.connect(target, name: "ftbackup-reapply")
        defer { session.close() }
        try await session.execute(SessionSettings.copy(encoding: "UTF8"))
        let newestPrune = try newestPruneRun(store)
        let run = RunLabel.make(started)
        var report = Report(run: run, schemas: schemas.sorted(), archives: [], pendingArchives: [], pruneRun: nil, pruneCutoff: nil,
                            pruneRows: 0, silencedTriggers: [])
        // The prune first, as retention runs it: audit rows an archive took with its tool data were past retention already.
        if let newestPrune {
            var options = AuditPruner.Options(database: target, repositoryPath: repositoryPath, policy: policy)
            options.policy.legalHoldOrganizations = Array(Set(policy.legalHoldOrganizations + newestPrune.legalHoldOrganizations)).sorted()
            options.cutoff = newestPrune.cutoff
            options.schemas = schemas
            options.evidenceKind = "prune-audit-reapplied"
            options.logger = logger
            // Rows only: partition exports and their reconciliation belong to the source database.
            options.dropPartitions = false
            options.reconcile = false
            let fixed = options
            let pruned = try await session.withConnection { connection in
                try AuditPruner.prune(connection, storage: storage, options: fixed, started: started)
            }
            report.pruneRun = newestPrune.run
            report.pruneCutoff = newestPrune.cutoff
            report.pruneRows = pruned.rows
            report.silencedTriggers = Array(Set(report.silencedTriggers + pruned.silencedTriggers)).sorted()
        }
        let archives = try await session.withConnection { connection in
            try reapplyArchives(connection, store: store, schemas: Set(schemas), policy: policy, run: run)
        }
        report.archives = archives.archives
        report.pendingArchives = archives.pendingArchives
        report.silencedTriggers = Array(Set(report.silencedTriggers + archives.silencedTriggers)).sorted()
        if report.archivedRows > 0 || report.pruneRows > 0 {
            logger.info("retired data removed again from the restored database", metadata: [
                "archived_rows": .string("\(report.archivedRows)"), "audit_rows": .string("\(report.pruneRows)"),
                "prune_cutoff": .string(report.pruneCutoff ?? "-"),
            ])
        }
        try store.writeRunLog(kind: "reapplied", run: report.run, report)
        return report
    }

    /// The newest prune-audit run that removed anything (or finished).
    static func newestPruneRun(_ store: ArchiveStore) throws -> AuditPruner.Report? {
        let logs = try store.storage.list("lifecycle/prune-audit").filter { !$0.isDirectory && $0.path.hasSuffix(".json") }
            .sorted { $0.path > $1.path }
        for log in logs {
            guard let report = try? BackupManifest.decoder().decode(AuditPruner.Report.self, from: Data(try store.storage.readAll(log.path))) else {
                throw FTBackupError(.dataError, "prune evidence \(store.storage.location)/\(log.path) is unreadable; retired audit rows cannot be removed again",
                                    hint: "run ftbackup verify --evidence; restore with --keep-retired to skip this step deliberately")
            }
            if !report.dryRun && (report.rows > 0 || report.complete) { return report }
        }
        return nil
    }

    static func reapplyArchives(_ connection: PGConnection, store: ArchiveStore, schemas: Set<String>, policy: Policy,
                                run: String) throws -> Report {
        let q = { (name: String) in try connection.escapeIdentifier(name) }
        var report = Report(run: run, schemas: schemas.sorted(), archives: [], pendingArchives: [], pruneRun: nil, pruneCutoff: nil,
                            pruneRows: 0, silencedTriggers: [])
        for (name, manifest) in try store.all() {
            guard let manifest, manifest.status != .restored else { continue }
            guard manifest.status == .committed else {
                report.pendingArchives.append(name)
                continue
            }
            let retired = manifest.ids.filter { !manifest.restoredIds.contains($0) }
            guard !retired.isEmpty else { continue }
            var entry = ArchiveReapplied(archive: name, rows: [:], skipped: [])
            var targets: [(index: Int, table: ArchiveManifest.ArchivedTable, oid: Int64, key: [String]?)] = []
            for (index, table) in manifest.tables.enumerated() {
                guard schemas.contains(table.schema) else {
                    entry.skipped.append("\(table.schema).\(table.name): schema not restored")
                    continue
                }
                guard let oid = try connection.query("SELECT to_regclass($1)::oid::int8 AS oid", [try connection.qualifiedName(table.schema, table.name)])
                    .first?.string("oid").flatMap({ Int64($0) }) else {
                    entry.skipped.append("\(table.schema).\(table.name): not in the restored database")
                    continue
                }
                // By primary key; a table without one, by the whole row (each archived copy removes one row).
                var key: [String]?
                if case .key(let columns)? = try RowIdentity.of(connection, oid: oid), Set(columns).isSubset(of: table.columns) { key = columns }
                targets.append((index, table, oid, key))
            }
            guard !targets.isEmpty else {
                report.archives.append(entry)
                continue
            }
            let triggers = try ApplicationTriggerGuard.decide(connection, oids: targets.map(\.oid), event: .delete,
                                                              policy: policy.applicationTriggers, work: "removing archive \(name)'s rows from the restored database")
            report.silencedTriggers = Array(Set(report.silencedTriggers + triggers.silenced.map(\.description))).sorted()
            let retiredLiteral = try connection.escapeLiteral(PostgresArray.text(retired))
            let restoredLiteral = try connection.escapeLiteral(PostgresArray.text(manifest.restoredIds))
            try connection.transaction {
                try triggers.enter(connection, work: "removing archive \(name)'s rows from the restored database")
                for (index, table, _, key) in targets.reversed() {
                    let target = try connection.qualifiedName(table.schema, table.name)
                    let columns = try table.columns.map(q).joined(separator: ", ")
                    let rooted = manifest.formatVersion >= 2
                    let staging = "pg_temp.ftbackup_retired_\(index)"
                    try connection.execute("""
                        CREATE TEMP TABLE ftbackup_retired_\(index) ON COMMIT DROP AS
                          SELECT \(rooted ? "NULL::uuid[] AS ftbackup_roots, " : "")\(columns) FROM \(target) WITH NO DATA
                        """)
                    try connection.copyIn("COPY \(staging) (\(rooted ? "ftbackup_roots, " : "")\(columns)) FROM STDIN") { write in
                        try StoredFileReader.read(store.storage, folder: store.folder(name), file: table.file, into: write)
                    }
                    let filter = rooted
                        ? "s.ftbackup_roots && \(retiredLiteral)::uuid[] AND NOT (s.ftbackup_roots && \(restoredLiteral)::uuid[])"
                        : "s.\(try q(table.keyColumn ?? "id"))::text = ANY(\(retiredLiteral)::text[])"
                    let deleted: Int
                    if let key {
                        let keyList = try key.map(q).joined(separator: ", ")
                        let keyOfT = try key.map { "t.\(try q($0))" }.joined(separator: ", ")
                        deleted = try connection.query("""
                            DELETE FROM \(target) t WHERE (\(keyOfT)) IN (SELECT \(keyList) FROM \(staging) s WHERE \(filter))
                            """).affectedRows ?? 0
                    } else {
                        let rowOf = { (alias: String) in try "ROW(" + table.columns.map { "\(alias).\(try q($0))" }.joined(separator: ", ") + ")::text" }
                        // Rows are named by (tableoid, ctid): a ctid alone is ambiguous across partitions.
                        deleted = try connection.query("""
                            WITH archived AS (SELECT \(try rowOf("s")) AS r, count(*) AS n FROM \(staging) s WHERE \(filter) GROUP BY 1),
                                 present AS (SELECT t.tableoid AS o, t.ctid AS c, \(try rowOf("t")) AS r,
                                                    row_number() OVER (PARTITION BY \(try rowOf("t"))) AS k
                                             FROM \(target) t WHERE \(try rowOf("t")) IN (SELECT r FROM archived))
                            DELETE FROM \(target) t USING present p JOIN archived a ON a.r = p.r
                            WHERE t.tableoid = p.o AND t.ctid = p.c AND p.k <= a.n
                            """).affectedRows ?? 0
                    }
                    entry.rows["\(table.schema).\(table.name)"] = Int64(deleted)
                }
            }
            report.archives.append(entry)
        }
        return report
    }
}
