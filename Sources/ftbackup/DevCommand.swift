import ArgumentParser
import FTBackupKit
import Foundation

/// `ftbackup dev …`: tools for developing and demonstrating ftbackup, never for production.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Development helpers (demo database generator).",
        subcommands: [Seed.self])

    /// `ftbackup dev seed --scale S`: generate the Fast Track demo database into an empty database.
    struct Seed: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the Fast Track schemas and nine years of generated data in an empty database.")

        @OptionGroup var global: GlobalOptions

        @Option(help: "Size: 1 is a few MB (tests), 200 about 1 GB (benchmarks).")
        var scale: Int = 1

        func run() async throws {
            try await reportingFailures {
                let report = try await FastTrackSeeder.seed(try global.connectionString(), scale: scale)
                if global.output == .json {
                    printLine(try JSONOutput.encode(report))
                } else {
                    printLine("seeded \(report.database) at scale \(report.scale): \(ByteCount.format(report.bytes)) in \(String(format: "%.1f", report.seconds)) s")
                }
                return .success
            }
        }
    }
}
