import Foundation

/// Reads every lifecycle archive back: each table file against its manifest (size, SHA-256, full
/// decompression to the recorded length, one COPY line per recorded row).
///
/// It exists because an archive is the only copy of the rows it holds: a flipped byte must be
/// found by `verify`, not by the `unarchive` that needed it. Each kind of stored-file record under
/// the lifecycle is listed in ``kinds``; a new kind (audit partition exports) conforms to
/// ``StoredFileRecord`` and is added there.
public enum ArchiveVerifier {
    /// Every lifecycle kind of stored-file record that `verify --archives` reads.
    public static let kinds: [any StoredFileRecord.Type] = [ArchiveManifest.self, PartitionExport.self]

    public static func verify(_ repository: Repository, jobs: Int, now: Date = Date()) async throws -> [RecordVerification] {
        var results: [RecordVerification] = []
        for kind in kinds {
            results += try await StoredFileRecordVerifier.verify(kind, repository, jobs: jobs, now: now)
        }
        return results
    }
}

/// A lifecycle archive batch, `archive/<name>/`: its manifest lists one COPY file per table.
/// Its verification result is `archive/<name>/verified.json`, which the manifest never lists.
extension ArchiveManifest: StoredFileRecord {
    public static let verificationFileName = "verified.json"
    public static var recordKind: String { "archive" }

    public static func discover(_ storage: any RepositoryStorage) throws -> [StoredFileRecordListing<ArchiveManifest>] {
        try StoredFileRecordDiscovery.folders(storage, parent: ArchiveStore.folder, manifestFile: fileName, decode: decode)
    }

    public static func recordManifestPath(name: String) -> String { "\(ArchiveStore.folder)/\(name)/\(fileName)" }
    public static func verificationPath(name: String) -> String { "\(ArchiveStore.folder)/\(name)/\(verificationFileName)" }

    public var recordName: String { name }
    public var recordFolder: String { "\(ArchiveStore.folder)/\(name)" }
    public var listedFiles: [ListedFile] { tables.map { ListedFile(file: $0.file, rows: $0.rows) } }
    public var pendingReason: String? {
        status == .pending ? "pending: its run was interrupted; the next lifecycle archive run settles it" : nil
    }
}
