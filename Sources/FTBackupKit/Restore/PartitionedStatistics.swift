import Foundation

/// Which `ANALYZE` a restore runs once a table is loaded and indexed, so that partitioned tables get
/// statistics too, each partition still analyzed once.
///
/// Autovacuum analyzes partitions, never a partitioned table itself, and `vacuumdb --analyze-only`
/// (PostgreSQL 15) leaves them out too. Their statistics over the whole hierarchy (what the planner
/// estimates a query on the parent with: joins, groupings) were in a source where someone had run
/// `ANALYZE audit.events`, and missing from every restored copy, for good: plans on the parent could
/// change after a recovery with nothing saying why.
///
/// PostgreSQL 15's `ANALYZE parent` also analyzes every partition (there is no `ONLY` before 17): run
/// after the partitions' own, it did their work twice (5–7 s for `audit.events` at scale 200, against
/// 0.6 s for the parent's sample). So a partition whose root the restore brings back is not analyzed on
/// its own: the root is, by the worker that finishes its last partition, while the other workers go on.
/// Roots none of whose partitions the restore loads are analyzed at the end (`rootsWithoutPartitions`).
final class PartitionedStatistics: @unchecked Sendable {
    typealias Name = (schema: String, name: String)
    private let lock = NSLock()
    private let rootOf: [String: Name]
    private var remaining: [String: Int]
    let rootsWithoutPartitions: [Name]

    /// Nothing partitioned: every table analyzed on its own.
    static let none = PartitionedStatistics(rootOf: [:], roots: [])

    init(rootOf: [String: Name], roots: [Name]) {
        self.rootOf = rootOf
        var counts: [String: Int] = [:]
        for root in rootOf.values { counts["\(root.schema).\(root.name)", default: 0] += 1 }
        remaining = counts
        rootsWithoutPartitions = roots.filter { counts["\($0.schema).\($0.name)"] == nil }
    }

    /// Reads, once pre-data created them, the root of each partition among `tables` whose root is one of
    /// `roots` (the partitioned tables the restore brings back).
    static func read(_ target: DatabaseSession, roots: [BackupManifest.PartitionedTable], tables: [BackupManifest.Table]) async throws -> PartitionedStatistics {
        guard !roots.isEmpty else { return .none }
        let restoredRoots = Set(roots.map { "\($0.schema).\($0.name)" })
        let restoredTables = Set(tables.map(IndexBuildPlan.key))
        let rows = try await target.query("""
            SELECT n.nspname AS schema, c.relname AS name, rn.nspname AS root_schema, r.relname AS root_name
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_class r ON r.oid = pg_partition_root(c.oid) JOIN pg_namespace rn ON rn.oid = r.relnamespace
            WHERE c.relispartition AND c.relkind = 'r' AND n.nspname = ANY($1::text[])
            """, [PostgresArray.text(Array(Set(tables.map(\.schema))))]).rows
        var rootOf: [String: Name] = [:]
        for row in rows {
            let leaf = "\(try row.requiredString("schema")).\(try row.requiredString("name"))"
            let root = (schema: try row.requiredString("root_schema"), name: try row.requiredString("root_name"))
            guard restoredTables.contains(leaf), restoredRoots.contains("\(root.schema).\(root.name)") else { continue }
            rootOf[leaf] = root
        }
        return PartitionedStatistics(rootOf: rootOf, roots: roots.map { ($0.schema, $0.name) })
    }

    /// What to analyze now that `table` is loaded and indexed: the table itself; nothing for a partition
    /// whose root still waits for others; its root once it is the last.
    func toAnalyze(after table: String, _ name: Name) -> Name? {
        guard let root = rootOf[table] else { return name }
        return lock.withLock {
            let key = "\(root.schema).\(root.name)"
            remaining[key, default: 1] -= 1
            return remaining[key] == 0 ? root : nil
        }
    }

    /// The roots none of whose partitions were loaded, over `jobs` sessions.
    func analyzeRootsWithoutPartitions(options: RestoreOptions) async throws {
        guard !rootsWithoutPartitions.isEmpty, !options.skipAnalyze else { return }
        let queue = WorkQueue(rootsWithoutPartitions.map { "\($0.schema).\($0.name)" })
        let byKey = Dictionary(rootsWithoutPartitions.map { ("\($0.schema).\($0.name)", $0) }, uniquingKeysWith: { first, _ in first })
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<max(1, min(options.jobs, rootsWithoutPartitions.count)) {
                group.addTask {
                    let session = try await DatabaseSession.connect(options.target, name: "ftbackup-analyze-\(worker)")
                    defer { session.close() }
                    while let key = queue.next(), let root = byKey[key] {
                        try Task.checkCancellation()
                        try await session.execute("ANALYZE \(try session.qualifiedName(root.schema, root.name))")
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}
