import Foundation

/// One file a ``StoredFileRecord`` lists, and what its content must hold.
public struct ListedFile: Sendable {
    public var file: BackupManifest.StoredFile
    /// COPY text rows the file holds (one line each), when the record counts them; verify checks the count.
    public var rows: Int64?

    public init(file: BackupManifest.StoredFile, rows: Int64? = nil) {
        self.file = file
        self.rows = rows
    }
}

/// A repository record that lists the stored files it owns in one folder: a lifecycle archive batch,
/// a change segment, and later an audit partition export.
///
/// It exists so that `verify` checks every kind of record the same way (size, SHA-256, full
/// decompression, row counts) and keeps the result of the last check beside it: a new kind of
/// record becomes verifiable by conforming to this protocol (``StoredFileRecordDiscovery`` finds
/// folder-per-record kinds) and being added to ``ArchiveVerifier/kinds``.
public protocol StoredFileRecord: Sendable {
    /// The kind's name in messages and results (`archive`, `segment`).
    static var recordKind: String { get }
    /// Every record of this kind in the repository, readable or not, oldest first.
    static func discover(_ storage: any RepositoryStorage) throws -> [StoredFileRecordListing<Self>]
    /// The record's own file (its manifest), relative to the repository root.
    static func recordManifestPath(name: String) -> String
    /// Where the result of the last verify of record `name` is kept; never a file the record lists.
    static func verificationPath(name: String) -> String

    var recordName: String { get }
    /// The folder the listed files' paths are relative to.
    var recordFolder: String { get }
    var listedFiles: [ListedFile] { get }
    /// Why the record is not final yet (its run was interrupted), or nil. Reported, never a failure.
    var pendingReason: String? { get }
}

/// A record as found in the repository.
public enum StoredFileRecordListing<Record: StoredFileRecord>: Sendable {
    case readable(Record)
    /// Its manifest exists but cannot be read: a failure (named by `manifestPath`).
    case unreadable(name: String, problem: String)
    /// Files without a manifest (a run killed while writing, or one still writing): not a failure.
    case incomplete(name: String, problem: String)

    public var name: String {
        switch self {
        case .readable(let record): record.recordName
        case .unreadable(let name, _), .incomplete(let name, _): name
        }
    }
}

/// Finds records kept one per folder (`<parent>/<name>/manifest.json` plus their files), the shape of
/// lifecycle archives and audit partition exports.
public enum StoredFileRecordDiscovery {
    public static func folders<Record: StoredFileRecord>(
        _ storage: any RepositoryStorage, parent: String, manifestFile: String,
        decode: ([UInt8], String) throws -> Record) throws -> [StoredFileRecordListing<Record>] {
        try storage.list(parent).filter(\.isDirectory).map { entry in
            let name = String(entry.path.dropFirst(parent.count + 1))
            let path = "\(entry.path)/\(manifestFile)"
            guard try storage.exists(path) else {
                return .incomplete(name: name, problem: "no manifest: its run was killed while writing the files (the next run removes them)")
            }
            do {
                return .readable(try decode(try storage.readAll(path), "\(storage.location)/\(path)"))
            } catch let error as FTBackupError {
                return .unreadable(name: name, problem: error.message)
            }
        }.sorted { $0.name < $1.name }
    }
}
