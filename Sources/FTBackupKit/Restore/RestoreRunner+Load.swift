import Foundation

/// The data phase of a restore: tables loaded in parallel, each followed by its keys and indexes.
extension RestoreRunner {
    /// Loads every table over `jobs` connections, largest first (a hierarchy's partitions together, `loadOrder`), each in its own transaction that
    /// truncates and then COPYs with FREEZE; a file whose SHA-256 does not match aborts its COPY. Each
    /// table's keys are built right after its load, on the same worker, then its other indexes and its
    /// ANALYZE (a partition's through its root, `statistics`), while other tables still load. `keysOnly` (tables a
    /// replay changes a lot, by `IndexBuildPlan.key`): only their keys; the rest comes after the replay (`IndexAndAnalyzePhase`).
    ///
    /// `sessions`: the workers' sessions, connected ahead (`loadSessions`); nil connects them now. `whenDrained` runs
    /// once, when a worker finds no table left to start (the others may still be at their last).
    static func loadTables(_ tables: [BackupManifest.Table], indexes: IndexBuildPlan, manifest: BackupManifest, repository: Repository,
                           options: RestoreOptions, keysOnly: Set<String> = [], statistics: PartitionedStatistics = .none,
                           sessions: SessionsAhead? = nil, whenDrained: (@Sendable () -> Void)? = nil) async throws {
        let sessions = sessions ?? loadSessions(tables, options: options)  // (given: the caller's scope finishes it)
        let queue = WorkQueue(statistics.loadOrder(tables))
        let progress = ProgressReporter(title: "restore \(manifest.label)", expectedBytes: tables.reduce(0) { $0 + $1.file.rawBytes },
                                        expectedItems: tables.count, logger: options.logger, quiet: !options.showProgress)
        defer { progress.end() }
        let folder = repository.backupFolder(manifest.label)
        let storage = repository.storage
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<loadWorkers(tables, options: options) {
                group.addTask {
                    let session = try await sessions.take()
                    defer { session.close() }
                    let targetEncoding = try await session.query("SELECT current_setting('server_encoding') AS encoding").first!.requiredString("encoding")
                    let encoding = CopyStatement.loadEncoding(backup: manifest.source.encoding, target: targetEncoding)
                    while let table = queue.next() {
                        try Task.checkCancellation()
                        let rows = try await withTaskCancellationHandler {
                            try await session.withConnection { connection -> Int64 in
                                // An extension's configuration table keeps the rows its script created; the backup holds the others.
                                let appended = table.extensionFilter != nil
                                let copy = try CopyStatement.into(table, encoding: encoding, freeze: !appended, connection)
                                return try connection.transaction {
                                    if !appended { try connection.execute("TRUNCATE ONLY \(try connection.qualifiedName(table.schema, table.name))") }
                                    let rows = try connection.copyIn(copy) { write in
                                        try StoredFileReader.read(storage, folder: folder, file: table.file) { raw in
                                            try write(raw)
                                            progress.advance(bytes: raw.count)
                                        }
                                    }.rows
                                    // Checked before the commit: a table that does not hold what the backup recorded is not left loaded.
                                    guard rows == table.rows else {
                                        throw FTBackupError(.dataError, "\(table.schema).\(table.name): loaded \(rows) rows but the backup recorded \(table.rows); its load was rolled back")
                                    }
                                    return rows
                                }
                            }
                        } onCancel: {
                            session.cancel()
                        }
                        // The load's row counts reach the statistics now, before this worker says the table is done: a partition's
                        // root is analyzed by whichever worker finishes the hierarchy's last partition, and counts this session
                        // reported after that ANALYZE made the partition look wholly changed since (autovacuum analyzed it again).
                        try await session.withConnection { StatisticsCounts.reportNow($0) }
                        let key = IndexBuildPlan.key(table)
                        try await indexes.run(indexes.keys[key] ?? [], on: session)
                        if !keysOnly.contains(key) {
                            try await indexes.run(indexes.secondary[key] ?? [], on: session)
                            if !options.skipAnalyze, let analyzed = statistics.toAnalyze(after: .init(schema: table.schema, name: table.name)) {
                                try await statistics.analyze(analyzed, on: session)
                            }
                        }
                        progress.finished(item: "\(table.schema).\(table.name)", metadata: ["rows": .string("\(rows)")])
                    }
                    whenDrained?()
                }
            }
            try await group.waitForAll()
        }
    }

    static func loadWorkers(_ tables: [BackupManifest.Table], options: RestoreOptions) -> Int { max(1, min(options.jobs, tables.count)) }

    /// The data phase's sessions, not yet connecting (`SessionsAhead.start`).
    static func loadSessions(_ tables: [BackupManifest.Table], options: RestoreOptions) -> SessionsAhead {
        SessionsAhead(loadWorkers(tables, options: options), target: options.target, name: "ftbackup-load",
                      setup: SessionSettings.copy() + "; SET synchronous_commit = off; SET maintenance_work_mem = '512MB'; SET search_path = ''")
    }
}
