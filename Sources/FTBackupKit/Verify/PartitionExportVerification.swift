import Foundation

/// An audit partition export, `lifecycle/partitions/<name>/`: its manifest lists the one COPY file
/// holding the dropped partition's rows. Its verification result is `verified.json` beside it.
extension PartitionExport: StoredFileRecord {
    public static let verificationFileName = "verified.json"
    public static var recordKind: String { "partition-export" }

    public static func discover(_ storage: any RepositoryStorage) throws -> [StoredFileRecordListing<PartitionExport>] {
        let store = PartitionExportStore(storage: storage)
        return try StoredFileRecordDiscovery.folders(storage, parent: PartitionExportStore.folder, manifestFile: fileName) { bytes, path in
            try store.decode(bytes, path: path)
        }
    }

    public static func recordManifestPath(name: String) -> String { "\(PartitionExportStore.folder)/\(name)/\(fileName)" }
    public static func verificationPath(name: String) -> String { "\(PartitionExportStore.folder)/\(name)/\(verificationFileName)" }

    public var recordName: String { name }
    public var recordFolder: String { "\(PartitionExportStore.folder)/\(name)" }
    public var listedFiles: [ListedFile] { [ListedFile(file: file, rows: rows)] }
    public var pendingReason: String? {
        status == .pending ? "pending: its prune run was interrupted between export and drop; the next prune-audit run settles it" : nil
    }
}
