import Foundation

/// Which master key this process uses for its repositories, set once by the command line when it
/// resolves its repository (`--key-file`, `FTBACKUP_KEY_FILE` or the policy's `encryption.key_file`).
///
/// It is a process-wide setting rather than an option threaded through every runner because some
/// twenty places open the repository (backup, restore, verify, lifecycle, drills, the scheduler, the
/// report, …) and all of them must open it the same way; one setting read by the one factory
/// (``Repository/open(_:)``) keeps a forgotten path from writing plain files into an encrypted
/// repository. A key may also be set for one repository path only (tests running in one process).
public enum RepositoryEncryption {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var processKey: MasterKey?
    nonisolated(unsafe) private static var repositoryKeys: [String: MasterKey] = [:]

    /// Uses `key` for every repository (nil: none), or for the repository at `path` only.
    public static func use(_ key: MasterKey?, forRepository path: String? = nil) {
        lock.withLock {
            if let path { repositoryKeys[normalized(path)] = key } else { processKey = key }
        }
    }

    static func key(for path: String) -> MasterKey? {
        lock.withLock { repositoryKeys[normalized(path)] ?? processKey }
    }

    private static func normalized(_ path: String) -> String {
        path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    /// Where the key comes from: the option, else the environment, else the policy (nil: no encryption).
    public static func keyFilePath(option: String?, policy: Policy) -> String? {
        if let option, !option.isEmpty { return option }
        if let environment = ProcessInfo.processInfo.environment["FTBACKUP_KEY_FILE"], !environment.isEmpty { return environment }
        return policy.encryptionKeyFile
    }
}

/// Opens the storage of a repository folder, the one way every command does.
public enum RepositoryStorageFactory {
    /// ``S3Storage`` for `s3://BUCKET/PREFIX`, ``LocalStorage`` for a folder, as they are for a repository without
    /// encryption and no key given; ``EncryptedStorage`` over either when a key is configured. A repository that holds encrypted units refuses a
    /// run without its key, with another key, or during an unfinished rotation (exit 77), at once.
    public static func open(_ path: String) throws -> any RepositoryStorage {
        let plain = try openPlain(path)
        let marker = try RepositoryEncryptionMarker.read(plain)
        // (A folder is asked whether keys/ exists first: a repository path that is a file then fails where it is written, exit 73.)
        if marker == nil, try !(plain is LocalStorage) || plain.exists(EncryptionUnit.keysFolder),
           try plain.list(EncryptionUnit.keysFolder).contains(where: { $0.path.hasSuffix(".json") && !$0.path.contains(".tmp-") }) {
            throw missingMarker(path)
        }
        guard let key = RepositoryEncryption.key(for: path) else {
            if let marker {
                throw FTBackupError(.permission, "repository \(path) is encrypted (key id \(marker.masterKeyId)) and no key was given",
                                    hint: "give its key with --key-file, FTBACKUP_KEY_FILE or the policy's encryption.key_file")
            }
            return plain
        }
        if let marker { try admit(marker, key: key, path: path) }
        return EncryptedStorage(base: plain, master: key)
    }

    /// The storage underneath, without encryption: ``S3Storage`` for `s3://BUCKET/PREFIX`, else ``LocalStorage``
    /// (key rotation and sync work on the ciphertext as stored).
    public static func openPlain(_ path: String) throws -> any RepositoryStorage {
        S3Location.isS3(path) ? try S3Storage.open(path) : LocalStorage(root: path)
    }

    /// Refuses a repository `key` does not open now: a rotation under way, another key (exit 77), or an
    /// `encryption.json` that does not authenticate under the key it names (exit 65).
    static func admit(_ marker: RepositoryEncryptionMarker, key: MasterKey, path: String) throws {
        if let from = marker.rotatingFrom {
            throw FTBackupError(.permission, "repository \(path) is in the middle of a key rotation (from key id \(from) to \(marker.masterKeyId))",
                                hint: "run ftbackup key rotate again with both keys to finish it")
        }
        guard marker.masterKeyId == key.id else {
            throw FTBackupError(.permission, "the key given (id \(key.id)) is not repository \(path)'s key (id \(marker.masterKeyId))",
                                hint: "give the repository's key; after a key rotate only the new key opens it")
        }
        try marker.authenticate(key, location: path)
    }

    /// `encryption.json` is gone but key records are there: the repository is encrypted (exit 65).
    static func missingMarker(_ path: String) -> FTBackupError {
        FTBackupError(.dataError, "repository \(path) holds key records (keys/) but no \(RepositoryEncryptionMarker.fileName): it was removed",
                      hint: "restore \(RepositoryEncryptionMarker.fileName) from a copy of the repository; it names the key and the units that may be plain")
    }
}

extension Repository {
    /// The repository at `path`, encrypted or not (``RepositoryStorageFactory``).
    public static func open(_ path: String) throws -> Repository { Repository(storage: try RepositoryStorageFactory.open(path)) }
}

extension RepositoryStorage {
    /// The local folder underneath (locks, key records), if the storage is local.
    public var localBase: LocalStorage? { (self as? LocalStorage) ?? ((self as? EncryptedStorage)?.base as? LocalStorage) }

    /// The bucket underneath (lock objects, unfinished uploads), if the storage is S3.
    public var s3Base: S3Storage? { (self as? S3Storage) ?? ((self as? EncryptedStorage)?.base as? S3Storage) }

    /// True when the unit holding `path` is encrypted.
    public func isEncrypted(_ path: String) -> Bool { (try? (self as? EncryptedStorage)?.isEncrypted(path)) ?? false }
}
