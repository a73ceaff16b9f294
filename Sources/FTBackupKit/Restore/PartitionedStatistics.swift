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
/// Roots none of whose partitions the restore loads are analyzed at the end (`rootsWithoutPartitions`);
/// a hierarchy holding a foreign table is left to its partitions' own ANALYZE, as before (see `read`).
final class PartitionedStatistics: @unchecked Sendable {
    /// A table by schema and name, compared as such: "a.b".c and a."b.c" are two tables (joined with a dot they were one).
    struct Name: Hashable, Sendable {
        var schema: String
        var name: String
    }
    private let lock = NSLock()
    private let rootOf: [Name: Name]
    private let roots: Set<Name>
    private var remaining: [Name: Int]
    /// Hierarchies none of whose partitions the restore loads: their roots are analyzed at the end.
    let rootsWithoutPartitions: [Name]

    /// Nothing partitioned: every table analyzed on its own.
    static let none = PartitionedStatistics(rootOf: [:], roots: [])

    init(rootOf: [Name: Name], roots: [Name]) {
        self.rootOf = rootOf
        self.roots = Set(rootOf.values).union(roots)
        var counts: [Name: Int] = [:]
        for root in rootOf.values { counts[root, default: 0] += 1 }
        remaining = counts
        rootsWithoutPartitions = roots.filter { counts[$0] == nil }
    }

    /// Reads, once pre-data created them, the hierarchies of the partitioned tables the restore brings back (`restored`).
    ///
    /// A partition is analyzed through the highest of its ancestors that the restore brings back and whose whole tree
    /// holds no foreign table (ANALYZE would read a foreign partition through its wrapper: a file_fdw file missing on
    /// this host, or a server it cannot log in to, failed the whole restore). Partitioned tables below such a root are
    /// analyzed by its recursion, never on their own (listed as roots too, they were analyzed a second time, their
    /// partitions with them). A partition with no such ancestor is analyzed alone, as before.
    static func read(_ target: DatabaseSession, restored: [BackupManifest.PartitionedTable], tables: [BackupManifest.Table]) async throws -> PartitionedStatistics {
        guard !restored.isEmpty else { return .none }
        let restoredSet = Set(restored.map { Name(schema: $0.schema, name: $0.name) })
        let schemas = PostgresArray.text(Array(Set(restored.map(\.schema) + tables.map(\.schema))))
        // Every partitioned table and partition in the restored schemas, with its ancestors (nearest first) and, for a
        // partitioned table, whether a foreign table is anywhere in its tree.
        let rows = try await target.query("""
            SELECT n.nspname AS schema, c.relname AS name, c.relkind = 'p' AS partitioned,
                   c.relkind = 'p' AND EXISTS (SELECT 1 FROM pg_partition_tree(c.oid) t JOIN pg_class k ON k.oid = t.relid
                                               WHERE k.relkind = 'f') AS holds_foreign,
                   (SELECT json_agg(json_build_array(an.nspname, ac.relname) ORDER BY a.level)
                    FROM pg_partition_ancestors(c.oid) WITH ORDINALITY a(relid, level)
                    JOIN pg_class ac ON ac.oid = a.relid JOIN pg_namespace an ON an.oid = ac.relnamespace
                    WHERE a.relid <> c.oid)::text AS ancestors
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE (c.relkind = 'p' OR (c.relkind = 'r' AND c.relispartition)) AND n.nspname = ANY($1::text[])
            """, [schemas]).rows
        struct Row { var name: Name; var partitioned: Bool; var holdsForeign: Bool; var ancestors: [Name] }
        let read = try rows.map { row -> Row in
            let pairs = try JSONDecoder().decode([[String]].self, from: Data((try row.string("ancestors") ?? "[]").utf8))
            return Row(name: Name(schema: try row.requiredString("schema"), name: try row.requiredString("name")),
                       partitioned: try row.bool("partitioned") ?? false, holdsForeign: try row.bool("holds_foreign") ?? false,
                       ancestors: pairs.compactMap { $0.count == 2 ? Name(schema: $0[0], name: $0[1]) : nil })
        }
        let holdsForeign = Set(read.filter(\.holdsForeign).map(\.name))
        let eligible = { (name: Name) in restoredSet.contains(name) && !holdsForeign.contains(name) }
        // The highest eligible ancestor, if any.
        let topOf = { (row: Row) in row.ancestors.reversed().first(where: eligible) }
        let loaded = Set(tables.map { Name(schema: $0.schema, name: $0.name) })
        var rootOf: [Name: Name] = [:]
        for row in read where !row.partitioned && loaded.contains(row.name) {
            if let top = topOf(row) { rootOf[row.name] = top }
        }
        // Roots: eligible restored partitioned tables with no eligible ancestor.
        let roots = read.filter { $0.partitioned && eligible($0.name) && topOf($0) == nil }.map(\.name)
        return PartitionedStatistics(rootOf: rootOf, roots: roots)
    }

    /// `tables` in the order to load them: largest first, but a hierarchy's partitions one after another, the
    /// hierarchy placed by its whole size. Its root's ANALYZE (4–5 s for `audit.events` at scale 200) then starts
    /// while other tables still load; largest first alone put a small partition last and that ANALYZE after every
    /// load, with one core idle.
    func loadOrder(_ tables: [BackupManifest.Table]) -> [BackupManifest.Table] {
        let name = { (table: BackupManifest.Table) in Name(schema: table.schema, name: table.name) }
        let group = { (table: BackupManifest.Table) in self.rootOf[name(table)] ?? name(table) }
        var weight: [Name: Int64] = [:]
        for table in tables { weight[group(table), default: 0] += table.file.rawBytes }
        return tables.sorted { a, b in
            let (ga, gb) = (group(a), group(b))
            if ga != gb {
                let (wa, wb) = (weight[ga]!, weight[gb]!)
                if wa != wb { return wa > wb }
                return (ga.schema, ga.name) < (gb.schema, gb.name)
            }
            if a.file.rawBytes != b.file.rawBytes { return a.file.rawBytes > b.file.rawBytes }
            return (a.schema, a.name) < (b.schema, b.name)
        }
    }

    /// The partitioned table `table` is analyzed through, if any.
    func root(of table: BackupManifest.Table) -> Name? { rootOf[Name(schema: table.schema, name: table.name)] }

    /// What to analyze now that `table` is loaded and indexed: the table itself; nothing for a partition
    /// whose root still waits for others; its root once it is the last.
    func toAnalyze(after table: Name) -> Name? {
        guard let root = rootOf[table] else { return table }
        return lock.withLock {
            remaining[root, default: 1] -= 1
            return remaining[root] == 0 ? root : nil
        }
    }

    /// Runs the `ANALYZE` of `name` (as `toAnalyze` chose it). A root's runs in one transaction that first locks its whole
    /// hierarchy in the mode ANALYZE takes anyway: autovacuum skips a partition whose lock it cannot get. Without it,
    /// autovacuum analyzed five or six of `audit.events`'s partitions while the root's ANALYZE went through the others,
    /// and the root's then analyzed them again: about 1 s of the server's CPU in every restore of the bench database.
    func analyze(_ name: Name, on session: DatabaseSession) async throws {
        let table = try session.qualifiedName(name.schema, name.name)
        guard roots.contains(name) else { return try await session.execute("ANALYZE \(table)") }
        try await session.withConnection { connection in
            try connection.transaction {
                try connection.execute("LOCK TABLE \(table) IN SHARE UPDATE EXCLUSIVE MODE")
                try connection.execute("ANALYZE \(table)")
            }
        }
    }

    /// The roots none of whose partitions were loaded, over `jobs` sessions.
    func analyzeRootsWithoutPartitions(options: RestoreOptions) async throws {
        guard !rootsWithoutPartitions.isEmpty, !options.skipAnalyze else { return }
        let queue = WorkQueue(rootsWithoutPartitions)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<max(1, min(options.jobs, rootsWithoutPartitions.count)) {
                group.addTask {
                    let session = try await DatabaseSession.connect(options.target, name: "ftbackup-analyze-\(worker)")
                    defer { session.close() }
                    while let root = queue.next() {
                        try Task.checkCancellation()
                        try await self.analyze(root, on: session)
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}
