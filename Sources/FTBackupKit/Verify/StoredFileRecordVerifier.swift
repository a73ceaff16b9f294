import Foundation

/// What verify found for one archive, segment or other ``StoredFileRecord``.
public struct RecordVerification: Codable, Sendable {
    public enum State: String, Codable, Sendable {
        /// Every listed file checked out.
        case ok
        /// Its run was interrupted (the next run settles it); its files were checked and are good.
        case pending
        /// No manifest (a killed run's leftovers, or one being written); nothing to check, not a failure.
        case incomplete
        /// A listed file is bad, or the manifest is unreadable.
        case bad
    }

    public var kind: String
    public var name: String
    public var state: State
    public var ok: Bool
    public var files: Int
    public var bytes: Int64
    /// COPY rows counted, for records that record row counts.
    public var rows: Int64?
    public var badFiles: [BackupVerifier.FileResult]
    /// Why the record is pending, incomplete or unreadable.
    public var problem: String?
}

/// Checks every file of every record of one ``StoredFileRecord`` kind, then keeps the result of the
/// check beside each record (``VerificationResultRecord``): ok after all files checked out, failed
/// (replacing an older ok) when one did not.
///
/// It exists so that archives, change segments and later kinds share one careful reading path:
/// size, SHA-256, full decompression to the recorded length, and for COPY files one line per
/// recorded row. Files are read on `jobs` threads.
public enum StoredFileRecordVerifier {
    public static func verify<Record: StoredFileRecord>(_ kind: Record.Type, _ repository: Repository, jobs: Int,
                                                        now: Date = Date()) async throws -> [RecordVerification] {
        let storage = repository.storage
        let listings = try kind.discover(storage)
        let work = listings.enumerated().flatMap { index, listing -> [(Int, String, ListedFile)] in
            guard case .readable(let record) = listing else { return [] }
            return record.listedFiles.map { (index, record.recordFolder, $0) }
        }
        let checked = Dictionary(grouping: try await check(work, storage: storage, jobs: jobs), by: \.index)

        let results = listings.enumerated().map { index, listing in
            result(of: listing, kind: kind, checked: checked[index] ?? [], storage: storage)
        }
        // Thousands of segments (the follower seals one a minute): the records are written on `jobs` threads.
        _ = try await onThreads(results, jobs: jobs) { try keepResult($0, kind: kind, storage: storage, at: now) }
        return results
    }

    static func result<Record: StoredFileRecord>(of listing: StoredFileRecordListing<Record>, kind: Record.Type, checked mine: [Checked],
                                                 storage: any RepositoryStorage) -> RecordVerification {
        var result: RecordVerification
        switch listing {
        case .readable(let record):
            let bad = mine.compactMap(\.bad).sorted { $0.path < $1.path }
            let counted = record.listedFiles.contains { $0.rows != nil }
            result = RecordVerification(
                kind: kind.recordKind, name: record.recordName,
                state: !bad.isEmpty ? .bad : record.pendingReason == nil ? .ok : .pending, ok: bad.isEmpty,
                files: record.listedFiles.count, bytes: record.listedFiles.reduce(0) { $0 + $1.file.storedBytes },
                rows: counted ? mine.reduce(0) { $0 + $1.rows } : nil, badFiles: bad, problem: record.pendingReason)
        case .unreadable(let name, let problem):
            let path = "\(storage.location)/\(kind.recordManifestPath(name: name))"
            result = RecordVerification(kind: kind.recordKind, name: name, state: .bad, ok: false, files: 0, bytes: 0, rows: nil,
                                        badFiles: [.init(path: path, ok: false, problem: problem)], problem: problem)
        case .incomplete(let name, let problem):
            result = RecordVerification(kind: kind.recordKind, name: name, state: .incomplete, ok: true, files: 0, bytes: 0,
                                        rows: nil, badFiles: [], problem: problem)
        }
        // A record removed while it was read (an archive run reconciling a pending batch) is not damage.
        if result.state == .bad, (try? storage.exists(kind.recordManifestPath(name: result.name))) == false {
            result = RecordVerification(kind: kind.recordKind, name: result.name, state: .incomplete, ok: true, files: 0, bytes: 0,
                                        rows: nil, badFiles: [], problem: "removed while it was being verified")
        }
        return result
    }

    /// Writes the record of a check: ok, or failed with its problems; incomplete records get none.
    /// Not being able to write it is an error (a stale ok record would hide damage).
    static func keepResult<Record: StoredFileRecord>(_ result: RecordVerification, kind: Record.Type,
                                                     storage: any RepositoryStorage, at now: Date) throws {
        // Never recreate the folder of a record removed meanwhile (a reconciled pending archive).
        guard result.state != .incomplete, try storage.exists(kind.recordManifestPath(name: result.name)) else { return }
        let record = VerificationResultRecord(
            kind: result.kind, name: result.name, outcome: result.ok ? .ok : .failed, verifiedAt: now, files: result.files,
            bytes: result.bytes, problems: result.badFiles.map { $0.problem ?? $0.path })
        try record.write(storage, path: kind.verificationPath(name: result.name))
    }

    struct Checked: Sendable {
        var index: Int
        var rows: Int64
        var bad: BackupVerifier.FileResult?
    }

    /// Reads each file whole on `jobs` threads; a bad file is named with what is wrong with it.
    static func check(_ work: [(Int, String, ListedFile)], storage: any RepositoryStorage, jobs: Int) async throws -> [Checked] {
        try await onThreads(work.map { Item(index: $0.0, folder: $0.1, listed: $0.2) }, jobs: jobs) { checkOne($0, storage: storage) }
    }

    /// Runs `body` on every item, on up to `jobs` threads of their own (file I/O blocks), in no particular order.
    static func onThreads<Input: Sendable, Output: Sendable>(_ items: [Input], jobs: Int,
                                                             _ body: @escaping @Sendable (Input) throws -> Output) async throws -> [Output] {
        guard !items.isEmpty else { return [] }
        let queue = WorkQueue(items)
        return try await withThrowingTaskGroup(of: [Output].self) { group in
            for worker in 0..<max(1, min(jobs, items.count)) {
                group.addTask {
                    let thread = ConnectionThread(name: "ftbackup-verify-\(worker)")
                    defer { thread.shutdown() }
                    return try await thread.run {
                        var done: [Output] = []
                        while let item = queue.next() { done.append(try body(item)) }
                        return done
                    }
                }
            }
            var all: [Output] = []
            for try await part in group { all += part }
            return all
        }
    }

    struct Item: Sendable {
        var index: Int
        var folder: String
        var listed: ListedFile
    }

    static func checkOne(_ item: Item, storage: any RepositoryStorage) -> Checked {
        let shown = "\(storage.location)/\(item.folder)/\(item.listed.file.path)"
        var lines: Int64 = 0
        do {
            try StoredFileReader.read(storage, folder: item.folder, file: item.listed.file) { raw in
                guard item.listed.rows != nil else { return }
                for byte in raw where byte == 0x0A { lines += 1 }
            }
        } catch {
            let message = (error as? FTBackupError)?.message ?? "repository file \(shown) is bad: \(error)"
            return Checked(index: item.index, rows: 0, bad: .init(path: shown, ok: false, problem: message))
        }
        if let rows = item.listed.rows, rows != lines {
            return Checked(index: item.index, rows: lines, bad: .init(
                path: shown, ok: false, problem: "repository file \(shown) is bad: holds \(lines) COPY lines, the manifest records \(rows) rows"))
        }
        return Checked(index: item.index, rows: lines, bad: nil)
    }
}
