import Foundation

/// `--clean`'s drop, in one transaction that either drops exactly what it should or nothing.
///
/// The dependants `OutsideDependants` saved (foreign keys, views, row-security policies in other
/// schemas) are dropped first; then the catalog outside what is dropped is listed, the schemas are
/// dropped (`public`: only the relations the backup holds; the target's own stay), and the catalog is
/// listed again. Whatever else `CASCADE` took outside them (a trigger or column default calling one of
/// their functions, a column of one of their types or domains, a target-only view, foreign key or
/// function in `public` built on a relation the backup restores, …) is collateral: without `--cascade`
/// the transaction is rolled back and the restore refused naming it, so the target is left unchanged.
enum CleanDrop {
    /// Drops the restored schemas (in `public`, the relations named in `publicRelations`: the backup's);
    /// returns what `CASCADE` took outside them (only with `cascade`).
    static func run(_ target: DatabaseSession, plan: RestorePlan, dependants: OutsideDependants, cascade: Bool,
                    publicRelations: Set<String>) async throws -> [String] {
        try await target.withConnection { connection -> [String] in
            try connection.execute("BEGIN")
            do {
                try connection.execute("SET LOCAL search_path = ''")
                let dropsPublic = plan.schemas.contains("public")
                let publicOids = dropsPublic ? try backupsPublicRelations(connection, names: publicRelations) : []
                // `public` itself stays: what it holds besides the backup's relations is outside the drop.
                let dropped = plan.schemas.filter { $0 != "public" }
                // The relations the drop takes are locked first, as the drop would: a view, foreign key or policy on
                // them that another session is creating (not yet committed) is waited for and seen by the check, and
                // none can be created after it (else CASCADE took it, unseen by the check and by the list below).
                try lockDropped(connection, schemas: dropped, relations: publicOids.map(\.oid))
                // The dependants were read ahead of this drop: refused if they changed since.
                try dependants.checkUnchanged(connection, schemas: plan.schemas)
                try dependants.drop(connection)
                let before = try outsideObjects(connection, schemas: dropped, relations: publicOids.map(\.oid))
                for schema in dropped {
                    try connection.execute("DROP SCHEMA IF EXISTS \(try connection.escapeIdentifier(schema)) CASCADE")
                }
                if dropsPublic { try dropPublicRelations(connection, oids: publicOids) }
                let after = try stillThere(connection, before)
                // The backup's own public relations and what is part of them (columns, indexes, row types, …) go by design.
                let owned = Set(publicOids.map(\.oid))
                let taken = before.filter { !after.contains($0.what) && !owned.contains($0.relation) }.map(\.what)
                if !taken.isEmpty && !cascade {
                    try connection.execute("ROLLBACK")
                    throw FTBackupError(.usage, "--clean would also drop \(taken.count) object(s) outside what it restores that depend on it: \(taken.prefix(10).joined(separator: "; "))\(taken.count > 10 ? "; …" : ""); nothing was dropped",
                                        hint: "recreate them after the restore yourself and pass --cascade, or restore into an empty database")
                }
                try connection.execute("COMMIT")
                Failpoint.pause("restore.after-clean-drop")
                return taken
            } catch {
                try? connection.execute("ROLLBACK")
                throw error
            }
        }
    }

    /// Locks the tables and views of `schemas` and `relations` (ACCESS EXCLUSIVE, as their drop does). LOCK TABLE
    /// takes neither materialized views, sequences nor foreign tables: those are locked by the drop itself.
    static func lockDropped(_ connection: PGConnection, schemas: [String], relations: [Int64]) throws {
        let names = try connection.query("""
            SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'v') AND (n.nspname = ANY($1::text[]) OR c.oid = ANY($2::oid[]))
            ORDER BY c.oid
            """, [PostgresArray.text(schemas), PostgresArray.text(relations.map(String.init))]).rows.map { try $0.requiredString("name") }
        var start = 0
        while start < names.count {
            let chunk = names[start..<min(start + 1000, names.count)]
            try connection.execute("LOCK TABLE \(chunk.joined(separator: ", ")) IN ACCESS EXCLUSIVE MODE")
            start += chunk.count
        }
    }

    /// The relations of `public` the backup holds (by name, from its schema dump), with their kind.
    /// Sequences that belong to a column (identity, serial) are left out: they go with their table
    /// (dropping an identity sequence on its own fails).
    static func backupsPublicRelations(_ connection: PGConnection, names: Set<String>) throws -> [(oid: Int64, name: String, kind: String)] {
        try connection.query("""
            SELECT c.oid::bigint AS oid, c.relname AS name, c.relkind AS kind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.relname = ANY($1::text[])
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                              AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') AND c.relkind = 'S')
            ORDER BY c.relkind IN ('r', 'p') DESC, c.oid
            """, [PostgresArray.text(names.sorted())]).rows.map {
            (try $0.int64("oid"), try $0.requiredString("name"), try $0.requiredString("kind"))
        }
    }

    /// Drops the backup's relations in `public` (the schema itself stays, and so does what only the target has).
    static func dropPublicRelations(_ connection: PGConnection, oids relations: [(oid: Int64, name: String, kind: String)]) throws {
        for relation in relations {
            let name = try connection.qualifiedName("public", relation.name)
            let noun = ["v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE", "f": "FOREIGN TABLE"][relation.kind] ?? "TABLE"
            try connection.execute("DROP \(noun) IF EXISTS \(name) CASCADE")
        }
    }

    /// A user object outside the dropped schemas: how PostgreSQL names it, the relation it is part of,
    /// and its catalog address.
    struct OutsideObject {
        var what: String
        var relation: Int64
        var classID: Int64, objectID: Int64, subID: Int32
    }

    /// Every user object outside `schemas` that a drop of them (and of `relations`) can take:
    /// relations and their columns, constraints, defaults, triggers, policies, rules, functions, types,
    /// statistics, extensions, publication memberships, described as PostgreSQL names them, each with
    /// the relation it is part of (itself for a relation; an index's table, a column's, a row type's, an
    /// owned sequence's; else 0). Only objects `pg_depend` links to what is dropped are listed: `CASCADE`
    /// finds what it drops through the same links, and describing the whole catalog is slow on a
    /// database of many tools.
    static func outsideObjects(_ connection: PGConnection, schemas: [String], relations: [Int64]) throws -> [OutsideObject] {
        try connection.query("""
            WITH RECURSIVE reach(c, o) AS (  -- what a DROP … CASCADE of the schemas can reach: pg_depend's closure from them
                SELECT 'pg_namespace'::regclass::oid, n.oid FROM pg_namespace n WHERE n.nspname = ANY($1::text[])
                UNION
                SELECT 'pg_class'::regclass::oid, c.oid FROM pg_class c WHERE c.oid = ANY($2::oid[])
                UNION
                SELECT x.c, x.o FROM reach r, LATERAL (
                    SELECT d.classid AS c, d.objid AS o FROM pg_depend d WHERE d.refclassid = r.c AND d.refobjid = r.o
                    UNION ALL  -- and the owner of what is part of something (CASCADE drops the whole)
                    SELECT d.refclassid, d.refobjid FROM pg_depend d WHERE d.classid = r.c AND d.objid = r.o AND d.deptype IN ('i', 'e', 'x', 'P', 'S')) x
            ),
            part_of AS (  -- each relation and the one it is part of: an index's table, an owned sequence's, else itself
                SELECT k.oid AS o,
                       coalesce((SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = k.oid),
                                (SELECT d.refobjid FROM pg_depend d WHERE k.relkind = 'S' AND d.classid = 'pg_class'::regclass AND d.objid = k.oid
                                   AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') LIMIT 1), k.oid) AS p
                FROM pg_class k WHERE k.oid >= 16384 AND k.oid IN (SELECT o FROM reach WHERE c = 'pg_class'::regclass))
            SELECT pg_describe_object(x.c, x.o, x.s) AS what, x.p::bigint AS relation,
                   x.c::bigint AS class_id, x.o::bigint AS object_id, x.s::int AS sub_id
            FROM (SELECT 'pg_class'::regclass AS c, o, 0 AS s, 0::oid AS r, p FROM part_of
                  UNION ALL SELECT 'pg_class'::regclass, a.attrelid, a.attnum, 0::oid, w.p FROM pg_attribute a JOIN part_of w ON w.o = a.attrelid
                  WHERE a.attnum > 0 AND NOT a.attisdropped
                  UNION ALL SELECT 'pg_constraint'::regclass, oid, 0, 0::oid, conrelid FROM pg_constraint WHERE oid >= 16384
                  UNION ALL SELECT 'pg_attrdef'::regclass, oid, 0, adrelid, adrelid FROM pg_attrdef
                  UNION ALL SELECT 'pg_trigger'::regclass, oid, 0, tgrelid, tgrelid FROM pg_trigger WHERE NOT tgisinternal
                  UNION ALL SELECT 'pg_policy'::regclass, oid, 0, polrelid, polrelid FROM pg_policy
                  UNION ALL SELECT 'pg_rewrite'::regclass, oid, 0, ev_class, ev_class FROM pg_rewrite WHERE oid >= 16384
                  UNION ALL SELECT 'pg_proc'::regclass, oid, 0, 0::oid, 0::oid FROM pg_proc WHERE oid >= 16384
                  UNION ALL SELECT 'pg_type'::regclass, t.oid, 0, 0::oid,
                                   CASE WHEN t.typrelid <> 0 THEN t.typrelid
                                        ELSE coalesce((SELECT e.typrelid FROM pg_type e WHERE e.oid = t.typelem AND t.typcategory = 'A'), 0) END
                  FROM pg_type t WHERE t.oid >= 16384
                  UNION ALL SELECT 'pg_statistic_ext'::regclass, oid, 0, 0::oid, stxrelid FROM pg_statistic_ext
                  UNION ALL SELECT 'pg_extension'::regclass, oid, 0, 0::oid, 0::oid FROM pg_extension WHERE oid >= 16384
                  UNION ALL SELECT 'pg_publication_rel'::regclass, oid, 0, prrelid, prrelid FROM pg_publication_rel) x
                 JOIN LATERAL (SELECT (x.c, x.o) IN (SELECT c, o FROM reach)
                                       OR x.p IN (SELECT o FROM reach WHERE c = 'pg_class'::regclass)
                                       OR x.r IN (SELECT o FROM reach WHERE c = 'pg_class'::regclass) AS reached) candidate ON candidate.reached,
                 LATERAL pg_identify_object(x.c, x.o, x.s) i,
                 LATERAL (SELECT coalesce(i.schema, (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = x.r)) AS schema) w
            WHERE (w.schema IS NULL OR NOT (w.schema = ANY($1::text[]) OR w.schema LIKE 'pg\\_toast%'))
            ORDER BY 1
            """, [PostgresArray.text(schemas), PostgresArray.text(relations.map(String.init))]).rows.map {
            OutsideObject(what: try $0.requiredString("what"), relation: try $0.int64("relation"),
                          classID: try $0.int64("class_id"), objectID: try $0.int64("object_id"), subID: Int32(try $0.int64("sub_id")))
        }
    }

    /// The descriptions of `objects` that still exist (a dropped object, or a dropped column, describes as NULL).
    static func stillThere(_ connection: PGConnection, _ objects: [OutsideObject]) throws -> Set<String> {
        guard !objects.isEmpty else { return [] }
        return Set(try connection.query("""
            SELECT pg_describe_object(c, o, s) AS what FROM unnest($1::oid[], $2::oid[], $3::int[]) AS t(c, o, s)
            """, [PostgresArray.text(objects.map { String($0.classID) }), PostgresArray.text(objects.map { String($0.objectID) }),
                  PostgresArray.text(objects.map { String($0.subID) })]).rows.compactMap { try $0.string("what") })
    }
}
