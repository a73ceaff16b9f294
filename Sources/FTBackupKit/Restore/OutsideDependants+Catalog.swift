import Foundation

/// Reading what other schemas hold on the schemas `--clean` drops, and checking at the drop that it has not
/// changed since: the capture runs while the backup's files are verified, ahead of the drop, and a foreign key,
/// view or policy added, removed or redefined in between would otherwise be put back as it was read (or lost).
extension OutsideDependants {
    /// What the catalog held when the dependants were read: compared again inside the drop's transaction.
    struct CatalogState: Sendable, Equatable {
        var foreignKeys: [ForeignKey]
        var views: [View]
        var policies: [Policy]
        /// An md5 of each view's definition and of what else its dump holds (owner, grants, options, comments, indexes,
        /// triggers, rules, column defaults), in the order of `views`: a redefinition keeps the name.
        var viewDefinitions: [String]

        /// What differs between `self` (as read) and `now`, for the message; empty when nothing does.
        func changes(to now: CatalogState) -> [String] {
            func named<T: Equatable>(_ what: String, _ old: [T], _ new: [T], _ name: (T) -> String) -> [String] {
                old.filter { !new.contains($0) }.map { "\(what) \(name($0)) dropped or changed" }
                    + new.filter { !old.contains($0) }.map { "\(what) \(name($0)) added" }
            }
            var changes = named("foreign key", foreignKeys, now.foreignKeys) { "\($0.name) on \($0.table)" }
                + named("policy", policies, now.policies) { "\($0.name) on \($0.table)" }
                + named("view", views, now.views) { "\($0.schema).\($0.name)" }
            // Paired by view, not by position: the same views read in another order are not a redefinition.
            let nowDefinitions = Dictionary(zip(now.views.map { "\($0.schema).\($0.name)" }, now.viewDefinitions), uniquingKeysWith: { a, _ in a })
            changes += zip(views, viewDefinitions).filter { view, definition in
                nowDefinitions["\(view.schema).\(view.name)"].map { $0 != definition } ?? false
            }.map { view, _ in "view \(view.schema).\(view.name) redefined (or its owner, grants, options, comments, indexes, triggers, rules or column defaults changed)" }
            return changes
        }
    }

    /// The foreign keys, views (transitively) and policies outside `schemas` that depend on them, read in
    /// the caller's transaction; `capturedState` holds what was read.
    static func read(_ connection: PGConnection, schemas: [String]) throws -> OutsideDependants {
        let list = PostgresArray.text(schemas)
        var found = OutsideDependants()
        try connection.execute("SET LOCAL search_path = ''")  // every name in the definitions qualified
        found.foreignKeys = try connection.query("""
            SELECT con.conrelid::regclass::text AS tbl, con.conname AS name, pg_get_constraintdef(con.oid) AS def,
                   c.relkind = 'p' AS partitioned, obj_description(con.oid, 'pg_constraint') AS comment
            FROM pg_constraint con
            JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_class r ON r.oid = con.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
            WHERE con.contype = 'f' AND con.conparentid = 0
              AND rn.nspname = ANY($1::text[]) AND NOT n.nspname = ANY($1::text[])
            ORDER BY con.oid
            """, [list]).rows.map {
            ForeignKey(table: try $0.requiredString("tbl"), name: try $0.requiredString("name"),
                       definition: try $0.requiredString("def"), partitioned: try $0.bool("partitioned") ?? false,
                       comment: try $0.string("comment"))
        }
        // Views on the schemas' relations, and views on those, transitively.
        let viewRows = try connection.query("""
            WITH RECURSIVE dropped(oid) AS (
                SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY($1::text[])
                UNION
                SELECT rw.ev_class FROM dropped
                JOIN pg_depend d ON d.refobjid = dropped.oid AND d.refclassid = 'pg_class'::regclass AND d.classid = 'pg_rewrite'::regclass
                JOIN pg_rewrite rw ON rw.oid = d.objid
                WHERE rw.ev_class <> dropped.oid)
            SELECT n.nspname AS schema, v.relname AS name, v.relkind = 'm' AS materialized, v.relispopulated AS populated,
                   -- What the views dump holds of each view, besides its name: a change to any of it in between
                   -- (a REVOKE, a new index or INSTEAD OF trigger, a column default, …) would be put back stale.
                   md5(format('%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', pg_get_viewdef(v.oid), v.relowner::regrole, v.relacl, v.reloptions,
                              obj_description(v.oid, 'pg_class'), v.reltablespace, v.relam,
                              (SELECT string_agg(pg_get_indexdef(i.indexrelid) || ' ' || coalesce(obj_description(i.indexrelid, 'pg_class'), ''), ';' ORDER BY pg_get_indexdef(i.indexrelid))
                               FROM pg_index i WHERE i.indrelid = v.oid),
                              (SELECT string_agg(pg_get_triggerdef(t.oid) || ' ' || t.tgenabled::text || ' ' || coalesce(obj_description(t.oid, 'pg_trigger'), ''), ';' ORDER BY t.tgname)
                               FROM pg_trigger t WHERE t.tgrelid = v.oid AND NOT t.tgisinternal),
                              (SELECT string_agg(format('%s %s %s %s %s', a.attname, pg_get_expr(d.adbin, d.adrelid), a.attacl,
                                                        col_description(v.oid, a.attnum), a.attoptions), ';' ORDER BY a.attnum)
                                      || ' ' || coalesce((SELECT string_agg(pg_get_ruledef(r.oid) || ' ' || r.ev_enabled::text, ';' ORDER BY r.rulename)
                                                          FROM pg_rewrite r WHERE r.ev_class = v.oid AND r.rulename <> '_RETURN'), '')
                               FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                               WHERE a.attrelid = v.oid AND a.attnum > 0 AND NOT a.attisdropped))) AS definition
            FROM dropped JOIN pg_class v ON v.oid = dropped.oid JOIN pg_namespace n ON n.oid = v.relnamespace
            WHERE v.relkind IN ('v', 'm') AND NOT n.nspname = ANY($1::text[])
            ORDER BY v.oid
            """, [list]).rows
        found.views = try viewRows.map {
            View(schema: try $0.requiredString("schema"), name: try $0.requiredString("name"),
                 materialized: try $0.bool("materialized") ?? false, populated: try $0.bool("populated") ?? false)
        }
        found.policies = try connection.query("""
            SELECT format('%I.%I', p.schemaname, p.tablename) AS tbl, p.policyname AS name, p.permissive, to_json(p.roles)::text AS roles,
                   p.cmd, p.qual, p.with_check, obj_description(po.oid, 'pg_policy') AS comment
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
            return Policy(table: table, name: name, create: create, comment: try row.string("comment"))
        }
        found.capturedState = CatalogState(foreignKeys: found.foreignKeys, views: found.views, policies: found.policies,
                                           viewDefinitions: try viewRows.map { try $0.requiredString("definition") })
        return found
    }

    /// Inside the drop's transaction, before anything is dropped: refuses (exit 75, nothing dropped) when what other
    /// schemas hold on `schemas` is no longer what `capture` read.
    func checkUnchanged(_ connection: PGConnection, schemas: [String]) throws {
        guard let capturedState else { return }
        let read: CatalogState?
        do {
            // The tables that carry the saved foreign keys and policies are locked first, as their drop does: another
            // session dropping or altering one of them (not yet committed) is waited for, and its change seen here.
            let tables = Set(capturedState.foreignKeys.map(\.table) + capturedState.policies.map(\.table)).sorted()
            if !tables.isEmpty { try connection.execute("LOCK TABLE \(tables.joined(separator: ", ")) IN ACCESS EXCLUSIVE MODE") }
            read = try Self.read(connection, schemas: schemas).capturedState
        } catch let error as PostgresError where [.unavailable, .permission].contains(error.exitStatus) {
            throw error  // the server gone or a privilege missing: said as such, not as a change
        } catch {
            // A table or view dropped by a session this one waited for ("could not open relation with OID …").
            throw FTBackupError(.locked, "what other schemas hold on \(schemas.joined(separator: ", ")) changed while the restore prepared: it could not be read again (\(error)); nothing was dropped",
                                hint: "run the restore again")
        }
        guard let current = read else { return }
        let changes = capturedState.changes(to: current)
        guard !changes.isEmpty else { return }
        throw FTBackupError(.locked, "what other schemas hold on \(schemas.joined(separator: ", ")) changed while the restore prepared: \(changes.prefix(5).joined(separator: "; "))\(changes.count > 5 ? "; …" : ""); nothing was dropped",
                            hint: "run the restore again")
    }
}
