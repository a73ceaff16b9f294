import Foundation

/// The rows and bytes one successful job run handled, for its metrics file (`ftbackup_job_rows`,
/// `ftbackup_job_bytes`): a full's rows and stored bytes, an incremental pass's stored segment bytes,
/// the rows archived, pruned or put back, the rows and raw bytes a restore or drill loaded. Nil parts
/// are left out of the file; a dry run handles nothing and has no totals.
public struct JobTotals: Codable, Sendable, Equatable {
    public var rows: Int64?
    public var bytes: Int64?

    public init(rows: Int64?, bytes: Int64?) { self.rows = rows; self.bytes = bytes }

    /// A full backup: its rows and the bytes it stored (compressed).
    public init(full manifest: BackupManifest) {
        self.init(rows: manifest.totals.rows, bytes: manifest.totals.storedBytes)
    }

    /// An incremental pass: the stored bytes of the segment it sealed (0 when there was nothing to seal);
    /// nil when a running follower covers the pass.
    public static func incremental(_ report: ChangeArchiver.Report) -> JobTotals? {
        if report.coveredByFollower != nil { return nil }
        return JobTotals(rows: nil, bytes: report.segment?.file.storedBytes ?? 0)
    }

    /// tool_data rows archived (as the run log's `rows`), and their size in the database.
    public static func archive(_ report: ArchiveReport) -> JobTotals? {
        report.dryRun ? nil : JobTotals(rows: report.rows, bytes: report.schemas.reduce(0) { $0 + $1.bytes })
    }

    /// Audit rows deleted (by rows and with dropped partitions).
    public static func prune(_ report: AuditPruner.Report) -> JobTotals? {
        report.dryRun ? nil : JobTotals(rows: report.rows, bytes: nil)
    }

    /// Rows put back, over every table of the closure.
    public init(unarchive report: Unarchiver.Report) {
        self.init(rows: report.rows.values.reduce(0, +), bytes: nil)
    }

    /// The rows and raw bytes a restore loaded (nil for a dry run, which loads nothing).
    public static func restore(_ plan: RestorePlan, dryRun: Bool) -> JobTotals? {
        dryRun ? nil : JobTotals(rows: plan.rows, bytes: plan.rawBytes)
    }

    /// The rows the drill's restored database holds and the raw bytes it loaded.
    public init(drill record: DrillRecord) {
        self.init(rows: record.tables.reduce(0) { $0 + $1.rows }, bytes: record.headroom.restoredRawBytes)
    }
}
