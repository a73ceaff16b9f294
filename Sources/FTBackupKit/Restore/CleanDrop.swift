import Foundation

/// `--clean`'s drop, in one transaction that either drops exactly what it should or nothing.
///
/// The dependants `OutsideDependants` saved (foreign keys, views, row-security policies in other
/// schemas) are dropped first; then the catalog outside the restored schemas is listed, the schemas
/// are dropped (`public`: its relations only), and the catalog is listed again. Whatever else
/// `CASCADE` took outside the restored schemas (a trigger or column default calling one of their
/// functions, a column of one of their types or domains, …) is collateral: without `--cascade` the
/// transaction is rolled back and the restore refused naming it, so the target is left unchanged.
enum CleanDrop {
    /// Drops the restored schemas; returns what `CASCADE` took outside them (only with `cascade`).
    static func run(_ target: DatabaseSession, plan: RestorePlan, dependants: OutsideDependants, cascade: Bool) async throws -> [String] {
        try await target.withConnection { connection -> [String] in
            try connection.execute("BEGIN")
            do {
                try connection.execute("SET LOCAL search_path = ''")
                try dependants.drop(connection)
                let before = try outsideObjects(connection, schemas: plan.schemas)
                for schema in plan.schemas where schema != "public" {
                    try connection.execute("DROP SCHEMA IF EXISTS \(try connection.escapeIdentifier(schema)) CASCADE")
                }
                if plan.schemas.contains("public") { try dropPublicRelations(connection) }
                let after = Set(try outsideObjects(connection, schemas: plan.schemas))
                let taken = before.filter { !after.contains($0) }
                if !taken.isEmpty && !cascade {
                    try connection.execute("ROLLBACK")
                    throw FTBackupError(.usage, "--clean would also drop \(taken.count) object(s) outside the restored schemas that depend on them: \(taken.prefix(10).joined(separator: "; "))\(taken.count > 10 ? "; …" : ""); nothing was dropped",
                                        hint: "recreate them after the restore yourself and pass --cascade, or restore into an empty database")
                }
                try connection.execute("COMMIT")
                return taken
            } catch {
                try? connection.execute("ROLLBACK")
                throw error
            }
        }
    }

    /// Relations in `public` (the schema itself stays). Sequences that belong to a column (identity,
    /// serial) go with their table: dropping an identity sequence on its own fails.
    static func dropPublicRelations(_ connection: PGConnection) throws {
        let existing = try connection.query("""
            SELECT c.relname AS name, c.relkind AS kind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                              AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') AND c.relkind = 'S')
            ORDER BY c.relkind IN ('r', 'p') DESC, c.oid
            """)
        for row in existing.rows {
            let name = try connection.qualifiedName("public", try row.requiredString("name"))
            let kind = try row.requiredString("kind")
            let noun = ["v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE", "f": "FOREIGN TABLE"][kind] ?? "TABLE"
            try connection.execute("DROP \(noun) IF EXISTS \(name) CASCADE")
        }
    }

    /// Every user object outside `schemas` that a drop can take (relations and their columns,
    /// constraints, defaults, triggers, policies, rules, functions, types, statistics, extensions,
    /// publication memberships), described as PostgreSQL names them.
    static func outsideObjects(_ connection: PGConnection, schemas: [String]) throws -> [String] {
        try connection.query("""
            SELECT pg_describe_object(x.c, x.o, x.s) AS what
            FROM (SELECT 'pg_class'::regclass AS c, oid AS o, 0 AS s, 0::oid AS r FROM pg_class WHERE oid >= 16384
                  UNION ALL SELECT 'pg_class'::regclass, attrelid, attnum, 0::oid FROM pg_attribute WHERE attrelid >= 16384 AND attnum > 0 AND NOT attisdropped
                  UNION ALL SELECT 'pg_constraint'::regclass, oid, 0, 0::oid FROM pg_constraint WHERE oid >= 16384
                  UNION ALL SELECT 'pg_attrdef'::regclass, oid, 0, adrelid FROM pg_attrdef
                  UNION ALL SELECT 'pg_trigger'::regclass, oid, 0, tgrelid FROM pg_trigger WHERE NOT tgisinternal
                  UNION ALL SELECT 'pg_policy'::regclass, oid, 0, polrelid FROM pg_policy
                  UNION ALL SELECT 'pg_rewrite'::regclass, oid, 0, ev_class FROM pg_rewrite WHERE oid >= 16384
                  UNION ALL SELECT 'pg_proc'::regclass, oid, 0, 0::oid FROM pg_proc WHERE oid >= 16384
                  UNION ALL SELECT 'pg_type'::regclass, oid, 0, 0::oid FROM pg_type WHERE oid >= 16384
                  UNION ALL SELECT 'pg_statistic_ext'::regclass, oid, 0, 0::oid FROM pg_statistic_ext
                  UNION ALL SELECT 'pg_extension'::regclass, oid, 0, 0::oid FROM pg_extension WHERE oid >= 16384
                  UNION ALL SELECT 'pg_publication_rel'::regclass, oid, 0, prrelid FROM pg_publication_rel) x,
                 LATERAL pg_identify_object(x.c, x.o, x.s) i,
                 LATERAL (SELECT coalesce(i.schema, (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = x.r)) AS schema) w
            WHERE (w.schema IS NULL OR NOT (w.schema = ANY($1::text[]) OR w.schema LIKE 'pg\\_toast%'))
            ORDER BY 1
            """, [PostgresArray.text(schemas)]).rows.map { try $0.requiredString("what") }
    }
}
