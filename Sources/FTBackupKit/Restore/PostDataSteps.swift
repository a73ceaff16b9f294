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

    /// Runs the steps in order on `target`; returns the warnings of the dependants put back, and the keys that could not be.
    func run(_ target: DatabaseSession, dependants: OutsideDependants, clock: RestorePhaseClock) async throws
        -> (warnings: [String], notBack: OutsideDependants.KeysNotPutBack?) {
        var warnings: [String] = []
        try await clock.timed("post-data") {
            let environment = toolEnvironment
            let unpublished = options.schemas.isEmpty ? []
                : try await Self.membershipsWithoutPublication(contents, target).filter { options.schemas.contains($0.schema ?? "") }
            for entry in unpublished {
                let warning = "\(entry.type.lowercased()) \(entry.tag) not restored: the target has no such publication (a --schema restore does not create publications)"
                options.logger.warning("\(warning)")
                warnings.append(warning)
            }
            let skipped = Set(unpublished.map(\.line))
            let left = { (entry: RestoreContents.Entry) in self.left(entry) && !skipped.contains(entry.line) }
            // Indexes first when partitions' indexes are still to be attached (see `isIndexWork`), then the rest. Only
            // what pg_restore --schema restores decides it: another schema's attachments made a one-tool restore run an
            // empty pass first (about 50 ms of its second).
            let restored = { (entry: RestoreContents.Entry) in Self.restores(entry, schemas: options.schemas) }
            let lists = contents.entries.contains { left($0) && restored($0) && $0.type == "INDEX ATTACH" }
                ? [try contents.writeList(including: { left($0) && Self.isIndexWork($0) }),
                   try contents.writeList(excluding: { !left($0) || Self.isIndexWork($0) })]
                : [try contents.writeList(excluding: { !left($0) })]
            defer { for list in lists { try? FileManager.default.removeItem(atPath: list) } }
            for postList in lists {
                try await RestoreRunner.runTool(pgRestore, arguments + ["--section=post-data", "--use-list=\(postList)", dumpFile],
                                                environment, options.target)
            }
        }
        try await clock.timed("refresh") {
            for view in materializedViews {
                try Task.checkCancellation()
                try await target.execute("REFRESH MATERIALIZED VIEW \(try target.qualifiedName(view.schema, view.name))")
            }
        }
        guard !dependants.isEmpty else { return (warnings, nil) }
        let putBack = try await clock.timed("dependants") { try await dependants.putBack(target, options: options) }
        return (warnings + putBack.warnings, putBack.notBack)
    }

    /// What post-data still has to run: not built by the restore itself (or run ahead of it), not an event trigger.
    func left(_ entry: RestoreContents.Entry) -> Bool {
        !builtLines.contains(entry.line) && !Self.isEventTrigger(entry)
    }

    /// `entries` of post-data ahead of the rest, in one transaction (`ForeignKeysBeforeReplay`); the caller adds their
    /// lines to `builtLines`. Keys referencing one table wait for each other's lock anyway: `--jobs` gained little.
    func runAhead(_ entries: [RestoreContents.Entry]) async throws {
        let lines = Set(entries.map(\.line))
        let list = try contents.writeList(including: { lines.contains($0.line) })
        defer { try? FileManager.default.removeItem(atPath: list) }
        try await RestoreRunner.runTool(pgRestore, arguments.filter { !$0.hasPrefix("--jobs=") }
                                            + ["--section=post-data", "--single-transaction", "--use-list=\(list)", dumpFile],
                                        toolEnvironment, options.target)
    }

    private var toolEnvironment: [String: String] {
        var environment = environment
        environment["PGOPTIONS"] = [environment["PGOPTIONS"], "-c maintenance_work_mem=512MB -c synchronous_commit=off"].compactMap { $0 }.joined(separator: " ")
        return environment
    }

    /// pg_restore's `--jobs` for post-data: one connection when the restored tables hold less than `smallRestoreBytes`
    /// of data. A parallel pass opens a connection per worker and the leader's twice, and its foreign keys checked a
    /// few thousand rows each: a one-tool restore's pass took 125 ms, 50 ms of them statements.
    static func jobs(_ jobs: Int, tables: [BackupManifest.Table]) -> Int {
        tables.reduce(0) { $0 + $1.file.rawBytes } < smallRestoreBytes ? 1 : jobs
    }

    static let smallRestoreBytes: Int64 = 32 << 20

    /// The backup's event triggers (with their comments and labels), after everything else the restore runs.
    func createEventTriggers() async throws {
        // pg_restore --schema restores no event trigger (they belong to no schema): a pass would do nothing.
        guard options.schemas.isEmpty, contents.entries.contains(where: Self.isEventTrigger) else { return }
        let list = try contents.writeList(including: Self.isEventTrigger)
        defer { try? FileManager.default.removeItem(atPath: list) }
        try await RestoreRunner.runTool(pgRestore, arguments.filter { !$0.hasPrefix("--jobs=") }
                                            + ["--section=post-data", "--single-transaction", "--use-list=\(list)", dumpFile],
                                        environment, options.target)
    }

    /// A `--schema` restore's publication memberships (`PUBLICATION TABLE`, `PUBLICATION TABLES IN SCHEMA`, tagged
    /// "publication table") whose publication the target lacks: pg_restore keeps them (they are in the schema) but not
    /// the publication (it has no schema), and `ALTER PUBLICATION … ADD TABLE` failed post-data after every row was in,
    /// the target half-built (adv25 D3). A restore in place keeps its publication, and its tables' memberships come back.
    static func membershipsWithoutPublication(_ contents: RestoreContents, _ target: DatabaseSession) async throws -> [RestoreContents.Entry] {
        let memberships = contents.entries.filter { ["PUBLICATION TABLE", "PUBLICATION TABLES IN SCHEMA"].contains($0.type) }
        guard !memberships.isEmpty else { return [] }
        let publications = try await target.query("SELECT pubname FROM pg_publication").rows.map { try $0.requiredString("pubname") }
        return memberships.filter { entry in !publications.contains { entry.tag.hasPrefix($0 + " ") } }
    }

    /// An index, an index's attachment to its parent's, an index-backed constraint, or a comment on an index: post-data's first pass when any
    /// attachment is left. pg_restore's `--jobs` scheduler sees no table lock in `ALTER INDEX … ATTACH PARTITION` (its
    /// dependencies are two indexes) and ran it beside `ALTER TABLE root ADD FOREIGN KEY`, which locks every
    /// partition: each waited for the other's lock, and the server killed one as a deadlock (3 restores in 6 of a
    /// sub-partitioned table with an index and a foreign key on its root, adv24 D5). A plain pg_restore builds the
    /// keys the foreign key needs in post-data too, which happened to order them; this restore builds those earlier.
    /// Index-backed constraints (type CONSTRAINT: primary key, unique, exclusion) go with them: an attachment may be
    /// to a partitioned table's key that post-data creates (backups from before partitioned keys were built early).
    static func isIndexWork(_ entry: RestoreContents.Entry) -> Bool {
        ["INDEX", "INDEX ATTACH", "CONSTRAINT"].contains(entry.type) || (entry.type == "COMMENT" && entry.tag.hasPrefix("INDEX "))
    }

    /// Whether pg_restore restores `entry` with `--schema` for each of `schemas` (every entry when there are none):
    /// an entry of no schema (event triggers, extensions, publications) is never restored then.
    static func restores(_ entry: RestoreContents.Entry, schemas: [String]) -> Bool {
        schemas.isEmpty || entry.schema.map(schemas.contains) == true
    }

    static func isEventTrigger(_ entry: RestoreContents.Entry) -> Bool {
        entry.type == "EVENT TRIGGER" || (["COMMENT", "SECURITY LABEL"].contains(entry.type) && entry.tag.hasPrefix("EVENT TRIGGER "))
    }
}
