import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A hash chain over the records of one kind (lifecycle run logs and evidence, drill records), as
/// CloudTrail's digest files chain: every new record carries its kind, the file name of the record
/// of its kind written before it and the SHA-256 of that file's exact bytes.
///
/// It exists because these files are what an auditor is shown: a record deleted or edited after
/// the fact must show, not silently vanish. Walking a kind's files (``RecordChainWalk``) finds a
/// deleted record (a link names a file that is gone), an edited one (its successor's digest no
/// longer matches it) and one slipped in later (no link after chaining began, or a second record
/// linked to the same predecessor). The newest record has no successor yet, so only the next one
/// protects it; prune evidence also carries its own seal. It is a plain digest chain, not a
/// signature: it proves the records were not changed by anyone who did not rewrite every later one.
///
/// The chain follows write order: names are start times, and a drill or restore that started first
/// may finish last, so a new record links to the chain's head (the record no other links to), which
/// is the record with the greatest name whenever writers finish in the order they started. Appending
/// holds `locks/records.lock` (blocking, for milliseconds) across "find the head, write the new
/// record", whatever lock the writer already holds: archive, unarchive and prune-audit hold the
/// exclusive write lock, but restores (which write the re-applied retention records) and drills share
/// the read lock, so two of them could otherwise both link to the same head and fork the chain.
/// Rewriting a record (prune evidence after every batch) keeps its place: it links where it did.
public enum RecordChain {
    /// The link a chained record carries at its top level, beside its own fields.
    public struct Link: Codable, Sendable, Equatable {
        public var recordKind: String
        /// The previous record's file name; nil for the first record of its kind.
        public var previousRecord: String?
        public var previousRecordSHA256: String?

        enum CodingKeys: String, CodingKey { case recordKind, previousRecord, previousRecordSHA256 }
    }

    /// A record with its link, encoded as one JSON object (the record's own keys and the link's).
    struct Chained<Value: Encodable>: Encodable {
        var value: Value
        var link: Link

        func encode(to encoder: Encoder) throws {
            try value.encode(to: encoder)
            var container = encoder.container(keyedBy: Link.CodingKeys.self)
            try container.encode(link.recordKind, forKey: .recordKind)
            try container.encode(link.previousRecord, forKey: .previousRecord)
            try container.encode(link.previousRecordSHA256, forKey: .previousRecordSHA256)
        }
    }

    /// The record files of a folder (one kind), in name order.
    public static func names(_ storage: any RepositoryStorage, folder: String) throws -> [String] {
        try storage.list(folder).filter { !$0.isDirectory && $0.path.hasSuffix(".json") && !$0.path.contains(".tmp-") }
            .map { String($0.path.dropFirst(folder.count + 1)) }.sorted()
    }

    /// SHA-256 of bytes, as lowercase hex.
    public static func sha256(_ bytes: [UInt8]) -> String {
        var digest = StreamDigest()
        bytes.withUnsafeBytes { digest.update($0) }
        return digest.hexDigest()
    }

    /// Writes `value` as `folder/name` (atomically, 0600) with its link to the chain's head; a
    /// record written again (prune evidence, rewritten after every batch) keeps its predecessor.
    public static func write<T: Encodable>(_ value: T, kind: String, folder: String, name: String,
                                           storage: any RepositoryStorage, microseconds: Bool = false) throws {
        let lock = try ChainLock(storage)
        defer { lock.release() }
        let previous = try predecessor(of: name, storage: storage, folder: folder)
        let link = Link(recordKind: kind, previousRecord: previous,
                        previousRecordSHA256: try previous.map { sha256(try storage.readAll("\(folder)/\($0)")) })
        try storage.writeAll("\(folder)/\(name)",
                             Array(try JSONOutput.encode(Chained(value: value, link: link), microseconds: microseconds).utf8) + [0x0A])
    }

    /// The record a new (or rewritten) record `name` links to.
    static func predecessor(of name: String, storage: any RepositoryStorage, folder: String) throws -> String? {
        let others = try names(storage, folder: folder).filter { $0 != name }
        if try storage.exists("\(folder)/\(name)"), let existing = link(of: try storage.readAll("\(folder)/\(name)")) {
            return existing.previousRecord
        }
        let links = try Dictionary(uniqueKeysWithValues: others.map { ($0, link(of: try storage.readAll("\(folder)/\($0)"))) })
        let chained = others.filter { links[$0]! != nil }
        guard !chained.isEmpty else { return others.last }
        let linkedTo = Set(chained.compactMap { links[$0]!!.previousRecord })
        // The head: the chained record no other links to (the greatest name if a break left several).
        return chained.filter { !linkedTo.contains($0) }.last ?? chained.last
    }

    /// The link a record file carries, nil when it has none (written before chaining).
    public static func link(of bytes: [UInt8]) -> Link? {
        try? JSONDecoder().decode(Link.self, from: Data(bytes))
    }

    /// Held by a run that rewrites its record (prune evidence after every batch) from its first
    /// write to its last, so that no other run of its kind links to the record while it still
    /// changes: restores re-applying retention share the repository's read lock, and a successor
    /// linked to a record rewritten later would read as an edit. Blocks while another run of the kind
    /// holds it.
    public static func holdKind(_ kind: String, storage: any RepositoryStorage) throws -> ChainLock {
        try ChainLock(storage, file: "records-\(kind.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) || $0 == "-" ? String($0) : "_" }.joined()).lock")
    }

    /// A blocking flock on `locks/records.lock` (or another file of `locks/`) for a local
    /// repository; a waiting lock object on S3 (``S3LeaseLock``).
    public final class ChainLock {
        private var fd: Int32 = -1
        private var remote: RepositoryLock?

        init(_ storage: any RepositoryStorage, file: String = "records.lock") throws {
            if let s3 = storage.s3Base {
                remote = try RepositoryLock.waitS3(repositoryRoot: s3.location, file: file, command: "record chain")
                return
            }
            guard let local = storage.localBase else { return }
            let folder = "\(local.root)/locks"
            try LocalStorage.makeDirectories(folder)
            let path = "\(folder)/\(file)"
            fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw LocalStorage.failure("cannot open lock file", path, errno) }
            while flock(fd, LOCK_EX) != 0 {
                guard errno == EINTR else {
                    let code = errno
                    close(fd)
                    fd = -1
                    throw LocalStorage.failure("cannot lock", path, code)
                }
            }
        }

        public func release() {
            remote?.release()
            remote = nil
            guard fd >= 0 else { return }
            flock(fd, LOCK_UN)
            close(fd)
            fd = -1
        }

        deinit { release() }
    }
}
