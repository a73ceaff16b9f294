import Foundation

/// One recorded DDL command as `info` shows it, with the times `restore --at` cannot reach because of it.
///
/// It exists because `restore --at` refuses a time past recorded DDL until a newer full covers it
/// (`DDLRefusal`): on-call needs to see, before an incident, which stretches of the recoverable window
/// are out of reach for a whole-database restore and which full backup ends each one.
public struct RecordedDDLWindow: Codable, Sendable, Equatable {
    /// The segment whose transactions carried it.
    public var segment: String
    public var commandTag: String
    public var objectType: String?
    public var objectIdentity: String?
    public var schema: String?
    public var commitLSN: String
    public var commitTime: Date
    /// The first full backup taken after it (consistent point past its commit), if any.
    public var nextFull: String?
    /// A whole-database `restore --at` cannot reach times from `commitTime` until this instant (the next
    /// full's consistent time); nil while no full has been taken since, so every later time is refused.
    /// Times before `commitTime` replay from the full before it; a `--schema` restore of schemas the
    /// command did not touch is not blocked.
    public var unreachableUntil: Date?

    /// Every DDL command in the given segments, oldest first, against the aligned fulls
    /// (materialized-view refreshes are no barrier: left out).
    static func list(segments: [ChangeSegmentManifest], fulls: [BackupManifest]) -> [RecordedDDLWindow] {
        segments.flatMap { segment in (segment.ddl ?? []).filter { !$0.isRefresh }.map { (segment.label, $0) } }
            .sorted { (LSN.parse($0.1.commitLSN) ?? 0) < (LSN.parse($1.1.commitLSN) ?? 0) }
            .map { label, ddl in
                let lsn = LSN.parse(ddl.commitLSN) ?? 0
                let next = fulls.first { (LSN.parse($0.snapshot.walLSN) ?? 0) > lsn }
                return RecordedDDLWindow(segment: label, commandTag: ddl.commandTag, objectType: ddl.objectType,
                                         objectIdentity: ddl.objectIdentity, schema: ddl.schema, commitLSN: ddl.commitLSN,
                                         commitTime: ddl.commitTime, nextFull: next?.label, unreachableUntil: next?.snapshot.time)
            }
    }

    /// One line for `info`'s text output.
    public var line: String {
        let what = "\(commandTag) \(objectIdentity ?? "?")\(objectType.map { " (\($0))" } ?? "")"
        let reach = unreachableUntil.map { "restore --at cannot reach \(Timestamps.displayExact(commitTime)) … \(Timestamps.displayExact($0)) (before backup \(nextFull ?? "?")'s consistent time)" }
            ?? "restore --at cannot reach \(Timestamps.displayExact(commitTime)) or later until a new full backup is taken"
        return "\(Timestamps.displayExact(commitTime))  \(what)  LSN \(commitLSN), segment \(segment): \(reach)"
    }
}
