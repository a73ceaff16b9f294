import ArgumentParser
import FTBackupKit
import Foundation

/// `ftbackup run`: one scheduler tick; one key=value line per job; exit code of the first failed job.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "One scheduler tick: do what the policy says is due (full, incremental, maintenance, lifecycle, drill).",
        discussion: "Exit 0 when every due job succeeded (or another tick holds the lock), else the first failed job's exit code, else (with the policy's repository.second) the failed sync's.")

    @OptionGroup var global: GlobalOptions

    @Flag(name: .customLong("dry-run"), help: "Print what is due and why; do nothing.")
    var dryRun = false

    func run() async throws {
        try await reportingFailures {
            let json = global.output == .json
            let metricsDirectory = try? global.metricsDirectory()
            let report = try await SchedulerTick.run(SchedulerTick.Options(
                database: try global.connectionString(), repositoryPath: try global.repositoryPath(required: true)!,
                policy: try global.policy(), jobs: global.jobs, dryRun: dryRun, logger: makeLogger())) { outcome in
                if !json { printLine(outcome.logLine) }
                if outcome.status == .failed { printError("\(outcome.job.rawValue): \(outcome.detail ?? outcome.reason)") }
                if let second = outcome.secondRepository, !second.ok { printError("\(outcome.job.rawValue): sync to the second repository failed: \(second.detail)") }
                if outcome.status == .ran || outcome.status == .failed, !dryRun, let directory = metricsDirectory {
                    Self.writeJobMetrics(outcome, directory: directory)
                }
            }
            if let warning = report.stateWarning { printError("warning: \(warning)") }
            if let second = report.secondRepository {
                if !json { printLine("second=\(second.ok ? "ok" : "failed") detail=\(JSONOutputQuote.quote(second.detail))") }
                if !second.ok { printError("sync to the second repository failed: \(second.detail)") }
            }
            if json { printLine(try JSONOutput.encode(report)) }
            if let holder = report.lockedOut {
                if !json { printLine("tick=skipped reason=\(JSONOutputQuote.quote(holder))") }
                return .success
            }
            return ExitStatus(rawValue: report.exitCode) ?? .failure
        }
    }
}

extension RunCommand {
    /// A job the tick ran gets the same metrics file as the command would (`backup_full`, `drill`, …), so
    /// alerts do not depend on whether the scheduler or a person ran it.
    static func writeJobMetrics(_ outcome: JobOutcome, directory: String) {
        let job: String
        switch outcome.job {
        case .full: job = "backup_full"
        case .incremental: job = "backup_incr"
        case .maintenance: job = "maintenance"
        case .lifecycle: job = "lifecycle"
        case .drill: job = "drill"
        }
        let finished = Date()
        let families = JobMetrics.families(job: job, exitCode: outcome.status == .ran ? 0 : outcome.exitCode ?? 1,
                                           started: finished.addingTimeInterval(-(outcome.seconds ?? 0)), finished: finished, totals: outcome.totals,
                                           previous: MetricsFile.readValues(directory: directory, job: job))
        do { try MetricsFile.write(directory: directory, job: job, families) } catch { printWarning("\(error)") }
    }
}

enum JSONOutputQuote {
    static func quote(_ text: String) -> String { "\"" + text.replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
}

/// `ftbackup schedule --systemd DIR | --cron`: the units or crontab lines for the policy.
struct ScheduleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule", abstract: "Write the systemd units (or print crontab lines) that run ftbackup on the policy's schedule.")

    @OptionGroup var global: GlobalOptions

    @Option(help: "Write ftbackup-run.service/.timer (and ftbackup-follow.service) into this folder.")
    var systemd: String?

    @Flag(help: "Print lines for /etc/cron.d/ftbackup.")
    var cron = false

    @Option(help: "The ftbackup binary the units call.")
    var binary = ScheduleGenerator.defaultBinary

    @Option(name: .customLong("env-file"), help: "The environment file the units read (FTBACKUP_DB, FTBACKUP_REPO, FTBACKUP_POLICY).")
    var environmentFile = ScheduleGenerator.defaultEnvironmentFile

    func run() async throws {
        try await reportingFailures {
            guard (systemd != nil) != cron else { throw FTBackupError(.usage, "give exactly one of --systemd DIR and --cron") }
            for (option, path) in [("--binary", binary), ("--env-file", environmentFile)] {
                if let problem = ScheduleQuoting.problem(with: path) {
                    throw FTBackupError(.usage, "\(option): \(problem)", hint: "systemd and cron need absolute paths on one line")
                }
            }
            let policy = try global.policy()
            if cron {
                FileHandle.standardOutput.write(Data(ScheduleGenerator.cron(policy, binary: binary, environmentFile: environmentFile).utf8))
                return .success
            }
            let folder = systemd!
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                for file in ScheduleGenerator.systemd(policy, binary: binary, environmentFile: environmentFile) {
                    let path = (folder as NSString).appendingPathComponent(file.name)
                    try Data(file.contents.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
                    try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
                    printLine("wrote \(path)")
                }
            } catch {
                throw FTBackupError(.cannotWrite, "cannot write the units into \(folder): \(error.localizedDescription)", hint: "check the folder and its permissions")
            }
            return .success
        }
    }
}
