import Foundation

/// What makes two backups come from the same source database: the cluster's system identifier and
/// the database's name (pgBackRest's stanza is tied to the system identifier the same way).
///
/// The database's oid is not part of it: a database dropped and created again under its name, or
/// restored from this repository into a fresh database of that name on the same cluster and backed
/// up again, continues the same repository. Its full backups are self-contained, and the change
/// chain across the break is refused by `restore --at` as a gap (the new slot starts past the old
/// one's end). A system identifier that could not be read (nil) only matches another unread one:
/// "not known to be the same" is never treated as the same.
public struct SourceKey: Codable, Sendable, Hashable, CustomStringConvertible {
    public var systemIdentifier: String?
    public var database: String

    public init(systemIdentifier: String?, database: String) {
        self.systemIdentifier = systemIdentifier
        self.database = database
    }

    public init(_ identity: DatabaseIdentity) { self.init(systemIdentifier: identity.systemIdentifier, database: identity.database) }

    public init(_ source: BackupManifest.Source) { self.init(systemIdentifier: source.systemIdentifier, database: source.database) }

    public var description: String {
        "database \(database) (system identifier \(systemIdentifier ?? "unreadable"))"
    }

    /// The permanent archival slot this source's change segments come from.
    public var archivalSlot: String { ChangeArchivalNames.slot(database: database) }

    /// Why `segment` does not belong to this source, or nil when it does. A segment written before
    /// segments recorded their source is judged by its slot alone.
    public func mismatch(of segment: ChangeSegmentManifest) -> String? {
        if let source = segment.source, SourceKey(source) != self {
            return "change segment \(segment.label) comes from \(SourceKey(source)), not the repository's source \(self)"
        }
        // The slot under the name older versions gave is this database's own too (ArchivalSlot keeps using it).
        if segment.slot != archivalSlot && segment.slot != ChangeArchivalNames.legacySlot(database: database) {
            return "change segment \(segment.label) comes from slot \(segment.slot), not \(archivalSlot) of the repository's source \(self)"
        }
        return nil
    }

    /// Why `backup` does not belong to this source, or nil when it does.
    public func mismatch(of backup: BackupManifest) -> String? {
        let theirs = SourceKey(backup.source)
        return theirs == self ? nil : "backup \(backup.label) comes from \(theirs), not the repository's source \(self)"
    }
}
