import Foundation

/// Passes over, undecoded, the changes a `restore --at … --schema` replay has no use for: rows of
/// relations outside the chosen schemas and ftbackup's own (heartbeats and the DDL log are kept).
///
/// Decoding a row is most of the cost of reading a segment, and the applier would drop such rows
/// anyway. When `SegmentSelection` skipped segments, a change of a relation no read segment described
/// belongs to another schema (the selection reads every description the chosen schemas need), so it
/// is passed over too; otherwise it goes on to the applier, which reports the damage.
struct ReplayRelationFilter {
    let schemas: Set<String>
    let segmentsSkipped: Bool
    /// Whether each described relation's changes are wanted, by relid.
    private var wanted: [UInt32: Bool] = [:]

    init(schemas: Set<String>, segmentsSkipped: Bool) {
        self.schemas = schemas
        self.segmentsSkipped = segmentsSkipped
    }

    /// False for an insert, update or delete (judged by its relid, before decoding) that replay does not need.
    func wants(_ data: [UInt8]) -> Bool {
        guard !schemas.isEmpty, data.count >= 5, let kind = data.first,
              kind == UInt8(ascii: "I") || kind == UInt8(ascii: "U") || kind == UInt8(ascii: "D") else { return true }
        return wants(data[1...4].reduce(0) { $0 << 8 | UInt32($1) })
    }

    private func wants(_ relid: UInt32) -> Bool { wanted[relid] ?? !segmentsSkipped }

    /// Records descriptions; narrows a TRUNCATE to the relations replay needs. False when nothing is left of it.
    mutating func keep(_ message: inout PgOutputMessage) -> Bool {
        switch message {
        case .relation(let relation):
            wanted[relation.relid] = schemas.isEmpty || relation.namespace == ChangeArchivalNames.schema || schemas.contains(relation.namespace)
            return true
        case .truncate(let relids, let cascade, let restartIdentity) where !schemas.isEmpty:
            let kept = relids.filter(wants)
            if kept.isEmpty { return false }
            message = .truncate(relids: kept, cascade: cascade, restartIdentity: restartIdentity)
            return true
        default:
            return true
        }
    }
}
