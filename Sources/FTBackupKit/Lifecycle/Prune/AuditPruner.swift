import Foundation
import Logging

/// Removes audit rows past the policy's retention, and keeps evidence of exactly what went.
///
/// Audit data must go when its retention ends (7 years) but never earlier, never rows of an
/// organization under legal hold (directly, or through the row's user), and never in one long
/// transaction that blocks the application's inserts. It works leaf by leaf (`AuditTable`):
/// a partition whose whole range lies before the cut-off is exported and dropped
/// (`PartitionDropper`); a partition that straddles the cut-off, the DEFAULT partition and a plain
/// table are pruned in short, checked batches (`RowBatchPruner`). The evidence names, per table,
/// the cut-off, the rows removed, their oldest and newest timestamp, the SHA-256 of what was
/// deleted, and every partition dropped with its export; it is rewritten after every batch, so
/// rows already removed are on record even if the run dies.
public enum AuditPruner {
    /// What happened to one leaf (or, dry, would happen).
    public struct PartitionEvidence: Codable, Sendable, Equatable {
        public enum Method: String, Codable, Sendable {
            /// Exported, detached and dropped whole.
            case drop
            /// Pruned in batches by the eligibility predicate.
            case rows
        }

        public var partition: String
        public var bound: String?
        public var method: Method
        /// Why a partition whose range allows a drop was pruned by rows instead.
        public var reason: String?
        public var rows: Int64
        public var oldest: String?
        public var newest: String?
        /// For a dropped partition: its export and the SHA-256 of its rows' COPY text.
        public var export: String?
        public var sha256: String?
    }

    public struct TableEvidence: Codable, Sendable, Equatable {
        public var schema: String
        public var table: String
        /// Rows removed, dropped partitions included.
        public var rows: Int64
        public var oldest: String?
        public var newest: String?
        /// SHA-256 over the rows pruned in batches, in deletion order (nil in a dry run).
        public var sha256: String?
        public var batches: Int
        public var longestBatchSeconds: Double
        /// Every leaf that had eligible rows (or, for a partitioned table, every leaf looked at).
        @DefaultEmpty public var partitions: [PartitionEvidence]
    }

    public struct Report: Codable, Sendable {
        public var run: String
        public var dryRun: Bool
        /// Rows with a timestamp strictly before this instant go; a row exactly at it stays.
        public var cutoff: String
        public var retention: String
        public var legalHoldOrganizations: [String]
        public var batchSize: Int
        /// Application triggers silenced with session_replication_role = replica while deleting.
        @DefaultEmpty public var silencedTriggers: [String]
        @DefaultEmpty public var reconciled: [String]
        public var tables: [TableEvidence]
        public var seconds: Double
        /// False while the run is going (the evidence is rewritten after every batch, so rows already
        /// deleted are recorded even if the run dies); true once every table is done.
        public var complete: Bool
        /// Set when this run re-applied an earlier run's cut-off to a restored database.
        public var reappliedFrom: String?
        /// The cut-off as an instant (with its offset), and the zone `cutoff` and the tables' wall
        /// times are read in (the database's own TimeZone). Nil in evidence written before they were recorded.
        public var cutoffInstant: String?
        public var timeZone: String?
        /// SHA-256 of this report's canonical JSON without the seal (`PruneEvidenceSeal`).
        public var seal: String?
        public var rows: Int64 { tables.reduce(0) { $0 + $1.rows } }
    }

    /// What a run is asked to do.
    public struct Options: Sendable {
        public var database: ConnectionString
        public var repositoryPath: String
        public var policy: Policy
        public var batchSize = 5000
        public var dryRun = false
        /// Replaces the database's current time (`localtimestamp`) as the point retention counts back
        /// from; nil in production. It lets a test place a row exactly on the cut-off.
        public var asOf: String?
        /// A fixed cut-off (re-applying an earlier run's after a restore); overrides the policy's:
        /// an instant (`cutoffInstant`, what runs record now) or, from older evidence, a wall time.
        public var cutoffInstant: String?
        public var cutoff: String?
        /// The zone wall times are read in (an earlier run's, when re-applying); nil: the database's own.
        public var timeZone: String?
        /// The run whose cut-off this run re-applies (recorded in the evidence).
        public var reappliedFrom: String?
        /// Attempts at a partition's DETACH and DROP, each waiting at most `lockTimeout` for its locks.
        public var lockAttempts = 3
        /// Drop whole partitions whose range lies before the cut-off (else every leaf goes by rows).
        public var dropPartitions = true
        /// Only these schemas (a restore of chosen schemas); empty means all.
        public var schemas: [String] = []
        public var lockTimeout = "1s"
        /// Settle partition exports an interrupted run left pending (against the source database only).
        public var reconcile = true
        /// Where the evidence goes: `lifecycle/<evidenceKind>/<run>.json`.
        public var evidenceKind = "prune-audit"
        public var logger = Logger(label: "ftbackup")

        public init(database: ConnectionString, repositoryPath: String, policy: Policy) {
            self.database = database
            self.repositoryPath = repositoryPath
            self.policy = policy
        }
    }

    /// Kept for callers and tests that predate `Options`.
    public static func run(database: ConnectionString, repositoryPath: String, policy: Policy, batchSize: Int = 5000,
                           dryRun: Bool, asOf: String? = nil, logger: Logger = Logger(label: "ftbackup")) async throws -> Report {
        var options = Options(database: database, repositoryPath: repositoryPath, policy: policy)
        options.batchSize = batchSize
        options.dryRun = dryRun
        options.asOf = asOf
        options.logger = logger
        return try await run(options)
    }

    public static func run(_ options: Options) async throws -> Report {
        let started = Date()
        guard (1...10_000_000).contains(options.batchSize) else { throw FTBackupError(.usage, "--batch must be between 1 and 10000000") }
        let storage = try RepositoryStorageFactory.open(options.repositoryPath)
        let lock = options.dryRun ? nil : try RepositoryLock.acquire(repositoryRoot: options.repositoryPath, kind: .write, exclusive: true,
                                                                        command: "lifecycle prune-audit")
        defer { lock?.release() }
        let session = try await DatabaseSession.connect(options.database, name: "ftbackup-prune")
        defer { session.close() }
        try await session.execute(SessionSettings.copy(encoding: "UTF8") + "; " + SessionSettings.qualifiedNames)
        let identity = try await session.withConnection { try DatabaseIdentity.of($0) }
        try RepositorySource.claim(repositoryPath: options.repositoryPath, identity: identity, command: "lifecycle prune-audit",
                                   record: !options.dryRun)
        // Evidence of a prune of the source is anchored in the source as it is written (not the
        // evidence a restore writes into its target).
        let anchor = options.dryRun || options.reappliedFrom != nil ? nil
            : await RecordChainAnchor.open(options.database, storage: storage, logger: options.logger)
        defer { anchor?.close() }
        return try await session.withConnection { connection in
            try prune(connection, storage: storage, options: options, started: started, anchor: anchor)
        }
    }

    static func prune(_ connection: PGConnection, storage: any RepositoryStorage, options: Options, started: Date,
                      anchor: RecordChainAnchor? = nil) throws -> Report {
        let policy = options.policy
        let logger = options.logger
        // Wall times are read in the database's own zone, not the client's; the cut-off is one instant,
        // computed once by the database.
        let zone = try options.timeZone ?? DatabaseTimeZone.resolve(connection)
        try connection.execute("SET TimeZone = \(try connection.escapeLiteral(zone))")
        let instant: String
        if let given = options.cutoffInstant {
            instant = try connection.query("SELECT $1::timestamptz::text AS at", [given]).first!.requiredString("at")
        } else if let wall = options.cutoff {
            instant = try connection.query("SELECT $1::timestamp::timestamptz::text AS at", [wall]).first!.requiredString("at")
        } else {
            instant = try connection.query("SELECT (coalesce($2::timestamp::timestamptz, now()) - $1::interval)::text AS at",
                                           [policy.auditRetention.sqlInterval, options.asOf]).first!.requiredString("at")
        }
        let cutoff = try connection.query("SELECT $1::timestamptz::timestamp::text AS at", [instant]).first!.requiredString("at")
        let exports = PartitionExportStore(storage: storage)
        let source = try DatabaseIdentity.of(connection)
        var reconciled = options.dryRun || !options.reconcile ? [] : try PartitionDropper.reconcile(connection, store: exports, logger: logger)
        if !options.dryRun && options.reconcile {
            reconciled += try PendingBatch.settle(connection, kind: options.evidenceKind, source: source, storage: storage, anchor: anchor, logger: logger)
        }
        let tables = try AuditTable.discover(connection).filter { options.schemas.isEmpty || options.schemas.contains($0.relation.schema) }
        let foreignKeys = try ForeignKey.all(connection)
        for table in tables {
            // Keys into the table or any of its partitions that would cascade, null or default referencing rows.
            if let key = foreignKeys.first(where: { table.treeOids.contains($0.parent.oid) && ![.noAction, .restrict].contains($0.onDelete) }) {
                throw FTBackupError(.configuration, "prune-audit refused: \(key) would change rows of \(key.child) when audit rows go",
                                    hint: "such rows are part of the audit record: make the key NO ACTION, or prune them deliberately first")
            }
        }
        let triggers = try ApplicationTriggerGuard.decide(connection, oids: tables.map(\.relation.oid), event: .delete,
                                                          policy: policy.applicationTriggers, work: "prune-audit")
        let hold = policy.legalHoldOrganizations
        let holdLiteral = try connection.escapeLiteral(PostgresArray.text(hold))
        let cutoffLiteral = try connection.escapeLiteral(instant)
        let run = RunLabel.make(started)
        let store = ArchiveStore(storage: storage)
        let kindLock = options.dryRun ? nil : try RecordChain.holdKind(options.evidenceKind, storage: storage)
        defer { kindLock?.release() }
        let dropper = PartitionDropper(connection: connection, store: exports, compression: policy.compression, lockTimeout: options.lockTimeout,
                                       attempts: options.lockAttempts, source: source)
        let q = { (name: String) in try connection.escapeIdentifier(name) }
        let rowPruner = RowBatchPruner(connection: connection, triggers: triggers)

        func report(_ tables: [TableEvidence], complete: Bool) throws -> Report {
            try Report(run: run, dryRun: options.dryRun, cutoff: cutoff, retention: policy.auditRetention.description,
                   legalHoldOrganizations: hold, batchSize: options.batchSize, silencedTriggers: triggers.silenced.map(\.description),
                   reconciled: reconciled, tables: tables, seconds: Date().timeIntervalSince(started), complete: complete,
                   reappliedFrom: options.reappliedFrom, cutoffInstant: instant, timeZone: zone, seal: nil).sealed()
        }

        var evidence: [TableEvidence] = []
        for table in tables {
            var current = TableEvidence(schema: table.relation.schema, table: table.relation.table, rows: 0, oldest: nil, newest: nil,
                                        sha256: nil, batches: 0, longestBatchSeconds: 0, partitions: [])
            var digest = StreamDigest()
            let referenced = try table.referenced(by: foreignKeys.filter { table.treeOids.contains($0.parent.oid) }, q)
            let eligible = "\(table.eligible(cutoff: cutoffLiteral, hold: holdLiteral, holdCount: hold.count)) AND NOT \(referenced)"
            for leaf in table.leaves {
                let droppable = try options.dropPartitions && leaf.upperBound.map {
                    try connection.query("SELECT $1::\(table.timestampType) <= \(table.cutoffValue(cutoffLiteral)) AS ok", [$0])
                        .first!.bool("ok") == true
                } == true
                var partition = PartitionEvidence(partition: leaf.relation.description, bound: leaf.bound, method: droppable ? .drop : .rows,
                                                  reason: nil, rows: 0, oldest: nil, newest: nil, export: nil, sha256: nil)
                if options.dryRun {
                    let row = try connection.query("""
                        SELECT count(*) FILTER (WHERE \(eligible)) AS n, count(*) AS total,
                               min(e."timestamp") FILTER (WHERE \(eligible))::text AS oldest,
                               max(e."timestamp") FILTER (WHERE \(eligible))::text AS newest
                        FROM \(try connection.qualifiedName(leaf.relation.schema, leaf.relation.table)) e
                        """).first!
                    partition.rows = try row.int64("n")
                    partition.oldest = try row.string("oldest")
                    partition.newest = try row.string("newest")
                    let total = try row.int64("total")
                    if droppable && partition.rows != total {
                        partition.method = .rows
                        partition.reason = "\(total - partition.rows) of its rows are under legal hold, still referenced, or not older than the cut-off"
                    }
                    if partition.method == .rows {
                        current.batches += Int((partition.rows + Int64(options.batchSize) - 1) / Int64(options.batchSize))
                    }
                } else {
                    if droppable {
                        let soFar = current, digestSoFar = digest.hexDigest()
                        switch try dropper.drop(leaf, of: table, run: run, cutoff: cutoff, cutoffLiteral: cutoffLiteral, hold: hold,
                                                holdLiteral: holdLiteral, referenced: referenced, beforeLocking: { export, transaction in
                            var leafEvidence = partition
                            leafEvidence.rows = export.rows
                            leafEvidence.oldest = export.oldest
                            leafEvidence.newest = export.newest
                            leafEvidence.export = export.name
                            leafEvidence.sha256 = export.rowsSHA256
                            var partial = soFar
                            partial.partitions.append(leafEvidence)
                            Self.total(&partial)
                            partial.sha256 = digestSoFar
                            try PendingBatch.write(PendingBatch(transaction: transaction, source: source, report: try report(evidence + [partial], complete: false)),
                                                   kind: options.evidenceKind, run: run, storage: storage)
                        }) {
                        case .dropped(let export):
                            partition.rows = export.rows
                            partition.oldest = export.oldest
                            partition.newest = export.newest
                            partition.export = export.name
                            partition.sha256 = export.rowsSHA256
                            logger.info("dropped audit partition", metadata: ["partition": .string(leaf.relation.description),
                                                                                "rows": .string("\(export.rows)"), "export": .string(export.name)])
                        case .pruneByRows(let reason):
                            partition.method = .rows
                            partition.reason = reason
                        }
                    }
                    if partition.method == .rows {
                        let target = RowBatchPruner.Target(leaf: leaf.relation, table: table, cutoff: cutoffLiteral, hold: holdLiteral,
                                                           holdCount: hold.count, referenced: referenced)
                        let before = current
                        func partial(_ progress: RowBatchPruner.Result, _ digestSoFar: String) throws -> Report {
                            var partial = before
                            var leafEvidence = partition
                            leafEvidence.rows = progress.rows
                            leafEvidence.oldest = progress.oldest
                            leafEvidence.newest = progress.newest
                            partial.partitions.append(leafEvidence)
                            Self.total(&partial)
                            partial.sha256 = digestSoFar
                            partial.batches = before.batches + progress.batches
                            return try report(evidence + [partial], complete: false)
                        }
                        let result = try rowPruner.prune(target, batchSize: options.batchSize, digest: &digest, beforeCommit: { progress, digestSoFar, transaction in
                            try PendingBatch.write(PendingBatch(transaction: transaction, source: source, report: try partial(progress, digestSoFar)),
                                                   kind: options.evidenceKind, run: run, storage: storage)
                        }) { progress, digestSoFar in
                            try store.writeRunLog(kind: options.evidenceKind, run: run, try partial(progress, digestSoFar), anchor: anchor)
                            try PendingBatch.remove(kind: options.evidenceKind, run: run, storage: storage)
                        }
                        partition.rows = result.rows
                        partition.oldest = result.oldest
                        partition.newest = result.newest
                        current.batches += result.batches
                        current.longestBatchSeconds = max(current.longestBatchSeconds, result.longest)
                    }
                }
                if partition.rows > 0 || partition.method == .drop { current.partitions.append(partition) }
                Self.total(&current)
                if !options.dryRun {
                    current.sha256 = digest.hexDigest()
                    try store.writeRunLog(kind: options.evidenceKind, run: run, try report(evidence + [current], complete: false), anchor: anchor)
                    try PendingBatch.remove(kind: options.evidenceKind, run: run, storage: storage)
                }
            }
            // The evidence itself is checked: nothing at or after the cut-off was removed.
            if let newest = current.newest, try connection.query("SELECT $1::\(table.timestampType) < \(table.cutoffValue(cutoffLiteral)) AS ok", [newest]).first!.bool("ok") != true {
                throw FTBackupError(.safetyStop, "prune of \(table.relation) removed a row dated \(newest), not before the cut-off \(cutoff)",
                                    hint: "this is a defect in ftbackup; keep lifecycle/\(options.evidenceKind)/\(run).json and report it")
            }
            if current.rows > 0 && !options.dryRun {
                logger.info("pruned audit rows", metadata: ["table": .string(table.relation.description), "rows": .string("\(current.rows)")])
            }
            evidence.append(current)
        }
        let final = try report(evidence, complete: true)
        if !options.dryRun { try store.writeRunLog(kind: options.evidenceKind, run: run, final, anchor: anchor) }
        return final
    }

    /// A table's totals from its leaves.
    static func total(_ table: inout TableEvidence) {
        table.rows = table.partitions.reduce(0) { $0 + $1.rows }
        table.oldest = table.partitions.compactMap(\.oldest).min(by: TimestampText.less)
        table.newest = table.partitions.compactMap(\.newest).max(by: TimestampText.less)
    }
}

/// The evidence of a prune batch (or a partition's drop) as it will be once it commits, written inside its transaction
/// before COMMIT (a partition's drop: before it asks for its locks, so that no repository write happens while the
/// application's inserts wait) as `lifecycle/<kind>/<run>.pending-batch`, outside the chain, with the transaction's id.
///
/// It exists because the run's evidence is rewritten only after each batch commits: a run killed
/// in between (kill -9, the host lost) had deleted audit rows that no evidence named, and the rerun
/// records only what it removes itself. The next run settles it against the source database before
/// it writes anything: the transaction committed (`txid_status`) — the pending evidence becomes the
/// run's evidence (chained where the run's record is, anchored); it did not — it is discarded.
struct PendingBatch: Codable, Sendable {
    static let suffix = ".pending-batch"
    var transaction: Int64
    var source: DatabaseIdentity
    var report: AuditPruner.Report

    static func path(kind: String, run: String) -> String { "lifecycle/\(kind)/\(run)\(suffix)" }

    static func write(_ pending: PendingBatch, kind: String, run: String, storage: any RepositoryStorage) throws {
        try storage.writeAll(path(kind: kind, run: run), Array(try JSONOutput.encode(pending).utf8) + [0x0A])
    }

    static func remove(kind: String, run: String, storage: any RepositoryStorage) throws {
        let file = path(kind: kind, run: run)
        if try storage.exists(file) { try storage.remove(file) }
    }

    /// Settles every pending batch of `kind` whose source is this database; returns what it did.
    static func settle(_ connection: PGConnection, kind: String, source: DatabaseIdentity, storage: any RepositoryStorage,
                       anchor: RecordChainAnchor?, logger: Logger) throws -> [String] {
        let folder = "lifecycle/\(kind)"
        guard try storage.exists(folder) else { return [] }
        var settled: [String] = []
        for entry in try storage.list(folder) where !entry.isDirectory && entry.path.hasSuffix(suffix) {
            let pending = try BackupManifest.decoder().decode(PendingBatch.self, from: Data(try storage.readAll(entry.path)))
            guard pending.source.isSame(as: source) else { continue }
            let run = pending.report.run
            // The killed run's backend ends its transaction as soon as it notices; wait for that.
            var status: String?
            for _ in 0..<100 {
                status = try connection.query("SELECT txid_status($1::bigint) AS s", [pending.transaction]).first!.string("s")
                if status != "in progress" { break }
                Thread.sleep(forTimeInterval: 0.1)
            }
            switch status {
            case "committed":
                try ArchiveStore(storage: storage).writeRunLog(kind: kind, run: run, pending.report, anchor: anchor)
                try storage.remove(entry.path)
                settled.append("\(folder)/\(run).json: the last batch of an interrupted run (transaction \(pending.transaction)) had committed; its evidence now names its \(pending.report.rows) rows")
            case "aborted":
                try storage.remove(entry.path)
                settled.append("\(folder)/\(run).json: the last batch of an interrupted run (transaction \(pending.transaction)) had not committed; nothing of it was removed")
            default:
                logger.warning("an interrupted prune batch cannot be settled yet", metadata: ["transaction": .string("\(pending.transaction)"),
                                                                                              "status": .string(status ?? "unknown (too old)"), "file": .string(entry.path)])
            }
        }
        return settled
    }
}
