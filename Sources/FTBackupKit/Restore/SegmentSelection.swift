import Foundation

/// Which change segments a `restore --at` reads: for `--schema`, the ones that can matter to the chosen
/// schemas, decided from each segment's index (`ChangeSegmentIndex`) before anything is opened; for
/// every restore, the earlier segments whose relation descriptions the replayed ones need.
///
/// A segment is read when it has no trustworthy index (see `checkedIndex`), names a relation of a
/// chosen schema, or is the last one (it holds TIME); of the segments after TIME, only those holding a
/// heartbeat (the first heartbeat after TIME bounds the sequences). A skipped segment's newest
/// heartbeat is applied from its index (`heartbeats`), so sequences come out as when every segment is
/// read. A read segment may change a relation it does not describe, or describe it only after a change
/// (a follower's stream describes each relation once, and again after an invalidation): the nearest
/// earlier segment describing it is read as well, and every segment before
/// one without an index. That segment may lie before the full's first one (a full taken while the
/// follower streams): it is one of the `describers`, read only for its descriptions. When no segment
/// is known to describe a relation a chosen schema needs, nothing is skipped, so the missing
/// description stops the restore rather than its changes being passed over. DDL barriers, large
/// objects and refreshed views are decided from the manifests alone, so they hold whatever is skipped.
struct SegmentSelection: Sendable {
    /// Labels of the segments read, of `used` and of `following`.
    var read: Set<String>
    /// Labels of the `used` segments left unread.
    var skipped: [String]
    /// Segments before `used`, in archive order, read only for their relation descriptions.
    var describers: [ChangeSegmentManifest] = []

    /// Every segment read, and no description looked for before them (tests that replay by hand).
    static func all(_ used: [ChangeSegmentManifest], following: [ChangeSegmentManifest] = []) -> SegmentSelection {
        SegmentSelection(read: Set((used + following).map(\.label)), skipped: [])
    }

    /// `preceding`: the repository's own segments before `used`, in archive order (where descriptions may be).
    /// No `schemas`: every segment of `used` and `following` is read.
    static func make(_ used: [ChangeSegmentManifest], following: [ChangeSegmentManifest] = [], preceding: [ChangeSegmentManifest] = [],
                     schemas: [String]) -> SegmentSelection {
        guard !used.isEmpty else { return all(used, following: following) }
        let chosen: Set<String>? = schemas.isEmpty ? nil : Set(schemas)
        let segments = used + following
        var read = [Bool](repeating: chosen == nil, count: segments.count)
        if let chosen { choose(&read, used: used, following: following, chosen: chosen) }
        // Descriptions: what a read segment changes must be described before it (with --schema, the chosen
        // schemas' relations and ftbackup's own). Walked newest first, so what is added is checked too.
        func needed(_ relation: ChangeSegmentIndex.Relation, in index: ChangeSegmentIndex) -> Bool {
            index.needsEarlierDescription(relation)
                && (chosen.map { $0.contains(relation.schema) } ?? true || relation.schema == ChangeArchivalNames.schema)
        }
        func describes(_ segment: ChangeSegmentManifest, _ relation: ChangeSegmentIndex.Relation) -> Bool {
            segment.checkedIndex?.relations.contains { $0.qualifiedName == relation.qualifiedName && $0.described } ?? true
        }
        var describers = Set<Int>()  // positions in `preceding`
        var unresolved = false
        for position in segments.indices.reversed() where read[position] {
            guard let index = segments[position].checkedIndex else {
                for earlier in 0..<position { read[earlier] = true }
                break
            }
            for relation in index.relations where needed(relation, in: index) {
                if let describer = segments.indices.prefix(position).last(where: { describes(segments[$0], relation) }) {
                    read[describer] = true
                } else if let describer = preceding.indices.last(where: { describes(preceding[$0], relation) }) {
                    describers.insert(describer)
                } else {
                    unresolved = true
                }
            }
        }
        let earlier = describers.sorted().map { preceding[$0] }
        if unresolved && chosen != nil {
            // No segment is known to describe it: skip nothing, so a change without its description is an error.
            return SegmentSelection(read: Set(segments.map(\.label)), skipped: [], describers: earlier)
        }
        let labels = Set(segments.indices.filter { read[$0] }.map { segments[$0].label })
        return SegmentSelection(read: labels, skipped: used.map(\.label).filter { !labels.contains($0) }, describers: earlier)
    }

    /// The `--schema` choice from the indexes alone: segments naming a chosen schema, the last one, ones
    /// without an index, after TIME those with a heartbeat, and the newest heartbeat's when no index holds it.
    private static func choose(_ read: inout [Bool], used: [ChangeSegmentManifest], following: [ChangeSegmentManifest], chosen: Set<String>) {
        func heartbeats(_ segment: ChangeSegmentManifest) -> Bool {
            segment.checkedIndex.map { $0.inserts(into: ChangeArchivalNames.schema, ChangeArchivalNames.heartbeat) > 0 } ?? true
        }
        for (position, segment) in (used + following).enumerated() {
            guard let index = segment.checkedIndex else { read[position] = true; continue }
            if position < used.count { read[position] = index.names(anyOf: chosen) || position == used.count - 1 }
            else { read[position] = heartbeats(segment) }  // after TIME: only for the first heartbeat
        }
        // The newest heartbeat before the last segment (every earlier segment ends before TIME), when its
        // index cannot stand in for it.
        if let newest = used.indices.dropLast().last(where: { heartbeats(used[$0]) }), used[newest].checkedIndex?.lastHeartbeat == nil {
            read[newest] = true
        }
    }

    func reads(_ segment: ChangeSegmentManifest) -> Bool { read.contains(segment.label) }

    /// The heartbeats to apply from the indexes of skipped segments, by label (see `ChangeSegmentIndex.Heartbeat`).
    func heartbeat(of segment: ChangeSegmentManifest) -> ChangeSegmentIndex.Heartbeat? {
        reads(segment) ? nil : segment.checkedIndex?.lastHeartbeat
    }
    var skipsAny: Bool { !skipped.isEmpty }
}
