import Foundation

/// When each archive and change segment was last verified and how it went, read from the records
/// verify keeps (``VerificationResultRecord``) without reading any data.
///
/// It exists so that `info` and `lifecycle list` can show an archive or segment that FAILED
/// verification (`verify-failed`) until it is dealt with, and how fresh each check is.
public struct VerificationOverview: Codable, Sendable {
    public enum Verification: String, Codable, Sendable {
        case verified
        case verifyFailed = "verify-failed"
        case unverified
    }

    public struct Item: Codable, Sendable {
        public var kind: String
        public var name: String
        public var verification: Verification
        public var lastVerifiedAt: Date?
        /// What the failed check found, one line per bad file.
        public var problems: [String]?
    }

    public var archives: [Item]
    public var segments: [Item]

    public var failed: [Item] { (archives + segments).filter { $0.verification == .verifyFailed } }

    public static func read(_ repository: Repository) throws -> VerificationOverview {
        var archives: [Item] = []
        for kind in ArchiveVerifier.kinds { archives += try items(kind, repository.storage) }
        return VerificationOverview(archives: archives, segments: try items(ChangeSegmentManifest.self, repository.storage))
    }

    /// The last check of record `name` of `kind`.
    public static func item<Record: StoredFileRecord>(_ kind: Record.Type, name: String, storage: any RepositoryStorage) -> Item {
        guard let record = VerificationResultRecord.read(kind, name: name, storage: storage) else {
            return Item(kind: kind.recordKind, name: name, verification: .unverified, lastVerifiedAt: nil, problems: nil)
        }
        return Item(kind: kind.recordKind, name: name, verification: record.outcome == .ok ? .verified : .verifyFailed,
                    lastVerifiedAt: record.verifiedAt, problems: record.problems.isEmpty ? nil : record.problems)
    }

    static func items<Record: StoredFileRecord>(_ kind: Record.Type, _ storage: any RepositoryStorage) throws -> [Item] {
        try kind.discover(storage).compactMap { listing in
            if case .incomplete = listing { return nil }
            return item(kind, name: listing.name, storage: storage)
        }
    }
}
