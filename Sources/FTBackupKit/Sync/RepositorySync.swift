import Crypto
import Foundation

/// Copies a repository into a second one (`ftbackup sync --to REPO`): the off-site copy of the 3-2-1 rule.
///
/// Every complete backup, change segment, lifecycle archive, partition export, evidence record and
/// drill record that the destination lacks is copied: data files (`*.zst`) first, then the records
/// and manifests that make them count, so an interrupted sync never leaves a manifest before its data.
/// Every record is checked first (``SyncRecordCheck``: parses, manifests decode, chain links hold). Each file is
/// hashed (SHA-256) as it is read, checked against its manifest, and read back from the destination to compare;
/// a data file already there is kept only if it still has its manifest's SHA-256 (else it is copied again), a
/// record that differs is rewritten (archive and partition manifests move from pending to committed). A killed sync is
/// resumed by running it again. Nothing a manifest references is ever removed from the destination (retention
/// applies to each repository: `ftbackup expire --repo`); what killed runs left there (unfinished uploads, temporary
/// files, backups and segments without a manifest) is cleared first, as a backup clears its own. Incomplete backups,
/// segment data without its manifest, locks and the scheduler's state are not copied. An encrypted repository is
/// copied as ciphertext, with its key
/// records and `encryption.json` (``SyncEncryption``).
public enum RepositorySync {
    public struct Report: Codable, Sendable {
        public var from: String
        public var to: String
        public var copiedFiles = 0
        public var copiedBytes: Int64 = 0
        public var keptFiles = 0
        public var skipped: [String] = []
        /// What a killed sync (or run) had left in the destination, removed before copying (``RepositoryCleanup``).
        public var removedLeftovers: [String] = []
    }

    public static let failpointAfterFirstDataFile = "sync.after-first-data-file"

    public static func run(from sourcePath: String, to destinationPath: String) throws -> Report {
        guard sourcePath != destinationPath else {
            throw FTBackupError(.usage, "sync --to names the repository itself (\(sourcePath))", hint: "give a second repository")
        }
        let readLock = try RepositoryLock.acquire(repositoryRoot: sourcePath, kind: .read, exclusive: false, command: "sync")
        defer { readLock.release() }
        let writeLock = try RepositoryLock.acquire(repositoryRoot: destinationPath, kind: .write, exclusive: true, command: "sync")
        defer { writeLock.release() }
        // An encrypted source opens only with its key (exit 77); its ciphertext is copied as stored (``SyncEncryption``).
        let source = try RepositoryStorageFactory.open(sourcePath)
        let sourceStored = (source as? EncryptedStorage)?.base ?? source
        let destinationStored = try RepositoryStorageFactory.openPlain(destinationPath)
        let encryption = try SyncEncryption.check(source: source, sourceStored: sourceStored, destinationStored: destinationStored)
        let destination = encryption.reading(destinationStored)
        // Both must hold the same database's history (or the destination none yet).
        if let theirs = try RepositorySource.read(destination), let ours = try RepositorySource.read(source), theirs.key != ours.key {
            throw FTBackupError(.usage, "repository \(destination.location) belongs to \(theirs.key), \(source.location) to \(ours.key): refused",
                                hint: "sync each database to a second repository of its own")
        }
        var report = Report(from: source.location, to: destination.location)
        var files: [StorageEntry] = []
        try collect("", in: sourceStored, into: &files, skipped: &report.skipped)
        report.removedLeftovers = try removeLeftovers(in: destination, path: destinationPath, copying: files)
        let (data, records) = (files.filter { $0.path.hasSuffix(".zst") }, files.filter { !$0.path.hasSuffix(".zst") })
        // Every record is read (decrypted) and checked before anything is copied (``SyncRecordCheck``).
        var recordBytes: [String: [UInt8]] = [:]
        for record in records { recordBytes[record.path] = try source.readAll(record.path) }
        try SyncRecordCheck.check(recordBytes, in: source)
        try SyncRecordCheck.checkListedFiles(recordBytes, present: Set(files.map(\.path)), in: source)
        let expected = SyncExpectedDigests.collect(records: recordBytes, dataPaths: Set(data.map(\.path)))
        try encryption.copyKeyMaterial(from: sourceStored, to: destinationStored, report: &report)
        let encrypted = encryption.master != nil
        var dataCopied = 0
        for file in data {
            // A same-size copy stays only if it still has its manifest's SHA-256 (read through the destination's decryption).
            if try destinationStored.exists(file.path), try destinationStored.size(of: file.path) == file.size,
               try keeps(file.path, in: destination, expectedSHA256: expected[file.path]) {
                report.keptFiles += 1
                continue
            }
            // Plain: checked against the manifest's SHA-256 before commit; encrypted: the copy is decrypted and checked after.
            try copy(file.path, from: sourceStored, to: destinationStored, expectedSHA256: encrypted ? nil : expected[file.path])
            if encrypted, let sha256 = expected[file.path] { try encryption.verifyPlaintext(file.path, in: destinationStored, expectedSHA256: sha256) }
            report.copiedFiles += 1
            report.copiedBytes += file.size
            dataCopied += 1
            if dataCopied == 1 { Failpoint.hit(failpointAfterFirstDataFile) }
        }
        // Records last, the backups' and archives' manifests after everything else of theirs.
        for file in records.sorted(by: { ($0.path.hasSuffix("manifest.json") ? 1 : 0, $0.path) < ($1.path.hasSuffix("manifest.json") ? 1 : 0, $1.path) }) {
            if encrypted {
                // Ciphertext as stored (its plaintext was checked above).
                if try destinationStored.exists(file.path), try destinationStored.readAll(file.path) == (try sourceStored.readAll(file.path)) {
                    report.keptFiles += 1
                    continue
                }
                try copy(file.path, from: sourceStored, to: destinationStored)
            } else {
                // The bytes checked are the bytes copied.
                let bytes = recordBytes[file.path]!
                if try destinationStored.exists(file.path), try destinationStored.readAll(file.path) == bytes {
                    report.keptFiles += 1
                    continue
                }
                try copy(file.path, bytes: bytes, to: destinationStored)
            }
            report.copiedFiles += 1
            report.copiedBytes += file.size
        }
        return report
    }

    /// Clears what killed runs left in the destination, under its write lock (and its changes lock when free): no
    /// backup runs there to do it, so a sync killed mid-backup would otherwise leave an incomplete backup (which
    /// fails `verify` there) for good once the first no longer holds it, and its unfinished uploads billed. A backup
    /// or segment the source holds complete (in `copying`) stays: its copy resumes where the killed sync stopped.
    static func removeLeftovers(in destination: any RepositoryStorage, path: String, copying: [StorageEntry]) throws -> [String] {
        let resumable = Set(copying.map(\.path) + copying.compactMap { file in
            let parts = file.path.split(separator: "/")
            return parts.count > 2 && parts[0] == Repository.backupsFolder ? "\(parts[0])/\(parts[1])" : nil
        })
        var changesLock: RepositoryLock?
        do {
            changesLock = try RepositoryLock.acquire(repositoryRoot: path, kind: .changes, exclusive: true, command: "sync")
        } catch let error as FTBackupError where error.status == .locked {}
        defer { changesLock?.release() }
        var swept = RepositoryCleanup.Report(repository: destination.location, dryRun: false, olderThanMinutes: nil)
        try RepositoryCleanup.sweep(Repository(storage: destination), cutoff: nil, mayTouchChanges: changesLock != nil, dryRun: false,
                                    resumable: resumable, into: &swept)
        return swept.abortedUploads.map { "upload of \($0.path)" } + swept.removedTemporaryFiles
            + swept.removedIncompleteBackups.map { Repository(storage: destination).backupFolder($0) } + swept.removedIncompleteSegments
    }

    /// Every file worth copying under `folder`, depth first.
    static func collect(_ folder: String, in storage: any RepositoryStorage, into files: inout [StorageEntry], skipped: inout [String]) throws {
        let entries = try storage.list(folder)
        // A backup, archive batch or partition export counts only with its manifest: an unfinished one stays behind.
        let depth = folder.split(separator: "/").count
        let isUnit = (depth == 2 && (folder.hasPrefix("backups/") || folder.hasPrefix("archive/")))
            || (depth == 3 && folder.hasPrefix("lifecycle/partitions/"))
        if isUnit && !entries.contains(where: { $0.path == "\(folder)/manifest.json" }) {
            skipped.append(folder)
            return
        }
        // A change segment counts only with its manifest: data without one is a pass being sealed or a killed one's.
        let sealed = Set(entries.filter { $0.path.hasSuffix(".json") }.map { String($0.path.dropLast(5)) })
        for entry in entries {
            if folder == ChangeSegmentManifest.folder, entry.path.hasSuffix(".seg.zst"), !sealed.contains(String(entry.path.dropLast(8))) {
                skipped.append(entry.path)
                continue
            }
            let name = (entry.path as NSString).lastPathComponent
            if folder.isEmpty && ["locks", "schedule", "keys", "encryption.json"].contains(name) { continue }
            if name.contains(".tmp-") || name.hasPrefix(".ftbackup-probe") { continue }
            if entry.isDirectory { try collect(entry.path, in: storage, into: &files, skipped: &skipped) } else { files.append(entry) }
        }
    }

    /// True when the destination's copy of a data file (same size as the source's) can stay: it still has the
    /// SHA-256 the manifest recorded (read back whole: data files never change, a same-size one may have rotted).
    /// A file no manifest describes is kept on its size, as before.
    static func keeps(_ path: String, in destination: any RepositoryStorage, expectedSHA256: String?) throws -> Bool {
        guard let expectedSHA256 else { return true }
        return try sha256(of: path, in: destination) == expectedSHA256
    }

    /// Lowercase hex SHA-256 of a stored file, streamed.
    static func sha256(of path: String, in storage: any RepositoryStorage) throws -> String {
        let reader = try storage.openRead(path)
        defer { reader.close() }
        var digest = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
            if count == 0 { break }
            buffer.withUnsafeBytes { digest.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
        return digest.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Writes a record whose bytes were read (and checked) already, then reads it back to compare.
    static func copy(_ path: String, bytes: [UInt8], to destination: any RepositoryStorage) throws {
        try destination.writeAll(path, bytes)
        guard try destination.readAll(path) == bytes else {
            try? destination.remove(path)
            throw FTBackupError(.dataError, "the copy of \(path) in \(destination.location) does not match its source",
                                hint: "run the sync again; if it persists, check the destination store")
        }
    }

    /// Copies one file, hashing it as it streams, then reads the copy back and compares the hashes. With
    /// `expectedSHA256` (what the source's manifest recorded), a source that no longer matches it is never committed.
    static func copy(_ path: String, from source: any RepositoryStorage, to destination: any RepositoryStorage,
                     expectedSHA256: String? = nil) throws {
        let reader = try source.openRead(path)
        defer { reader.close() }
        let writer = try destination.openWrite(path)
        var digest = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        do {
            while true {
                let count = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
                if count == 0 { break }
                try buffer.withUnsafeBytes { bytes in
                    let chunk = UnsafeRawBufferPointer(rebasing: bytes[0..<count])
                    digest.update(bufferPointer: chunk)
                    try writer.write(chunk)
                }
            }
            if let expectedSHA256, digest.finalize().map({ String(format: "%02x", $0) }).joined() != expectedSHA256 {
                throw FTBackupError(.dataError, "\(source.location)/\(path) no longer matches the SHA-256 its manifest recorded: not copied",
                                    hint: "run `ftbackup verify --repo \(source.location)`; take a new backup before syncing again")
            }
            try writer.commit()
        } catch {
            writer.abort()
            throw error
        }
        let expected = Array(digest.finalize())
        var check = SHA256()
        let back = try destination.openRead(path)
        defer { back.close() }
        while true {
            let count = try buffer.withUnsafeMutableBytes { try back.read(into: $0) }
            if count == 0 { break }
            buffer.withUnsafeBytes { check.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
        guard Array(check.finalize()) == expected else {
            try? destination.remove(path)
            throw FTBackupError(.dataError, "the copy of \(path) in \(destination.location) does not match its source (SHA-256)",
                                hint: "run the sync again; if it persists, check the destination store")
        }
    }
}
