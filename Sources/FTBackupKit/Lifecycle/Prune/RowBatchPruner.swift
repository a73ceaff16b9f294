import Foundation

/// Deletes one leaf's eligible audit rows in short batches, each checked before it commits.
///
/// Every batch is one transaction:
/// 1. `DELETE … WHERE ctid = ANY(ARRAY(SELECT ctid … WHERE <eligible> LIMIT n)) AND <eligible>`:
///    the eligibility test (cut-off and legal hold) is in the DELETE itself, whatever selected the
///    ctids, so a wrong selection can only ever remove eligible rows; the deleted rows go into a
///    temporary table;
/// 2. the evidence is checked by the database on those very rows: no more than `n`, every one
///    older than the cut-off, none held, none still referenced; any violation rolls the batch back
///    and the run stops with exit 70 (`safetyStop`);
/// 3. the rows stream out through SHA-256 (the evidence's digest), then the batch commits.
struct RowBatchPruner {
    struct Target {
        var leaf: RelationName
        var table: AuditTable
        /// SQL literals.
        var cutoff: String
        var hold: String
        var holdCount: Int
        /// SQL on alias `e`: another table still references the row (NO ACTION / RESTRICT keys); such rows stay.
        var referenced: String
    }

    struct Result: Sendable {
        var rows: Int64 = 0
        var oldest: String?
        var newest: String?
        var batches = 0
        var longest = 0.0
    }

    let connection: PGConnection
    let triggers: ApplicationTriggerGuard

    /// The run refused keys that would cascade, null or default rows when audit rows go, but only
    /// when it started; one added since (a migration while the run works through other tables)
    /// would change rows no evidence names. Each batch takes the lock its DELETE takes anyway (ROW
    /// EXCLUSIVE on the leaf, which keeps a new key off it until the batch commits) and looks again.
    func checkNoKeyChangesRows(_ target: Target) throws {
        try connection.execute("LOCK TABLE \(try connection.qualifiedName(target.leaf.schema, target.leaf.table)) IN ROW EXCLUSIVE MODE")
        let oids = PostgresArray.text(target.table.treeOids.map(String.init))
        if let key = try connection.query("""
            SELECT conname AS name, conrelid::regclass::text AS child, confdeltype::text AS action FROM pg_constraint
            WHERE contype = 'f' AND confrelid = ANY($1::oid[]) AND confdeltype NOT IN ('a', 'r') ORDER BY 1 LIMIT 1
            """, [oids]).first {
            throw FTBackupError(.safetyStop, "prune of \(target.leaf) stopped before its batch: foreign key \(try key.requiredString("name")) of \(try key.requiredString("child")) was added during the run and would change its rows when audit rows go (ON DELETE \(ForeignKey.OnDelete(rawValue: try key.requiredString("action"))?.sql ?? "?")); nothing of the batch was removed",
                                hint: "such rows are part of the audit record: make the key NO ACTION, or prune them deliberately first")
        }
    }

    /// Prunes `target`, feeding every deleted row's COPY text (timestamp first) to `digest`.
    ///
    /// `beforeCommit` gets the result and digest as they will be once the batch commits, and the
    /// batch's transaction id (so that a run killed between COMMIT and its evidence can be settled
    /// from the database: ``AuditPruner``'s pending batch); `afterBatch` the same once it committed.
    func prune(_ target: Target, batchSize: Int, digest: inout StreamDigest,
               beforeCommit: (Result, String, Int64) throws -> Void = { _, _, _ in },
               afterBatch: (Result, String) throws -> Void) throws -> Result {
        let q = { (name: String) in try connection.escapeIdentifier(name) }
        let leaf = try connection.qualifiedName(target.leaf.schema, target.leaf.table)
        let parent = try connection.qualifiedName(target.table.relation.schema, target.table.relation.table)
        let columns = try target.table.columns.map(q).joined(separator: ", ")
        let returning = try target.table.columns.map { "e.\(try q($0))" }.joined(separator: ", ")
        let eligible = "\(target.table.eligible(cutoff: target.cutoff, hold: target.hold, holdCount: target.holdCount)) AND NOT \(target.referenced)"
        // Failpoints that widen the selection (and, second, drop the guard too) prove the checks hold.
        let selection = Failpoint.isActive("prune.widen-selection") || Failpoint.isActive("prune.drop-guard") ? "true" : eligible
        let guardSQL = Failpoint.isActive("prune.drop-guard") ? "true" : eligible
        try connection.execute("""
            DROP TABLE IF EXISTS pg_temp.ftbackup_pruned;
            CREATE TEMP TABLE ftbackup_pruned ON COMMIT DELETE ROWS AS SELECT \(columns) FROM \(parent) WITH NO DATA
            """)
        var result = Result()
        while true {
            let started = Date()
            try connection.execute("BEGIN")
            do {
                try triggers.enter(connection, work: "prune-audit")
                try checkNoKeyChangesRows(target)
                let deleted = try connection.query("""
                    WITH d AS (DELETE FROM \(leaf) e
                               WHERE e.ctid = ANY(ARRAY(SELECT e.ctid FROM \(leaf) e WHERE \(selection) LIMIT \(batchSize)))
                                 AND \(guardSQL)
                               RETURNING \(returning))
                    INSERT INTO pg_temp.ftbackup_pruned SELECT * FROM d
                    """).affectedRows ?? 0
                if deleted == 0 {
                    try connection.execute("ROLLBACK")
                    break
                }
                let check = try connection.query("""
                    SELECT count(*) AS n, min(e."timestamp")::text AS oldest, max(e."timestamp")::text AS newest,
                           count(*) FILTER (WHERE NOT coalesce(e."timestamp" < \(target.table.cutoffValue(target.cutoff)), false)) AS too_new,
                           count(*) FILTER (WHERE \(target.table.held(hold: target.hold, holdCount: target.holdCount))) AS held,
                           count(*) FILTER (WHERE \(target.referenced)) AS referenced
                    FROM pg_temp.ftbackup_pruned e
                    """).first!
                let rows = try check.int64("n"), tooNew = try check.int64("too_new"), held = try check.int64("held")
                let referenced = try check.int64("referenced")
                guard rows <= Int64(batchSize), tooNew == 0, held == 0, referenced == 0 else {
                    throw FTBackupError(.safetyStop, "prune of \(target.leaf) stopped before commit: the batch would have removed \(rows) rows (limit \(batchSize)), \(tooNew) of them not older than the cut-off \(target.cutoff), \(held) under legal hold and \(referenced) still referenced; nothing of it was removed",
                                        hint: "this is a defect in ftbackup or a change in the table's definition; keep the evidence and report it")
                }
                try connection.copyOut("COPY (SELECT e.\"timestamp\", \(returning) FROM pg_temp.ftbackup_pruned e) TO STDOUT") { digest.update($0) }
                var next = result
                next.rows += rows
                next.batches += 1
                let oldest = try check.string("oldest"), newest = try check.string("newest")
                if let oldest, next.oldest.map({ TimestampText.less(oldest, $0) }) ?? true { next.oldest = oldest }
                if let newest, next.newest.map({ TimestampText.less($0, newest) }) ?? true { next.newest = newest }
                // The evidence of this batch is on disk before its rows can be gone: killed between
                // COMMIT and the evidence, the next run settles it from the transaction's status.
                let transaction = try connection.query("SELECT txid_current() AS x").first!.int64("x")
                try beforeCommit(next, digest.hexDigest(), transaction)
                try connection.execute("COMMIT")
                result = next
                result.longest = max(result.longest, Date().timeIntervalSince(started))
                try afterBatch(result, digest.hexDigest())
                Failpoint.hit("prune.after-batch")
                if deleted < batchSize { break }
            } catch {
                if connection.isAlive { try? connection.execute("ROLLBACK") }
                throw error
            }
        }
        return result
    }
}

/// Orders ISO timestamps as PostgreSQL prints them (DateStyle ISO): by era, then year length, then text.
enum TimestampText {
    static func less(_ a: String, _ b: String) -> Bool {
        let aBC = a.hasSuffix(" BC"), bBC = b.hasSuffix(" BC")
        if aBC != bBC { return aBC }
        let aYear = a.prefix { $0 != "-" }.count, bYear = b.prefix { $0 != "-" }.count
        if aYear != bYear { return aBC ? aYear > bYear : aYear < bYear }
        return aBC ? a > b : a < b
    }
}
