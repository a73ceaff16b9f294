import ArgumentParser
import FTBackupKit
import Foundation

/// `ftbackup repo`: upkeep of the repository itself (cleanup).
struct RepoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repo",
        abstract: "Upkeep of the repository itself.",
        subcommands: [RepoCleanupCommand.self])
}

/// `ftbackup repo cleanup [--older-than MINUTES] [--dry-run]`: what killed runs left (see ``RepositoryCleanup``).
struct RepoCleanupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cleanup",
        abstract: "Abort unfinished S3 multipart uploads and remove temporary files and unfinished backups or segments that killed runs left (under the repository's locks; never anything a manifest references).")

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("older-than"), help: "Only what is older than this many minutes (default: everything the locks show is abandoned).")
    var olderThan: Int?

    @Flag(name: .customLong("dry-run"), help: "List what would go; change nothing.")
    var dryRun = false

    func run() async throws {
        try await reportingFailures {
            let report = try RepositoryCleanup.run(repositoryPath: try global.existingRepositoryPath(), olderThanMinutes: olderThan, dryRun: dryRun)
            if global.output == .json {
                printLine(try JSONOutput.encode(report))
                return .success
            }
            let verb = dryRun ? "would " : ""
            for upload in report.abortedUploads {
                printLine("\(verb)abort upload \(upload.path)" + (upload.initiated.map { " (begun \(Timestamps.iso8601UTC($0)))" } ?? ""))
            }
            for path in report.removedTemporaryFiles { printLine("\(verb)remove temporary file \(path)") }
            for label in report.removedIncompleteBackups { printLine("\(verb)remove incomplete backup \(label) (no manifest)") }
            for path in report.removedIncompleteSegments { printLine("\(verb)remove unsealed segment file \(path) (no manifest)") }
            for note in report.leftAlone { printLine("left alone: \(note)") }
            printLine(report.total == 0 ? "nothing to clean up in \(report.repository)"
                      : "\(dryRun ? "would clean" : "cleaned") \(report.total) item(s) in \(report.repository)")
            return .success
        }
    }
}
