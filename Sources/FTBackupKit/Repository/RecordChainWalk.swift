import Foundation

/// The result of walking one kind's hash chain (``RecordChain``): which records predate chaining,
/// and every place the chain does not hold.
///
/// It exists so that the compliance report (and later `status`) can say, per kind of record,
/// "intact" or name the record that was deleted, edited or slipped in, in one line each.
public struct RecordChainWalk: Codable, Sendable, Equatable {
    public var kind: String
    public var folder: String
    public var records: Int
    /// Records written before this version chained them (no link), oldest first.
    public var beforeChaining: [String]
    public var chained: Int
    /// The newest record: only its successor will protect it.
    public var newest: String?
    /// One line per break: a deleted, edited, unlinked or inserted record.
    public var problems: [String]
    public var intact: Bool { problems.isEmpty }

    /// Walks `folder`'s records of `kind` in name order.
    public static func walk(_ storage: any RepositoryStorage, kind: String, folder: String) throws -> RecordChainWalk {
        let names = try RecordChain.names(storage, folder: folder)
        let contents = try names.map { try storage.readAll("\(folder)/\($0)") }
        let hashes = contents.map(RecordChain.sha256)
        var walk = RecordChainWalk(kind: kind, folder: folder, records: names.count, beforeChaining: [], chained: 0,
                                   newest: names.last, problems: [])
        var chainStarted = false
        for (index, name) in names.enumerated() {
            guard let link = RecordChain.link(of: contents[index]) else {
                if chainStarted {
                    walk.problems.append("\(folder)/\(name) has no chain link though records before it do: written outside ftbackup or edited")
                } else {
                    walk.beforeChaining.append(name)
                }
                continue
            }
            chainStarted = true
            walk.chained += 1
            if link.recordKind != kind {
                walk.problems.append("\(folder)/\(name) says it is a \(link.recordKind) record, not \(kind): moved here from another kind")
            }
            guard let previous = link.previousRecord else {
                if index > 0 {
                    walk.problems.append("\(folder)/\(name) was written as the first \(kind) record, but \(index) record(s) come before it (\(names[index - 1]) last): added later")
                }
                continue
            }
            guard let position = names.firstIndex(of: previous) else {
                let moved = hashes.firstIndex(of: link.previousRecordSHA256 ?? "").map { " (its bytes are now \(names[$0]): renamed)" } ?? ""
                walk.problems.append("\(folder)/\(previous) is missing: \(name) names it as the record before it, deleted\(moved)")
                continue
            }
            if hashes[position] != link.previousRecordSHA256 {
                walk.problems.append("\(folder)/\(previous) was changed after \(name) was written (SHA-256 \(hashes[position].prefix(16))…, recorded \((link.previousRecordSHA256 ?? "none").prefix(16))…)")
            }
            if position != index - 1 {
                let between = names[(position + 1)..<index]
                walk.problems.append("\(between.map { "\(folder)/\($0)" }.joined(separator: ", ")) not in the chain: \(name) links straight to \(previous), so \(between.count == 1 ? "it was" : "they were") added later")
            }
        }
        return walk
    }
}
