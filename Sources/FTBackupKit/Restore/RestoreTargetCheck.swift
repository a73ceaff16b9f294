import Foundation

extension RestoreRunner {
    /// Refuses the source itself, occupied tables, and roles the target lacks: those the manifest records and
    /// every one the dump's script names (`roles`; with `--no-owner` only those of policies and user mappings).
    static func checkTarget(_ target: DatabaseSession, manifest: BackupManifest, plan: RestorePlan,
                            tables: [BackupManifest.Table], roles: DumpRoles, options: RestoreOptions) async throws {
        try checkVersion(of: manifest, tables: tables, targetVersionNumber: target.serverVersionNumber, allowed: options.allowVersionChange)
        let identity = try await target.query("SELECT current_database() AS db").first!
        let system = try? await target.query("SELECT system_identifier::text AS id FROM pg_control_system()").first?.string("id")
        let sameDatabase = try identity.requiredString("db") == manifest.source.database
        let sameServer = (system ?? nil).map { $0 == manifest.source.systemIdentifier } ?? (target.target == manifest.source.server)
        if sameDatabase && sameServer && !(options.clean && options.confirmed) {
            throw FTBackupError(.usage, "target \(target.target) is the backup's own source database; refusing to overwrite it",
                                hint: "restore into another database, or pass --clean --yes if you really mean to replace it")
        }
        let occupied = try await target.query("""
            SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname = ANY($1::text[])
            ORDER BY 1, 2
            """, [PostgresArray.text(plan.schemas)])
        let existingSchemas = try await target.query("SELECT nspname AS name FROM pg_namespace WHERE nspname = ANY($1::text[]) AND nspname <> 'public'",
                                                     [PostgresArray.text(plan.schemas)])
        if !options.clean && (occupied.count > 0 || existingSchemas.count > 0) {
            let names = try occupied.rows.prefix(5).map { "\(try $0.requiredString("schema")).\(try $0.requiredString("name"))" }
            let schemas = try existingSchemas.rows.prefix(5).map { try $0.requiredString("name") }
            let what = names.isEmpty ? "schemas \(schemas.joined(separator: ", "))" : "\(occupied.count) relations such as \(names.joined(separator: ", "))"
            throw FTBackupError(.usage, "target \(target.target) already holds \(what) that the restore would create",
                                hint: "restore into an empty database, or pass --clean to drop exactly the schemas being restored")
        }
        let needed = roles.needed(noOwner: options.noOwner).union(options.noOwner ? [] : Set(manifest.roles))
        let present = Set(try await target.query("SELECT rolname AS name FROM pg_roles").rows.map { try $0.requiredString("name") })
        let missing = needed.subtracting(present).sorted()
        if !missing.isEmpty {
            let policyOnly = missing.filter { roles.always.contains($0) }
            throw FTBackupError(.usage, "target server lacks roles the backup's objects name: \(missing.joined(separator: ", ")); nothing was restored",
                                hint: policyOnly.isEmpty || options.noOwner
                                    ? (options.noOwner ? "create them first (policies and user mappings name them even with --no-owner)"
                                                       : "create them first, or pass --no-owner to skip ownership and grants")
                                    : "create them first (\(policyOnly.joined(separator: ", ")) named by policies or user mappings, which --no-owner keeps)")
        }
    }

    /// Binary COPY is only promised between servers of the same major version (tested: 15 into 15): a
    /// backup with binary data files is refused (exit 64) into another major unless `allowed`.
    static func checkVersion(of manifest: BackupManifest, tables: [BackupManifest.Table], targetVersionNumber: Int, allowed: Bool) throws {
        let source = manifest.source.serverVersionNumber / 10000, target = targetVersionNumber / 10000
        guard source != target, !allowed, tables.contains(where: { $0.copyFormat == .binary }) else { return }
        throw FTBackupError(.usage, "backup \(manifest.label) holds binary COPY data from PostgreSQL \(source); the target runs PostgreSQL \(target): nothing was restored",
                            hint: "restore into a PostgreSQL \(source) server, or pass --allow-version-change to load it anyway (not tested across major versions)")
    }
}
