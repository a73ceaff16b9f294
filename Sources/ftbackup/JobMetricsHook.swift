import ArgumentParser
import FTBackupKit
import Foundation

/// Writes the job's metrics file when a command ends (success or failure), if a metrics folder is
/// configured: the one place every command passes through, so no command can forget it. A metrics
/// file that cannot be written is a warning, never the job's failure.
struct JobMetricsHook {
    let job: String
    let directory: String
    let started = Date()

    init?(_ command: ParsableCommand) {
        // status writes its own file (ftbackup_suite.prom): its exit code is a Nagios level, not a job's outcome.
        guard !(command is StatusCommand), let global = Mirror(reflecting: command).children.lazy.compactMap({ ($0.value as? OptionGroup<GlobalOptions>)?.wrappedValue }).first,
              let directory = try? global.metricsDirectory() else { return nil }
        self.directory = directory
        self.job = (command as? MetricsJobNamed)?.metricsJob
            ?? type(of: command).configuration.commandName?.replacingOccurrences(of: "-", with: "_") ?? "ftbackup"
    }

    func finish(exitCode: Int32) {
        let families = JobMetrics.families(job: job, exitCode: exitCode, started: started, finished: Date(),
                                           totals: JobTotalsOfThisRun.recorded,
                                           previous: MetricsFile.readValues(directory: directory, job: job))
        do {
            try MetricsFile.write(directory: directory, job: job, families)
        } catch {
            printWarning("\(error)")
        }
    }
}

/// The rows and bytes the running command handled, set by the command when its work succeeded and
/// read by ``JobMetricsHook`` when it ends (one command runs per process).
enum JobTotalsOfThisRun {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var totals: JobTotals?

    static func record(_ totals: JobTotals?) { lock.withLock { Self.totals = totals } }
    static var recorded: JobTotals? { lock.withLock { totals } }
}

/// A command whose metrics job name is not just its own name (`backup --type incr` → `backup_incr`).
protocol MetricsJobNamed { var metricsJob: String { get } }

extension BackupCommand: MetricsJobNamed { var metricsJob: String { "backup_\(type.rawValue)" } }
extension LifecycleCommand.Archive: MetricsJobNamed { var metricsJob: String { "lifecycle_archive" } }
extension LifecycleCommand.Unarchive: MetricsJobNamed { var metricsJob: String { "lifecycle_unarchive" } }
extension LifecycleCommand.PruneAudit: MetricsJobNamed { var metricsJob: String { "lifecycle_prune_audit" } }
extension LifecycleCommand.List: MetricsJobNamed { var metricsJob: String { "lifecycle_list" } }
extension DrillCommand.RunDrill: MetricsJobNamed { var metricsJob: String { "drill" } }
extension DrillCommand.ListDrills: MetricsJobNamed { var metricsJob: String { "drill_list" } }
extension RunCommand: MetricsJobNamed { var metricsJob: String { "scheduler_tick" } }
