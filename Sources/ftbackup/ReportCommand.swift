import ArgumentParser
import FTBackupKit
import Foundation

/// `ftbackup report`: the compliance report (audit retention, archival, backups, recovery testing,
/// tamper evidence), findings first; exit 2 when it has findings.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Compliance report: retention, archival, backup coverage, restore drills and tamper evidence, findings first.",
        discussion: "Exit 0 when every check passes, 2 when the report was made and has findings, the usual codes when it could not be made.")

    @OptionGroup var global: GlobalOptions

    @Option(help: "The UTC month to report on (YYYY-MM). Default: the current month.")
    var month: String?

    @Option(help: "First UTC day to report on (YYYY-MM-DD), with --to.")
    var from: String?

    @Option(help: "Last UTC day to report on (YYYY-MM-DD, included), with --from.")
    var to: String?

    @Option(help: "text, markdown, json or html (default: text, or json with --output json).")
    var format: String?

    @Option(help: "Write the report to this file (0600) instead of standard output.")
    var out: String?

    func run() async throws {
        try await reportingFailures {
            let chosen = format ?? (global.output == .json ? "json" : "text")
            guard let reportFormat = ReportFormat(rawValue: chosen) else {
                throw FTBackupError(.usage, "--format \(chosen) is not one of text, markdown, json, html")
            }
            let period = try ReportPeriod.parse(month: month, from: from, to: to)
            let report = try await ComplianceReport.build(ComplianceReportOptions(
                database: try global.connectionString(), repositoryPath: try global.existingRepositoryPath(), policy: try global.policy(),
                period: period, logger: makeLogger()))
            let text = try report.rendered(reportFormat)
            if let out {
                try ComplianceReport.write(text, to: out)
                printLine("report \(report.period.label) written to \(out): \(report.findings.isEmpty ? "no findings" : "\(report.findings.count) finding(s)")")
            } else {
                FileHandle.standardOutput.write(Data(text.utf8))
            }
            return report.passed ? .success : .reportHasFindings
        }
    }
}
