import Foundation
import Logging

/// Takes out of a restored database what retention had already removed from the source.
///
/// A full backup taken before an archive or a prune run still holds those rows; restoring it (or
/// restoring to a time before the run) would bring back data the organization has retired — audit
/// rows past their 7 years, tool data that lives only in its archive. After every `restore` and
/// `restore --at` (unless `--keep-retired`), the lifecycle's own records are applied again to the
/// restored schemas:
/// - every committed archive: its tool_data rows (minus ids put back by `unarchive`) are deleted
///   again with everything that hangs from them in the restored database — the same foreign-key
///   closure an archive run takes, computed on the target, so rows the source had already dropped
///   before archiving (present in an older backup) go too — children before parents, every DELETE
///   guarded by its link to a retired id, counted per table; a row a blocking reference holds in the
///   restored state keeps its tool_data row, and the report names it;
/// - the newest prune-audit run: audit rows older than its cut-off (and not under its legal hold,
///   nor the current policy's) are pruned again with the same checked batches, and their evidence
///   is written as `lifecycle/prune-audit-reapplied/<run>.json`.
/// Application triggers are silenced as in the lifecycle commands. The restore's report says what
/// was removed again; a record of it is kept as `lifecycle/reapplied/<run>.json`.
public enum RetiredDataReapplier {
    public struct Report: Codable, Sendable {
        public var run: String
        public var schemas: [String]
        /// Per tool schema: the archived tool_data rows (and what hangs from them) removed again.
        public var tools: [ArchivedRowsRemoval.Outcome]
        /// Archives whose run was interrupted (`pending`): not applied, since their delete may not have committed.
        @DefaultEmpty public var pendingArchives: [String]
        /// Archives with an unarchive run that was interrupted: the ids it was putting back are kept
        /// (they may be live in the source again) until `lifecycle unarchive` or `archive` settles them.
        @DefaultEmpty public var unsettledUnarchives: [String] = []
        /// The prune run whose cut-off was applied again, that cut-off, and the rows it removed.
        public var pruneRun: String?
        public var pruneCutoff: String?
        public var pruneRows: Int64
        public var silencedTriggers: [String]

        public var archivedRows: Int64 { tools.reduce(0) { $0 + $1.rows.values.reduce(0, +) } }
    }

    /// `session`: its session, connected ahead (`session(_:)`); nil connects it now.
    static func run(target: ConnectionString, repositoryPath: String, schemas: [String], policy: Policy,
                    logger: Logger, session ahead: SessionsAhead? = nil) async throws -> Report {
        let started = Date()
        let storage = try RepositoryStorageFactory.open(repositoryPath)
        let store = ArchiveStore(storage: storage)
        let session = try await (ahead ?? Self.session(target)).take()
        defer { session.close() }
        let newestPrune = try newestPruneRun(store)
        let run = RunLabel.make(started)
        var report = Report(run: run, schemas: schemas.sorted(), tools: [], pendingArchives: [], pruneRun: nil, pruneCutoff: nil,
                            pruneRows: 0, silencedTriggers: [])
        // The prune first, as retention runs it: audit rows an archive took with its tool data were past retention already.
        if let newestPrune {
            try await checkCutoffIsPlausible(newestPrune, policyRetention: policy.auditRetention, session: session)
            var options = AuditPruner.Options(database: target, repositoryPath: repositoryPath, policy: policy)
            options.policy.legalHoldOrganizations = Array(Set(policy.legalHoldOrganizations + newestPrune.legalHoldOrganizations)).sorted()
            if let instant = newestPrune.cutoffInstant {
                options.cutoffInstant = instant
            } else {
                options.cutoff = newestPrune.cutoff
            }
            options.timeZone = newestPrune.timeZone
            options.reappliedFrom = newestPrune.run
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
        report.tools = archives.tools
        report.pendingArchives = archives.pendingArchives
        report.unsettledUnarchives = archives.unsettledUnarchives
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

    /// The re-application's session to `target` (the application's triggers fire there as the policy says), not yet connecting.
    static func session(_ target: ConnectionString) -> SessionsAhead {
        SessionsAhead(1, target: target, name: "ftbackup-reapply", setup: SessionSettings.copy(encoding: "UTF8") + "; " + SessionSettings.qualifiedNames)
    }

    /// What the re-application will read, checked before a restore touches its target: the newest
    /// prune evidence readable, sealed as written and plausible, and every archive manifest readable.
    public static func preflight(repositoryPath: String, policy: Policy, session: DatabaseSession) async throws {
        let store = ArchiveStore(storage: try RepositoryStorageFactory.open(repositoryPath))
        if let newest = try newestPruneRun(store) { try await checkCutoffIsPlausible(newest, policyRetention: policy.auditRetention, session: session) }
        _ = try store.all()
    }

    /// A cut-off can only lie at least the run's retention before the run started (a day's slack for
    /// clocks): anything later means the evidence is not what that run wrote, and using it would
    /// delete audit rows that must be kept. The run's retention is read from the record itself, so a
    /// record forged with a short retention (anyone can reseal one) would pass that alone: the cut-off
    /// must also lie the policy's own retention before the run started.
    static func checkCutoffIsPlausible(_ run: AuditPruner.Report, policyRetention: Period, session: DatabaseSession) async throws {
        let label = Array(run.run.prefix(16))
        guard let retention = Period(parsing: run.retention), label.count == 16 else {
            throw FTBackupError(.dataError, "prune evidence of run \(run.run) names retention \(run.retention); its cut-off cannot be trusted",
                                hint: "restore with --keep-retired and look into the repository (ftbackup verify --evidence)")
        }
        let part = { (from: Int, count: Int) in String(label[from..<(from + count)]) }
        let started = "\(part(0, 4))-\(part(4, 2))-\(part(6, 2)) \(part(9, 2)):\(part(11, 2)):\(part(13, 2))+00"
        let cutoff = run.cutoffInstant ?? run.cutoff
        let plausible: Bool?
        do {
            plausible = try await session.query(
                "SELECT $1::timestamptz <= $2::timestamptz - $3::interval + interval '1 day' AS ok",
                [cutoff, started, retention.sqlInterval]).first?.bool("ok")
        } catch let error as PostgresError where error.sqlState?.hasPrefix("22") == true {
            plausible = nil  // the recorded cut-off is not a time at all: damaged like a late one
        }
        guard plausible == true else {
            throw FTBackupError(.dataError, "prune evidence of run \(run.run) records a cut-off \(cutoff) later than its start minus its retention \(run.retention); it was changed or damaged",
                                hint: "restore with --keep-retired and look into the repository (ftbackup verify --evidence)")
        }
        let withinPolicy = try await session.query(
            "SELECT $1::timestamptz <= $2::timestamptz - $3::interval + interval '1 day' AS ok",
            [cutoff, started, policyRetention.sqlInterval]).first?.bool("ok")
        guard withinPolicy == true else {
            throw FTBackupError(.dataError, "prune evidence of run \(run.run) records a cut-off \(cutoff) later than its start minus the policy's audit retention \(policyRetention) (the record says \(run.retention)): removing audit rows by it would delete rows the policy keeps; nothing was restored",
                                hint: "restore with --keep-retired (the rows stay) and run ftbackup report --db; if the policy was lengthened after that prune, restore with the policy it ran under (--policy)")
        }
    }

    /// The newest prune-audit run that removed anything (or finished).
    static func newestPruneRun(_ store: ArchiveStore) throws -> AuditPruner.Report? {
        let logs = try store.storage.list("lifecycle/prune-audit").filter { !$0.isDirectory && $0.path.hasSuffix(".json") }
            .sorted { $0.path > $1.path }
        for log in logs {
            let shown = "\(store.storage.location)/\(log.path)"
            guard let report = try? BackupManifest.decoder().decode(AuditPruner.Report.self, from: Data(try store.storage.readAll(log.path))) else {
                throw FTBackupError(.dataError, "prune evidence \(shown) is unreadable; retired audit rows cannot be removed again",
                                    hint: "run ftbackup verify --evidence; restore with --keep-retired to skip this step deliberately")
            }
            try report.checkSeal(shown)
            if !report.dryRun && (report.rows > 0 || report.complete) { return report }
        }
        return nil
    }

    static func reapplyArchives(_ connection: PGConnection, store: ArchiveStore, schemas: Set<String>, policy: Policy,
                                run: String) throws -> Report {
        var report = Report(run: run, schemas: schemas.sorted(), tools: [], pendingArchives: [], pruneRun: nil, pruneCutoff: nil,
                            pruneRows: 0, silencedTriggers: [])
        // Every id each tool has retired (an id put back by unarchive is live again).
        var retired: [String: (archives: [String], ids: [String])] = [:]
        for (name, manifest) in try store.all() {
            guard let manifest, manifest.status != .restored else { continue }
            guard manifest.status == .committed else {
                report.pendingArchives.append(name)
                continue
            }
            if !manifest.unarchivingIds.isEmpty { report.unsettledUnarchives.append(name) }
            let ids = manifest.ids.filter { !manifest.restoredIds.contains($0) && !manifest.unarchivingIds.contains($0) }
            guard !ids.isEmpty else { continue }
            retired[manifest.schema, default: ([], [])].archives.append(name)
            retired[manifest.schema, default: ([], [])].ids += ids
        }
        let foreignKeys = try ForeignKey.all(connection)
        for (schema, entry) in retired.sorted(by: { $0.key < $1.key }) where schemas.contains(schema) {
            let exists = try connection.query("SELECT to_regclass($1) IS NOT NULL AS ok", [try connection.qualifiedName(schema, "tool_data")])
                .first!.bool("ok") == true
            guard exists else { continue }
            var removal = try ArchivedRowsRemoval.remove(connection, schema: schema, ids: entry.ids, restoredSchemas: schemas,
                                                         policy: policy, foreignKeys: foreignKeys)
            removal.archives = entry.archives
            report.silencedTriggers = Array(Set(report.silencedTriggers + removal.silencedTriggers)).sorted()
            report.tools.append(removal)
        }
        return report
    }
}
