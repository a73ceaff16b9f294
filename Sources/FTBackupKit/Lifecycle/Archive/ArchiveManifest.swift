import Foundation

/// The record of one archive batch: which rows of which tool schema left the database, where they
/// are, and whether their delete committed.
///
/// It exists so that archived data can always be found and put back, and so that a run killed at
/// any point can be reconciled: `pending` is written before the delete, `committed` after it.
public struct ArchiveManifest: Codable, Sendable, Equatable {
    public static let fileName = "manifest.json"

    public enum Status: String, Codable, Sendable {
        /// Files written and verified; the delete may or may not have committed (reconciled next run).
        case pending
        /// The rows are gone from the database and live only here.
        case committed
        /// Every row was put back with `lifecycle unarchive`.
        case restored
    }

    public struct ArchivedTable: Codable, Sendable, Equatable {
        public var schema: String
        public var name: String
        /// Format 1: the column that ties a row to the archived tool_data ids (`id`, or the foreign key).
        /// Format 2 files instead start every row with `ftbackup_roots`, the tool_data ids it goes with.
        public var keyColumn: String?
        /// Format 2: the foreign keys that brought this table into the archive (empty for tool_data).
        public var via: [String]?
        /// The columns after `ftbackup_roots` (stored generated columns are left out: the database computes them).
        public var columns: [String]
        public var rows: Int64
        public var file: BackupManifest.StoredFile
    }

    /// 1: tool_data and its direct same-schema dependants, keyed by column. 2: the whole foreign-key
    /// closure, each row led by the tool_data ids it goes with.
    public var formatVersion: Int
    public var name: String
    public var run: String
    public var schema: String
    public var status: Status
    public var createdAt: Date
    public var committedAt: Date?
    /// Rows whose age column is before this instant qualified (computed once per run, in the database).
    public var cutoff: Date
    public var ageColumn: String
    public var statusValue: String
    public var policySource: String
    /// The archived tool_data ids.
    public var ids: [String]
    /// Oldest and newest value of the age column among the archived rows.
    public var oldest: String?
    public var newest: String?
    public var tables: [ArchivedTable]
    /// Ids put back by `unarchive`.
    public var restoredIds: [String]
    /// Ids an unarchive run was putting back when this manifest was last written: written before its
    /// transaction commits and cleared after, so a run killed in between is settled against the source
    /// (ids found there are put back, the others are not) instead of being forgotten.
    @DefaultEmpty public var unarchivingIds: [String] = []
    /// The database the rows came from (nil in archives written before it was recorded); a pending
    /// archive is settled only against it.
    public var source: DatabaseIdentity? = nil

    public var rows: Int64 { tables.reduce(0) { $0 + $1.rows } }
    public var storedBytes: Int64 { tables.reduce(0) { $0 + $1.file.storedBytes } }

    public func encoded() throws -> [UInt8] { Array(try JSONOutput.encode(self).utf8) + [0x0A] }

    public static func decode(_ bytes: [UInt8], path: String) throws -> ArchiveManifest {
        do {
            return try BackupManifest.decoder().decode(ArchiveManifest.self, from: Data(bytes))
        } catch {
            throw FTBackupError(.dataError, "archive manifest \(path) is unreadable: \(error)",
                                hint: "the archive needs a human: do not delete it; compare its files with the database")
        }
    }
}

/// Where archives and lifecycle evidence live in the repository:
/// `archive/<name>/` (manifest + one COPY file per table) and `lifecycle/<kind>/<run>.json`.
public struct ArchiveStore: Sendable {
    public let storage: any RepositoryStorage
    public static let folder = "archive"

    public init(storage: any RepositoryStorage) { self.storage = storage }

    public func folder(_ name: String) -> String { "\(Self.folder)/\(name)" }
    public func manifestPath(_ name: String) -> String { "\(folder(name))/\(ArchiveManifest.fileName)" }

    /// Every archive; folders without a manifest (a run killed while writing files) are listed as nil.
    public func all() throws -> [(name: String, manifest: ArchiveManifest?)] {
        try storage.list(Self.folder).filter(\.isDirectory).map { entry in
            let name = String(entry.path.dropFirst(Self.folder.count + 1))
            let path = manifestPath(name)
            guard try storage.exists(path) else { return (name, nil) }
            return (name, try ArchiveManifest.decode(try storage.readAll(path), path: "\(storage.location)/\(path)"))
        }.sorted { $0.name < $1.name }
    }

    public func read(_ name: String) throws -> ArchiveManifest {
        let path = manifestPath(name)
        guard try storage.exists(path) else {
            throw FTBackupError(.usage, "no archive \(name) in \(storage.location)", hint: "ftbackup lifecycle list shows the archives")
        }
        return try ArchiveManifest.decode(try storage.readAll(path), path: "\(storage.location)/\(path)")
    }

    public func write(_ manifest: ArchiveManifest) throws {
        try storage.writeAll(manifestPath(manifest.name), try manifest.encoded())
    }

    /// Writes a run's report as evidence for later compliance reports, chained to the kind's
    /// previous record (``RecordChain``), and anchored in the database when an anchor is given
    /// (``RecordChainAnchor``; the caller's thread may block: never the cooperative pool's).
    public func writeRunLog<T: Encodable>(kind: String, run: String, _ report: T, anchor: RecordChainAnchor? = nil) throws {
        try RecordChain.write(report, kind: kind, folder: "lifecycle/\(kind)", name: "\(run).json", storage: storage)
        anchor?.recordBlocking(kind: kind, folder: "lifecycle/\(kind)", name: "\(run).json", storage: storage)
    }
}

/// A run's label: its UTC start time, as backups are labelled.
enum RunLabel {
    static func make(_ date: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = .gmt
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.string(from: date)
    }
}
