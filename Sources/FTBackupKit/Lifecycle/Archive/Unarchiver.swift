import Foundation
import Logging

/// Puts archived rows back exactly as they were: `ftbackup lifecycle unarchive`.
///
/// It exists because archiving is only safe if it can be undone: a customer asks for a 3-year-old
/// canvas back, or an archive run used a wrong policy. Rows come back through COPY from the
/// verified archive files, parents before children, in one transaction, and:
/// - application triggers do not fire (`ApplicationTriggerGuard`: `session_replication_role =
///   replica`, which needs superuser or `GRANT SET ON PARAMETER`; without it the run is refused),
///   so an AFTER INSERT trigger cannot add rows and a BEFORE trigger cannot rewrite them;
/// - identity columns keep their values (`OVERRIDING SYSTEM VALUE` for GENERATED ALWAYS), stored
///   generated columns are computed again by the database from the same values;
/// - every foreign key of every table written is checked before COMMIT (the database's own check
///   is silenced with the triggers), so nothing comes back pointing at a row that is gone;
/// - ids that already exist are refused.
public enum Unarchiver {
    public struct Report: Codable, Sendable {
        public var archive: String
        public var schema: String
        public var ids: [String]
        /// Rows put back per table (`table` in the archive's schema, `schema.table` elsewhere).
        public var rows: [String: Int64]
        public var status: ArchiveManifest.Status
        @DefaultEmpty public var silencedTriggers: [String]
    }

    public static func run(database: ConnectionString, repositoryPath: String, archive name: String,
                           ids requested: [String], policy: Policy? = nil) async throws -> Report {
        let store = ArchiveStore(storage: try RepositoryStorageFactory.open(repositoryPath))
        let lock = try RepositoryLock.acquire(repositoryRoot: repositoryPath, kind: .write, exclusive: true, command: "lifecycle unarchive")
        defer { lock.release() }
        var manifest = try store.read(name)
        guard manifest.status != .pending else {
            throw FTBackupError(.usage, "archive \(name) is pending (its run was interrupted)", hint: "run ftbackup lifecycle archive to reconcile it first")
        }
        let wanted = requested.map { $0.lowercased() }
        for id in wanted where !manifest.ids.contains(id) {
            throw FTBackupError(.usage, "archive \(name) does not hold tool_data id \(id)")
        }
        let triggerPolicy = try policy?.applicationTriggers ?? PolicyLoader.parse(PolicyLoader.builtInDefault, source: "(built-in)").applicationTriggers

        let session = try await DatabaseSession.connect(database, name: "ftbackup-unarchive")
        defer { session.close() }
        try await session.execute(SessionSettings.copy(encoding: "UTF8") + "; " + SessionSettings.qualifiedNames)
        // A writer of the repository (the manifest's put-back ids, the run log and its anchor): only
        // the repository's source, as every writer. Put back into another database (a scratch copy),
        // the archive would say restored while the source never got the rows, and every later
        // restore of the source would keep them.
        let here = try await session.withConnection { try DatabaseIdentity.of($0) }
        try RepositorySource.claim(repositoryPath: repositoryPath, identity: here, command: "lifecycle unarchive", record: false)
        if let source = manifest.source, SourceKey(source) != SourceKey(here) {
            throw FTBackupError(.usage, "archive \(name) holds rows of \(source); this run connects to \(here); nothing was put back",
                                hint: "unarchive into the database the archive came from; to look at the rows elsewhere, restore a backup from before the archive into a scratch database")
        }
        if !manifest.unarchivingIds.isEmpty {
            let unsettled = manifest
            manifest = try await session.withConnection { connection in try settleInterrupted(connection, store: store, manifest: unsettled) }
        }
        let available = manifest.ids.filter { !manifest.restoredIds.contains($0) }
        let ids = wanted.isEmpty ? available : wanted
        let already = ids.filter { manifest.restoredIds.contains($0) }
        if !already.isEmpty {
            throw FTBackupError(.usage, "archive \(name): ids already put back: \(already.prefix(5).joined(separator: ", "))")
        }
        guard !ids.isEmpty else { throw FTBackupError(.usage, "archive \(name) has nothing left to put back") }
        // Recorded before the rows can commit: a run killed after COMMIT is settled next time, never forgotten
        // (a forgotten put-back would be removed again from every later restore as "retired").
        manifest.unarchivingIds = ids
        try store.write(manifest)
        let snapshot = manifest
        let rows: [String: Int64], silenced: [String]
        do {
            (rows, silenced) = try await session.withConnection { connection -> ([String: Int64], [String]) in
                try putBack(connection, store: store, manifest: snapshot, ids: ids, triggerPolicy: triggerPolicy)
            }
        } catch let error as FTBackupError {
            // Refused or rolled back before COMMIT: nothing came back. (Any other failure, a lost
            // connection during COMMIT among them, leaves the marker for the next run to settle.)
            manifest.unarchivingIds = []
            try? store.write(manifest)
            throw error
        }
        Failpoint.hit("unarchive.after-commit")
        manifest.unarchivingIds = []
        manifest.restoredIds += ids
        if Set(manifest.restoredIds) == Set(manifest.ids) { manifest.status = .restored }
        try store.write(manifest)
        let report = Report(archive: name, schema: manifest.schema, ids: ids, rows: rows, status: manifest.status, silencedTriggers: silenced)
        let run = "\(RunLabel.make())-\(name)"
        try store.writeRunLog(kind: "unarchive", run: run, report)
        await RecordChainAnchor.anchorOnce(database, kind: "unarchive", folder: "lifecycle/unarchive", name: "\(run).json",
                                           storage: store.storage, logger: Logger(label: "ftbackup"))
        return report
    }

    /// Settles a run killed between writing `unarchivingIds` and recording its result: ids found in the
    /// source's tool_data came back (their transaction committed), the others did not.
    static func settleInterrupted(_ connection: PGConnection, store: ArchiveStore, manifest: ArchiveManifest) throws -> ArchiveManifest {
        let here = try DatabaseIdentity.of(connection)
        if let source = manifest.source, !source.isSame(as: here) {
            throw FTBackupError(.usage, "archive \(manifest.name) has an interrupted unarchive of \(manifest.unarchivingIds.count) ids into \(source); this is \(here)",
                                hint: "run ftbackup lifecycle unarchive --archive \(manifest.name) against \(source.database) first: it settles which ids came back")
        }
        let present = try connection.query("SELECT id::text AS id FROM \(try connection.qualifiedName(manifest.schema, "tool_data")) WHERE id::text = ANY($1::text[])",
                                           [PostgresArray.text(manifest.unarchivingIds)]).rows.map { try $0.requiredString("id") }
        var settled = manifest
        settled.restoredIds += manifest.unarchivingIds.filter { present.contains($0) && !manifest.restoredIds.contains($0) }
        settled.unarchivingIds = []
        if Set(settled.restoredIds) == Set(settled.ids) { settled.status = .restored }
        try store.write(settled)
        return settled
    }

    static func putBack(_ connection: PGConnection, store: ArchiveStore, manifest: ArchiveManifest, ids: [String],
                        triggerPolicy: Policy.ApplicationTriggers) throws -> ([String: Int64], [String]) {
        let q = { (name: String) in try connection.escapeIdentifier(name) }
        var oids: [Int64] = []
        for table in manifest.tables {
            guard let oid = try connection.query("SELECT to_regclass($1)::oid::int8 AS oid", [try connection.qualifiedName(table.schema, table.name)])
                .first?.string("oid").flatMap({ Int64($0) }) else {
                throw FTBackupError(.usage, "archive \(manifest.name) holds rows of \(table.schema).\(table.name), which no longer exists; nothing was put back",
                                    hint: "create the table again (a restore of its schema) and retry")
            }
            oids.append(oid)
        }
        let triggers = try ApplicationTriggerGuard.decide(connection, oids: oids, event: .insert, policy: triggerPolicy,
                                                          work: "lifecycle unarchive of \(manifest.name)")
        let foreignKeys = try ForeignKey.all(connection)
        let idArray = try connection.escapeLiteral(PostgresArray.text(ids))
        let before = try connection.escapeLiteral(PostgresArray.text(manifest.restoredIds))
        let rows = try connection.transaction { () -> [String: Int64] in
            try triggers.enter(connection, work: "lifecycle unarchive of \(manifest.name)")
            var counts: [String: Int64] = [:]
            var written: [(oid: Int64, staging: String, filter: String)] = []
            var inserts: [(key: String, sql: String)] = []
            for (index, table) in manifest.tables.enumerated() {
                let target = try connection.qualifiedName(table.schema, table.name)
                let columns = try table.columns.map(q).joined(separator: ", ")
                let staging = "pg_temp.ftbackup_unarchive_\(index)"
                let rooted = manifest.formatVersion >= 2
                do {
                    try connection.execute("""
                        CREATE TEMP TABLE ftbackup_unarchive_\(index) ON COMMIT DROP AS
                          SELECT \(rooted ? "NULL::uuid[] AS ftbackup_roots, " : "")\(columns) FROM \(target) WITH NO DATA
                        """)
                } catch let error as PostgresError where error.sqlState == "42703" {
                    throw FTBackupError(.usage, "archive \(manifest.name) holds \(table.schema).\(table.name) with columns the table no longer has (\(error.message)); nothing was put back",
                                        hint: "the archive's columns are \(table.columns.joined(separator: ", ")); add the missing column back and retry (to look at the rows without changing the table, restore a backup from before the archive into a scratch database)")
                }
                try connection.copyIn("COPY \(staging) (\(rooted ? "ftbackup_roots, " : "")\(columns)) FROM STDIN") { write in
                    try StoredFileReader.read(store.storage, folder: store.folder(manifest.name), file: table.file, into: write)
                }
                if index == 0 {
                    let clash = try connection.query("""
                        SELECT t.id::text AS id FROM \(target) t WHERE t.id::text = ANY(\(idArray)::text[]) ORDER BY 1 LIMIT 5
                        """)
                    if clash.count > 0 {
                        throw FTBackupError(.usage, "\(table.schema).tool_data already holds ids \(try clash.rows.map { try $0.requiredString("id") }.joined(separator: ", ")); nothing was put back",
                                            hint: "name only the missing ids with --id")
                    }
                }
                // A row shared by two archived ids comes back with the first of them to be put back.
                let filter = rooted
                    ? "s.ftbackup_roots && \(idArray)::uuid[] AND NOT s.ftbackup_roots && \(before)::uuid[]"
                    : "s.\(try q(table.keyColumn ?? "id"))::text = ANY(\(idArray)::text[])"
                let overriding = try TableColumns.of(connection, oid: oids[index]).identityAlways ? " OVERRIDING SYSTEM VALUE" : ""
                let key = table.schema == manifest.schema ? table.name : "\(table.schema).\(table.name)"
                inserts.append((key, "i\(index) AS (INSERT INTO \(target) (\(columns))\(overriding) SELECT \(columns) FROM \(staging) s WHERE \(filter) RETURNING 1)"))
                written.append((oids[index], staging, filter))
            }
            // Every table in ONE statement: foreign keys between the archived tables (a cycle of them
            // included) are checked at its end, when every row is back.
            let tally = inserts.indices.map { "(SELECT count(*) FROM i\($0)) AS n\($0)" }.joined(separator: ", ")
            let inserted = try connection.query("WITH \(inserts.map(\.sql).joined(separator: ",\n     ")) SELECT \(tally)").first!
            for (index, insert) in inserts.enumerated() { counts[insert.key, default: 0] += try inserted.int64("n\(index)") }
            // Every foreign key of every table written: nothing put back may point at a row that is gone.
            for (oid, staging, filter) in written {
                for key in foreignKeys where key.child.oid == oid {
                    let present = try key.childColumns.map { "s.\(try q($0)) IS NOT NULL" }.joined(separator: " AND ")
                    let missing = try connection.query("""
                        SELECT count(*) AS n FROM \(staging) s WHERE \(filter) AND \(present)
                          AND NOT EXISTS (SELECT 1 FROM \(try connection.qualifiedName(key.parent.schema, key.parent.table)) p
                                          WHERE \(try key.joinCondition(child: "s", parent: "p", q)))
                        """).first!.int64("n")
                    guard missing == 0 else {
                        throw FTBackupError(.dataError, "archive \(manifest.name): \(missing) rows of \(key.child) would point at rows of \(key.parent) that do not exist (\(key.name)); nothing was put back",
                                            hint: "put back (or restore) the rows they reference first, then retry")
                    }
                }
            }
            return counts
        }
        return (rows, triggers.silenced.map(\.description))
    }
}
