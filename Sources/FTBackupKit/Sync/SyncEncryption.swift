import Foundation

/// How `sync` treats an encrypted repository: it copies the ciphertext as stored, with the key records
/// (`keys/`) and `encryption.json`, so the second repository opens with the same master key and the key
/// never has to reach it; the copy is checked by decrypting it (every segment authenticates) against the
/// SHA-256 the source's manifests recorded.
///
/// It exists so that an off-site copy of an encrypted repository is never written in plaintext, and so that
/// the two repositories cannot end up under different keys: a second repository encrypted with another key
/// (say, before a `key rotate` was run on it too) or in the middle of a rotation is refused (exit 77), as is
/// an encrypted second repository for a plain one.
struct SyncEncryption {
    /// The source's master key (nil: the source is not encrypted).
    let master: MasterKey?
    /// The source's `encryption.json`, when it has one.
    let marker: RepositoryEncryptionMarker?

    /// Refuses the pair unless the destination has no marker or the source's key.
    static func check(source: any RepositoryStorage, sourceStored: any RepositoryStorage, destinationStored: any RepositoryStorage) throws -> SyncEncryption {
        let sourceMarker = try RepositoryEncryptionMarker.read(sourceStored)
        let destinationMarker = try RepositoryEncryptionMarker.read(destinationStored)
        let master = (source as? EncryptedStorage)?.keyStore.master
        if let theirs = destinationMarker {
            guard let ours = sourceMarker, let master else {
                throw FTBackupError(.usage, "repository \(destinationStored.location) is encrypted (key id \(theirs.masterKeyId)) and \(sourceStored.location) is not: refused",
                                    hint: "sync a plain repository to a plain second repository (or an empty one)")
            }
            if let from = theirs.rotatingFrom {
                throw FTBackupError(.permission, "repository \(destinationStored.location) is in the middle of a key rotation (from key id \(from) to \(theirs.masterKeyId))",
                                    hint: "finish it there with ftbackup key rotate --repo \(destinationStored.location), then sync again")
            }
            guard theirs.masterKeyId == ours.masterKeyId else {
                throw FTBackupError(.permission, "repository \(destinationStored.location) is encrypted with key id \(theirs.masterKeyId), \(sourceStored.location) with key id \(ours.masterKeyId): refused",
                                    hint: "after a key rotate, rotate the second repository too (ftbackup key rotate --repo \(destinationStored.location)), then sync")
            }
            try theirs.authenticate(master, location: destinationStored.location)
        }
        return SyncEncryption(master: sourceMarker == nil ? nil : master, marker: sourceMarker)
    }

    /// The destination as commands read it (decrypting when it is, or is about to be, encrypted).
    func reading(_ destinationStored: any RepositoryStorage) -> any RepositoryStorage {
        guard let master else { return destinationStored }
        return EncryptedStorage(base: destinationStored, master: master)
    }

    /// `encryption.json`, then every key record the destination lacks or holds otherwise, before any data:
    /// a unit's files are of no use there without its record, and records without the marker refuse the repository.
    func copyKeyMaterial(from sourceStored: any RepositoryStorage, to destinationStored: any RepositoryStorage,
                         report: inout RepositorySync.Report) throws {
        guard marker != nil else { return }
        let records = try sourceStored.list(EncryptionUnit.keysFolder).filter { !$0.isDirectory && $0.path.hasSuffix(".json") && !$0.path.contains(".tmp-") }
        try copyMarker(from: sourceStored, to: destinationStored, report: &report)
        for entry in records {
            let bytes = try sourceStored.readAll(entry.path)
            if (try? destinationStored.readAll(entry.path)) == bytes {
                report.keptFiles += 1
                continue
            }
            try destinationStored.writeAll(entry.path, bytes)
            report.copiedFiles += 1
            report.copiedBytes += Int64(bytes.count)
        }
    }

    /// Reads the copy of `path` back through decryption: it must authenticate and hash to what the source's manifest
    /// recorded; a copy that does not is removed (exit 65).
    func verifyPlaintext(_ path: String, in destinationStored: any RepositoryStorage, expectedSHA256: String) throws {
        guard let master else { return }
        let plaintext = try RepositorySync.sha256(of: path, in: EncryptedStorage(base: destinationStored, master: master))
        guard plaintext == expectedSHA256 else {
            try? destinationStored.remove(path)
            throw FTBackupError(.dataError, "\(path) copied to \(destinationStored.location) decrypts to data that does not match the SHA-256 its manifest recorded: removed",
                                hint: "run ftbackup verify on the source repository; take a new backup before syncing again")
        }
    }
}
