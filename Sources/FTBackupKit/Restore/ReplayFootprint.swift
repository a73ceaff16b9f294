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
    /// table a partition is analyzed through (`PartitionedStatistics`): autovacuum never analyzes a partitioned table, so
    /// once the replay changes any of its partitions, all of them wait for it, and their root's ANALYZE sees the replayed
    /// rows (analyzed before, its statistics lacked them for good, adv26 D1).
    func settledBefore(_ tables: [BackupManifest.Table], threshold: AnalyzeThreshold,
                       hierarchy: (BackupManifest.Table) -> PartitionedStatistics.Name? = { _ in nil }) -> Set<String> {
        var changedHierarchies: Set<PartitionedStatistics.Name> = []
        for table in tables {
            let key = IndexBuildPlan.key(table)
            if let root = hierarchy(table), truncated.contains(key) || (changes[key] ?? 0) > 0 { changedHierarchies.insert(root) }
        }
        return Set(tables.compactMap { table in
            let key = IndexBuildPlan.key(table)
            guard !truncated.contains(key), hierarchy(table).map(changedHierarchies.contains) != true else { return nil }
            let limit = threshold.base + threshold.scaleFactor * Double(table.rows)
            let changed = changes[key] ?? 0
            return changed == 0 || Double(changed) < limit ? key : nil
        })
    }
}
