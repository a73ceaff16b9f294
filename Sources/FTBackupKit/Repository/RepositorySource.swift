import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The one source database a repository belongs to, recorded in `source.json` at its root.
///
/// Backups and change segments of two databases in one repository would be mixed by every reader
/// (a restore picking the other database's newest full, `restore --at` merging two change streams
/// by LSN, expiry counting one database's full as the other's successor). So the first writer
/// records its source (``SourceKey``: system identifier and database name; the oid is kept for
/// information), and every later writer must connect to that source or is refused (exit 64). A
/// repository written before this file existed adopts the source of the backups and segments it
/// holds on its next write, and is refused if they disagree. Readers never write it: they compare
/// every backup and segment with it (``RepositorySourceView``).
public struct RepositorySource: Codable, Sendable, Equatable {
    public static let fileName = "source.json"
    public static let currentFormatVersion = 1

    public var formatVersion: Int
    /// The database as the first writer saw it (oid and system identifier included).
    public var source: DatabaseIdentity
    public var recordedAt: Date
    /// The command that recorded it, and whether the source was adopted from existing backups.
    public var recordedBy: String

    public var key: SourceKey { SourceKey(source) }

    /// The recorded source, or nil when the repository has none yet.
    public static func read(_ storage: any RepositoryStorage) throws -> RepositorySource? {
        guard storage.exists(fileName) else { return nil }
        do {
            return try BackupManifest.decoder().decode(RepositorySource.self, from: Data(try storage.readAll(fileName)))
        } catch {
            throw FTBackupError(.dataError, "repository source file \(storage.location)/\(fileName) is unreadable: \(error)",
                                hint: "restore it from a copy of the repository; it names the one database this repository belongs to")
        }
    }

    /// Every writer calls this once connected and before it writes anything: records `identity` as
    /// the repository's source at first use, or refuses (exit 64) a database that is not its source.
    /// `record: false` (dry runs) only checks.
    @discardableResult
    public static func claim(repositoryPath: String, identity: DatabaseIdentity, command: String,
                             record: Bool = true) throws -> RepositorySource? {
        let storage = LocalStorage(root: repositoryPath)
        let key = SourceKey(identity)
        // Two first writers (a follower and a full) must not both record: one at a time, briefly.
        let lock = record ? try SourceFileLock(repositoryRoot: repositoryPath) : nil
        defer { lock?.release() }
        if let recorded = try read(storage) {
            guard recorded.key == key else { throw refusal(storage, belongsTo: recorded.key.description, connected: key) }
            return recorded
        }
        // An older repository: its existing backups and segments say whose it is.
        let view = try RepositorySourceView.inferred(Repository(storage: storage))
        if let theirs = view.key, theirs != key {
            throw refusal(storage, belongsTo: "\(theirs) (its backups and change segments; no \(fileName) yet)", connected: key)
        }
        if let foreign = view.foreignRecords(for: key).first {
            throw refusal(storage, belongsTo: "another source too (\(foreign))", connected: key)
        }
        guard record else { return nil }
        let adopted = view.key != nil
        let source = RepositorySource(formatVersion: currentFormatVersion, source: identity, recordedAt: Date(),
                                      recordedBy: adopted ? "\(command), adopted from the existing backups" : command)
        try storage.writeAll(fileName, Array(try JSONOutput.encode(source).utf8) + [0x0A])
        return source
    }

    static func refusal(_ storage: any RepositoryStorage, belongsTo: String, connected: SourceKey) -> FTBackupError {
        FTBackupError(.usage, "repository \(storage.location) belongs to \(belongsTo); this run connects to \(connected)",
                      hint: "give each database a repository of its own (--repo); a repository is never shared")
    }
}

/// A short exclusive `flock(2)` on `locks/source.lock` that waits (recording the source takes
/// milliseconds), so that two first writers cannot both record a source.
struct SourceFileLock {
    private let fd: Int32

    init(repositoryRoot: String) throws {
        let folder = "\(repositoryRoot)/locks"
        try LocalStorage.makeDirectories(folder)
        let path = "\(folder)/source.lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LocalStorage.failure("cannot open lock file", path, errno) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else {
                let code = errno
                close(fd)
                throw LocalStorage.failure("cannot lock", path, code)
            }
        }
    }

    func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
