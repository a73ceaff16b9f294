import Foundation
import Testing
@testable import FTBackupKit

/// A restore loads a hierarchy's partitions one after another, placed by the hierarchy's whole size, so its root's
/// ANALYZE overlaps other tables' loads instead of waiting for a small partition queued last.
@Suite struct LoadOrderTests {
    static func table(_ schema: String, _ name: String, bytes: Int64) -> BackupManifest.Table {
        BackupManifest.Table(schema: schema, name: name, indexes: [], columns: [], rows: 0,
                             file: .init(path: "\(schema).\(name)", codec: .zstd, storedBytes: bytes, sha256: "", rawBytes: bytes))
    }

    @Test func aHierarchysPartitionsLoadTogetherPlacedByTheirSum() {
        let root = PartitionedStatistics.Name(schema: "audit", name: "events")
        let parts = (1...4).map { Self.table("audit", "events_\($0)", bytes: Int64(10 * $0)) }
        let statistics = PartitionedStatistics(
            rootOf: Dictionary(uniqueKeysWithValues: parts.map { (PartitionedStatistics.Name(schema: $0.schema, name: $0.name), root) }),
            roots: [root])
        let tables = [Self.table("s", "big", bytes: 120), Self.table("s", "mid", bytes: 60), Self.table("s", "small", bytes: 5)] + parts
        let order = statistics.loadOrder(tables.shuffled()).map(\.name)
        // The hierarchy weighs 100: after the 120-byte table, before the 60-byte one, its partitions largest first.
        #expect(order == ["big", "events_4", "events_3", "events_2", "events_1", "mid", "small"])
        // With nothing partitioned (or --skip-analyze): largest first, as before.
        #expect(PartitionedStatistics.none.loadOrder(tables.shuffled()).map(\.name)
                == ["big", "mid", "events_4", "events_3", "events_2", "events_1", "small"])
    }
}
