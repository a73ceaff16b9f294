import Foundation

/// Reads every change segment back: its manifest must be readable, and its data file must match it
/// (size, SHA-256, full decompression to the recorded length).
///
/// It exists because `restore --at` replays every segment after the full it starts from: one bad
/// segment breaks every recovery point after it, so it must be found by `verify`, long before a
/// restore needs it. Results are kept in `changes/verified/<label>.json`, outside the segments
/// folder (whose `.json` files are all manifests); a record whose segment has expired is removed.
public enum SegmentVerifier {
    public static let verificationFolder = "changes/verified"

    public static func verify(_ repository: Repository, jobs: Int, now: Date = Date()) async throws -> [RecordVerification] {
        let results = try await StoredFileRecordVerifier.verify(ChangeSegmentManifest.self, repository, jobs: jobs, now: now)
        try removeOrphanedRecords(repository.storage)
        return results
    }

    /// Removes the results of segments that are gone (expired).
    static func removeOrphanedRecords(_ storage: any RepositoryStorage) throws {
        for entry in try storage.list(verificationFolder) where !entry.isDirectory && entry.path.hasSuffix(".json") {
            let label = String(entry.path.dropFirst(verificationFolder.count + 1).dropLast(5))
            if try !storage.exists(ChangeSegmentManifest.manifestPath(label)) { try storage.remove(entry.path) }
        }
    }
}

/// A change segment: `changes/segments/<label>.json` lists its one data file, `<label>.seg.zst`.
extension ChangeSegmentManifest: StoredFileRecord {
    public static var recordKind: String { "segment" }

    public static func discover(_ storage: any RepositoryStorage) throws -> [StoredFileRecordListing<ChangeSegmentManifest>] {
        let entries = try storage.list(folder).filter { !$0.isDirectory && !$0.path.contains(".tmp-") }
        let labels = { (suffix: String) in
            Set(entries.filter { $0.path.hasSuffix(suffix) }.map { String($0.path.dropFirst(folder.count + 1).dropLast(suffix.count)) })
        }
        let manifests = labels(".json")
        ChangeSegmentManifest.decoded.keepOnly(location: storage.location, paths: manifests.map { manifestPath($0) })
        var listings: [StoredFileRecordListing<ChangeSegmentManifest>] = try Array(manifests).concurrentMap { label in
            let path = manifestPath(label)
            do {
                return .readable(try ChangeSegmentManifest.read(storage, path: path))
            } catch {
                let why = (error as? FTBackupError)?.message ?? "\(error)"
                return .unreadable(name: label, problem: "change segment manifest \(storage.location)/\(path) is unreadable: \(why)")
            }
        }
        for label in labels(".seg.zst").subtracting(manifests) {
            listings.append(.incomplete(name: label, problem: "no manifest: being sealed, or left by a killed pass (the next pass removes it)"))
        }
        // Labels begin with the sortable start LSN: name order is archive order.
        return listings.sorted { $0.name < $1.name }
    }

    public static func recordManifestPath(name: String) -> String { manifestPath(name) }
    public static func verificationPath(name: String) -> String { "\(SegmentVerifier.verificationFolder)/\(name).json" }

    public var recordName: String { label }
    public var recordFolder: String { Self.folder }
    public var listedFiles: [ListedFile] { [ListedFile(file: file)] }
    public var pendingReason: String? { nil }
}
