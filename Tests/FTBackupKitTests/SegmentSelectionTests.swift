import Foundation
import Testing
@testable import FTBackupKit

/// Which segments a one-tool `restore --at` opens, decided from the segments' indexes alone.
@Suite struct SegmentSelectionTests {
    static func segment(_ number: Int, names schemas: [String]?, heartbeat: Bool = true) -> ChangeSegmentManifest {
        let relations = (schemas ?? []).map {
            ChangeSegmentIndex.Relation(schema: $0, name: "tool_data", described: true, inserts: 1, updates: 0, deletes: 0, truncates: 0)
        } + (heartbeat ? [ChangeSegmentIndex.Relation(schema: "ftbackup", name: "heartbeat", described: true, inserts: 1, updates: 0, deletes: 0, truncates: 0)] : [])
        let label = "s\(number)"
        return ChangeSegmentManifest(
            formatVersion: 1, label: label, slot: "slot", source: nil, startLSN: LSN.format(UInt64(number * 100)), endLSN: LSN.format(UInt64(number * 100 + 100)),
            transactions: 1, firstCommitLSN: nil, lastCommitLSN: LSN.format(UInt64(number * 100 + 90)), firstCommitTime: nil, lastCommitTime: nil,
            relations: [], schemaChanges: nil, ddl: nil, createdAt: Date(),
            file: .init(path: "\(label).seg.zst", codec: .zstd, storedBytes: 1, sha256: "", rawBytes: 1),
            index: schemas.map { _ in ChangeSegmentIndex(relations: relations, lastHeartbeat: nil) })
    }

    @Test func segmentsNamingNoChosenSchemaAreSkippedButTheLastAndOnesWithoutAnIndexAreRead() {
        let used = [Self.segment(0, names: ["tool_a"]), Self.segment(1, names: ["tool_b"]), Self.segment(2, names: ["tool_a"]),
                    Self.segment(3, names: ["tool_b"]), Self.segment(4, names: ["tool_b"])]
        let following = [Self.segment(5, names: ["tool_b"], heartbeat: false), Self.segment(6, names: ["tool_b"])]
        let selection = SegmentSelection.make(used, following: following, schemas: ["tool_a"])
        // s3 holds the newest heartbeat before the last segment and its index carries none: read for the sequences.
        #expect(selection.skipped == ["s1"])
        #expect(selection.read == ["s0", "s2", "s3", "s4", "s6"])
        #expect(SegmentSelection.make(used, following: following, schemas: []).skipped.isEmpty)
    }

    @Test func aSegmentWithoutAnIndexMakesEveryEarlierOneRead() {
        let used = [Self.segment(0, names: ["tool_b"]), Self.segment(1, names: ["tool_b"]), Self.segment(2, names: nil),
                    Self.segment(3, names: ["tool_b"]), Self.segment(4, names: ["tool_b"], heartbeat: false), Self.segment(5, names: ["tool_a"])]
        let selection = SegmentSelection.make(used, schemas: ["tool_a"])
        #expect(selection.skipped == ["s4"], "s3 holds the newest heartbeat before TIME and its index carries none")
        let withHeartbeats = used.map { segment -> ChangeSegmentManifest in
            var copy = segment
            copy.index?.lastHeartbeat = .init(commitLSN: "0/1", commitTime: Date(), relation: RelationDescription(
                relid: 1, namespace: "ftbackup", name: "heartbeat", replicaIdentity: UInt8(ascii: "d"), columns: []), insert: "")
            return copy
        }
        #expect(SegmentSelection.make(withHeartbeats, schemas: ["tool_a"]).skipped == ["s3", "s4"], "s2 has no index")
        let indexed = withHeartbeats.filter { $0.label != "s2" }
        #expect(SegmentSelection.make(indexed, schemas: ["tool_a"]).skipped == ["s0", "s1", "s3", "s4"])
    }

    /// A relation changed but not described in the used segments is looked for before them (a follower's
    /// stream, a full taken meanwhile); found nowhere, a `--schema` restore skips nothing.
    @Test func descriptionsAreLookedForBeforeTheFullsFirstSegment() {
        func undescribed(_ segment: ChangeSegmentManifest, _ schema: String) -> ChangeSegmentManifest {
            var copy = segment
            copy.index?.relations = [.init(schema: schema, name: "tool_data", described: false, inserts: 0, updates: 1, deletes: 0, truncates: 0)]
            return copy
        }
        let preceding = [Self.segment(0, names: ["tool_a"]), Self.segment(1, names: ["tool_b"])]
        let used = [undescribed(Self.segment(2, names: []), "tool_b"), undescribed(Self.segment(3, names: []), "tool_a")]
        #expect(SegmentSelection.make(used, preceding: preceding, schemas: ["tool_a"]).describers.map(\.label) == ["s0"])
        #expect(SegmentSelection.make(used, preceding: preceding, schemas: []).describers.map(\.label) == ["s0", "s1"])
        let alone = SegmentSelection.make(used, preceding: [preceding[1]], schemas: ["tool_a"])
        #expect(alone.describers.isEmpty && alone.skipped.isEmpty, "tool_a's description is nowhere: nothing is skipped")
    }

    /// A stream that described a relation once describes it again after an invalidation: a segment can
    /// change it first and describe it after. The index says so, and the earlier description is read
    /// too, for a whole-database restore as for a one-tool one. (A follower killed the restore's plan
    /// with "names relation … without its description" when the index said only "described".)
    @Test func aRelationDescribedOnlyAfterItsFirstChangeInASegmentNeedsAnEarlierDescription() {
        let relation = RelationDescription(relid: 7, namespace: "tool_a", name: "tool_data", replicaIdentity: UInt8(ascii: "d"), columns: [])
        var first = ChangeSegmentIndexBuilder()
        first.describe(relation)
        first.count(7, 1)
        #expect(first.index()?.describedAfterAChange == [], "described before its change")
        var next = ChangeSegmentIndexBuilder(continuing: first)
        next.count(7, 1)
        next.describe(relation)
        next.count(7, 1)
        let index = try! #require(next.index())
        #expect(index.relations.map(\.described) == [true])
        #expect(index.describedAfterAChange == ["tool_a.tool_data"])
        #expect(index.needsEarlierDescription(index.relations[0]))

        var late = Self.segment(1, names: ["tool_a"], heartbeat: false)
        late.index?.describedAfterAChange = ["tool_a.tool_data"]
        late.relations = ["tool_a.tool_data"]
        let preceding = [Self.segment(0, names: ["tool_a"], heartbeat: false)]
        #expect(SegmentSelection.make([late], preceding: preceding, schemas: []).describers.map(\.label) == ["s0"])
        #expect(SegmentSelection.make([late], preceding: preceding, schemas: ["tool_a"]).describers.map(\.label) == ["s0"])
        late.index?.describedAfterAChange = []
        #expect(SegmentSelection.make([late], preceding: preceding, schemas: []).describers.isEmpty, "described before every change")
    }

    /// An index that leaves out a relation the manifest lists as described is not used: the segment is read.
    @Test func anIndexThatContradictsItsManifestIsNotUsed() {
        var segment = Self.segment(0, names: ["tool_b"])
        segment.relations = ["tool_a.tool_data", "tool_b.tool_data"]
        #expect(segment.checkedIndex == nil)
        #expect(SegmentSelection.make([segment, Self.segment(1, names: ["tool_a"])], schemas: ["tool_a"]).skipped.isEmpty)
        segment.relations = ["tool_b.tool_data"]
        #expect(segment.checkedIndex != nil)
    }
}
