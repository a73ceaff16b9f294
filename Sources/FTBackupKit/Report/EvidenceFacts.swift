import Foundation

/// The evidence section: each kind of record's hash chain walked (``RecordChainWalk``): intact or
/// the records deleted, edited or added later (or dated after the report's clock), and the records
/// written before chaining, listed as such.
public struct EvidenceFacts: Codable, Sendable {
    public var chains: [RecordChainWalk]
    public var findings: [ComplianceReport.Finding]
    /// Records checked against their anchors in the database (``RecordChainAnchor``); nil when the
    /// report had no database or the database holds no anchors for this repository.
    public var anchored: Int?

    /// The kinds every repository may hold (listed even when empty), then any other kind found.
    static let knownKinds = ["archive", "unarchive", "prune-audit", "prune-audit-reapplied", "reapplied"]

    static func read(_ storage: any RepositoryStorage, period: ReportPeriod, now: Date,
                     anchors: [RecordChainAnchor.Anchor]? = nil) throws -> EvidenceFacts {
        let found = try storage.list(EvidenceVerifier.folder).filter(\.isDirectory)
            .map { String($0.path.dropFirst(EvidenceVerifier.folder.count + 1)) }
            .filter { $0 != "partitions" }
        var chains: [RecordChainWalk] = []
        for kind in knownKinds + found.filter({ !knownKinds.contains($0) }).sorted() {
            chains.append(try RecordChainWalk.walk(storage, kind: kind, folder: "\(EvidenceVerifier.folder)/\(kind)", now: now))
        }
        chains.append(try RecordChainWalk.walk(storage, kind: DrillRecord.chainKind, folder: DrillRecord.folder, now: now))
        var findings = chains.flatMap { chain in chain.problems.map { ComplianceReport.Finding(.evidence, .error, $0) } }
        // The database's anchors catch what the chain cannot: the newest record deleted, a middle
        // one deleted and its successor relinked, or a record appended at the head by hand.
        if let anchors {
            let folder = { (kind: String) in kind == DrillRecord.chainKind ? DrillRecord.folder : "\(EvidenceVerifier.folder)/\(kind)" }
            let problems = RecordChainAnchor.check(anchors, storage: storage, folder: folder)
                + (try RecordChainAnchor.unanchored(anchors, storage: storage, folder: folder))
            findings += problems.map { ComplianceReport.Finding(.evidence, .error, $0) }
        }
        return EvidenceFacts(chains: chains, findings: findings, anchored: anchors?.count)
    }
}
