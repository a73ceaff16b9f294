import Foundation

/// `ANALYZE` of the partitioned tables a restore brings back, once every table is loaded and analyzed.
///
/// Autovacuum analyzes partitions, never a partitioned table itself, and `vacuumdb --analyze-only`
/// (PostgreSQL 15) leaves them out too. Their statistics over the whole hierarchy (what the planner
/// estimates a query on the parent with: joins, groupings) were in a source where someone had run
/// `ANALYZE audit.events`, and missing from every restored copy, for good: plans on the parent could
/// change after a recovery with nothing saying why. Each one is analyzed on the `-j` workers (a parent
/// samples its partitions, so it waits for them); with `--skip-analyze` none is.
enum PartitionedStatistics {
    static func analyze(_ tables: [BackupManifest.PartitionedTable], options: RestoreOptions) async throws {
        guard !tables.isEmpty, !options.skipAnalyze else { return }
        let queue = WorkQueue(tables)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<max(1, min(options.jobs, tables.count)) {
                group.addTask {
                    let session = try await DatabaseSession.connect(options.target, name: "ftbackup-analyze-\(worker)")
                    defer { session.close() }
                    while let table = queue.next() {
                        try Task.checkCancellation()
                        try await session.execute("ANALYZE \(try session.qualifiedName(table.schema, table.name))")
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}
