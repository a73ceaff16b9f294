/// What the operators decided about backups, retention and recovery targets.
///
/// It exists so that schedules, retention periods and objectives are data in `policies/`, reviewed
/// like code, rather than constants in the tool. Every command loads and validates one.
public struct Policy: Sendable, Equatable, Codable {
    public enum Schedule: String, Sendable, Codable, CaseIterable { case hourly, daily, weekly, monthly }

    public struct BackupKind: Sendable, Equatable, Codable {
        public var schedule: Schedule
        public var retention: Period
    }

    public struct ChangeArchival: Sendable, Equatable, Codable {
        public var enabled: Bool
        public var sealEvery: Period
        public var sealBytes: Int64
    }

    public struct Compression: Sendable, Equatable, Codable {
        public var codec: CompressionCodec
        public var level: Int
        public var workers: Int
    }

    /// An application-level reference between tool schemas (no foreign key enforces it).
    public struct Reference: Sendable, Equatable, Codable {
        public var fromSchema: String, fromTable: String, fromColumn: String
        public var toSchema: String, toTable: String, toColumn: String
    }

    public struct ArchiveToolData: Sendable, Equatable, Codable {
        public var status: String
        public var after: Period
        public var ageColumn: String
        public var ageColumnOverrides: [String: String]
        public var references: [Reference]
    }

    /// `lifecycle.application_triggers`: `skip` (default) runs lifecycle deletes and unarchive inserts with
    /// `session_replication_role = replica`, so an application trigger can neither rewrite nor add rows;
    /// `fire` lets them fire (only for applications whose triggers are meant to see retention work).
    public enum ApplicationTriggers: String, Sendable, Codable, CaseIterable { case skip, fire }

    public var version: Int
    public var full: BackupKind
    public var incremental: BackupKind
    public var changeArchival: ChangeArchival
    public var compression: Compression
    /// `schema.table` patterns (either part may be `*`) never backed up.
    public var exclude: [String]
    public var archiveToolData: ArchiveToolData
    public var auditRetention: Period
    public var legalHoldOrganizations: [String]
    /// Whether application triggers fire when lifecycle work deletes or puts back rows.
    public var applicationTriggers: ApplicationTriggers
    public var rto: Period
    public var rpo: Period
    public var drillSchedule: Schedule
    /// The file this policy came from (for messages and manifests).
    public var source: String

    /// True when `schema.table` matches one of the `exclude` patterns.
    public func excludes(schema: String, table: String) -> Bool {
        exclude.contains { pattern in
            let parts = pattern.split(separator: ".", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { return false }
            return (parts[0] == "*" || parts[0] == schema) && (parts[1] == "*" || parts[1] == table)
        }
    }
}
