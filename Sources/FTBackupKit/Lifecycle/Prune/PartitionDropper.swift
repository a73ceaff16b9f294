import Foundation
import Logging

/// Retires an audit partition whose whole range lies before the cut-off: export, verify, detach, drop.
///
/// One transaction: `LOCK … IN SHARE MODE` on the partition (readers go on, writers wait), a check
/// that every row in it is eligible (older than the cut-off, none under legal hold — else the
/// partition is pruned row by row instead), `COPY` out to zstd with SHA-256, read back, the export's
/// manifest written `pending`, then `DETACH PARTITION` and `DROP TABLE` under a short lock timeout,
/// and COMMIT; the manifest becomes `dropped`. Killed before COMMIT, the partition is still there
/// and the next run exports it again; killed after, the next run finds it gone and marks the
/// export `dropped`. When a lock is not granted in time or the drop fails (a view depends on the
/// partition, say), the partition is pruned by rows and the reason goes into the evidence.
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

    func drop(_ leaf: AuditLeaf, of table: AuditTable, run: String, cutoff: String, cutoffLiteral: String,
              hold: [String], holdLiteral: String) throws -> Outcome {
        guard let parent = leaf.parent else { return .pruneByRows("not a partition") }
        let q = { (name: String) in try connection.escapeIdentifier(name) }
        let name = try connection.qualifiedName(leaf.relation.schema, leaf.relation.table)
        let columns = try table.columns.map { "e.\(try q($0))" }.joined(separator: ", ")
        let eligible = table.eligible(cutoff: cutoffLiteral, hold: holdLiteral, holdCount: hold.count)
        let exportName = "\(run)-\(leaf.relation.oid)"
        var exported = false
        try connection.execute("BEGIN")
        do {
            try connection.execute("SET LOCAL lock_timeout = \(try connection.escapeLiteral(lockTimeout))")
            try connection.execute("LOCK TABLE \(name) IN SHARE MODE")
            let census = try connection.query("""
                SELECT count(*) AS n, count(*) FILTER (WHERE NOT coalesce(\(eligible), false)) AS ineligible,
                       min(e."timestamp")::text AS oldest, max(e."timestamp")::text AS newest
                FROM \(name) e
                """).first!
            let rows = try census.int64("n"), ineligible = try census.int64("ineligible")
            guard ineligible == 0 else {
                try connection.execute("ROLLBACK")
                return .pruneByRows("\(ineligible) of its rows are under legal hold or not older than the cut-off")
            }
            let writer = try CompressedFileWriter(storage: store.storage, path: "\(store.folder(exportName))/data.copy\(compression.codec.fileExtension)",
                                                  compression: compression)
            var digest = StreamDigest()
            var file: BackupManifest.StoredFile
            let copied: CopyOutcome
            do {
                copied = try connection.copyOut("COPY (SELECT e.\"timestamp\", \(columns) FROM \(name) e) TO STDOUT") { chunk in
                    digest.update(chunk)
                    try writer.write(chunk)
                }
                file = try writer.finish()
                file.path = "data.copy\(compression.codec.fileExtension)"
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
            var export = PartitionExport(
                formatVersion: 1, name: exportName, run: run, table: table.relation, partition: leaf.relation, bound: leaf.bound ?? "",
                cutoff: cutoff, legalHoldOrganizations: hold, status: .pending, createdAt: Date(), droppedAt: nil, rows: rows,
                oldest: try census.string("oldest"), newest: try census.string("newest"), rowsSHA256: digest.hexDigest(),
                columns: ["timestamp"] + table.columns, file: file)
            try store.write(export)
            Failpoint.hit("prune.after-export")
            do {
                try connection.execute("ALTER TABLE \(try connection.qualifiedName(parent.schema, parent.table)) DETACH PARTITION \(name)")
                try connection.execute("DROP TABLE \(name)")
            } catch let error as PostgresError where !error.connectionLost {
                try connection.execute("ROLLBACK")
                try? store.storage.remove(store.folder(exportName))
                return .pruneByRows("detach or drop failed: \(error.message)")
            }
            try connection.execute("COMMIT")
            Failpoint.hit("prune.after-drop")
            export.status = .dropped
            export.droppedAt = Date()
            try store.write(export)
            return .dropped(export)
        } catch let error as PostgresError where error.sqlState == "55P03" && !error.connectionLost {
            try? connection.execute("ROLLBACK")
            if exported { try? store.storage.remove(store.folder(exportName)) }
            return .pruneByRows("lock not granted within \(lockTimeout)")
        } catch {
            if connection.isAlive { try? connection.execute("ROLLBACK") }
            // Before COMMIT the partition is still there: the export is surplus. (A failure of the
            // COMMIT itself leaves the manifest pending for the next run to settle.)
            if exported && connection.isAlive { try? store.storage.remove(store.folder(exportName)) }
            throw error
        }
    }

    /// Settles exports a killed run left `pending`: the partition still there (same oid) means the
    /// drop never committed and the export is discarded; gone means it did.
    static func reconcile(_ connection: PGConnection, store: PartitionExportStore, logger: Logger) throws -> [String] {
        var actions: [String] = []
        for (name, export) in try store.all() {
            guard let export else {
                try store.storage.remove(store.folder(name))
                actions.append("\(name): removed the files of a run killed before its manifest")
                continue
            }
            guard export.status == .pending else { continue }
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
