import Foundation

/// A table whose rows a backup copies.
public struct TableToCopy: Sendable, Equatable {
    public var schema: String
    public var name: String
    /// Columns COPY reads and writes: every column but generated ones, in order.
    public var columns: [String]
    /// On-disk size, to copy the largest tables first.
    public var estimatedBytes: Int64
    /// Indexes (and the constraints they back) a restore builds right after loading this table.
    public var indexes: [BackupManifest.IndexBuild]
}

/// Finds, inside the backup's snapshot, every table whose data must be copied.
///
/// Tool schemas are discovered by what exists, never configured. Partitions are copied as the leaves
/// they are (COPY of a partitioned parent is an error in PostgreSQL 15) and parents never, so no row
/// is copied twice. Views, materialized views (refreshed at restore), foreign tables and the
/// system's schemas are skipped; so is whatever the policy excludes.
public enum TableDiscovery {
    public static func tables(_ session: DatabaseSession, policy: Policy) async throws -> [TableToCopy] {
        // With an empty search_path every name in the index and constraint definitions is qualified.
        try await session.execute("SET search_path = ''")
        let rows = try await session.query("""
            SELECT n.nspname AS schema, c.relname AS name, c.relispartition AS partition,
                   pg_relation_size(c.oid) + coalesce(pg_relation_size(c.reltoastrelid), 0) AS bytes,
                   (SELECT json_agg(json_build_object('name', ci.relname, 'constraint', con.conname,
                              'sql', CASE WHEN con.oid IS NULL THEN pg_get_indexdef(i.indexrelid)
                                     ELSE 'ALTER TABLE ONLY ' || c.oid::regclass::text || ' ADD CONSTRAINT '
                                          || quote_ident(con.conname) || ' ' || pg_get_constraintdef(con.oid) END)
                              ORDER BY ci.relname)::text
                    FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid
                    LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = c.oid AND con.contype IN ('p', 'u', 'x')
                    WHERE i.indrelid = c.oid) AS indexes,
                   (SELECT array_to_json(array_agg(a.attname ORDER BY a.attnum))::text FROM pg_attribute a
                    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '') AS columns
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND \(CatalogSQL.userSchemaFilter)
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
            ORDER BY bytes DESC, 1, 2
            """)
        return try rows.rows.compactMap { row in
            let schema = try row.requiredString("schema"), name = try row.requiredString("name")
            if policy.excludes(schema: schema, table: name) { return nil }
            let columns = try JSONDecoder().decode([String].self, from: Data((try row.string("columns") ?? "[]").utf8))
            // Partitions' indexes hang off their parent's: pg_restore builds and attaches those.
            let indexes = try row.bool("partition") == true ? [] : try JSONDecoder().decode(
                [BackupManifest.IndexBuild].self, from: Data((try row.string("indexes") ?? "[]").utf8))
            return TableToCopy(schema: schema, name: name, columns: columns, estimatedBytes: try row.int64("bytes"), indexes: indexes)
        }
    }

    /// Tables whose data a backup does not copy although they exist: the policy's exclusions and
    /// tables that belong to extensions. Their changes are not replayed either.
    public static func notCopied(_ session: DatabaseSession, policy: Policy) async throws -> [String] {
        try await session.query("""
            SELECT n.nspname AS schema, c.relname AS name,
                   EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e') AS extension
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND \(CatalogSQL.userSchemaFilter) ORDER BY 1, 2
            """).rows.compactMap { row in
            let schema = try row.requiredString("schema"), name = try row.requiredString("name")
            return try row.bool("extension") == true || policy.excludes(schema: schema, table: name) ? "\(schema).\(name)" : nil
        }
    }

    /// Every user schema (also those with no tables: their DDL is still backed up).
    public static func schemas(_ session: DatabaseSession) async throws -> [String] {
        try await session.query("""
            SELECT n.nspname AS name FROM pg_namespace n WHERE \(CatalogSQL.userSchemaFilter)
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = n.oid AND d.deptype = 'e')
            ORDER BY 1
            """).rows.map { try $0.requiredString("name") }
    }

    /// Roles that own, or are granted privileges on, objects in the user schemas (columns too), default
    /// privileges name, and user mappings are for (recorded in the manifest; restore reads the dump itself: `DumpRoles`).
    public static func roles(_ session: DatabaseSession) async throws -> [String] {
        try await session.query("""
            WITH objects AS (
                SELECT c.relowner AS owner, c.relacl AS acl FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE \(CatalogSQL.userSchemaFilter)
                UNION ALL SELECT n.nspowner, n.nspacl FROM pg_namespace n WHERE \(CatalogSQL.userSchemaFilter)
                UNION ALL SELECT p.proowner, p.proacl FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE \(CatalogSQL.userSchemaFilter)
                UNION ALL SELECT t.typowner, t.typacl FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                WHERE \(CatalogSQL.userSchemaFilter)
            ), ids AS (
                SELECT owner AS id FROM objects
                UNION SELECT (aclexplode(acl)).grantee FROM objects WHERE acl IS NOT NULL
                UNION SELECT unnest(pol.polroles) FROM pg_policy pol
                UNION SELECT (aclexplode(a.attacl)).grantee FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE a.attacl IS NOT NULL AND \(CatalogSQL.userSchemaFilter)
                UNION SELECT d.defaclrole FROM pg_default_acl d
                UNION SELECT (aclexplode(d.defaclacl)).grantee FROM pg_default_acl d
                UNION SELECT m.umuser FROM pg_user_mapping m
            )
            SELECT DISTINCT r.rolname AS name FROM ids JOIN pg_roles r ON r.oid = ids.id ORDER BY 1
            """).rows.map { try $0.requiredString("name") }
    }

    /// Every sequence's `last_value` and `is_called`, read directly from the sequence.
    public static func sequences(_ session: DatabaseSession) async throws -> [BackupManifest.SequenceState] {
        let rows = try await session.query("""
            SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'S' AND \(CatalogSQL.userSchemaFilter) ORDER BY 1, 2
            """)
        var states: [BackupManifest.SequenceState] = []
        for row in rows.rows {
            let schema = try row.requiredString("schema"), name = try row.requiredString("name")
            let state = try await session.query("SELECT last_value::text AS v, is_called FROM \(try session.qualifiedName(schema, name))").first!
            states.append(.init(schema: schema, name: name, lastValue: try state.requiredString("v"), isCalled: try state.bool("is_called") ?? false))
        }
        return states
    }

    /// Materialized views that are populated, in creation order (a view built on another comes later).
    public static func populatedMaterializedViews(_ session: DatabaseSession) async throws -> [BackupManifest.RelationName] {
        try await session.query("""
            SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'm' AND c.relispopulated AND \(CatalogSQL.userSchemaFilter) ORDER BY c.oid
            """).rows.map { .init(schema: try $0.requiredString("schema"), name: try $0.requiredString("name")) }
    }
}
