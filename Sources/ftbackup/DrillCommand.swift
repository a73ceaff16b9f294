import ArgumentParser
import FTBackupKit
import Foundation

/// `ftbackup drill`: a restore drill measured against the policy's RTO and RPO; `drill list` shows the records.
struct DrillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drill",
        abstract: "Restore the newest restorable point into a scratch database, validate it, measure RTO and RPO.",
        discussion: "Exit 0 when the drill passed, 2 when it ran but missed an objective or a check (the record says which).",
        subcommands: [RunDrill.self, ListDrills.self],
        defaultSubcommand: RunDrill.self)

    struct RunDrill: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "run", abstract: "Run a drill (the default).")

        @OptionGroup var global: GlobalOptions

        @Option(help: "A separate drill server (libpq conninfo); the scratch database is created there. Default: the source's server.")
        var target: String?

        @Option(help: "Restore the database as it was at this time (ISO 8601 with a zone). Default: the newest restorable point.")
        var at: String?

        @Flag(help: "The newest restorable point (the default).")
        var latest = false

        @Option(name: .customLong("schema"), help: "Drill only this schema (repeatable).")
        var schemas: [String] = []

        @Flag(help: "Keep the scratch database after the drill.")
        var keep = false

        @Flag(help: "Also compare ordered row hashes, against the live source, of the tables unchanged since the point.")
        var compare = false

        func run() async throws {
            try await reportingFailures {
                if at != nil && latest { throw FTBackupError(.usage, "--at and --latest cannot be combined") }
                let record = try await DrillRunner.run(DrillOptions(
                    source: try global.connectionString(), repositoryPath: try global.existingRepositoryPath(), policy: try global.policy(),
                    target: try target.map { try global.connection($0) }, at: try at.map { try RecoveryTarget.parse($0) }, schemas: schemas,
                    keep: keep, compare: compare, jobs: global.jobs, logger: makeLogger(), showProgress: global.output == .text))
                JobTotalsOfThisRun.record(JobTotals(drill: record))
                if global.output == .json {
                    printLine(try JSONOutput.encode(record, microseconds: true))
                } else {
                    DrillCommand.printRecord(record)
                }
                return record.passed ? .success : .drillFailed
            }
        }
    }

    struct ListDrills: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the drill records.")

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await reportingFailures {
                let records = try DrillRecord.all(try Repository.open(try global.existingRepositoryPath()))
                if global.output == .json {
                    printLine(try JSONOutput.encode(records, microseconds: true))
                    return .success
                }
                if records.isEmpty { printLine("no drills yet") }
                for record in records {
                    printLine("\(record.label)  \(record.passed ? "passed" : "FAILED")  point \(Timestamps.display(record.point)) (\(record.method), backup \(record.backup))  RTO \(seconds(record.rto.measuredSeconds)) of \(seconds(record.rto.objectiveSeconds))  RPO \(seconds(record.rpo.measuredSeconds)) of \(seconds(record.rpo.objectiveSeconds))")
                    for reason in record.reasons { printLine("  \(reason)") }
                }
                return .success
            }
        }
    }

    static func printRecord(_ record: DrillRecord) {
        printLine("drill \(record.label): \(record.passed ? "PASSED" : "FAILED")")
        printLine("  point:     \(Timestamps.displayExact(record.point)) (\(record.method)); backup \(record.backup), \(record.segments.count) segments, \(record.transactionsReplayed) transactions replayed")
        printLine("  target:    \(record.target)\(record.kept ? " (kept)" : " (dropped)")")
        for name in record.leftoversRemoved { printLine("  removed:   scratch database \(name) left by a drill that did not finish") }
        printLine("  RTO:       \(seconds(record.rto.measuredSeconds)) measured, objective \(seconds(record.rto.objectiveSeconds)): \(record.rto.met ? "met" : "MISSED")")
        printLine("  phases:    \(record.phases.map { "\($0.name) \(String(format: "%.1f", $0.seconds))s" }.joined(separator: ", "))")
        let age = record.rpo.ageAtStartSeconds.map { "newest point \(seconds($0)) old at the start" } ?? "no restorable point"
        printLine("  RPO:       \(seconds(record.rpo.measuredSeconds)) worst over \(record.rpo.historyDays) days (\(age)), objective \(seconds(record.rpo.objectiveSeconds)): \(record.rpo.met ? "met" : "MISSED")")
        printLine("  headroom:  \(record.headroom.statement)")
        let badTables = record.tables.filter { !$0.ok }.count
        printLine("  tables:    \(record.tables.count - badTables) of \(record.tables.count) with the expected row count")
        let byKind = Dictionary(grouping: record.checks, by: \.kind)
        for kind in byKind.keys.sorted() {
            let checks = byKind[kind]!
            printLine("  \(kind):\(String(repeating: " ", count: max(1, 10 - kind.count)))\(checks.filter(\.ok).count) of \(checks.count) ok")
        }
        for reason in record.reasons { printLine("  reason:    \(reason)") }
    }
}

/// Seconds as `1h 02m 03s`, `4m 05s` or `12.3s`.
func seconds(_ value: Double) -> String {
    if value < 60 { return String(format: "%.1fs", value) }
    let whole = Int(value.rounded())
    if whole < 3600 { return String(format: "%dm %02ds", whole / 60, whole % 60) }
    return String(format: "%dh %02dm %02ds", whole / 3600, whole % 3600 / 60, whole % 60)
}
