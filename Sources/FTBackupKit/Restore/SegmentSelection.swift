import Foundation

/// Which change segments a `restore --at … --schema` reads: the ones that can matter to the chosen
/// schemas, decided from each segment's index (`ChangeSegmentIndex`) before anything is opened.
///
/// A segment is read when it has no index (written before indexes were), names a relation of a chosen
/// schema, or is the last one (it holds TIME); of the segments after TIME, only those holding a
/// heartbeat (the first heartbeat after TIME bounds the sequences). A skipped segment's newest
/// heartbeat is applied from its index (`heartbeats`), so sequences come out as when every segment is
/// read. A read segment may change a relation it does not describe (a follower's stream describes each
/// relation once): the nearest earlier segment describing it is read as well, and every segment before
/// one without an index. DDL barriers, large objects and refreshed views are decided from the
/// manifests alone, so they hold whatever is skipped.
struct SegmentSelection: Sendable {
    /// Labels of the segments read, of `used` and of `following`.
    var read: Set<String>
    /// Labels of the `used` segments left unread.
    var skipped: [String]

    /// Every segment read (a whole-database restore, or no schema given).
    static func all(_ used: [ChangeSegmentManifest], following: [ChangeSegmentManifest] = []) -> SegmentSelection {
        SegmentSelection(read: Set((used + following).map(\.label)), skipped: [])
    }

    static func make(_ used: [ChangeSegmentManifest], following: [ChangeSegmentManifest] = [], schemas: [String]) -> SegmentSelection {
        guard !schemas.isEmpty, !used.isEmpty else { return all(used, following: following) }
        let chosen = Set(schemas)
        let segments = used + following
        var read = [Bool](repeating: false, count: segments.count)
        func heartbeats(_ segment: ChangeSegmentManifest) -> Bool {
            segment.index.map { $0.inserts(into: ChangeArchivalNames.schema, ChangeArchivalNames.heartbeat) > 0 } ?? true
        }
        for (position, segment) in segments.enumerated() {
            guard let index = segment.index else { read[position] = true; continue }
            if position < used.count { read[position] = index.names(anyOf: chosen) || position == used.count - 1 }
            else { read[position] = heartbeats(segment) }  // after TIME: only for the first heartbeat
        }
        // The newest heartbeat before the last segment (every earlier segment ends before TIME), when its
        // index cannot stand in for it.
        if let newest = used.indices.dropLast().last(where: { heartbeats(used[$0]) }), used[newest].index?.lastHeartbeat == nil {
            read[newest] = true
        }
        // Descriptions: the chosen schemas' relations must be described before a read segment changes them
        // (the heartbeat table's come from the indexes). Walked newest first, so what is added is checked too.
        for position in segments.indices.reversed() where read[position] {
            guard let index = segments[position].index else {
                for earlier in 0..<position { read[earlier] = true }
                break
            }
            for relation in index.relations where chosen.contains(relation.schema) && relation.changes > 0 && !relation.described {
                let describer = segments.indices.prefix(position).last { earlier in
                    segments[earlier].index?.relations.contains { $0.qualifiedName == relation.qualifiedName && $0.described } ?? true
                }
                if let describer { read[describer] = true }
            }
        }
        let labels = Set(segments.indices.filter { read[$0] }.map { segments[$0].label })
        return SegmentSelection(read: labels, skipped: used.map(\.label).filter { !labels.contains($0) })
    }

    func reads(_ segment: ChangeSegmentManifest) -> Bool { read.contains(segment.label) }

    /// The heartbeats to apply from the indexes of skipped segments, by label (see `ChangeSegmentIndex.Heartbeat`).
    func heartbeat(of segment: ChangeSegmentManifest) -> ChangeSegmentIndex.Heartbeat? {
        reads(segment) ? nil : segment.index?.lastHeartbeat
    }
    var skipsAny: Bool { !skipped.isEmpty }
}
