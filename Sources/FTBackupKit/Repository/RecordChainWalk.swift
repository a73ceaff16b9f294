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
    /// How far after the walker's clock a record's name may date it (clocks of two hosts writing one
    /// repository differ by seconds, not minutes).
    public static let clockSkew: TimeInterval = 300

    /// Walks `folder`'s records of `kind`: every link must name a file that is there with the digest
    /// recorded, no record may have two successors, and after the first chained record (in name
    /// order) every record must carry a link, and none may link to itself. With `now`, a record whose
    /// name dates it more than `clockSkew` after `now` is a problem too: a clock that was ahead wrote
    /// it, or it was added by hand (it would otherwise stand outside every report period and, as the
    /// newest name, be the record that restores and status read first).
    public static func walk(_ storage: any RepositoryStorage, kind: String, folder: String, now: Date? = nil) throws -> RecordChainWalk {
        let names = try RecordChain.names(storage, folder: folder)
        let contents = try names.map { try storage.readAll("\(folder)/\($0)") }
        let hashes = Dictionary(uniqueKeysWithValues: zip(names, contents.map(RecordChain.sha256)))
        let links = Dictionary(uniqueKeysWithValues: zip(names, contents.map(RecordChain.link(of:))))
        var walk = RecordChainWalk(kind: kind, folder: folder, records: names.count, beforeChaining: [], chained: 0,
                                   newest: names.last, problems: [])
        let firstChained = names.first { links[$0]! != nil }
        var successors: [String: [String]] = [:]
        var starts: [String] = []
        for name in names {
            if let now, let dated = RunLabelDate.parse(name), dated.timeIntervalSince(now) > clockSkew {
                walk.problems.append("\(folder)/\(name) is dated after this report was made (\(Timestamps.display(dated)), now \(Timestamps.display(now))): written by a clock that was ahead, or added by hand")
            }
            guard let link = links[name]! else {
                if let firstChained, name > firstChained {
                    walk.problems.append("\(folder)/\(name) has no chain link though records before it do: written outside ftbackup or edited")
                } else {
                    walk.beforeChaining.append(name)
                }
                continue
            }
            walk.chained += 1
            if link.recordKind != kind {
                walk.problems.append("\(folder)/\(name) says it is a \(link.recordKind) record, not \(kind): moved here from another kind")
            }
            guard let previous = link.previousRecord else {
                starts.append(name)
                continue
            }
            if previous == name {
                walk.problems.append("\(folder)/\(name) names itself as the record before it: renamed or edited")
                continue
            }
            if case .some(.none) = links[previous] { starts.append(name) }  // links to a record from before chaining
            successors[previous, default: []].append(name)
            guard let hash = hashes[previous] else {
                let moved = hashes.first { $0.value == link.previousRecordSHA256 }.map { " (its bytes are now \($0.key): renamed)" } ?? ""
                walk.problems.append("\(folder)/\(previous) is missing: \(name) names it as the record before it, deleted\(moved)")
                continue
            }
            if hash != link.previousRecordSHA256 {
                walk.problems.append("\(folder)/\(previous) was changed after \(name) was written (SHA-256 \(hash.prefix(16))…, recorded \((link.previousRecordSHA256 ?? "none").prefix(16))…)")
            }
        }
        for extra in starts.dropFirst() {
            walk.problems.append("\(folder)/\(extra) starts a chain of its own after \(starts[0]) began it: added later")
        }
        for (previous, next) in successors.sorted(by: { $0.key < $1.key }) where next.count > 1 {
            walk.problems.append("\(folder)/\(previous) is linked to by \(next.sorted().joined(separator: " and ")): the chain forked, one was added later")
        }
        return walk
    }
}
