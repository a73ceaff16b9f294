import Foundation

/// Evidence that a backup was read back whole and found good: `backups/<label>/verified.json`.
///
/// It exists so that expiry can tell a backup that has been proven restorable from one that has
/// merely been written: an older backup is only removed once its successor has a record. `verify`
/// writes it after every file checked out (size, SHA-256, full decompression) and removes it when
/// a later verify fails. It is not part of the manifest and not listed in it: the manifest is
/// written once, by the backup, and never changes.
public struct VerificationRecord: Codable, Sendable, Equatable {
    public static let fileName = "verified.json"

    public var label: String
    public var verifiedAt: Date
    /// Files read back, and their stored bytes, as the manifest listed them.
    public var files: Int
    public var bytes: Int64
    public var toolVersion: String

    public init(label: String, verifiedAt: Date, files: Int, bytes: Int64, toolVersion: String = FTBackupVersion.current) {
        self.label = label
        self.verifiedAt = verifiedAt
        self.files = files
        self.bytes = bytes
        self.toolVersion = toolVersion
    }

    public static func path(_ repository: Repository, label: String) -> String {
        "\(repository.backupFolder(label))/\(fileName)"
    }

    /// True when this record is about `manifest`'s backup as it stands (same label, files and bytes).
    public func confirms(_ manifest: BackupManifest) -> Bool {
        label == manifest.label && files == manifest.files.count
            && bytes == manifest.files.reduce(0) { $0 + $1.storedBytes }
    }

    /// Writes the record atomically (temporary file, fsync, rename).
    public func write(to repository: Repository) throws {
        try repository.storage.writeAll(Self.path(repository, label: label), Array(try JSONOutput.encode(self).utf8) + [0x0A])
    }

    /// The record of backup `label`, or nil when there is none or it cannot be read: an unreadable
    /// record proves nothing, so it counts as "not verified".
    public static func read(_ repository: Repository, label: String) -> VerificationRecord? {
        let path = path(repository, label: label)
        guard (try? repository.storage.exists(path)) == true, let bytes = try? repository.storage.readAll(path) else { return nil }
        return try? BackupManifest.decoder().decode(VerificationRecord.self, from: Data(bytes))
    }

    /// Removes the record of backup `label`, if any (after a failed verify).
    public static func remove(_ repository: Repository, label: String) throws {
        try repository.storage.remove(path(repository, label: label))
    }
}
