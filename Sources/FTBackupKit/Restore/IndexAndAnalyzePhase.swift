import Foundation

/// After a replay: the secondary indexes the keys-only load left out, and those tables'
/// `ANALYZE` (the tables the replay changes a lot, `ReplayFootprint`), over `jobs` connections at once, instead of the indexes in parallel followed by
/// `ANALYZE` table after table. pg_restore's post-data follows it (`PostDataSteps`).
///
/// Work items are single index builds, largest tables first (a hierarchy's partitions together), so one big table's indexes still spread
/// over the workers. A table is analyzed as soon as its last index is built, by the worker that built
/// it (ANALYZE and CREATE INDEX on one table would wait for each other); a table without secondary
/// indexes is analyzed as an item of its own; a partition whose root the restore brings back, through
/// that root once it is the root's last (`PartitionedStatistics`). With `--skip-analyze` only the builds run.
enum IndexAndAnalyzePhase {
    enum Item: Sendable {
        case build(table: String, IndexBuildPlan.Build)
        case analyze(schema: String, name: String)
    }

    /// Counts the builds still to finish per table, under a lock shared by the workers.
    final class Remaining: @unchecked Sendable {
        private let lock = NSLock()
        private var counts: [String: Int]
        init(_ counts: [String: Int]) { self.counts = counts }
        /// True when `table`'s last build just finished.
        func finished(_ table: String) -> Bool {
            lock.withLock {
                counts[table, default: 1] -= 1
                return counts[table] == 0
            }
        }
    }

    /// `keysOnly`: the tables loaded with their keys only (nil: all of them); the others are done already.
    static func items(_ tables: [BackupManifest.Table], indexes: IndexBuildPlan, analyze: Bool = true,
                      statistics: PartitionedStatistics = .none, keysOnly: Set<String>? = nil) -> [Item] {
        var items: [Item] = []
        var covered: Set<String> = []
        for table in statistics.loadOrder(tables) {
            let key = IndexBuildPlan.key(table)
            covered.insert(key)
            if let keysOnly, !keysOnly.contains(key) { continue }
            let builds = indexes.secondary[key] ?? []
            if !builds.isEmpty { items += builds.map { .build(table: key, $0) } }
            else if analyze { items.append(.analyze(schema: table.schema, name: table.name)) }
        }
        // Secondary indexes of anything not loaded as a table (none today): built, not analyzed here.
        for (key, builds) in indexes.secondary.sorted(by: { $0.key < $1.key }) where !covered.contains(key) {
            items += builds.map { .build(table: key, $0) }
        }
        return items
    }

    static func run(_ tables: [BackupManifest.Table], indexes: IndexBuildPlan, options: RestoreOptions,
                    statistics: PartitionedStatistics = .none, keysOnly: Set<String>? = nil) async throws {
        let work = items(tables, indexes: indexes, analyze: !options.skipAnalyze, statistics: statistics, keysOnly: keysOnly)
        // Nothing left (every table got its indexes and statistics with its load): no session is opened for it.
        guard !work.isEmpty else { return }
        let queue = WorkQueue(work)
        let remaining = Remaining(indexes.secondary.mapValues(\.count))
        let byKey = Dictionary(tables.map { (IndexBuildPlan.key($0), $0) }, uniquingKeysWith: { first, _ in first })
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<max(1, min(options.jobs, work.count)) {
                group.addTask {
                    let session = try await DatabaseSession.connect(options.target, name: "ftbackup-index-\(worker)")
                    defer { session.close() }
                    try await session.execute("SET maintenance_work_mem = '512MB'; SET search_path = ''")
                    while let item = queue.next() {
                        try Task.checkCancellation()
                        switch item {
                        case .build(let key, let build):
                            try await indexes.run([build], on: session)
                            if remaining.finished(key), !options.skipAnalyze, let table = byKey[key],
                               let analyzed = statistics.toAnalyze(after: .init(schema: table.schema, name: table.name)) {
                                try await statistics.analyze(analyzed, on: session)
                            }
                        case .analyze(let schema, let name):
                            if let analyzed = statistics.toAnalyze(after: .init(schema: schema, name: name)) {
                                try await statistics.analyze(analyzed, on: session)
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}
