import ArgumentParser
import FTBackupKit
import Foundation

/// `ftbackup expire [--dry-run]`: removes the backups the policy's retention no longer asks for;
/// prints each backup with its decision and the reason.
struct ExpireCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "expire",
        abstract: "Remove backups older than the policy's retention (never the newest full, never one whose successor is unverified).")

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Show what would be removed; remove nothing.")
    var dryRun = false

    func run() async throws {
        try await reportingFailures {
            let report = try BackupExpiry.run(repositoryPath: try global.existingRepositoryPath(),
                                              policy: try global.policy(), dryRun: dryRun)
            if global.output == .json {
                printLine(try JSONOutput.encode(report))
                return .success
            }
            let plan = report.plan
            if plan.items.isEmpty { printLine("no backups in \(report.repository)") }
            let width = plan.items.map(\.label.count).max() ?? 0
            func padded(_ text: String, _ length: Int) -> String { text.padding(toLength: max(length, text.count), withPad: " ", startingAt: 0) }
            for item in plan.items {
                let kind = item.type?.rawValue ?? item.status.rawValue
                let action = item.action == .remove && report.dryRun ? "would remove" : item.action.rawValue
                printLine("\(padded(item.label, width))  \(padded(kind, 10))  \(action): \(item.reason)")
            }
            let goingSegments = report.segments.filter { $0.action == .remove }
            if !report.segments.isEmpty {
                printLine("change segments: \(report.dryRun ? "would remove" : "removed") \(goingSegments.count) of \(report.segments.count) (\(ByteCount.format(goingSegments.reduce(0) { $0 + $1.storedBytes }))) older than \(report.incrementalRetention)")
            }
            let bytes = ByteCount.format(plan.removals.reduce(0) { $0 + ($1.storedBytes ?? 0) })
            if report.dryRun {
                printLine("dry run: would remove \(plan.removals.count) of \(plan.items.count) backups (\(bytes)), keep \(plan.kept.count); nothing removed")
            } else {
                printLine("removed \(report.removed.count) of \(plan.items.count) backups (\(bytes)), kept \(plan.kept.count)")
            }
            return .success
        }
    }
}
