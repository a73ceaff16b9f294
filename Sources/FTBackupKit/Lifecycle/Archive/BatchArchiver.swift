import Foundation

/// Archives one tool schema batch by batch, each batch one transaction on the session's thread.
///
/// Per batch: pick up to `batchSize` eligible roots and lock them, lock and gather their closure,
/// take out what a blocking reference reaches, COPY every table's rows to the archive and read it
/// back, write the manifest `pending`, DELETE children before parents — every DELETE carrying its
/// own guard (the root's the full eligibility predicate, each other table's a link to a row of its
/// parent's set), every count equal to the archive's or the batch is rolled back (exit 70) — then
/// COMMIT and mark the manifest `committed`.
struct BatchArchiver {
    struct Outcome: Sendable {
        var rows: Int64 = 0
        var dependantRows: Int64 = 0
        var bytes: Int64 = 0
        var oldest: String?
        var newest: String?
        var archives: [String] = []
        var longestBatch = 0.0
    }

    let connection: PGConnection
    let plan: ToolSchemaArchivePlan
    let store: ArchiveStore
    let triggers: ApplicationTriggerGuard
    let run: String
    let cutoff: Date
    let parameters: [any SQLParameter]
    let batchSize: Int
    let policy: Policy
    let source: DatabaseIdentity

    func archive() throws -> Outcome {
        let closure = ArchiveClosure(connection: connection, plan: plan)
        let q = closure.q
        try closure.create()
        var outcome = Outcome()
        var batch = 0
        while true {
            let batchStarted = Date()
            try connection.execute("BEGIN")
            var committing = false
            var name: String?
            do {
                try triggers.enter(connection, work: "lifecycle archive of \(plan.schema)")
                let picked = try closure.selectRoots(limit: batchSize, lock: true, parameters: parameters)
                if picked == 0 {
                    try connection.execute("ROLLBACK")
                    break
                }
                try closure.expand(lock: true)
                try closure.removeBlocked()
                let stats = try connection.query("""
                    SELECT array_to_json(array_agg(c.id::text ORDER BY c.id))::text AS ids, min(c.\(try q(plan.ageColumn)))::text AS oldest,
                           max(c.\(try q(plan.ageColumn)))::text AS newest,
                           coalesce(sum(\(try ToolSchemaArchivePlan.rowSize(alias: "c", columns: plan.toolDataColumns, q))), 0) AS bytes
                    \(try closure.rows(0))
                    """).first!
                guard let idsText = try stats.string("ids") else {
                    // Every root of this batch is blocked: keep the record of why and go on.
                    try connection.execute("COMMIT")
                    continue
                }
                let ids = try JSONDecoder().decode([String].self, from: Data(idsText.utf8))
                batch += 1
                let archiveName = "\(run)-\(plan.schema)-\(String(format: "%04d", batch))"
                name = archiveName
                var bytes = try stats.int64("bytes")
                var tables: [ArchiveManifest.ArchivedTable] = []
                for (index, member) in plan.members.enumerated() {
                    if index > 0 {
                        bytes += try connection.query("""
                            SELECT coalesce(sum(\(try ToolSchemaArchivePlan.rowSize(alias: "c", columns: member.columns.writable, q))), 0) AS b
                            \(try closure.rows(index))
                            """).first!.int64("b")
                    }
                    tables.append(try archiveTable(closure, index: index, archive: archiveName))
                }
                guard Int64(ids.count) == tables[0].rows else {
                    throw FTBackupError(.failure, "\(plan.schema): archived \(tables[0].rows) tool_data rows for \(ids.count) ids; nothing deleted")
                }
                var manifest = ArchiveManifest(
                    formatVersion: 2, name: archiveName, run: run, schema: plan.schema, status: .pending, createdAt: Date(),
                    committedAt: nil, cutoff: cutoff, ageColumn: plan.ageColumn, statusValue: policy.archiveToolData.status,
                    policySource: policy.source, ids: ids, oldest: try stats.string("oldest"), newest: try stats.string("newest"),
                    tables: tables, restoredIds: [], source: source)
                try store.write(manifest)
                Failpoint.hit("archive.after-write")

                try delete(closure, tables: tables)
                committing = true
                try connection.execute("COMMIT")
                Failpoint.hit("archive.after-commit")
                manifest.status = .committed
                manifest.committedAt = Date()
                try store.write(manifest)

                outcome.rows += tables[0].rows
                outcome.dependantRows += tables.dropFirst().reduce(0) { $0 + $1.rows }
                outcome.bytes += bytes
                if let oldest = manifest.oldest, outcome.oldest.map({ TimestampText.less(oldest, $0) }) ?? true { outcome.oldest = oldest }
                if let newest = manifest.newest, outcome.newest.map({ TimestampText.less($0, newest) }) ?? true { outcome.newest = newest }
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

    /// Every table's rows in one statement (`ArchiveClosure.deleteAll`), each DELETE guarded, each
    /// count equal to what the archive holds.
    func delete(_ closure: ArchiveClosure, tables: [ArchiveManifest.ArchivedTable]) throws {
        try checkKeysUnchanged(closure)
        let counts = try closure.deleteAll(members: Array(plan.members.indices), rootGuard: try plan.predicate(closure.q), parameters: parameters)
        for index in plan.members.indices where counts[index] != tables[index].rows {
            throw FTBackupError(.safetyStop, "\(plan.members[index].relation): the guarded delete would remove \(counts[index] ?? 0) rows but \(tables[index].rows) were archived; the batch was rolled back, nothing was removed",
                                hint: "this is a defect in ftbackup or a change made during the run; keep the run's log and report it")
        }
    }

    /// The plan's closure was found when the run started; a foreign key added since (a migration
    /// during the run: `ON DELETE CASCADE` from a new table) would make the DELETE remove rows the
    /// archive does not hold and no count compares. So before it deletes, the batch takes the lock
    /// its DELETE takes anyway (ROW EXCLUSIVE, which keeps a new key from being added to these tables
    /// until it commits) and checks that the keys into every table of the closure are the plan's.
    func checkKeysUnchanged(_ closure: ArchiveClosure) throws {
        let tables = try plan.members.indices.map { try closure.table($0) }.joined(separator: ", ")
        try connection.execute("LOCK TABLE \(tables) IN ROW EXCLUSIVE MODE")
        let oids = Set(plan.members.map(\.relation.oid))
        let now = Set(try ForeignKey.all(connection).filter { oids.contains($0.parent.oid) })
        let planned = Set(plan.edges.map(\.key) + plan.blocking.map(\.key))
        guard now == planned else {
            let changed = now.symmetricDifference(planned).map { ($0.description, now.contains($0) ? "added" : "removed") }.sorted { $0.0 < $1.0 }
            throw FTBackupError(.safetyStop, "\(plan.schema): the foreign keys into its archived tables changed during the run (\(changed.prefix(3).map { "\($0.0) \($0.1)" }.joined(separator: "; "))); the batch was rolled back, nothing of it was removed",
                                hint: "run the archive again: it plans with the keys as they are now")
        }
    }

    /// COPYs one member's rows of the batch into the archive and reads the file back to check it.
    func archiveTable(_ closure: ArchiveClosure, index: Int, archive: String) throws -> ArchiveManifest.ArchivedTable {
        let member = plan.members[index]
        let compression = policy.compression
        let path = "\(index).copy\(compression.codec.fileExtension)"
        let writer = try CompressedFileWriter(storage: store.storage, path: "\(store.folder(archive))/\(path)", compression: compression)
        let copied: CopyOutcome
        var file: BackupManifest.StoredFile
        do {
            copied = try connection.copyOut("COPY (\(try closure.archiveQuery(index))) TO STDOUT") { try writer.write($0) }
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
        return ArchiveManifest.ArchivedTable(schema: member.relation.schema, name: member.relation.table, keyColumn: nil,
                                             via: plan.edges.filter { $0.child == index }.map(\.key.description),
                                             columns: member.columns.writable, rows: copied.rows, file: file)
    }
}
