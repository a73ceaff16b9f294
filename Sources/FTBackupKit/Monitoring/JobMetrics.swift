import Foundation

/// The metrics of one ftbackup job (`backup_full`, `backup_incr`, `lifecycle_prune_audit`, …), written at
/// the end of every run, successful or not: when it last succeeded and failed, how long this run took,
/// its exit code. A failed run keeps the previous run's last-success time, so "no success for 26 h"
/// can be alerted on.
public enum JobMetrics {
    public static func families(job: String, exitCode: Int32, started: Date, finished: Date,
                                previous: [String: Double]) -> [MetricFamily] {
        let label = [("job", job)]
        let now = finished.timeIntervalSince1970
        let lastSuccess = exitCode == 0 ? now : previous["ftbackup_job_last_success_timestamp_seconds"]
        let lastFailure = exitCode != 0 ? now : previous["ftbackup_job_last_failure_timestamp_seconds"]
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
        return families
    }
}
