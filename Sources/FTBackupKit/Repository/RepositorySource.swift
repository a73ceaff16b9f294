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
    /// Oids the database had before it was dropped and created again under its name and the
    /// repository was re-attached to it (`backup --type full --reattach`), oldest first.
    public var formerOids: [Int64]?

    public var key: SourceKey { SourceKey(source) }

    /// The recorded source, or nil when the repository has none yet.
    public static func read(_ storage: any RepositoryStorage) throws -> RepositorySource? {
        guard try storage.exists(fileName) else { return nil }
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
    ///
    /// The same name on the same cluster with another oid is another database: the one the repository
    /// belongs to was dropped (or renamed away) and this one created under its name. It is refused
    /// too, unless `reattach` (a full backup with `--reattach`), which records it as the source from
    /// now on and keeps the former oid in `formerOids`: the former database's backups stay readable,
    /// and its change chain ends there (the new database's starts with that full).
    @discardableResult
    public static func claim(repositoryPath: String, identity: DatabaseIdentity, command: String,
                             record: Bool = true, reattach: Bool = false) throws -> RepositorySource? {
        let storage = try RepositoryStorageFactory.open(repositoryPath)
        let key = SourceKey(identity)
        // Two first writers (a follower and a full) must not both record: one at a time, briefly.
        let lock = record ? try SourceFileLock(repositoryRoot: repositoryPath) : nil
        defer { lock?.release() }
        if let recorded = try read(storage) {
            guard recorded.key == key else { throw refusal(storage, belongsTo: recorded.key.description, connected: key) }
            guard recorded.source.databaseOid != identity.databaseOid else { return recorded }
            guard reattach else {
                throw FTBackupError(.usage, "repository \(storage.location) belongs to database \(recorded.source.database) with oid \(recorded.source.databaseOid); "
                                    + "this run connects to a database of that name with oid \(identity.databaseOid): it was dropped and created again (or another database renamed to it)",
                                    hint: "use a new repository for it (--repo); if it is meant to continue this one (a restore of it), take a full backup with ftbackup backup --type full --reattach")
            }
            guard record else { return recorded }
            var moved = recorded
            moved.formerOids = (recorded.formerOids ?? []) + [recorded.source.databaseOid]
            moved.source = identity
            moved.recordedAt = Date()
            moved.recordedBy = "\(command) --reattach (oid \(recorded.source.databaseOid) → \(identity.databaseOid))"
            try storage.writeAll(fileName, Array(try JSONOutput.encode(moved).utf8) + [0x0A])
            return moved
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
    private let remote: RepositoryLock?

    init(repositoryRoot: String) throws {
        if S3Location.isS3(repositoryRoot) {
            remote = try RepositoryLock.waitS3(repositoryRoot: repositoryRoot, file: "source.lock", command: "record source")
            fd = -1
            return
        }
        remote = nil
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
        remote?.release()
        guard fd >= 0 else { return }
        flock(fd, LOCK_UN)
        close(fd)
    }
}
