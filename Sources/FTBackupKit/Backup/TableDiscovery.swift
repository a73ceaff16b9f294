import Foundation

/// A table whose rows a backup copies.
public struct TableToCopy: Sendable, Equatable {
    public var schema: String
    public var name: String
    /// Columns COPY reads and writes: every column but generated ones, in order.
    public var columns: [String]
    /// On-disk size, to copy the largest tables first.
    public var estimatedBytes: Int64
    /// Valid indexes (and the constraints they back); a restore builds them itself (`IndexBuildPlan`).
    public var indexes: [BackupManifest.IndexBuild]
    /// Set for an extension's configuration table: the filter its extension registered (see
    /// ``BackupManifest/Table/extensionFilter``).
    public var extensionFilter: String? = nil
    /// The table's oid when discovered, to compare the snapshot's view of it with the current catalog.
    public var oid: Int64 = 0
    /// Binary when every copied column's type allows it (``BinaryCopyEligibility``), else text.
    public var format: CopyFormat = .text
}

/// Finds, inside the backup's snapshot, every table whose data must be copied.
///
/// Tool schemas are discovered by what exists, never configured. Partitions are copied as the leaves
/// they are (COPY of a partitioned parent is an error in PostgreSQL 15) and parents never, so no row
/// is copied twice. Views, materialized views (refreshed at restore), foreign tables and the
/// system's schemas are skipped; so is whatever the policy excludes. Tables that belong to an
/// extension are the extension's script's to create and fill, except its configuration tables
/// (`pg_extension_config_dump`): their rows that the extension's filter selects are copied, as pg_dump does. Partitioned tables are listed
/// apart, for their indexes (`partitionedTables`).
public enum TableDiscovery {
    public static func tables(_ session: DatabaseSession, policy: Policy) async throws -> [TableToCopy] {
        // With an empty search_path every name in the index and constraint definitions is qualified.
        try await session.execute("SET search_path = ''")
        let rows = try await session.query("""
            \(BinaryCopyEligibility.withClause)
            SELECT c.oid::text AS oid, n.nspname AS schema, c.relname AS name,
                   coalesce(pg_relation_size(c.oid), 0) + coalesce(pg_relation_size(c.reltoastrelid), 0) AS bytes,
                   \(indexesSQL) AS indexes,
                   (SELECT array_to_json(array_agg(a.attname ORDER BY a.attnum))::text FROM pg_attribute a
                    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '') AS columns,
                   \(ExtensionConfigTables.filterSQL("c")) AS extension_filter,
                   \(BinaryCopyEligibility.sql("c")) AS binary_ok
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND \(CatalogSQL.userSchemaFilter)
              AND (NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
                   OR \(ExtensionConfigTables.filterSQL("c")) IS NOT NULL)
            ORDER BY bytes DESC, 1, 2
            """)
        return try rows.rows.compactMap { row in
            let schema = try row.requiredString("schema"), name = try row.requiredString("name")
            if policy.excludes(schema: schema, table: name) { return nil }
            let columns = try JSONDecoder().decode([String].self, from: Data((try row.string("columns") ?? "[]").utf8))
            let filter = try row.string("extension_filter")
            // An extension's table gets its indexes from the extension's script.
            return TableToCopy(schema: schema, name: name, columns: columns, estimatedBytes: try row.int64("bytes"),
                               indexes: filter != nil ? [] : try decodeIndexes(row.string("indexes")),
                               extensionFilter: filter, oid: Int64(try row.requiredString("oid")) ?? 0,
                               format: try row.bool("binary_ok") == true ? .binary : .text)
        }
    }

    /// Partitioned tables (which hold no rows themselves) with their indexes and keys.
    public static func partitionedTables(_ session: DatabaseSession, policy: Policy) async throws -> [BackupManifest.PartitionedTable] {
        try await session.execute("SET search_path = ''")
        return try await session.query("""
            SELECT n.nspname AS schema, c.relname AS name, \(indexesSQL) AS indexes
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'p' AND \(CatalogSQL.userSchemaFilter)
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
            ORDER BY 1, 2
            """).rows.compactMap { row in
            let schema = try row.requiredString("schema"), name = try row.requiredString("name")
            if policy.excludes(schema: schema, table: name) { return nil }
            return .init(schema: schema, name: name, indexes: try decodeIndexes(row.string("indexes")))
        }
    }

    /// The indexes of table `c` as a JSON array of `IndexBuild`, with the constraint each backs and the
    /// partitioned table's index it is attached to. Invalid indexes (a failed `CREATE INDEX
    /// CONCURRENTLY`) are left out, as pg_dump leaves them out; a partitioned table's index is invalid
    /// until every partition has one attached, and pg_dump keeps those.
    static let indexesSQL = """
        (SELECT json_agg(json_build_object('name', ci.relname, 'constraint', con.conname,
                   'sql', CASE WHEN con.oid IS NULL THEN pg_get_indexdef(i.indexrelid)
                          ELSE 'ALTER TABLE ONLY ' || c.oid::regclass::text || ' ADD CONSTRAINT '
                               || quote_ident(con.conname) || ' ' || pg_get_constraintdef(con.oid) END,
                   'attachedTo', (SELECT json_build_object('schema', pn.nspname, 'name', pc.relname)
                                  FROM pg_inherits ih JOIN pg_class pc ON pc.oid = ih.inhparent
                                  JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE ih.inhrelid = i.indexrelid))
                   ORDER BY ci.relname)::text
         FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid
         LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = c.oid AND con.contype IN ('p', 'u', 'x')
         WHERE i.indrelid = c.oid AND (i.indisvalid OR c.relkind = 'p') AND i.indisready)
        """

    static func decodeIndexes(_ json: String?) throws -> [BackupManifest.IndexBuild] {
        try JSONDecoder().decode([BackupManifest.IndexBuild].self, from: Data((json ?? "[]").utf8))
    }

    /// Tables whose data a backup does not copy although they exist: the policy's exclusions and
    /// tables that belong to extensions (but for their configuration tables). Their changes are not
    /// replayed either.
    public static func notCopied(_ session: DatabaseSession, policy: Policy) async throws -> [String] {
        try await session.query("""
            SELECT n.nspname AS schema, c.relname AS name,
                   EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
                   AND \(ExtensionConfigTables.filterSQL("c")) IS NULL AS extension
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
