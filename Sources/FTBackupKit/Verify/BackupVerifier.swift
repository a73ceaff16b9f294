import Foundation

/// Reads every file of a backup and checks it against the manifest: size, SHA-256, and that it
/// decompresses whole to the recorded length.
///
/// It exists because a backup is only as good as the last time it was read back: `verify` (and
/// every restore, before it touches its target) finds a flipped bit or a truncated file and names it.
public enum BackupVerifier {
    public struct FileResult: Codable, Sendable {
        public var path: String
        public var ok: Bool
        public var problem: String?
    }

    public struct BackupResult: Codable, Sendable {
        public var label: String
        public var status: Repository.Entry.Status
        public var ok: Bool
        public var files: Int
        public var bytes: Int64
        public var badFiles: [FileResult]
        public var problem: String?
    }

    /// Verifies one backup; `decompress: false` checks only sizes and digests (restore's fast pre-check).
    /// Decompressed, a binary COPY data file is also walked tuple by tuple (``BinaryCopyScanner``) and a text one
    /// line by line (``TextCopyScanner``): whole, in the format the manifest records, and holding its rows.
    public static func verify(_ repository: Repository, manifest: BackupManifest, decompress: Bool = true,
                              jobs: Int = 2) async throws -> BackupResult {
        let folder = repository.backupFolder(manifest.label)
        let queue = WorkQueue(manifest.files)
        let storage = repository.storage
        let tables = Dictionary(manifest.tables.map { ($0.file.path, $0) }, uniquingKeysWith: { first, _ in first })
        let bad = try await withThrowingTaskGroup(of: [FileResult].self) { group in
            for index in 0..<max(1, min(jobs, manifest.files.count)) {
                group.addTask {
                    let thread = ConnectionThread(name: "ftbackup-verify-\(index)")
                    defer { thread.shutdown() }
                    return try await thread.run {
                        var bad: [FileResult] = []
                        while let file = queue.next() {
                            do {
                                if decompress, let table = tables[file.path] {
                                    try checkCopyData(storage, folder: folder, file: file, table: table)
                                } else {
                                    try StoredFileReader.read(storage, folder: folder, file: file, decompress: decompress)
                                }
                            } catch let error as FTBackupError where ![.unavailable, .permission, .configuration].contains(error.status) {
                                // A store that cannot be reached or refuses us proves nothing about the file: that
                                // error fails the command as it is (69/77/78) instead of calling the backup damaged.
                                bad.append(FileResult(path: "\(storage.location)/\(folder)/\(file.path)", ok: false, problem: error.message))
                            }
                        }
                        return bad
                    }
                }
            }
            var all: [FileResult] = []
            for try await part in group { all += part }
            return all.sorted { $0.path < $1.path }
        }
        return BackupResult(label: manifest.label, status: .complete, ok: bad.isEmpty, files: manifest.files.count,
                            bytes: manifest.files.reduce(0) { $0 + $1.storedBytes }, badFiles: bad, problem: nil)
    }

    /// Reads a table's COPY data file through its digest and decompressor and walks it in the format the manifest
    /// records.
    static func checkCopyData(_ storage: any RepositoryStorage, folder: String, file: BackupManifest.StoredFile,
                              table: BackupManifest.Table) throws {
        do {
            switch table.copyFormat {
            case .binary:
                var scanner = BinaryCopyScanner(fields: table.columns.count)
                try StoredFileReader.read(storage, folder: folder, file: file) { scanner.consumeRecording($0) }
                if let problem = scanner.problem { throw BinaryCopyScanner.Malformed(description: problem) }
                try scanner.finish(expectedRows: table.rows)
            case .text:
                var scanner = TextCopyScanner(fields: table.columns.count)
                try StoredFileReader.read(storage, folder: folder, file: file) { scanner.consume($0) }
                try scanner.finish(expectedRows: table.rows)
            }
        } catch let error as BinaryCopyScanner.Malformed {
            throw FTBackupError(.dataError, "repository file \(storage.location)/\(folder)/\(file.path) is bad: \(error.description) (\(table.schema).\(table.name))",
                                hint: "run ftbackup verify; restore from another backup if it is damaged")
        }
    }

    /// Verifies the named backup or every backup; incomplete and unreadable ones count as bad, and so
    /// does a backup of another database than the repository's source (``RepositorySourceView``).
    ///
    /// Each backup that checks out gets a `verified.json` (``VerificationRecord``), which expiry
    /// requires of a successor before it removes anything older; a backup that fails loses its
    /// record. Not being able to write or remove a record is an error: expiry would otherwise act on
    /// stale evidence.
    public static func verify(_ repository: Repository, label: String?, jobs: Int) async throws -> [BackupResult] {
        let entries = try repository.entries().filter { label == nil || $0.label == label }
        if let label, entries.isEmpty {
            throw FTBackupError(.usage, "no backup \(label) in \(repository.storage.location)", hint: "ftbackup info lists the backups")
        }
        let view = try RepositorySourceView.load(repository)
        var results: [BackupResult] = []
        for entry in entries {
            let result: BackupResult
            if let manifest = entry.manifest, let problem = view.mismatch(of: manifest) {
                // Another database's backup: never verified here, so expiry never counts it as a successor.
                result = BackupResult(label: entry.label, status: entry.status, ok: false, files: manifest.files.count,
                                      bytes: manifest.totals.storedBytes, badFiles: [], problem: problem)
            } else if let manifest = entry.manifest {
                result = try await verify(repository, manifest: manifest, jobs: jobs)
            } else {
                result = BackupResult(label: entry.label, status: entry.status, ok: false, files: 0, bytes: 0,
                                      badFiles: [], problem: entry.problem)
            }
            if result.ok {
                try VerificationRecord(label: result.label, verifiedAt: Date(), files: result.files, bytes: result.bytes)
                    .write(to: repository)
            } else {
                try VerificationRecord.remove(repository, label: entry.label)
            }
            results.append(result)
        }
        return results
    }
}
