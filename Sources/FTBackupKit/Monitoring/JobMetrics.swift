import Foundation

/// The metrics of one ftbackup job (`backup_full`, `backup_incr`, `lifecycle_prune_audit`, …), written at
/// the end of every run, successful or not: when it last succeeded and failed, how long this run took,
/// its exit code, and the rows and bytes of its last success. A failed run keeps the previous run's
/// last-success time, rows and bytes, so "no success for 26 h" can be alerted on and a size graph has
/// no hole.
public enum JobMetrics {
    public static func families(job: String, exitCode: Int32, started: Date, finished: Date,
                                totals: JobTotals? = nil, previous: [String: Double]) -> [MetricFamily] {
        let label = [("job", job)]
        let now = finished.timeIntervalSince1970
        let succeeded = exitCode == 0
        let lastSuccess = succeeded ? now : previous["ftbackup_job_last_success_timestamp_seconds"]
        let lastFailure = !succeeded ? now : previous["ftbackup_job_last_failure_timestamp_seconds"]
        // A success without totals (a dry run, a read-only command) keeps none; a failure keeps the last success's.
        let rows = succeeded ? totals?.rows.map(Double.init) : previous["ftbackup_job_rows"]
        let bytes = succeeded ? totals?.bytes.map(Double.init) : previous["ftbackup_job_bytes"]
        var families = [
            MetricFamily("ftbackup_job_last_run_timestamp_seconds", help: "When the job last ended (Unix time).", [.init(label, now)]),
            MetricFamily("ftbackup_job_duration_seconds", help: "Wall time of the job's last run.", [.init(label, finished.timeIntervalSince(started))]),
            MetricFamily("ftbackup_job_last_exit_code", help: "Exit code of the job's last run (0 success; see the README's exit codes).",
                         [.init(label, Double(exitCode))]),
        ]
        if let lastSuccess {
            families.append(MetricFamily("ftbackup_job_last_success_timestamp_seconds", help: "When the job last succeeded (Unix time).",
                                         [.init(label, lastSuccess)]))
        }
        if let lastFailure {
            families.append(MetricFamily("ftbackup_job_last_failure_timestamp_seconds", help: "When the job last failed (Unix time).",
                                         [.init(label, lastFailure)]))
        }
        if let rows {
            families.append(MetricFamily("ftbackup_job_rows", help: "Rows the job's last successful run backed up, loaded, archived, pruned or put back.",
                                         [.init(label, rows)]))
        }
        if let bytes {
            families.append(MetricFamily("ftbackup_job_bytes", help: "Bytes of the job's last successful run (stored for backups, loaded for restores; see the README).",
                                         [.init(label, bytes)]))
        }
        return families
    }
}
