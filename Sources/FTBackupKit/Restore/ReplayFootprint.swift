import Foundation

/// How much a `restore --at` replay will change each table, at most, read from the segments' indexes before
/// anything is loaded: which tables can have their other indexes built and their `ANALYZE` run right after
/// their load, as the plain restore does, instead of after the replay.
///
/// A table the replay changes by fewer rows than would make autovacuum analyze it again (its
/// `autovacuum_analyze_threshold` plus `autovacuum_analyze_scale_factor` times its rows) gets statistics as
/// fresh as PostgreSQL itself keeps them when they are taken before the replay, and autovacuum analyzes it
/// again when the replayed changes do cross that line (they count in `n_mod_since_analyze`). Its other
/// indexes are then maintained by those few changes rather than built after them. Every other table, and
/// every table when a segment has no index ftbackup can trust, or a table is truncated, waits for the
/// replay, as before. On the bench database (every table changed by ~1 % after the full) the split left
/// one core idle at the end of the keys-only load and again at the end of the index phase.
public struct ReplayFootprint: Sendable {
    /// Rows changed at most, per table (`IndexBuildPlan.key`); truncated tables are absent and in `truncated`.
    var changes: [String: Int]
    var truncated: Set<String>

    /// From the indexes of the segments the replay reads (changes after TIME in the last segment are counted too:
    /// an upper bound). Nil when a segment has no trustworthy index: nothing is known, every table waits.
    static func make(_ segments: [ChangeSegmentManifest]) -> ReplayFootprint? {
        var footprint = ReplayFootprint(changes: [:], truncated: [])
        for segment in segments {
            guard let index = segment.checkedIndex else { return nil }
            for relation in index.relations {
                let key = IndexBuildPlan.key(schema: relation.schema, name: relation.name)
                if relation.truncates > 0 { footprint.truncated.insert(key) }
                footprint.changes[key, default: 0] += relation.inserts + relation.updates + relation.deletes
            }
        }
        return footprint
    }

    /// The autovacuum analyze threshold the target applies by default.
    struct AnalyzeThreshold: Sendable {
        var base: Double
        var scaleFactor: Double

        static func read(_ target: DatabaseSession) async throws -> AnalyzeThreshold {
            let row = try await target.query("""
                SELECT current_setting('autovacuum_analyze_threshold')::float8 AS base,
                       current_setting('autovacuum_analyze_scale_factor')::float8 AS scale
                """).first!
            return AnalyzeThreshold(base: Double(try row.string("base") ?? "") ?? 50, scaleFactor: Double(try row.string("scale") ?? "") ?? 0.1)
        }
    }

    /// Keys of the tables whose other indexes and ANALYZE can come before the replay. `hierarchy` names the partitioned
    /// table a partition is analyzed through (`PartitionedStatistics`). Autovacuum never analyzes a partitioned table, so
    /// a hierarchy is judged as one table too, its partitions' changes against its partitions' rows: when the replay
    /// changes it by that much (or truncates a partition), every partition waits for the replay and the root's ANALYZE
    /// sees the replayed rows. Judged partition by partition only, a hierarchy whose every partition changed a little
    /// was analyzed before the replay, its statistics short of 12 % of its rows for good (adv26 D1).
    func settledBefore(_ tables: [BackupManifest.Table], threshold: AnalyzeThreshold,
                       hierarchy: (BackupManifest.Table) -> PartitionedStatistics.Name? = { _ in nil }) -> Set<String> {
        let limit = { (rows: Int64) in threshold.base + threshold.scaleFactor * Double(rows) }
        let light = { (changed: Int, rows: Int64) in changed == 0 || Double(changed) < limit(rows) }
        var hierarchyRows: [PartitionedStatistics.Name: Int64] = [:], hierarchyChanges: [PartitionedStatistics.Name: Int] = [:]
        var truncatedHierarchies: Set<PartitionedStatistics.Name> = []
        for table in tables {
            guard let root = hierarchy(table) else { continue }
            let key = IndexBuildPlan.key(table)
            hierarchyRows[root, default: 0] += table.rows
            hierarchyChanges[root, default: 0] += changes[key] ?? 0
            if truncated.contains(key) { truncatedHierarchies.insert(root) }
        }
        return Set(tables.compactMap { table in
            let key = IndexBuildPlan.key(table)
            guard !truncated.contains(key), light(changes[key] ?? 0, table.rows) else { return nil }
            if let root = hierarchy(table) {
                guard !truncatedHierarchies.contains(root), light(hierarchyChanges[root] ?? 0, hierarchyRows[root] ?? 0) else { return nil }
            }
            return key
        })
    }
}
