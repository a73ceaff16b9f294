import ArgumentParser
import FTBackupKit
import Foundation

/// `ftbackup dev …`: tools for developing and demonstrating ftbackup, never for production.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Development helpers (demo database generator).",
        subcommands: [Seed.self, Compare.self])

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

extension DevCommand {
    /// `ftbackup dev compare --db A --target B`: table-by-table ordered row hashes of two databases.
    struct Compare: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare two databases table by table (row counts and ordered row hashes).")

        @OptionGroup var global: GlobalOptions

        @Option(help: "The database to compare with --db.")
        var target: String

        @Option(name: .customLong("schema"), help: "Only these schemas (repeatable).")
        var schemas: [String] = []

        func run() async throws {
            try await reportingFailures {
                let source = try await DatabaseSession.connect(try global.connectionString(), name: "compare-source")
                let other = try await DatabaseSession.connect(try global.connection(target), name: "compare-target")
                defer { source.close(); other.close() }
                let left = try await TableFingerprint.compute(source, schemas: schemas.isEmpty ? nil : schemas)
                let right = try await TableFingerprint.compute(other, schemas: schemas.isEmpty ? nil : schemas)
                let differences = TableFingerprint.differences(source: left, restored: right)
                if global.output == .json {
                    printLine(try JSONOutput.encode(["tables": AnyEncodable(left.count), "differences": AnyEncodable(differences)]))
                } else if differences.isEmpty {
                    printLine("match: \(left.count) tables, \(left.reduce(0) { $0 + $1.rows }) rows identical (ordered row hashes)")
                } else {
                    printLine("DIFFERENT: \(differences.count) of \(left.count) tables")
                    differences.forEach { printLine("  \($0)") }
                }
                return differences.isEmpty ? .success : .dataError
            }
        }
    }
}
