import ArgumentParser
import FTBackupKit
import Foundation

/// `ftbackup restore`: the newest good backup (or `--set`) into a target database.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a full backup into a target database (whole, or selected schemas).")

    @OptionGroup var global: GlobalOptions

    @Option(help: "Target database (libpq conninfo or URI).")
    var target: String

    @Option(name: .customLong("set"), help: "The backup to restore (default: the newest complete full backup).")
    var label: String?

    @Option(name: .customLong("schema"), help: "Restore only this schema (repeatable).")
    var schemas: [String] = []

    @Flag(help: "Drop exactly the schemas being restored from the target first.")
    var clean = false

    @Flag(help: "With --clean: also drop what other schemas hold on the restored ones and cannot be saved and put back (listed first; without it such a restore is refused).")
    var cascade = false

    @Flag(help: "Confirm restoring over the backup's own source database (needs --clean).")
    var yes = false

    @Flag(name: .customLong("no-owner"), help: "Skip ownership and grants (for targets without the source's roles).")
    var noOwner = false

    @Flag(name: .customLong("dry-run"), help: "Print the plan and stop.")
    var dryRun = false

    @Flag(name: .customLong("keep-retired"), help: "Keep rows that archive and prune runs had removed from the source (default: remove them again).")
    var keepRetired = false

    @Flag(name: .customLong("allow-version-change"), help: "Load a backup's binary COPY files into a server of another PostgreSQL major version than its source (refused by default; only same-version restores are tested).")
    var allowVersionChange = false

    @Flag(name: .customLong("skip-analyze"), help: "Leave planner statistics to autovacuum, as pg_restore does (default: ANALYZE every restored table before finishing).")
    var skipAnalyze = false

    @Option(help: "Restore the database as it was at this time (ISO 8601 with a zone: \(RecoveryTarget.examples)).")
    var at: String?

    func run() async throws {
        try await reportingFailures {
            var options = RestoreOptions(
                target: try global.connection(target), repositoryPath: try global.existingRepositoryPath(), label: label,
                schemas: schemas, jobs: global.jobs, clean: clean, confirmed: yes, noOwner: noOwner, dryRun: dryRun,
                logger: makeLogger())
            options.keepRetired = keepRetired
            options.cascade = cascade
            options.allowVersionChange = allowVersionChange
            options.skipAnalyze = skipAnalyze
            options.policy = try global.policy()
            if let at {
                guard label == nil else { throw FTBackupError(.usage, "--at and --set cannot be combined", hint: "--at picks the full backup itself") }
                return try await RestoreCommand.pointInTime(options, at: try RecoveryTarget.parse(at), output: global.output)
            }
            let report = try await RestoreRunner.run(options)
            let plan = report.plan
            JobTotalsOfThisRun.record(JobTotals.restore(plan, dryRun: dryRun))
            if global.output == .json {
                printLine(try JSONOutput.encode(dryRun ? AnyEncodable(plan) : AnyEncodable(report)))
                return .success
            }
            printLine("\(dryRun ? "plan" : "restored"): backup \(plan.label) (consistent at \(Timestamps.display(plan.consistentAt)))")
            printLine("  from:     \(plan.source)")
            printLine("  into:     \(plan.target)")
            printLine("  schemas:  \(plan.wholeDatabase ? "all \(plan.schemas.count)" : plan.schemas.joined(separator: ", "))")
            printLine("  tables:   \(plan.tables), rows: \(plan.rows), \(ByteCount.format(plan.storedBytes)) to read, \(ByteCount.format(plan.rawBytes)) to load")
            printLine("  options:  jobs=\(plan.jobs)\(plan.clean ? " clean" : "")\(plan.noOwner ? " no-owner" : "")\(skipAnalyze ? " skip-analyze" : "")")
            if !dryRun {
                let phases = report.phases.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.1f", $0.value))s" }
                printLine("  took:     \(String(format: "%.1f", report.seconds)) s (\(phases.joined(separator: ", ")))")
                RestoreCommand.printRetired(report.retired)
                if skipAnalyze { printLine("  statistics: not gathered (--skip-analyze): autovacuum analyzes the tables, or run vacuumdb --analyze-only") }
            }
            return .success
        }
    }

    static func pointInTime(_ options: RestoreOptions, at: Date, output: OutputFormat) async throws -> ExitStatus {
        let report = try await PointInTimeRestore.run(options, at: at)
        let plan = report.plan
        JobTotalsOfThisRun.record(JobTotals.restore(plan.restore, dryRun: options.dryRun))
        if output == .json {
            printLine(try JSONOutput.encode(options.dryRun ? AnyEncodable(plan) : AnyEncodable(report)))
            return .success
        }
        printLine("\(options.dryRun ? "plan" : "restored"): the database as it was at \(Timestamps.display(plan.at))")
        printLine("  full:         \(plan.full) (consistent at \(Timestamps.display(plan.fullConsistentAt)), LSN \(plan.consistentPoint))")
        printLine("  segments:     \(plan.segments.count) (\(ByteCount.format(plan.segmentBytes))): \(plan.segments.first ?? "-") … \(plan.segments.last ?? "-")")
        if let skipped = plan.segmentsSkipped { printLine("  skipped:      \(skipped.count) segment(s) naming none of the schemas, left unread") }
        printLine("  replay:       \(plan.transactions) transactions; last: \(plan.lastCommitLSN ?? "none") committed \(plan.lastCommitTime.map { Timestamps.display($0) } ?? "-")")
        printLine("  schemas:      \(plan.restore.wholeDatabase ? "all \(plan.restore.schemas.count)" : plan.restore.schemas.joined(separator: ", "))")
        printLine("  into:         \(plan.restore.target)")
        if options.dryRun {
            printLine("  estimate:     about \(Int(plan.estimatedSeconds.rounded(.up))) s")
        } else {
            printLine("  took:         \(String(format: "%.1f", report.seconds)) s (replay of \(report.changesApplied) changes in \(String(format: "%.1f", report.replaySeconds)) s)")
            printRetired(report.fullRestore?.retired)
            if options.skipAnalyze { printLine("  statistics:   not gathered (--skip-analyze): autovacuum analyzes the tables, or run vacuumdb --analyze-only") }
        }
        return .success
    }

    static func printRetired(_ retired: RetiredDataReapplier.Report?) {
        guard let retired else {
            printLine("  retired:      kept (--keep-retired): rows archived or pruned since the backup are back in the target")
            return
        }
        let tools = retired.tools.filter { $0.rows.values.reduce(0, +) > 0 }.count
        let audit = retired.pruneCutoff.map { " and \(retired.pruneRows) audit rows older than \($0) (prune run \(retired.pruneRun ?? "-"))" } ?? ""
        printLine("  retired:      removed again \(retired.archivedRows) archived rows (\(tools) tool schemas)\(audit)")
        for tool in retired.tools {
            for kept in tool.kept {
                printLine("  retired:      kept \(kept.rows) archived \(tool.schema) rows still referenced in the restored state by \(kept.reference)")
            }
        }
        if !retired.pendingArchives.isEmpty {
            printLine("  retired:      not applied: pending archives \(retired.pendingArchives.joined(separator: ", ")) (run ftbackup lifecycle archive to settle them)")
        }
        if !retired.unsettledUnarchives.isEmpty {
            printLine("  retired:      kept the ids of interrupted unarchive runs of \(retired.unsettledUnarchives.joined(separator: ", ")) (run ftbackup lifecycle unarchive --archive NAME against the source to settle them)")
        }
    }
}
