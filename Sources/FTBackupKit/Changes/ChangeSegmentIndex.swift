import Foundation

/// The relations one change segment names, with how many rows of each it changes, written by the
/// archiver (incremental pass and follower) into the segment's manifest.
///
/// It exists so that `restore --at … --schema S` can leave unread the segments that never name S:
/// a one-tool restore then reads and decodes only what it needs. Segments written before it carry
/// none and are read whole, as before.
public struct ChangeSegmentIndex: Codable, Sendable, Equatable {
    /// One relation named in the segment.
    public struct Relation: Codable, Sendable, Equatable {
        public var schema: String
        public var name: String
        /// Its description (`R` message) is in the segment. A follower's stream describes a relation
        /// once, before its first change, so a later segment may change it without describing it.
        public var described: Bool
        public var inserts: Int
        public var updates: Int
        public var deletes: Int
        public var truncates: Int

        public var changes: Int { inserts + updates + deletes + truncates }
        public var qualifiedName: String { "\(schema).\(name)" }
    }

    /// Sorted by schema, then name.
    public var relations: [Relation]

    /// True when the segment names (describes or changes) a relation of one of `schemas`.
    public func names(anyOf schemas: Set<String>) -> Bool {
        relations.contains { schemas.contains($0.schema) }
    }

    /// Rows the segment inserts into `schema.name` (0 when it does not name it).
    public func inserts(into schema: String, _ name: String) -> Int {
        relations.first { $0.schema == schema && $0.name == name }?.inserts ?? 0
    }
}

/// Counts the changes of a stream per relation as it passes (part of `ChangeStreamSummary`).
struct ChangeSegmentIndexBuilder {
    /// Relation names by relid: from this segment's descriptions, and (a follower) from earlier segments of the same stream.
    var names: [UInt32: (schema: String, name: String)] = [:]
    private var described: Set<UInt32> = []
    private var counts: [UInt32: [Int]] = [:]
    /// A change named a relid that no description seen so far names: no index can be written truthfully.
    private(set) var incomplete = false

    init(names: [UInt32: (schema: String, name: String)] = [:]) { self.names = names }

    mutating func describe(_ relation: RelationDescription) {
        names[relation.relid] = (relation.namespace, relation.name)
        described.insert(relation.relid)
    }

    /// `kind`: 0 insert, 1 update, 2 delete, 3 truncate.
    mutating func count(_ relid: UInt32, _ kind: Int) {
        if names[relid] == nil { incomplete = true }
        counts[relid, default: [0, 0, 0, 0]][kind] += 1
    }

    /// The index, or nil when a change named an unknown relation.
    func index() -> ChangeSegmentIndex? {
        guard !incomplete else { return nil }
        var byName: [String: ChangeSegmentIndex.Relation] = [:]
        for relid in described.union(counts.keys) {
            guard let (schema, name) = names[relid] else { return nil }
            let c = counts[relid] ?? [0, 0, 0, 0]
            var relation = byName["\(schema).\(name)"]
                ?? ChangeSegmentIndex.Relation(schema: schema, name: name, described: false, inserts: 0, updates: 0, deletes: 0, truncates: 0)
            relation.described = relation.described || described.contains(relid)
            relation.inserts += c[0]; relation.updates += c[1]; relation.deletes += c[2]; relation.truncates += c[3]
            byName["\(schema).\(name)"] = relation
        }
        return ChangeSegmentIndex(relations: byName.values.sorted { ($0.schema, $0.name) < ($1.schema, $1.name) })
    }
}
