import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The wrapped data keys of a repository (`keys/*.json`, plain; a folder or a bucket), one per unit, and
/// the cache of those unwrapped in this process.
///
/// It exists so that a unit's key record is on disk, durable, before the first encrypted byte of the
/// unit (created exclusively, ``ExclusiveCreation``: two writers of one unit agree on one key), and so that each record is
/// unwrapped once per process. Thread-safe: backups write their table files in parallel.
final class KeyStore: @unchecked Sendable {
    let base: any RepositoryStorage
    let master: MasterKey
    private let lock = NSLock()
    private var records: [String: DataKeyRecord] = [:]
    private var keys: [String: SymmetricKey] = [:]
    /// `encryption.json` as last read and authenticated (nil: not read yet).
    private var marker: RepositoryEncryptionMarker??

    init(base: any RepositoryStorage, master: MasterKey) {
        self.base = base
        self.master = master
    }

    /// The unit's record, or nil when the unit has none (it was written before encryption was on).
    func record(_ unit: String) throws -> DataKeyRecord? {
        try lock.withLock { try recordLocked(unit) }
    }

    private func recordLocked(_ unit: String) throws -> DataKeyRecord? {
        if let cached = records[unit] { return cached }
        let path = EncryptionUnit.recordPath(unit)
        guard try base.exists(path) else { return nil }
        let record = try DataKeyRecord.decode(try base.readAll(path), shown: "\(base.location)/\(path)")
        guard record.unit == unit else {
            throw FTBackupError(.dataError, "key record \(base.location)/\(path) belongs to \(record.unit), not \(unit)",
                                hint: "the keys/ folder was changed by hand; restore it from a copy of the repository")
        }
        records[unit] = record
        return record
    }

    /// The unit's data key, unwrapped with the master key.
    func dataKey(_ record: DataKeyRecord) throws -> SymmetricKey {
        try lock.withLock { try dataKeyLocked(record) }
    }

    private func dataKeyLocked(_ record: DataKeyRecord) throws -> SymmetricKey {
        if let key = keys[record.unit], records[record.unit] == record { return key }
        let key = try record.unwrap(master, shown: "\(base.location)/\(EncryptionUnit.recordPath(record.unit))")
        records[record.unit] = record
        keys[record.unit] = key
        return key
    }

    /// The key a write into `unit` uses: its record's, or (for a new unit) a new random key whose record
    /// is made durable first; nil when the unit already holds plain files (written before encryption
    /// was turned on: it stays plain, so that its files keep one form).
    func keyForWriting(_ unit: String) throws -> (DataKeyRecord, SymmetricKey)? {
        try lock.withLock {
            if let record = try recordLocked(unit) { return (record, try dataKeyLocked(record)) }
            if try holdsPlainFiles(unit) { return nil }
            try markerForNewRecord()
            let key = SymmetricKey(size: .bits256)
            let record = try createExclusively(try DataKeyRecord.wrap(key, unit: unit, master: master))
            records[unit] = record
            if record.dataKeyId == DataKeyRecord.dataKeyID(key) {
                keys[unit] = key
                return (record, key)
            }
            // Another process created the unit's record first: use its key.
            return (record, try dataKeyLocked(record))
        }
    }

    /// Forgets the unit's record after the unit is gone (removed with it).
    func forget(_ unit: String) throws {
        try lock.withLock {
            records[unit] = nil
            keys[unit] = nil
            try base.remove(EncryptionUnit.recordPath(unit))
        }
    }

    private func holdsPlainFiles(_ unit: String) throws -> Bool {
        switch EncryptionUnit.shape(of: unit) {
        case .file: return false
        case .segment: return try EncryptionUnit.segmentFiles(unit).contains { try base.exists($0) }
        case .folder: return try !allFiles(unit).isEmpty
        }
    }

    /// Every file under `folder` (recursively), temporary files of unfinished writes left out.
    func allFiles(_ folder: String) throws -> [String] {
        try base.list(folder).flatMap { entry -> [String] in
            if entry.isDirectory { return try allFiles(entry.path) }
            return entry.path.contains(".tmp-") ? [] : [entry.path]
        }
    }

    /// True when a plain file of `unit` (which has no key record) may be read: the repository is not
    /// encrypted yet, or the unit was there, plain, when encryption was turned on (``RepositoryEncryptionMarker/plainUnits``).
    func mayBePlain(_ unit: String) throws -> Bool {
        try lock.withLock {
            if marker == nil { marker = .some(try RepositoryEncryptionMarker.read(base)) }
            guard let current = marker ?? nil else { return true }
            if current.masterKeyId == master.id && current.rotatingFrom == nil { try current.authenticate(master, location: base.location) }
            return current.plainUnits.contains(unit)
        }
    }

    /// Before a new record is wrapped: `encryption.json` read again, so that a run opened before a key
    /// rotate finished never wraps a new data key with the retired key (exit 77); the first encrypted
    /// unit of a repository writes it, listing the units that are plain. A repository whose key records
    /// are there without it is refused (exit 65): it was removed.
    private func markerForNewRecord() throws {
        if let current = try RepositoryEncryptionMarker.read(base) {
            try RepositoryStorageFactory.admit(current, key: master, path: base.location)
            marker = .some(current)
            return
        }
        // Records without the marker: another run may have just made the first unit (it writes the
        // marker before its record), so the marker is read once more before the repository is refused.
        if try !allRecordPaths().isEmpty {
            guard let current = try RepositoryEncryptionMarker.read(base) else { throw RepositoryStorageFactory.missingMarker(base.location) }
            try RepositoryStorageFactory.admit(current, key: master, path: base.location)
            marker = .some(current)
            return
        }
        let created = RepositoryEncryptionMarker(masterKeyId: master.id, plainUnits: try unitsHoldingFiles())
        try created.write(base, sealedBy: master)
        marker = .some(created)
    }

    /// Every unit that holds a file now (before the first encrypted unit: all of them are plain).
    private func unitsHoldingFiles() throws -> [String] {
        var units = Set<String>()
        for entry in try base.list("") where entry.path != EncryptionUnit.keysFolder && entry.path != "locks" {
            let files = entry.isDirectory ? try allFiles(entry.path) : (entry.path.contains(".tmp-") ? [] : [entry.path])
            for file in files { if let unit = EncryptionUnit.of(file) { units.insert(unit) } }
        }
        return units.sorted()
    }

    /// Creates the record only if the unit has none (``ExclusiveCreation``): if one appeared meanwhile,
    /// that one is kept and returned.
    private func createExclusively(_ record: DataKeyRecord) throws -> DataKeyRecord {
        let path = EncryptionUnit.recordPath(record.unit)
        if try ExclusiveCreation.create(path, try record.encoded(), in: base) { return record }
        return try DataKeyRecord.decode(try base.readAll(path), shown: "\(base.location)/\(path)")
    }

    /// Every key record in the repository (rotation).
    func allRecordPaths() throws -> [String] {
        try base.list(EncryptionUnit.keysFolder).filter { !$0.isDirectory && $0.path.hasSuffix(".json") && !$0.path.contains(".tmp-") }.map(\.path)
    }
}
