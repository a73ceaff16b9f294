import Foundation

/// The repository: where backups live and how they are named and found.
///
/// Layout (see README): `backups/<label>/manifest.json` plus `schema.pgdump` and `data/<n>.copy.zst`;
/// `locks/` for the run locks. A label is the UTC start time plus the type (`20261125T140501Z-F`),
/// so labels sort by time. A backup folder without `manifest.json` is incomplete: never listed as
/// usable, and removed by the next backup.
public struct Repository: Sendable {
    public let storage: any RepositoryStorage

    public init(storage: any RepositoryStorage) { self.storage = storage }

    public static func local(_ path: String) -> Repository { Repository(storage: LocalStorage(root: path)) }

    public static let backupsFolder = "backups"

    public func backupFolder(_ label: String) -> String { "\(Self.backupsFolder)/\(label)" }
    public func manifestPath(_ label: String) -> String { "\(backupFolder(label))/\(BackupManifest.fileName)" }

    /// A backup folder as found in the repository.
    public struct Entry: Sendable {
        public enum Status: String, Codable, Sendable { case complete, incomplete, unreadable }
        public var label: String
        public var status: Status
        public var manifest: BackupManifest?
        public var problem: String?
    }

    /// Every backup folder, oldest first, complete or not.
    public func entries() throws -> [Entry] {
        let folders = try storage.list(Self.backupsFolder).filter(\.isDirectory)
        BackupManifest.decoded.keepOnly(location: storage.location, paths: folders.map { manifestPath(String($0.path.dropFirst(Self.backupsFolder.count + 1))) })
        return try folders.map { folder in
            let label = String(folder.path.dropFirst(Self.backupsFolder.count + 1))
            let manifest = manifestPath(label)
            guard try storage.exists(manifest) else {
                return Entry(label: label, status: .incomplete, manifest: nil, problem: "no manifest: the backup did not finish")
            }
            do {
                return Entry(label: label, status: .complete,
                             manifest: try BackupManifest.decoded.value(location: storage.location, path: manifest, bytes: try storage.readAll(manifest)) {
                                 try BackupManifest.decode($0, path: "\(storage.location)/\(manifest)")
                             },
                             problem: nil)
            } catch let error as FTBackupError {
                return Entry(label: label, status: .unreadable, manifest: nil, problem: error.message)
            }
        }.sorted { $0.label < $1.label }
    }

    /// The complete backup named `label`, or the newest complete full backup, of the repository's
    /// source (``RepositorySourceView``): a backup of another database is refused (exit 64) when
    /// named, and passed over when choosing the newest.
    public func backup(label: String?) throws -> BackupManifest {
        let all = try entries()
        let view = try RepositorySourceView.load(self)
        if let label {
            guard let entry = all.first(where: { $0.label == label }) else {
                throw FTBackupError(.usage, "no backup \(label) in \(storage.location)", hint: "ftbackup info lists the backups")
            }
            guard let manifest = entry.manifest else {
                throw FTBackupError(.dataError, "backup \(label) is \(entry.status.rawValue): \(entry.problem ?? "")",
                                    hint: "choose another backup (ftbackup info)")
            }
            if let problem = view.mismatch(of: manifest) {
                throw FTBackupError(.usage, "\(problem): refused", hint: "restore it from a repository of that database; ftbackup info flags such backups")
            }
            return manifest
        }
        guard let newest = view.own(all.compactMap(\.manifest)).last(where: { $0.type == .full }) else {
            throw FTBackupError(.usage, "no complete full backup\(view.key.map { " of \($0)" } ?? "") in \(storage.location)",
                                hint: "take one with ftbackup backup --type full")
        }
        // A newer full backup that cannot be read (a changed or damaged manifest) is never passed over in
        // silence: restoring the one before it would bring back older data as if it were the newest.
        if let damaged = all.last(where: { $0.status == .unreadable && $0.label > newest.label && Self.isFullLabel($0.label) }) {
            throw FTBackupError(.dataError, "backup \(damaged.label), newer than \(newest.label), is unreadable: \(damaged.problem ?? "")",
                                hint: "run ftbackup verify; to restore the older backup knowingly, name it with --set \(newest.label)")
        }
        return newest
    }

    /// True for a full backup's label (`…Z-F`, `…Z-F2`), whose manifest may be unreadable.
    static func isFullLabel(_ label: String) -> Bool { label.range(of: #"Z-F[0-9]*$"#, options: .regularExpression) != nil }

    /// Removes backup folders that have no manifest (a crashed or killed run). Only call under the write lock.
    @discardableResult
    public func removeIncompleteBackups() throws -> [String] {
        // On S3, the unfinished uploads a killed or failed backup left (invisible, but billed) go too.
        if let s3 = storage.s3Base { try s3.abortAbandonedUploads(under: Self.backupsFolder) }
        let incomplete = try entries().filter { $0.status == .incomplete }.map(\.label)
        for label in incomplete { try storage.remove(backupFolder(label)) }
        return incomplete
    }

    /// A new label for a backup started at `date`; unique within this repository.
    public func newLabel(type: BackupManifest.BackupType, at date: Date) throws -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = .gmt
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let base = "\(formatter.string(from: date))-\(type == .full ? "F" : "I")"
        var label = base
        var suffix = 1
        while try storage.exists(backupFolder(label)) {
            suffix += 1
            label = "\(base)\(suffix)"
        }
        return label
    }
}
