import Foundation

/// Puts archived rows back exactly as they were: `ftbackup lifecycle unarchive`.
///
/// It exists because archiving is only safe if it can be undone: a customer asks for a 3-year-old
/// canvas back, or an archive run used a wrong policy. Rows come back through COPY from the
/// verified archive files, in one transaction, and ids that already exist are refused.
public enum Unarchiver {
    public struct Report: Codable, Sendable {
        public var archive: String
        public var schema: String
        public var ids: [String]
        public var rows: [String: Int64]
        public var status: ArchiveManifest.Status
    }

    public static func run(database: ConnectionString, repositoryPath: String, archive name: String,
                           ids requested: [String]) async throws -> Report {
        let store = ArchiveStore(storage: LocalStorage(root: repositoryPath))
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
        let available = manifest.ids.filter { !manifest.restoredIds.contains($0) }
        let ids = wanted.isEmpty ? available : wanted
        let already = ids.filter { manifest.restoredIds.contains($0) }
        if !already.isEmpty {
            throw FTBackupError(.usage, "archive \(name): ids already put back: \(already.prefix(5).joined(separator: ", "))")
        }
        guard !ids.isEmpty else { throw FTBackupError(.usage, "archive \(name) has nothing left to put back") }

        let session = try await DatabaseSession.connect(database, name: "ftbackup-unarchive")
        defer { session.close() }
        try await session.execute(SessionSettings.copy(encoding: "UTF8"))
        let snapshot = manifest
        let rows = try await session.withConnection { connection -> [String: Int64] in
            try connection.transaction {
                var counts: [String: Int64] = [:]
                let idArray = try connection.escapeLiteral(PostgresArray.text(ids))
                for (index, table) in snapshot.tables.enumerated() {
                    let target = try connection.qualifiedName(table.schema, table.name)
                    let columns = try table.columns.map { try connection.escapeIdentifier($0) }.joined(separator: ", ")
                    let staging = "pg_temp.ftbackup_unarchive_\(index)"
                    try connection.execute("CREATE TEMP TABLE ftbackup_unarchive_\(index) ON COMMIT DROP AS SELECT \(columns) FROM \(target) WITH NO DATA")
                    try connection.copyIn("COPY \(staging) (\(columns)) FROM STDIN") { write in
                        try StoredFileReader.read(store.storage, folder: store.folder(snapshot.name), file: table.file, into: write)
                    }
                    let key = try connection.escapeIdentifier(table.keyColumn)
                    if index == 0 {
                        let clash = try connection.query("""
                            SELECT t.id::text AS id FROM \(target) t WHERE t.id::text = ANY(\(idArray)::text[]) ORDER BY 1 LIMIT 5
                            """)
                        if clash.count > 0 {
                            throw FTBackupError(.usage, "\(table.schema).tool_data already holds ids \(try clash.rows.map { try $0.requiredString("id") }.joined(separator: ", ")); nothing was put back",
                                                hint: "name only the missing ids with --id")
                        }
                    }
                    counts[table.name] = Int64(try connection.query("""
                        INSERT INTO \(target) (\(columns)) SELECT \(columns) FROM \(staging) s WHERE s.\(key)::text = ANY(\(idArray)::text[])
                        """).affectedRows ?? 0)
                }
                return counts
            }
        }
        manifest.restoredIds += ids
        if Set(manifest.restoredIds) == Set(manifest.ids) { manifest.status = .restored }
        try store.write(manifest)
        let report = Report(archive: name, schema: manifest.schema, ids: ids, rows: rows, status: manifest.status)
        try store.writeRunLog(kind: "unarchive", run: "\(RunLabel.make())-\(name)", report)
        return report
    }
}
