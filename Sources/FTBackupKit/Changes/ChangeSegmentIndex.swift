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

    /// The newest heartbeat the segment holds, as archived: a restore that skips the segment applies it
    /// as if read, so the sequences are as exact as when every segment is read.
    public struct Heartbeat: Codable, Sendable, Equatable {
        public var commitLSN: String
        public var commitTime: Date
        /// The heartbeat table's description (from this segment or, a follower's, an earlier one of its stream).
        public var relation: RelationDescription
        /// The insert, as the pgoutput message archived (base64).
        public var insert: String
    }

    /// Sorted by schema, then name.
    public var relations: [Relation]
    /// Nil when the segment holds no heartbeat.
    public var lastHeartbeat: Heartbeat? = nil
    /// Relations (`schema.name`) the segment changes before it describes them: a stream that described a
    /// relation once describes it again after an invalidation, so `described` alone does not say the
    /// segment's first change of it can be decoded. Nil in indexes written before this was recorded
    /// (taken as none: a stream's first description always precedes the relation's first change, and
    /// assuming otherwise would make every heartbeat segment read).
    public var describedAfterAChange: [String]? = nil
    /// True in indexes that keep relations apart by schema and name as a pair. Older ones joined them with a dot, so
    /// `a."b.c"` and `"a.b".c` became one entry named after either, with both tables' counts: a `--schema` restore of the
    /// other skipped a segment holding its changes, rows lost without a word (adv26 D2). Such an index naming a dotted
    /// name is not trusted (`checkedIndex`).
    public var namesPaired: Bool? = nil

    /// True when a change of `relation` in the segment needs a description from an earlier segment:
    /// it is not described here, or described only after a change.
    public func needsEarlierDescription(_ relation: Relation) -> Bool {
        relation.changes > 0 && (!relation.described || describedAfterAChange?.contains(relation.qualifiedName) == true)
    }

    /// True when the segment changes a relation of one of `schemas`. (A description alone changes no
    /// row; a segment that only describes one is read when a later read segment needs it, see
    /// `SegmentSelection`. A follower writes every description it knows at the start of each segment.)
    public func names(anyOf schemas: Set<String>) -> Bool {
        relations.contains { schemas.contains($0.schema) && $0.changes > 0 }
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
    /// Relids changed in the segment while not (yet) described in it.
    private var changedUndescribed: Set<UInt32> = []
    private var counts: [UInt32: [Int]] = [:]
    /// A change named a relid that no description seen so far names: no index can be written truthfully.
    private(set) var incomplete = false
    /// The heartbeat table's description by relid (carried across a follower's segments, as `names`).
    var heartbeatRelations: [UInt32: RelationDescription] = [:]
    private var pendingHeartbeat: (RelationDescription, [UInt8])?
    private var lastHeartbeat: ChangeSegmentIndex.Heartbeat?

    init(continuing previous: ChangeSegmentIndexBuilder? = nil) {
        names = previous?.names ?? [:]
        heartbeatRelations = previous?.heartbeatRelations ?? [:]
    }

    mutating func describe(_ relation: RelationDescription) {
        names[relation.relid] = (relation.namespace, relation.name)
        described.insert(relation.relid)
        if relation.namespace == ChangeArchivalNames.schema && relation.name == ChangeArchivalNames.heartbeat {
            heartbeatRelations[relation.relid] = relation
        }
    }

    /// An insert (`data`, the whole message) seen in the open transaction: kept if it is a heartbeat's.
    mutating func inserted(_ relid: UInt32, _ data: [UInt8]) {
        if let relation = heartbeatRelations[relid] { pendingHeartbeat = (relation, data) }
    }

    mutating func began() { pendingHeartbeat = nil }

    mutating func committed(_ commitLSN: UInt64, _ commitTime: Int64) {
        if let (relation, data) = pendingHeartbeat {
            lastHeartbeat = .init(commitLSN: LSN.format(commitLSN), commitTime: PgOutputDecoder.date(fromPostgresMicroseconds: commitTime),
                                  relation: relation, insert: Data(data).base64EncodedString())
        }
        pendingHeartbeat = nil
    }

    /// `kind`: 0 insert, 1 update, 2 delete, 3 truncate.
    mutating func count(_ relid: UInt32, _ kind: Int) {
        if names[relid] == nil { incomplete = true }
        if !described.contains(relid) { changedUndescribed.insert(relid) }
        counts[relid, default: [0, 0, 0, 0]][kind] += 1
    }

    /// The index, or nil when a change named an unknown relation.
    func index() -> ChangeSegmentIndex? {
        guard !incomplete else { return nil }
        // Keyed by schema and name as a pair (one table may have had several relids in the segment: dropped and created again).
        var byName: [[String]: ChangeSegmentIndex.Relation] = [:]
        for relid in described.union(counts.keys) {
            guard let (schema, name) = names[relid] else { return nil }
            let c = counts[relid] ?? [0, 0, 0, 0]
            var relation = byName[[schema, name]]
                ?? ChangeSegmentIndex.Relation(schema: schema, name: name, described: false, inserts: 0, updates: 0, deletes: 0, truncates: 0)
            relation.described = relation.described || described.contains(relid)
            relation.inserts += c[0]; relation.updates += c[1]; relation.deletes += c[2]; relation.truncates += c[3]
            byName[[schema, name]] = relation
        }
        let late = described.intersection(changedUndescribed).compactMap { names[$0].map { "\($0.schema).\($0.name)" } }
        return ChangeSegmentIndex(relations: byName.values.sorted { ($0.schema, $0.name) < ($1.schema, $1.name) }, lastHeartbeat: lastHeartbeat,
                                  describedAfterAChange: Set(late).sorted(), namesPaired: true)
    }
}

extension ChangeSegmentManifest {
    /// The segment's index when it agrees with the rest of its manifest: every relation the manifest
    /// lists as described (`relations`) is described in the index too. An index damaged or edited so
    /// that it leaves out a relation would make a `--schema` restore skip a segment it needs, silently;
    /// one that disagrees is not used, and the segment is treated as one written before indexes (read).
    var checkedIndex: ChangeSegmentIndex? {
        guard let index else { return nil }
        if index.namesPaired != true, index.relations.contains(where: { $0.schema.contains(".") || $0.name.contains(".") }) { return nil }
        let described = Set(index.relations.filter(\.described).map(\.qualifiedName))
        return relations.allSatisfy(described.contains) ? index : nil
    }
}
