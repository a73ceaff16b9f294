import ArgumentParser
import FTBackupKit
import Foundation

/// `ftbackup status`: the whole suite on one screen, with Nagios plugin exit codes (0 OK, 1 WARNING,
/// 2 CRITICAL, 3 UNKNOWN); with `--metrics-dir` it also refreshes `ftbackup_suite.prom`.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "The whole suite on one screen: newest backups, restorable window, slot and follower, last drill and lifecycle runs, report findings.",
        discussion: "Nagios plugin exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the repository or database could not be read).")

    @OptionGroup var global: GlobalOptions

    @Flag(name: .customLong("no-report"), help: "Leave out the compliance report's findings (they need the database).")
    var noReport = false

    func run() async throws {
        let level: SuiteStatus.Level
        do {
            let status = try await Self.evaluate(global, withReport: !noReport)
            // A metrics file that cannot be written is a warning, as for every job: the level stays the suite's.
            do {
                if let directory = try global.metricsDirectory() {
                    try MetricsFile.write(directory: directory, job: "suite", status.health.metricFamilies + [Self.levelFamily(status.level)])
                }
            } catch {
                printWarning((error as? FTBackupError)?.description ?? "\(error)")
            }
            if global.output == .json {
                printLine(try JSONOutput.encode(status))
            } else {
                Self.render(status).forEach(printLine)
            }
            level = status.level
        } catch {
            let message = (error as? FTBackupError)?.description ?? (error as? PostgresError)?.description ?? "\(error)"
            if global.output == .json {
                // The same shape as a status that could be read (level a number, problems a list), without its health.
                printLine(try JSONOutput.encode(SuiteStatus.Unreadable(message: message)))
            } else {
                printLine("FTBACKUP UNKNOWN - \(message)")
            }
            level = .unknown
            // The suite file says UNKNOWN too (its other gauges kept: their ages still alert), so
            // Prometheus does not go on reading the last level that was measured.
            do {
                if let directory = try global.metricsDirectory() { try MetricsFile.replace(directory: directory, job: "suite", Self.levelFamily(.unknown)) }
            } catch {
                printWarning((error as? FTBackupError)?.description ?? "\(error)")
            }
        }
        if level != .ok { throw ExitCode(level.rawValue) }
    }

    static func levelFamily(_ level: SuiteStatus.Level) -> MetricFamily {
        MetricFamily("ftbackup_status_level", help: "ftbackup status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.", value: Double(level.rawValue))
    }

    /// The status of the repository (and the database, when one is configured).
    static func evaluate(_ global: GlobalOptions, withReport: Bool) async throws -> SuiteStatus {
        let policy = try global.policy()
        let configured = global.database ?? ProcessInfo.processInfo.environment["FTBACKUP_DB"]
        let database = configured == nil ? nil : try global.connectionString()
        let path = try global.existingRepositoryPath()
        let health = try await RepositoryHealth.read(try Repository.open(path), database: database, policy: policy)
        var findings: [ComplianceReport.Finding]?
        if withReport, let database {
            let report = try await ComplianceReport.build(ComplianceReportOptions(
                database: database, repositoryPath: path, policy: policy, period: try ReportPeriod.parse(month: nil, from: nil, to: nil)))
            findings = report.findings
        }
        return SuiteStatus.evaluate(health, policy: policy, reportFindings: findings)
    }

    static func render(_ status: SuiteStatus) -> [String] {
        let h = status.health
        var lines = ["FTBACKUP \(status.level.name) - " + (status.problems.first?.message ?? "all checks pass")]
        for problem in status.problems { lines.append("  \(problem.level.name): \(problem.message)") }
        func when(_ date: Date?) -> String { date.map { "\(Timestamps.display($0)) (\(Self.age(h.checkedAt.timeIntervalSince($0))) ago)" } ?? "none" }
        lines.append("newest full:        \(h.newestFull.map { "\($0.label), \(when($0.finishedAt))" } ?? "none")")
        lines.append("newest segment:     \(when(h.newestSegmentAt)) (\(h.segments) segments, sealed by incremental passes or the follower)")
        lines.append("restorable:         \(h.restorableFrom.map { Timestamps.display($0) } ?? "?") … \(when(h.restorableUntil))")
        if let slot = h.slot, slot.exists {
            lines.append("slot:               \(slot.name ?? "?"), wal_status \(slot.walStatus ?? "?"), \(ByteCount.format(slot.lagBytes)) retained\(slot.active ? ", in use" : "")")
        }
        if let follower = h.followerAlive { lines.append("follower:           \(follower ? "alive" : "not running")") }
        lines.append("last drill:         \(h.lastDrill.map { "\($0.label) \($0.passed ? "passed" : "FAILED"), RTO \(Int($0.rtoSeconds)) s, RPO \(Int($0.rpoSeconds)) s" } ?? "none")")
        for run in h.lifecycle {
            lines.append("lifecycle \(run.kind):".padding(toLength: max(20, run.kind.count + 12), withPad: " ", startingAt: 0)
                         + ("\(run.run)\(run.rows.map { ", \($0) rows" } ?? ""); \(run.runs) run(s), \(run.rowsTotal) rows in all"))
        }
        if let findings = status.reportFindings {
            lines.append("report findings:    \(findings.count)")
            for finding in findings.prefix(10) { lines.append("  [\(finding.section.rawValue)] \(finding.message)") }
        }
        return lines
    }

    static func age(_ seconds: Double) -> String {
        seconds < 120 ? "\(Int(seconds)) s" : seconds < 7200 ? "\(Int(seconds / 60)) min" : seconds < 172_800 ? String(format: "%.1f h", seconds / 3600)
            : String(format: "%.1f d", seconds / 86400)
    }
}
