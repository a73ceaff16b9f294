import Foundation
import Testing
@testable import FTBackupKit

/// Which tables a `restore --at` indexes and analyzes before its replay: those the replay changes by fewer rows than
/// would make autovacuum analyze them again, never a truncated one, none when a segment has no index.
@Suite struct ReplayFootprintTests {
    static func segment(_ number: Int, _ relations: [ChangeSegmentIndex.Relation]?) -> ChangeSegmentManifest {
        var segment = SegmentSelectionTests.segment(number, names: [])
        segment.index = relations.map { ChangeSegmentIndex(relations: $0, lastHeartbeat: nil) }
        return segment
    }

    static func relation(_ name: String, inserts: Int = 0, updates: Int = 0, deletes: Int = 0, truncates: Int = 0) -> ChangeSegmentIndex.Relation {
        ChangeSegmentIndex.Relation(schema: "s", name: name, described: true, inserts: inserts, updates: updates, deletes: deletes, truncates: truncates)
    }

    static func table(_ name: String, rows: Int64) -> BackupManifest.Table {
        BackupManifest.Table(schema: "s", name: name, indexes: [], columns: [], rows: rows,
                             file: .init(path: name, codec: .zstd, storedBytes: 1, sha256: "", rawBytes: 1))
    }

    @Test func tablesChangedBelowTheAutoanalyzeThresholdAreSettledBeforeTheReplay() throws {
        let footprint = try #require(ReplayFootprint.make([
            Self.segment(0, [Self.relation("light", updates: 40), Self.relation("heavy", inserts: 500), Self.relation("cut", truncates: 1)]),
            Self.segment(1, [Self.relation("light", deletes: 10), Self.relation("edge", updates: 149)]),
        ]))
        let tables = [Self.table("light", rows: 100), Self.table("heavy", rows: 1000), Self.table("cut", rows: 10),
                      Self.table("edge", rows: 1000), Self.table("untouched", rows: 5), Self.table("filled", rows: 0)]
        // 50 + 0.1 × rows: light 50 changes of a 60 limit, heavy 500 of 150, edge 149 of 150, filled none of 50.
        let settled = footprint.settledBefore(tables, threshold: .init(base: 50, scaleFactor: 0.1))
        #expect(settled == Set(["light", "edge", "untouched", "filled"].map { IndexBuildPlan.key(schema: "s", name: $0) }))
        // Whatever the threshold, a table the replay does not change is settled before it.
        #expect(footprint.settledBefore(tables, threshold: .init(base: 0, scaleFactor: 0))
                == Set(["untouched", "filled"].map { IndexBuildPlan.key(schema: "s", name: $0) }))
    }

    /// A hierarchy is judged as one table as well: partitions each changed a little, together by more than the
    /// hierarchy's threshold, wait for the replay (autovacuum never analyzes the partitioned table); so does every
    /// partition of a hierarchy one of whose partitions is truncated.
    @Test func aHierarchyChangedMuchInAllWaitsForTheReplayThoughEachPartitionChangedLittle() throws {
        let footprint = try #require(ReplayFootprint.make([Self.segment(0, [
            Self.relation("g_0", inserts: 90), Self.relation("g_1", inserts: 90), Self.relation("g_2", inserts: 90),
            Self.relation("p_0", updates: 6), Self.relation("t_1", truncates: 1),
        ])]))
        let tables = ["g_0", "g_1", "g_2", "p_0", "p_1", "t_0", "t_1"].map { Self.table($0, rows: 500) }
        let root = { (table: BackupManifest.Table) in PartitionedStatistics.Name(schema: "s", name: String(table.name.prefix(1))) }
        let settled = footprint.settledBefore(tables, threshold: .init(base: 50, scaleFactor: 0.1), hierarchy: root)
        #expect(settled == Set(["p_0", "p_1"].map { IndexBuildPlan.key(schema: "s", name: $0) }))
        // Without hierarchies each g partition is light (90 < 100).
        #expect(footprint.settledBefore(tables, threshold: .init(base: 50, scaleFactor: 0.1)).contains(IndexBuildPlan.key(schema: "s", name: "g_0")))
    }

    @Test func aSegmentWithoutAnIndexLeavesEveryTableToAfterTheReplay() {
        #expect(ReplayFootprint.make([Self.segment(0, [Self.relation("light", updates: 1)]), Self.segment(1, nil)]) == nil)
    }
}

/// adv26 D2: a segment's index keeps `a."b.c"` and `"a.b".c` apart (joined with a dot they were one entry, named after
/// either, and a `--schema` restore of the other skipped a segment holding its changes); an older index naming a dotted
/// name is not trusted, so the segment is read.
@Suite struct SegmentIndexNamesTests {
    @Test func relationsWhoseDottedNamesCollideStayApartAndOldIndexesNamingOneAreNotTrusted() throws {
        var builder = ChangeSegmentIndexBuilder()
        let describe = { (relid: UInt32, schema: String, name: String) in
            RelationDescription(relid: relid, namespace: schema, name: name, replicaIdentity: UInt8(ascii: "d"), columns: [])
        }
        builder.describe(describe(1, "a", "b.c"))
        builder.describe(describe(2, "a.b", "c"))
        for _ in 0..<300 { builder.count(1, 0) }
        builder.count(2, 0)
        let index = try #require(builder.index())
        #expect(index.relations.map { "\($0.schema)|\($0.name)|\($0.inserts)" } == ["a|b.c|300", "a.b|c|1"])
        #expect(index.namesPaired == true)
        var segment = SegmentSelectionTests.segment(0, names: [])
        segment.index = index
        #expect(segment.checkedIndex != nil)
        segment.index?.namesPaired = nil  // as written before
        #expect(segment.checkedIndex == nil)
        segment.index?.relations = [.init(schema: "a", name: "t", described: true, inserts: 1, updates: 0, deletes: 0, truncates: 0)]
        #expect(segment.checkedIndex != nil, "an older index without dotted names is still trusted")
    }
}
