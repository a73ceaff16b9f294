import Foundation

/// `ftbackup key rotate`: re-wraps every data key of a repository with a new master key, without
/// rewriting any data.
///
/// It exists so that a master key can be retired (a leaked key, a departing operator, a yearly
/// rotation). Each record is replaced atomically (in a folder: temporary file, fsync, rename; in a bucket:
/// one PUT, which replaces an object whole); `encryption.json`
/// says a rotation is under way from its first write until the last record is done, so that a killed
/// rotation is finished by running it again (records already wrapped by the new key are skipped) and
/// no other command runs on a half-rotated repository. It holds every repository lock, so nothing
/// creates a record under the old key meanwhile. Afterwards the old key opens nothing.
public enum KeyRotation {
    public struct Report: Codable, Sendable, Equatable {
        public var oldKeyId: String
        public var newKeyId: String
        /// Records re-wrapped by this run.
        public var rewrapped: Int
        /// Records a previous, interrupted run had already re-wrapped.
        public var alreadyNew: Int
    }

    public static let failpointAfterFirstRecord = "key-rotate-after-first-record"

    public static func rotate(repositoryPath: String, from old: MasterKey, to new: MasterKey) throws -> Report {
        guard old.id != new.id else {
            throw FTBackupError(.usage, "the new key is the same key (id \(old.id))", hint: "create a new one with ftbackup key create --key-file PATH")
        }
        var locks: [RepositoryLock] = []
        defer { locks.forEach { $0.release() } }
        for kind in [RepositoryLock.Kind.run, .write, .changes, .read] {
            locks.append(try RepositoryLock.acquire(repositoryRoot: repositoryPath, kind: kind, exclusive: true, command: "key rotate"))
        }
        let stored = try RepositoryStorageFactory.openPlain(repositoryPath)
        guard let marker = try RepositoryEncryptionMarker.read(stored) else {
            throw FTBackupError(.usage, "repository \(repositoryPath) holds nothing encrypted: nothing to rotate",
                                hint: "encryption starts with the first command run with a key (--key-file)")
        }
        if let from = marker.rotatingFrom {
            guard from == old.id, marker.masterKeyId == new.id else {
                throw FTBackupError(.permission, "a rotation from key id \(from) to \(marker.masterKeyId) is under way; the keys given are \(old.id) and \(new.id)",
                                    hint: "run ftbackup key rotate with the keys of the rotation under way to finish it")
            }
            try marker.authenticate(new, location: repositoryPath)
        } else if marker.masterKeyId == new.id {
            // Run again after it finished (unsure whether a kill came before its end): checks every
            // record against the new key and changes nothing.
            try marker.authenticate(new, location: repositoryPath)
        } else {
            guard marker.masterKeyId == old.id else {
                throw FTBackupError(.permission, "the key given (id \(old.id)) is not repository \(repositoryPath)'s key (id \(marker.masterKeyId))",
                                    hint: "give the repository's current key with --key-file and the new one with --new-key-file")
            }
            try marker.authenticate(old, location: repositoryPath)
            try RepositoryEncryptionMarker(masterKeyId: new.id, rotatingFrom: old.id, plainUnits: marker.plainUnits).write(stored, sealedBy: new)
        }
        // Temporary records a killed run left in a folder (every lock is held: no writer is making one now).
        for entry in try stored.list(EncryptionUnit.keysFolder) where !entry.isDirectory && entry.path.contains(".tmp-") {
            try stored.remove(entry.path)
        }
        let store = KeyStore(base: stored, master: old)
        var report = Report(oldKeyId: old.id, newKeyId: new.id, rewrapped: 0, alreadyNew: 0)
        for path in try store.allRecordPaths() {
            let shown = "\(stored.location)/\(path)"
            let record = try DataKeyRecord.decode(try stored.readAll(path), shown: shown)
            guard path == EncryptionUnit.recordPath(record.unit) else {
                throw FTBackupError(.dataError, "key record \(shown) belongs to \(record.unit)", hint: "the keys/ folder was changed by hand")
            }
            if record.masterKeyId == new.id {
                _ = try record.unwrap(new, shown: shown)
                report.alreadyNew += 1
                continue
            }
            let rewrapped = try record.rewrapped(try record.unwrap(old, shown: shown), by: new)
            try stored.writeAll(path, try rewrapped.encoded())
            report.rewrapped += 1
            if report.rewrapped == 1 { Failpoint.hit(failpointAfterFirstRecord) }
        }
        try RepositoryEncryptionMarker(masterKeyId: new.id, plainUnits: marker.plainUnits).write(stored, sealedBy: new)
        return report
    }
}
