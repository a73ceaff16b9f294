import Foundation
import Logging

/// What `DROP SCHEMA … CASCADE` would take from *other* schemas when `--clean` drops the schemas being
/// restored: foreign keys that point into them (`organizations.featured_canvases` → a tool's
/// `tool_data`), views or materialized views built on them (`organizations.tool_usage_summary`), and
/// row-security policies on other schemas' tables whose expressions name their tables, functions or types.
///
/// They are saved from the target before the drop and put back once the restored schemas are whole,
/// so `--clean` drops exactly the schemas being restored. Views are saved with `pg_dump --schema-only`
/// (definition, indexes, owner, grants, comments) and refreshed if they were populated; foreign keys
/// are re-added as they were, and validated: restored rows that no longer satisfy one leave it
/// `NOT VALID` (still enforced for new rows) with a warning naming it, rather than failing the restore.
struct OutsideDependants: Sendable {
    struct ForeignKey: Sendable {
        var table: String       // qualified, quoted
        var name: String
        var definition: String  // pg_get_constraintdef with every name qualified
        var partitioned: Bool
    }
    struct View: Sendable {
        var schema: String
        var name: String
        var materialized: Bool
        var populated: Bool
    }

    struct Policy: Sendable {
        var table: String       // qualified, quoted
        var name: String
        var create: String      // the whole CREATE POLICY, every name qualified
    }

    var foreignKeys: [ForeignKey] = []
    var views: [View] = []
    var policies: [Policy] = []
    /// `pg_dump -Fc --schema-only` of the views, when there are any.
    var viewDump: String?

    var isEmpty: Bool { foreignKeys.isEmpty && views.isEmpty && policies.isEmpty }

    /// Reads the dependants of `schemas` that live outside them, and dumps the views.
    static func capture(_ target: DatabaseSession, schemas: [String], options: RestoreOptions) async throws -> OutsideDependants {
        let list = PostgresArray.text(schemas)
        var found = try await target.withConnection { connection -> OutsideDependants in
            try connection.transaction {
                var found = OutsideDependants()
                try connection.execute("SET LOCAL search_path = ''")  // every name in the definitions qualified
                found.foreignKeys = try connection.query("""
                    SELECT con.conrelid::regclass::text AS tbl, con.conname AS name, pg_get_constraintdef(con.oid) AS def,
                           c.relkind = 'p' AS partitioned
                    FROM pg_constraint con
                    JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                    JOIN pg_class r ON r.oid = con.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
                    WHERE con.contype = 'f' AND con.conparentid = 0
                      AND rn.nspname = ANY($1::text[]) AND NOT n.nspname = ANY($1::text[])
                    ORDER BY con.oid
                    """, [list]).rows.map {
                    ForeignKey(table: try $0.requiredString("tbl"), name: try $0.requiredString("name"),
                               definition: try $0.requiredString("def"), partitioned: try $0.bool("partitioned") ?? false)
                }
                // Views on the schemas' relations, and views on those, transitively.
                found.views = try connection.query("""
                    WITH RECURSIVE dropped(oid) AS (
                        SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY($1::text[])
                        UNION
                        SELECT rw.ev_class FROM dropped
                        JOIN pg_depend d ON d.refobjid = dropped.oid AND d.refclassid = 'pg_class'::regclass AND d.classid = 'pg_rewrite'::regclass
                        JOIN pg_rewrite rw ON rw.oid = d.objid
                        WHERE rw.ev_class <> dropped.oid)
                    SELECT n.nspname AS schema, v.relname AS name, v.relkind = 'm' AS materialized, v.relispopulated AS populated
                    FROM dropped JOIN pg_class v ON v.oid = dropped.oid JOIN pg_namespace n ON n.oid = v.relnamespace
                    WHERE v.relkind IN ('v', 'm') AND NOT n.nspname = ANY($1::text[])
                    ORDER BY v.oid
                    """, [list]).rows.map {
                    View(schema: try $0.requiredString("schema"), name: try $0.requiredString("name"),
                         materialized: try $0.bool("materialized") ?? false, populated: try $0.bool("populated") ?? false)
                }
                found.policies = try connection.query("""
                    SELECT format('%I.%I', p.schemaname, p.tablename) AS tbl, p.policyname AS name, p.permissive, to_json(p.roles)::text AS roles,
                           p.cmd, p.qual, p.with_check
                    FROM pg_policies p
                    JOIN pg_policy po ON po.polname = p.policyname AND po.polrelid = format('%I.%I', p.schemaname, p.tablename)::regclass
                    WHERE NOT p.schemaname = ANY($1::text[])
                      AND EXISTS (SELECT 1 FROM pg_depend d, LATERAL pg_identify_object(d.refclassid, d.refobjid, 0) i
                                  WHERE d.classid = 'pg_policy'::regclass AND d.objid = po.oid AND i.schema = ANY($1::text[]))
                    ORDER BY po.oid
                    """, [list]).rows.map { row in
                    let table = try row.requiredString("tbl"), name = try row.requiredString("name")
                    let roles = try JSONDecoder().decode([String].self, from: Data(try row.requiredString("roles").utf8)).map { $0 == "public" ? "PUBLIC" : try connection.escapeIdentifier($0) }
                    var create = "CREATE POLICY \(try connection.escapeIdentifier(name)) ON \(table) AS \(try row.requiredString("permissive")) FOR \(try row.requiredString("cmd")) TO \(roles.joined(separator: ", "))"
                    if let qual = try row.string("qual") { create += " USING (\(qual))" }
                    if let check = try row.string("with_check") { create += " WITH CHECK (\(check))" }
                    return Policy(table: table, name: name, create: create)
                }
                return found
            }
        }
        guard !found.views.isEmpty else { return found }
        let pgDump = try PostgresTools.path(of: "pg_dump", serverVersionNumber: target.serverVersionNumber)
        let path = try TemporaryFiles.path("dependants-\(UUID().uuidString).pgdump")
        let child = options.target.forChildProcess()
        var arguments = ["--format=custom", "--schema-only", "--no-password", "--file=\(path)"]
        if !child.conninfo.isEmpty { arguments.append("--dbname=\(child.conninfo)") }
        // Double-quoted pattern parts match literally.
        arguments += found.views.map { "--table=\(patternPart($0.schema)).\(patternPart($0.name))" }
        let dumpArguments = arguments
        let thread = ConnectionThread(name: "ftbackup-pg_dump")
        defer { thread.shutdown() }
        try await thread.run { try PostgresTools.run(pgDump, dumpArguments, environment: child.environment, secrets: options.target) }
        found.viewDump = path
        return found
    }

    /// Drops the saved dependants (inside `CleanDrop`'s transaction), so the schemas' drop takes nothing of theirs.
    func drop(_ connection: PGConnection) throws {
        for key in foreignKeys {
            try connection.execute("ALTER TABLE \(key.table) DROP CONSTRAINT IF EXISTS \(try connection.escapeIdentifier(key.name))")
        }
        for policy in policies {
            try connection.execute("DROP POLICY IF EXISTS \(try connection.escapeIdentifier(policy.name)) ON \(policy.table)")
        }
        for view in views.reversed() {
            try connection.execute("DROP \(view.materialized ? "MATERIALIZED VIEW" : "VIEW") IF EXISTS \(try connection.qualifiedName(view.schema, view.name)) CASCADE")
        }
    }

    /// Puts the saved dependants back: views (refreshed if they were populated), policies, then foreign keys.
    /// Returns a warning per foreign key the restored rows do not satisfy.
    func putBack(_ target: DatabaseSession, options: RestoreOptions) async throws -> [String] {
        if let viewDump {
            let pgRestore = try PostgresTools.path(of: "pg_restore", serverVersionNumber: target.serverVersionNumber)
            let child = options.target.forChildProcess()
            var arguments = ["--exit-on-error", "--no-password", "--single-transaction"]
            if !child.conninfo.isEmpty { arguments.append("--dbname=\(child.conninfo)") }
            if options.noOwner { arguments += ["--no-owner", "--no-privileges"] }
            try await RestoreRunner.runTool(pgRestore, arguments + [viewDump], child.environment, options.target)
            for view in views where view.materialized && view.populated {
                try await target.execute("REFRESH MATERIALIZED VIEW \(try target.qualifiedName(view.schema, view.name))")
            }
        }
        for policy in policies { try await target.execute(policy.create) }
        var warnings: [String] = []
        for key in foreignKeys {
            let name = try target.escapeIdentifier(key.name)
            // A partitioned table cannot take a NOT VALID foreign key: added (and checked) at once.
            try await target.execute("ALTER TABLE \(key.table) ADD CONSTRAINT \(name) \(key.definition)\(key.partitioned ? "" : " NOT VALID")")
            guard !key.partitioned else { continue }
            do {
                try await target.execute("ALTER TABLE \(key.table) VALIDATE CONSTRAINT \(name)")
            } catch let error as FTBackupError where error.message.contains("23503") || error.message.contains("violates foreign key") {
                let warning = "foreign key \(key.name) on \(key.table) is not satisfied by the restored rows; it was re-added NOT VALID (enforced for new rows)"
                options.logger.warning("\(warning)")
                warnings.append(warning)
            }
        }
        return warnings
    }

    /// After a failed restore: writes the foreign keys and policies as a SQL script and keeps the views'
    /// dump (no longer removed), so they can be put back by hand. Nil if the script cannot be written.
    mutating func keepForLater(_ target: DatabaseSession) -> (script: String, views: String?)? {
        // Each statement replaces what may be there already, so the script is right however far the
        // restore got before it stopped (an interrupt can land while they are being put back).
        let quoted = { (name: String) in (try? target.escapeIdentifier(name)) ?? name }
        let statements = policies.map { "DROP POLICY IF EXISTS \(quoted($0.name)) ON \($0.table);\n\($0.create);" } + foreignKeys.map {
            "ALTER TABLE \($0.table) DROP CONSTRAINT IF EXISTS \(quoted($0.name));\nALTER TABLE \($0.table) ADD CONSTRAINT \(quoted($0.name)) \($0.definition);"
        }
        // Kept outside the process's temporary folder, which goes when the process ends.
        let base = FileManager.default.temporaryDirectory, stamp = UUID().uuidString
        let path = base.appendingPathComponent("ftbackup-dependants-\(stamp).sql").path
        guard FileManager.default.createFile(atPath: path, contents: Data((statements.joined(separator: "\n") + "\n").utf8),
                                             attributes: [.posixPermissions: 0o600]) else { return nil }
        var views: String?
        if let viewDump {
            let kept = base.appendingPathComponent("ftbackup-dependants-\(stamp).pgdump").path
            views = (try? FileManager.default.moveItem(atPath: viewDump, toPath: kept)) != nil ? kept : viewDump
        }
        viewDump = nil
        return (path, views)
    }

    func removeFiles() {
        if let viewDump { try? FileManager.default.removeItem(atPath: viewDump) }
    }

    private static func patternPart(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
