import ArgumentParser
import FTBackupKit
import Foundation

/// `ftbackup lifecycle …`: archive completed tool data, prune old audit rows, list and undo archives.
struct LifecycleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lifecycle",
        abstract: "Data lifecycle: archive old completed tool data, prune audit rows past retention.",
        subcommands: [Archive.self, List.self, Unarchive.self, PruneAudit.self])

    /// `ftbackup lifecycle archive [--dry-run] [--schema NAME]… [--batch N]`
    struct Archive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Archive completed tool_data rows past the policy's age (and their dependants), verified before any delete.")

        @OptionGroup var global: GlobalOptions
        @Flag(name: .customLong("dry-run"), help: "Print what a real run would archive and stop.") var dryRun = false
        @Option(name: .customLong("schema"), help: "Only this tool schema (repeatable).") var schemas: [String] = []
        @Option(help: "Rows per batch (each batch is one short transaction).") var batch = 1000

        func run() async throws {
            try await reportingFailures {
                let report = try await ToolDataArchiver.run(ArchiveOptions(
                    database: try global.connectionString(), repositoryPath: try global.repositoryPath(required: true)!,
                    policy: try global.policy(), schemas: schemas, batchSize: batch, dryRun: dryRun, logger: makeLogger()))
                JobTotalsOfThisRun.record(JobTotals.archive(report))
                if global.output == .json { printLine(try JSONOutput.encode(report)); return .success }
                for action in report.reconciled { printLine("reconciled \(action.archive): \(action.action)") }
                printLine("\(report.dryRun ? "would archive" : "archived") \(report.rows) tool_data rows older than \(Timestamps.display(report.cutoff)) (run \(report.run))")
                for schema in report.schemas where schema.rows > 0 || schema.keptReferenced > 0 {
                    var line = "  \(schema.schema): \(schema.rows) rows + \(schema.dependantRows) dependant rows, \(ByteCount.format(schema.bytes)), \(schema.ageColumn) \(schema.oldest ?? "-") … \(schema.newest ?? "-")"
                    if schema.keptReferenced > 0 { line += "; kept \(schema.keptReferenced) still referenced (e.g. \(schema.keptReferencedIds.prefix(3).joined(separator: ", ")))" }
                    printLine(line)
                    for blocked in schema.blocked {
                        printLine("    kept \(blocked.rows) rows referenced by \(blocked.reference) (e.g. \(blocked.ids.prefix(3).joined(separator: ", ")))")
                    }
                    if !schema.silencedTriggers.isEmpty {
                        printLine("    application triggers not fired: \(schema.silencedTriggers.joined(separator: ", "))")
                    }
                }
                return .success
            }
        }
    }

    /// `ftbackup lifecycle list [--output json]`
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the archives and the exports of dropped audit partitions (name, schema, rows, time range, status, last verification).")

        @OptionGroup var global: GlobalOptions

        struct Row: Encodable {
            /// `archive` (tool data) or `partition-export` (an audit partition retired whole).
            var kind: String
            var name: String
            var schema: String?
            var status: String
            var rows: Int64?
            var storedBytes: Int64?
            var oldest: String?
            var newest: String?
            var restoredIds: Int?
            /// `verified`, `verify-failed` or `unverified`: the last `ftbackup verify` of its files.
            var verification: String
            var lastVerifiedAt: Date?
        }

        func run() async throws {
            try await reportingFailures {
                let store = ArchiveStore(storage: try RepositoryStorageFactory.open(try global.existingRepositoryPath()))
                let rows = try store.all().map { name, manifest in
                    let checked = VerificationOverview.item(ArchiveManifest.self, name: name, storage: store.storage)
                    return Row(kind: "archive", name: name, schema: manifest?.schema, status: manifest?.status.rawValue ?? "incomplete", rows: manifest?.rows,
                               storedBytes: manifest?.storedBytes, oldest: manifest?.oldest, newest: manifest?.newest,
                               restoredIds: manifest?.restoredIds.count, verification: checked.verification.rawValue,
                               lastVerifiedAt: checked.lastVerifiedAt)
                } + PartitionExportStore(storage: store.storage).all().map { name, export in
                    let checked = VerificationOverview.item(PartitionExport.self, name: name, storage: store.storage)
                    return Row(kind: "partition-export", name: name, schema: export.map { "\($0.partition)" },
                               status: export?.status.rawValue ?? "incomplete", rows: export?.rows, storedBytes: export?.file.storedBytes,
                               oldest: export?.oldest, newest: export?.newest, restoredIds: nil, verification: checked.verification.rawValue,
                               lastVerifiedAt: checked.lastVerifiedAt)
                }
                if global.output == .json { printLine(try JSONOutput.encode(rows)); return .success }
                if rows.isEmpty { printLine("no archives") }
                for row in rows {
                    let checked = row.verification == "verify-failed" ? "VERIFY-FAILED" : row.verification
                    printLine("\(row.kind == "archive" ? "" : "partition \(row.schema ?? "-")  ")\(row.name)  \(row.status)  \(row.rows ?? 0) rows  \(ByteCount.format(row.storedBytes ?? 0))  \(row.oldest ?? "-") … \(row.newest ?? "-")  \(checked)\(row.lastVerifiedAt.map { " \(Timestamps.display($0))" } ?? "")")
                }
                return .success
            }
        }
    }

    /// `ftbackup lifecycle unarchive --archive NAME [--id UUID]…`
    struct Unarchive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Put archived rows back exactly (refuses ids that already exist).")

        @OptionGroup var global: GlobalOptions
        @Option(help: "The archive's name (ftbackup lifecycle list).") var archive: String
        @Option(name: .customLong("id"), help: "Only this tool_data id and its dependants (repeatable).") var ids: [String] = []

        func run() async throws {
            try await reportingFailures {
                let report = try await Unarchiver.run(database: try global.connectionString(), repositoryPath: try global.existingRepositoryPath(),
                                                      archive: archive, ids: ids, policy: try global.policy())
                JobTotalsOfThisRun.record(JobTotals(unarchive: report))
                if global.output == .json { printLine(try JSONOutput.encode(report)); return .success }
                let rows = report.rows.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                printLine("put back \(report.ids.count) tool_data ids into \(report.schema) (\(rows)); archive is now \(report.status.rawValue)")
                return .success
            }
        }
    }

    /// `ftbackup lifecycle prune-audit [--dry-run] [--batch N]`
    struct PruneAudit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "prune-audit",
            abstract: "Delete audit rows older than the policy's retention, in short batches, with evidence.")

        @OptionGroup var global: GlobalOptions
        @Flag(name: .customLong("dry-run"), help: "Print what a real run would delete and stop.") var dryRun = false
        @Option(help: "Rows per batch (each batch is one short transaction).") var batch = 5000
        @Flag(name: .customLong("no-partition-drop"),
              help: "Prune every partition by rows, even one whose whole range is past retention (default: export it, then drop it).")
        var noPartitionDrop = false

        func run() async throws {
            try await reportingFailures {
                var options = AuditPruner.Options(database: try global.connectionString(), repositoryPath: try global.repositoryPath(required: true)!,
                                                  policy: try global.policy())
                options.batchSize = batch
                options.dryRun = dryRun
                options.dropPartitions = !noPartitionDrop
                options.logger = makeLogger()
                let report = try await AuditPruner.run(options)
                JobTotalsOfThisRun.record(JobTotals.prune(report))
                if global.output == .json { printLine(try JSONOutput.encode(report)); return .success }
                printLine("\(report.dryRun ? "would delete" : "deleted") \(report.rows) audit rows older than \(report.cutoff) \(report.timeZone ?? "") (retention \(report.retention), the database's own time zone)")
                for line in report.reconciled { printLine("reconciled \(line)") }
                for table in report.tables where table.rows > 0 {
                    printLine("  \(table.schema).\(table.table): \(table.rows) rows, \(table.oldest ?? "-") … \(table.newest ?? "-"), \(table.batches) batches\(table.sha256.map { ", sha256 \($0.prefix(16))…" } ?? "")")
                    for partition in table.partitions where (partition.rows > 0 || partition.method == .drop)
                        && partition.partition != "\(table.schema).\(table.table)" {
                        let how = partition.method == .drop
                            ? "\(report.dryRun ? "would drop" : "dropped") whole\(partition.export.map { ", exported to \($0)" } ?? "")"
                            : "\(report.dryRun ? "would prune" : "pruned") by rows\(partition.reason.map { " (\($0))" } ?? "")"
                        printLine("    \(partition.partition): \(partition.rows) rows, \(how)")
                    }
                }
                if !report.silencedTriggers.isEmpty {
                    printLine("  application triggers not fired: \(report.silencedTriggers.joined(separator: ", "))")
                }
                return .success
            }
        }
    }
}
