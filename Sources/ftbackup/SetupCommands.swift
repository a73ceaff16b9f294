import ArgumentParser
import FTBackupKit
import Foundation

/// `ftbackup setup`: prepares the source for change archival (idempotent).
struct SetupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "setup",
        abstract: "Prepare the source for change archival: publication, heartbeat table, replication slot.")

    @OptionGroup var global: GlobalOptions
    @Flag(name: .customLong("dry-run"), help: "Print what it would do and stop.") var dryRun = false
    @Flag(name: .customLong("fix-replica-identity"), help: "Set REPLICA IDENTITY FULL on tables with no primary key.") var fix = false
    @Option(name: .customLong("slot-wait"), help: "Seconds to wait for open transactions when creating the slot (default: FTBACKUP_SLOT_WAIT, else 30).") var slotWait: Double?

    func validate() throws {
        // Task.sleep traps on a duration it cannot hold (inf, nan, 1e30 s).
        if let slotWait, !(slotWait.isFinite && (0...86_400).contains(slotWait)) {
            throw ValidationError("--slot-wait must be a number of seconds between 0 and 86400")
        }
    }

    func run() async throws {
        try await reportingFailures {
            let report = try await ChangeArchivalSetup.setup(try global.connectionString(), dryRun: dryRun,
                                                             fixReplicaIdentity: fix, slotWaitSeconds: slotWait)
            if global.output == .json { printLine(try JSONOutput.encode(report)); return .success }
            for action in report.actions { printLine("\(dryRun ? "would " : "")\(action)") }
            if !report.tablesWithoutReplicaIdentity.isEmpty && report.fixedReplicaIdentity.isEmpty {
                printLine("WARNING: \(report.tablesWithoutReplicaIdentity.count) tables have no primary key or replica identity; UPDATE and DELETE on them fail once the publication exists:")
                report.tablesWithoutReplicaIdentity.forEach { printLine("  \($0)") }
                printLine("  run ftbackup setup --fix-replica-identity to set REPLICA IDENTITY FULL on exactly these")
            }
            return .success
        }
    }
}

/// `ftbackup teardown`: removes what setup made, the slot first.
struct TeardownCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "teardown", abstract: "Remove the replication slot, publication and heartbeat schema.")

    @OptionGroup var global: GlobalOptions
    @Flag(name: .customLong("dry-run"), help: "Print what it would do and stop.") var dryRun = false

    func run() async throws {
        try await reportingFailures {
            let actions = try await ChangeArchivalSetup.teardown(try global.connectionString(), dryRun: dryRun)
            if global.output == .json { printLine(try JSONOutput.encode(["actions": actions])); return .success }
            if actions.isEmpty { printLine("nothing to remove") }
            for action in actions { printLine("\(dryRun ? "would " : "")\(action)") }
            return .success
        }
    }
}
