import Foundation

/// What a restore will do, decided before anything is touched (and all `--dry-run` prints).
public struct RestorePlan: Codable, Sendable {
    public var label: String
    public var consistentAt: Date
    public var source: String
    public var target: String
    /// The schemas restored; `wholeDatabase` when no `--schema` was given.
    public var schemas: [String]
    public var wholeDatabase: Bool
    public var tables: Int
    public var rows: Int64
    public var storedBytes: Int64
    public var rawBytes: Int64
    public var jobs: Int
    public var clean: Bool
    public var noOwner: Bool

    /// Picks the backup and the tables for the requested schemas; refuses an unknown schema.
    static func make(manifest: BackupManifest, schemas requested: [String], target: String, jobs: Int,
                     clean: Bool, noOwner: Bool) throws -> (RestorePlan, [BackupManifest.Table]) {
        let unknown = requested.filter { !manifest.schemas.contains($0) }
        if !unknown.isEmpty {
            let tools = manifest.schemas.filter { SchemaKind(schemaName: $0) != .other }
            throw FTBackupError(.usage, "backup \(manifest.label) has no schema \(unknown.joined(separator: ", "))",
                                hint: "known schemas include \(tools.prefix(6).joined(separator: ", "))… (ftbackup info --set \(manifest.label) --output json)")
        }
        let schemas = requested.isEmpty ? manifest.schemas : Array(Set(requested)).sorted()
        // pg_restore --schema creates no extension, so a --schema restore leaves extensions' configuration
        // tables alone too (their rows and their changes): the target's extension keeps what it holds.
        let tables = manifest.tables.filter { schemas.contains($0.schema) && (requested.isEmpty || $0.extensionFilter == nil) }
        let plan = RestorePlan(label: manifest.label, consistentAt: manifest.snapshot.time,
                               source: "\(manifest.source.database) on \(manifest.source.server)", target: target,
                               schemas: schemas, wholeDatabase: requested.isEmpty, tables: tables.count,
                               rows: tables.reduce(0) { $0 + $1.rows },
                               storedBytes: tables.reduce(manifest.schemaDump.storedBytes) { $0 + $1.file.storedBytes },
                               rawBytes: tables.reduce(0) { $0 + $1.file.rawBytes }, jobs: jobs, clean: clean, noOwner: noOwner)
        return (plan, tables)
    }
}

/// What a finished restore did, with the time each phase took.
public struct RestoreReport: Codable, Sendable {
    public var plan: RestorePlan
    public var phases: [String: Double]
    public var seconds: Double
    /// What retention had removed from the source and the restore removed again (nil with `--keep-retired`).
    public var retired: RetiredDataReapplier.Report? = nil
    /// Foreign keys from other schemas that the restored rows do not satisfy (re-added NOT VALID);
    /// database settings of a role the target lacks.
    public var warnings: [String]? = nil
    /// False when `--skip-analyze` left planner statistics to autovacuum (nil in older reports: analyzed).
    public var analyzed: Bool? = nil
}
