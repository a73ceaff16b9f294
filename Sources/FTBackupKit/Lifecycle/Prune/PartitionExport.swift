import Foundation

/// The record of one audit partition that retention removed whole: where its rows went, what they
/// were (count, time range, SHA-256 of their COPY text) and whether the drop committed.
///
/// It exists because dropping a partition is the cheap way to retire a year of audit log and the
/// one that could lose the most: the partition is exported and read back before it is detached and
/// dropped, `pending` is written before the drop, `dropped` after it, and a run killed in between
/// is settled by the next one from what the database still holds.
public struct PartitionExport: Codable, Sendable, Equatable {
    public static let fileName = "manifest.json"

    public enum Status: String, Codable, Sendable {
        /// Exported and verified; the drop may or may not have committed (settled by the next run).
        case pending
        /// The partition is gone from the database; its rows live only here.
        case dropped
    }

    public var formatVersion: Int
    public var name: String
    public var run: String
    /// The audit table and the partition.
    public var table: RelationName
    public var partition: RelationName
    public var bound: String
    /// Every row was older than this (the run's cut-off, database time).
    public var cutoff: String
    public var legalHoldOrganizations: [String]
    public var status: Status
    public var createdAt: Date
    public var droppedAt: Date?
    public var rows: Int64
    public var oldest: String?
    public var newest: String?
    /// SHA-256 of the rows' COPY text ("timestamp" first, then `columns`), as row pruning's evidence has it.
    public var rowsSHA256: String
    public var columns: [String]
    public var file: BackupManifest.StoredFile
    /// The database the partition belonged to; a pending export is settled only against it.
    public var source: DatabaseIdentity
    /// Row count and order-independent hash of the row versions (`ctid`, `xmin`) at export, checked
    /// again under lock before the drop: any insert, update or delete in between changes it.
    public var census: String
}

/// Where partition exports live: `lifecycle/partitions/<name>/` (manifest + one COPY file).
public struct PartitionExportStore: Sendable {
    public let storage: any RepositoryStorage
    public static let folder = "lifecycle/partitions"

    public init(storage: any RepositoryStorage) { self.storage = storage }

    public func folder(_ name: String) -> String { "\(Self.folder)/\(name)" }

    public func all() throws -> [(name: String, export: PartitionExport?)] {
        try storage.list(Self.folder).filter(\.isDirectory).map { entry in
            let name = String(entry.path.dropFirst(Self.folder.count + 1))
            let path = "\(folder(name))/\(PartitionExport.fileName)"
            guard try storage.exists(path) else { return (name, nil) }
            return (name, try decode(try storage.readAll(path), path: "\(storage.location)/\(path)"))
        }.sorted { $0.name < $1.name }
    }

    public func write(_ export: PartitionExport) throws {
        try storage.writeAll("\(folder(export.name))/\(PartitionExport.fileName)", Array(try JSONOutput.encode(export).utf8) + [0x0A])
    }

    func decode(_ bytes: [UInt8], path: String) throws -> PartitionExport {
        do {
            return try BackupManifest.decoder().decode(PartitionExport.self, from: Data(bytes))
        } catch {
            throw FTBackupError(.dataError, "partition export manifest \(path) is unreadable: \(error)",
                                hint: "it may be the only copy of a dropped audit partition: do not delete it")
        }
    }
}
