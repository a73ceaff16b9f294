import ArgumentParser
import FTBackupKit
import Foundation

/// `ftbackup sync --to REPO`: copies what the repository holds and the second one lacks (see ``RepositorySync``).
struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Copy every complete backup, change segment, archive, evidence and drill record to a second repository (resumable).")

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("to"), help: "The second repository: a folder or s3://BUCKET/PREFIX (else the policy's repository.second).")
    var destination: String?

    func run() async throws {
        try await reportingFailures {
            guard let to = try destination ?? global.policy().repository.second else {
                throw FTBackupError(.usage, "no second repository given", hint: "pass --to REPO or set the policy's repository.second")
            }
            let report = try RepositorySync.run(from: try global.existingRepositoryPath(), to: to)
            if global.output == .json {
                printLine(try JSONOutput.encode(report))
                return .success
            }
            for path in report.removedLeftovers { printLine("removed leftover \(path) (left by a killed run)") }
            for folder in report.skipped { printLine("skipped \(folder): not complete (no manifest)") }
            printLine("synced \(report.from) → \(report.to): copied \(report.copiedFiles) files (\(ByteCount.format(report.copiedBytes))), \(report.keptFiles) already there")
            return .success
        }
    }
}
