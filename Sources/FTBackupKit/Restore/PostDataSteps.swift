import Foundation

/// What a restore does once every row is in and every key is built, beside the secondary index builds
/// and ANALYZE (`IndexAndAnalyzePhase`): pg_restore's post-data section less what was built already
/// (foreign keys, triggers, policies, partitions' indexes), the materialized views refreshed, then with
/// `--clean` what other schemas held on the restored ones put back (`OutsideDependants`).
///
/// Running it beside the builds fills the cores each side leaves idle at its ends. Table locks keep
/// the two apart: a foreign key or trigger waits for the build or ANALYZE holding its table, and those
/// each hold one table at a time, so neither side can wait for the other in a cycle. The backup's
/// event triggers are left out and created last (`createEventTriggers`), once no DDL of the restore's
/// own is left to fire them (an application's trigger logging `CREATE INDEX` into a restored table
/// would otherwise add rows to it).
struct PostDataSteps: Sendable {
    var pgRestore: String
    /// pg_restore's arguments common to every section, with `--jobs`.
    var arguments: [String]
    var dumpFile: String
    var environment: [String: String]
    var contents: RestoreContents
    /// Listing lines of the entries the restore built itself (indexes and keys, with their comments).
    var builtLines: Set<String>
    var materializedViews: [BackupManifest.RelationName]
    var options: RestoreOptions

    /// Runs the steps in order on `target`; returns the warnings of the dependants put back.
    func run(_ target: DatabaseSession, dependants: OutsideDependants, clock: RestorePhaseClock) async throws -> [String] {
        try await clock.timed("post-data") {
            let postList = try contents.writeList { builtLines.contains($0.line) || Self.isEventTrigger($0) }
            defer { try? FileManager.default.removeItem(atPath: postList) }
            var environment = environment
            // Beside `jobs` index builds of 512MB each: half that for the partitions' indexes built here.
            environment["PGOPTIONS"] = "-c maintenance_work_mem=256MB -c synchronous_commit=off"
            try await RestoreRunner.runTool(pgRestore, arguments + ["--section=post-data", "--use-list=\(postList)", dumpFile],
                                            environment, options.target)
        }
        try await clock.timed("refresh") {
            for view in materializedViews {
                try Task.checkCancellation()
                try await target.execute("REFRESH MATERIALIZED VIEW \(try target.qualifiedName(view.schema, view.name))")
            }
        }
        guard !dependants.isEmpty else { return [] }
        return try await clock.timed("dependants") { try await dependants.putBack(target, options: options) }
    }

    /// The backup's event triggers (with their comments and labels), after everything else the restore runs.
    func createEventTriggers() async throws {
        guard contents.entries.contains(where: Self.isEventTrigger) else { return }
        let list = try contents.writeList { !Self.isEventTrigger($0) }
        defer { try? FileManager.default.removeItem(atPath: list) }
        try await RestoreRunner.runTool(pgRestore, arguments.filter { !$0.hasPrefix("--jobs=") }
                                            + ["--section=post-data", "--single-transaction", "--use-list=\(list)", dumpFile],
                                        environment, options.target)
    }

    static func isEventTrigger(_ entry: RestoreContents.Entry) -> Bool {
        entry.type == "EVENT TRIGGER" || (["COMMENT", "SECURITY LABEL"].contains(entry.type) && entry.tag.hasPrefix("EVENT TRIGGER "))
    }
}
