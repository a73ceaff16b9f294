import Foundation

/// The result of the last verify of an archive or change segment: ok, or failed with the problems found.
///
/// It exists so that `info` and `lifecycle list` can show, without reading any data, when each
/// archive and segment was last proven readable and which ones FAILED: a failed check leaves a
/// failed record behind rather than nothing, so a damaged archive stays visible until it is dealt
/// with. It is kept apart from the files the record's manifest lists (``StoredFileRecord/verificationPath(name:)``)
/// and written atomically, 0600, like every repository file. Backups keep their own ``VerificationRecord``.
public struct VerificationResultRecord: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable { case ok, failed }

    public var kind: String
    public var name: String
    public var outcome: Outcome
    public var verifiedAt: Date
    /// Files read back, and their stored bytes, as the manifest listed them.
    public var files: Int
    public var bytes: Int64
    /// What was wrong, one line per bad file (empty when ok).
    public var problems: [String]
    public var toolVersion: String

    public init(kind: String, name: String, outcome: Outcome, verifiedAt: Date, files: Int, bytes: Int64,
                problems: [String] = [], toolVersion: String = FTBackupVersion.current) {
        self.kind = kind
        self.name = name
        self.outcome = outcome
        self.verifiedAt = verifiedAt
        self.files = files
        self.bytes = bytes
        self.problems = problems
        self.toolVersion = toolVersion
    }

    /// Writes the record atomically (temporary file, fsync, rename).
    public func write(_ storage: any RepositoryStorage, path: String) throws {
        try storage.writeAll(path, Array(try JSONOutput.encode(self).utf8) + [0x0A])
    }

    /// The record at `path`, or nil when there is none or it cannot be read (then it proves nothing).
    public static func read(_ storage: any RepositoryStorage, path: String) -> VerificationResultRecord? {
        guard (try? storage.exists(path)) == true, let bytes = try? storage.readAll(path) else { return nil }
        return try? BackupManifest.decoder().decode(VerificationResultRecord.self, from: Data(bytes))
    }

    /// The last verify's result for record `name` of `kind`.
    public static func read<Record: StoredFileRecord>(_ kind: Record.Type, name: String,
                                                      storage: any RepositoryStorage) -> VerificationResultRecord? {
        read(storage, path: kind.verificationPath(name: name))
    }
}
