import Foundation

/// What a restore does once every row, index and statistic is in: pg_restore's post-data section less
/// what was built already (foreign keys, triggers, policies, partitions' indexes), the materialized
/// views refreshed, then with `--clean` what other schemas held on the restored ones put back
/// (`OutsideDependants`). The backup's event triggers are left out and created last
/// (`createEventTriggers`), once no DDL of the restore's own is left to fire them (an application's
/// trigger logging DDL into a restored table would otherwise add rows to it).
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
            environment["PGOPTIONS"] = [environment["PGOPTIONS"], "-c maintenance_work_mem=512MB -c synchronous_commit=off"].compactMap { $0 }.joined(separator: " ")
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
