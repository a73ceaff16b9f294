import Foundation
import Logging

/// Retires an audit partition whose whole range lies before the cut-off: export, verify, detach, drop.
///
/// 1. **Export** (one transaction): `LOCK … IN SHARE MODE` on the partition (readers go on, writers
///    wait), a check that every row is eligible (older than the cut-off, none under legal hold,
///    none still referenced — else the partition is pruned by rows instead), a census of the row
///    versions (count and an order-independent hash of `ctid` and `xmin`), `COPY` out to zstd with SHA-256, read back, and the
///    export's manifest written `pending`. COMMIT.
/// 2. **Drop** (one short transaction, tried a few times): the run's pending evidence written with the
///    transaction's id (before any lock), then the parent's `ACCESS EXCLUSIVE` lock
///    first (the order the application's inserts take parent and partition in, so they can wait
///    for each other but never deadlock), waited for at most `lockTimeout`; the census taken again
///    and compared (a row version written meanwhile means the export is stale: it is discarded and
///    the partition pruned by rows), `DETACH PARTITION`, `DROP TABLE`, COMMIT; the manifest becomes
///    `dropped`. The application's statements on the table wait while the census is re-counted
///    (row versions only: `ctid` and `xmin`, no row data).
///
/// Killed at any point, the next run settles the export from the source database itself (the
/// partition, same oid, still there: discarded; gone: `dropped`). When the locks are not granted in
/// any attempt, or the drop fails (a view depends on the partition, say), the export is discarded
/// and the partition is pruned by rows, with the reason in the evidence.
struct PartitionDropper {
    enum Outcome {
        case dropped(PartitionExport)
        /// Not dropped; prune it by rows. The reason is for the evidence.
        case pruneByRows(String)
    }

    let connection: PGConnection
    let store: PartitionExportStore
    let compression: Policy.Compression
    let lockTimeout: String
    let attempts: Int
    let source: DatabaseIdentity

    /// `beforeLocking` gets the export as it will be once the drop commits, and the drop's transaction id, at the
    /// start of each attempt's transaction, before its locks are asked for (the run's pending evidence,
    /// ``PendingBatch``: settled by the transaction's fate if the run dies before its evidence is written).
    func drop(_ leaf: AuditLeaf, of table: AuditTable, run: String, cutoff: String, cutoffLiteral: String,
              hold: [String], holdLiteral: String, referenced: String,
              beforeLocking: (PartitionExport, Int64) throws -> Void = { _, _ in }) throws -> Outcome {
        guard let parent = leaf.parent else { return .pruneByRows("not a partition") }
        let name = try connection.qualifiedName(leaf.relation.schema, leaf.relation.table)
        let exportName = "\(run)-\(leaf.relation.oid)"
        let census = """
            SELECT count(*) AS n, count(*) FILTER (WHERE NOT coalesce(\(table.eligible(cutoff: cutoffLiteral, hold: holdLiteral, holdCount: hold.count)) AND NOT \(referenced), false)) AS ineligible,
                   min(e."timestamp")::text AS oldest, max(e."timestamp")::text AS newest,
                   count(*)::text || ':' || coalesce(sum(hashtext(e.ctid::text || '/' || e.xmin::text)::bigint), 0)::text AS census
            FROM \(name) e
            """
        var export: PartitionExport
        switch try exportPartition(leaf, of: table, name: name, exportName: exportName, run: run, cutoff: cutoff, hold: hold, census: census) {
        case .left(let reason): return .pruneByRows(reason)
        case .right(let written): export = written
        }
        Failpoint.hit("prune.after-export")
        var reason = ""
        for attempt in 1...max(1, attempts) {
            try connection.execute("BEGIN")
            do {
                // The evidence as it will be if this transaction commits goes to the repository before any lock
                // is asked for: on object storage it is a PUT with retries, which must not hold the application's
                // inserts into the audit table behind the parent's ACCESS EXCLUSIVE lock.
                var dropped = export
                dropped.status = .dropped
                try beforeLocking(dropped, try connection.query("SELECT txid_current() AS x").first!.int64("x"))
                Failpoint.pause("prune.drop-evidence-pending")
                try connection.execute("SET LOCAL lock_timeout = \(try connection.escapeLiteral(lockTimeout))")
                // The parent first, then the partition: the order the application's inserts lock them
                // in, so the two can wait for each other but never deadlock.
                try connection.execute("LOCK TABLE \(try connection.qualifiedName(parent.schema, parent.table)) IN ACCESS EXCLUSIVE MODE")
                let again = try connection.query(census).first!
                guard try again.requiredString("census") == export.census, try again.int64("ineligible") == 0 else {
                    try connection.execute("ROLLBACK")
                    try store.storage.remove(store.folder(exportName))
                    return .pruneByRows("its rows changed between the export and the drop")
                }
                try connection.execute("ALTER TABLE \(try connection.qualifiedName(parent.schema, parent.table)) DETACH PARTITION \(name)")
                try connection.execute("DROP TABLE \(name)")
                try connection.execute("COMMIT")
            } catch let error as PostgresError where !error.connectionLost {
                try? connection.execute("ROLLBACK")
                reason = error.sqlState == "55P03" ? "locks not granted within \(lockTimeout) in \(attempt) attempts" : "detach or drop failed: \(error.message)"
                if error.sqlState == "55P03" && attempt < attempts {
                    Thread.sleep(forTimeInterval: Double(attempt))
                    continue
                }
                try store.storage.remove(store.folder(exportName))
                return .pruneByRows(reason)
            }
            Failpoint.hit("prune.after-drop")
            export.status = .dropped
            export.droppedAt = Date()
            try store.write(export)
            return .dropped(export)
        }
        try store.storage.remove(store.folder(exportName))
        return .pruneByRows(reason)
    }

    enum Either<L, R> { case left(L), right(R) }

    /// Phase 1: the census, the export read back, the manifest `pending`.
    func exportPartition(_ leaf: AuditLeaf, of table: AuditTable, name: String, exportName: String, run: String, cutoff: String,
                         hold: [String], census: String) throws -> Either<String, PartitionExport> {
        let q = { (name: String) in try connection.escapeIdentifier(name) }
        let columns = try table.columns.map { "e.\(try q($0))" }.joined(separator: ", ")
        var exported = false
        try connection.execute("BEGIN")
        do {
            try connection.execute("SET LOCAL lock_timeout = \(try connection.escapeLiteral(lockTimeout))")
            try connection.execute("LOCK TABLE \(name) IN SHARE MODE")
            let counted = try connection.query(census).first!
            let rows = try counted.int64("n"), ineligible = try counted.int64("ineligible")
            guard ineligible == 0 else {
                try connection.execute("ROLLBACK")
                return .left("\(ineligible) of its rows are under legal hold, still referenced, or not older than the cut-off")
            }
            let path = "data.copy\(compression.codec.fileExtension)"
            let writer = try CompressedFileWriter(storage: store.storage, path: "\(store.folder(exportName))/\(path)", compression: compression)
            var digest = StreamDigest()
            var file: BackupManifest.StoredFile
            let copied: CopyOutcome
            do {
                copied = try connection.copyOut("COPY (SELECT e.\"timestamp\", \(columns) FROM \(name) e) TO STDOUT") { chunk in
                    digest.update(chunk)
                    try writer.write(chunk)
                }
                file = try writer.finish()
                file.path = path
            } catch {
                writer.abort()
                throw error
            }
            exported = true
            var lines: Int64 = 0
            try StoredFileReader.read(store.storage, folder: store.folder(exportName), file: file) { raw in
                for byte in raw where byte == 0x0A { lines += 1 }
            }
            guard lines == rows, copied.rows == rows else {
                throw FTBackupError(.dataError, "export of \(leaf.relation) holds \(lines) rows, the partition \(rows); nothing dropped")
            }
            let export = PartitionExport(
                formatVersion: 1, name: exportName, run: run, table: table.relation, partition: leaf.relation, bound: leaf.bound ?? "",
                cutoff: cutoff, legalHoldOrganizations: hold, status: .pending, createdAt: Date(), droppedAt: nil, rows: rows,
                oldest: try counted.string("oldest"), newest: try counted.string("newest"), rowsSHA256: digest.hexDigest(),
                columns: ["timestamp"] + table.columns, file: file, source: source, census: try counted.requiredString("census"))
            try store.write(export)
            try connection.execute("COMMIT")
            return .right(export)
        } catch let error as PostgresError where error.sqlState == "55P03" && !error.connectionLost {
            try? connection.execute("ROLLBACK")
            if exported { try? store.storage.remove(store.folder(exportName)) }
            return .left("lock not granted within \(lockTimeout)")
        } catch {
            if connection.isAlive { try? connection.execute("ROLLBACK") }
            if exported { try? store.storage.remove(store.folder(exportName)) }
            throw error
        }
    }

    /// Settles exports a killed run left `pending`, against their own source database only: the
    /// partition still there (same oid) means the drop never committed and the export is
    /// discarded; gone means it did.
    static func reconcile(_ connection: PGConnection, store: PartitionExportStore, logger: Logger) throws -> [String] {
        var actions: [String] = []
        let here = try DatabaseIdentity.of(connection)
        for (name, export) in try store.all() {
            guard let export else {
                try store.storage.remove(store.folder(name))
                actions.append("\(name): removed the files of a run killed before its manifest")
                continue
            }
            guard export.status == .pending else { continue }
            guard export.source.isSame(as: here) else {
                actions.append("\(name): left pending, it came from \(export.source), this is \(here)")
                logger.warning("left an interrupted partition export pending: it belongs to another database", metadata: ["export": .string(name)])
                continue
            }
            let present = try connection.query("SELECT count(*) AS n FROM pg_class WHERE oid = $1::oid", [export.partition.oid]).first!.int64("n")
            if present == 1 {
                try store.storage.remove(store.folder(name))
                actions.append("\(name): discarded, \(export.partition) was never dropped")
            } else {
                var dropped = export
                dropped.status = .dropped
                dropped.droppedAt = Date()
                try store.write(dropped)
                actions.append("\(name): marked dropped, \(export.partition) is gone and the export holds its \(export.rows) rows")
            }
            logger.warning("reconciled a partition export left pending by an interrupted run", metadata: ["export": .string(name), "action": .string(actions.last!)])
        }
        return actions
    }
}
