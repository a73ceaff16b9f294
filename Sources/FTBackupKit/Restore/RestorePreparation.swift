import Foundation

/// What a restore reads from the backup's schema dump before it touches the target: the dump as a
/// file pg_restore can open, its table of contents, the index builds and the roles its script names.
///
/// It only reads the repository and runs pg_restore locally, so it runs while the data files are
/// verified; pg_restore is waited for on threads of its own, never on Swift's cooperative pool, and
/// the two listings that only need the table of contents run side by side.
struct RestorePreparation: Sendable {
    var dumpFile: String
    var listFile: String
    var contents: RestoreContents
    var indexes: IndexBuildPlan
    var roles: DumpRoles

    static func make(_ repository: Repository, manifest: BackupManifest, plan: RestorePlan, tables: [BackupManifest.Table],
                     pgRestore: String) async throws -> RestorePreparation {
        let first = ConnectionThread(name: "ftbackup-schema-dump")
        defer { first.shutdown() }
        let (dumpFile, contents, listFile) = try await first.run { () throws -> (String, RestoreContents, String) in
            let dumpFile = try RestoreRunner.materializeSchemaDump(repository, manifest: manifest)
            do {
                // ftbackup's own objects (publication, schema, event triggers) are never restored.
                let contents = try RestoreContents.read(pgRestore, dumpFile: dumpFile, encoding: manifest.source.encoding,
                                                        schemas: manifest.schemas, roles: manifest.roles)
                return (dumpFile, contents, try contents.writeList())
            } catch {
                try? FileManager.default.removeItem(atPath: dumpFile)
                throw error
            }
        }
        do {
            // Indexes and keys are built from the dump's own entries, with what pg_dump attaches to them.
            let partitioned = (manifest.partitionedTables ?? []).filter { plan.schemas.contains($0.schema) }
            let second = ConnectionThread(name: "ftbackup-dump-roles")
            defer { second.shutdown() }
            // Every role the script pg_restore will run names (owners, grants, default privileges, policies, user mappings).
            let schemas = plan.wholeDatabase ? nil : plan.schemas
            async let roles = second.run { try DumpRoles.read(pgRestore, dumpFile: dumpFile, listFile: listFile, schemas: schemas) }
            let indexes = try await first.run { try IndexBuildPlan.make(contents, tables: tables, partitioned: partitioned, pgRestore: pgRestore, dumpFile: dumpFile) }
            return RestorePreparation(dumpFile: dumpFile, listFile: listFile, contents: contents, indexes: indexes, roles: try await roles)
        } catch {
            try? FileManager.default.removeItem(atPath: dumpFile)
            try? FileManager.default.removeItem(atPath: listFile)
            throw error
        }
    }

    func removeFiles() {
        try? FileManager.default.removeItem(atPath: dumpFile)
        try? FileManager.default.removeItem(atPath: listFile)
    }
}
