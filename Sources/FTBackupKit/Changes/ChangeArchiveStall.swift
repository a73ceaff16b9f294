import Foundation

/// A record that the last archival pass could not read the slot's changes: the chain cannot advance.
///
/// It exists because such a failure is not a one-off: the slot is not advanced, so every later pass
/// reads the same changes and fails the same way while the server keeps the WAL. `backup --type incr`
/// writes it when reading the slot fails and removes it after a pass that seals a segment, and `follow`
/// likewise when starting or reading its stream fails, removing it after each seal; `info`
/// reports the chain as broken (exit 69) while it is there, with the reason.
public struct ChangeArchiveStall: Codable, Sendable, Equatable {
    public static let path = "changes/stalled.json"

    /// The first failed pass of this run of failures.
    public var since: Date
    /// The newest failure.
    public var lastFailure: Date
    public var failures: Int
    /// The server's error, one line.
    public var reason: String

    /// The record, if the last pass failed to read the slot (nil if there is none). A record that is
    /// there but cannot be read (damaged, edited, or encrypted with another key) reads as a stall of
    /// its own: it fails closed, so a tampered file never makes a broken chain look healthy.
    public static func read(_ storage: any RepositoryStorage, now: Date = Date()) -> ChangeArchiveStall? {
        do {
            guard try storage.exists(path) else { return nil }
            return try BackupManifest.decoder().decode(ChangeArchiveStall.self, from: Data(try storage.readAll(path)))
        } catch {
            let why = (error as? FTBackupError)?.message ?? "\(error)"
            return ChangeArchiveStall(since: now, lastFailure: now, failures: 1,
                                      reason: "\(path) is there but cannot be read (\(why.split(whereSeparator: \.isNewline).joined(separator: " "))); the chain is treated as broken until a pass seals a segment")
        }
    }

    /// Records one more failed pass (keeping when the failures began).
    static func record(_ error: any Error, storage: any RepositoryStorage, now: Date = Date()) {
        let reason = ((error as? FTBackupError)?.message ?? "\(error)").split(whereSeparator: \.isNewline).joined(separator: " ")
        let previous = read(storage)
        let stall = ChangeArchiveStall(since: previous?.since ?? now, lastFailure: now, failures: (previous?.failures ?? 0) + 1, reason: reason)
        if let json = try? JSONOutput.encode(stall, microseconds: true) { try? storage.writeAll(path, Array(json.utf8) + [0x0A]) }
    }

    /// Forgets the record after a pass that advanced the chain.
    static func clear(_ storage: any RepositoryStorage) throws {
        if try storage.exists(path) { try storage.remove(path) }
    }

    /// What `info` says: the chain is broken since `since`, why, and what to do.
    public var brokenReason: String {
        "the change archive cannot advance: \(failures) archival pass(es) since \(Timestamps.display(since)) failed reading the slot (\(reason)); fix the cause and run ftbackup backup --type incr, or run ftbackup teardown and setup, then take a new full backup"
    }
}
