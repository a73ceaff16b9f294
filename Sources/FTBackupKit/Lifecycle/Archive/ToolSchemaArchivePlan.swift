import Foundation

/// How one tool schema's completed, old `tool_data` rows are found and what goes with them.
///
/// Built from the catalog and the policy at the start of a run: the age column (policy default or
/// per-tool override), the tables that reference `tool_data` through foreign keys in the same schema
/// (hypotheses, team_assessments, …), and the application-level references the policy lists (rows
/// still referenced by another tool's live data are kept).
struct ToolSchemaArchivePlan: Sendable {
    struct Dependant: Sendable {
        var table: String
        var keyColumn: String
        var columns: [String]
    }

    struct IncomingReference: Sendable {
        var schema: String
        var table: String
        var column: String
        /// When the referring rows are another tool's tool_data archived in the same run: that tool's
        /// age column and whether it has organization_id. A referring row that this run archives is
        /// not live data, so it does not keep the row it points at.
        var archivedInRun: (ageColumn: String, hasOrganization: Bool)?
    }

    var schema: String
    var ageColumn: String
    var toolDataColumns: [String]
    var hasOrganization: Bool
    var dependants: [Dependant]
    var references: [IncomingReference]

    /// Every tool schema with a `tool_data` table (or only `requested`), validated against the policy.
    static func discover(_ session: DatabaseSession, policy: Policy, requested: [String]) async throws -> [ToolSchemaArchivePlan] {
        let found = try await session.query("""
            SELECT n.nspname AS schema FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relname = 'tool_data' AND c.relkind IN ('r', 'p') ORDER BY 1
            """).rows.map { try $0.requiredString("schema") }.filter(SchemaKind.isToolSchema)
        let settings = policy.archiveToolData
        for schema in settings.ageColumnOverrides.keys where !found.contains(schema) {
            throw FTBackupError(.configuration, "\(policy.source): lifecycle.archive_tool_data.age_column_overrides names schema \(schema), which has no tool_data table",
                                hint: "fix the policy or check --db")
        }
        for schema in requested where !found.contains(schema) {
            throw FTBackupError(.usage, "\(schema) is not a tool schema with a tool_data table",
                                hint: "tool schemas found: \(found.prefix(5).joined(separator: ", "))…")
        }
        var plans: [ToolSchemaArchivePlan] = []
        for schema in found where requested.isEmpty || requested.contains(schema) {
            plans.append(try await plan(session, schema: schema, policy: policy))
        }
        for index in plans.indices {
            for r in plans[index].references.indices {
                let reference = plans[index].references[r]
                if reference.table == "tool_data", let referrer = plans.first(where: { $0.schema == reference.schema }) {
                    plans[index].references[r].archivedInRun = (referrer.ageColumn, referrer.hasOrganization)
                }
            }
        }
        // Referring tools first, so an interrupted run never leaves a live row pointing at an archived one.
        let referenced = Set(plans.flatMap { plan in plan.references.filter { $0.archivedInRun != nil }.map { _ in plan.schema } })
        return plans.filter { !referenced.contains($0.schema) } + plans.filter { referenced.contains($0.schema) }
    }

    static func columns(_ session: DatabaseSession, schema: String, table: String) async throws -> [String] {
        try await session.query("""
            SELECT a.attname AS name FROM pg_attribute a
            WHERE a.attrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass
              AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum
            """, [schema, table]).rows.map { try $0.requiredString("name") }
    }

    static func plan(_ session: DatabaseSession, schema: String, policy: Policy) async throws -> ToolSchemaArchivePlan {
        let settings = policy.archiveToolData
        let ageColumn = settings.ageColumnOverrides[schema] ?? settings.ageColumn
        let columns = try await columns(session, schema: schema, table: "tool_data")
        let key = settings.ageColumnOverrides[schema] != nil ? "age_column_overrides.\(schema)" : "age_column"
        guard columns.contains(ageColumn) else {
            throw FTBackupError(.configuration, "\(policy.source): lifecycle.archive_tool_data.\(key) is \(ageColumn), but \(schema).tool_data has no such column",
                                hint: "add an age_column_overrides entry for \(schema) naming one of: \(columns.joined(separator: ", "))")
        }
        for needed in ["id", "status"] where !columns.contains(needed) {
            throw FTBackupError(.configuration, "\(schema).tool_data has no \(needed) column; it cannot be archived by this policy")
        }
        let dependantRows = try await session.query("""
            SELECT r.relname AS table, a.attname AS column
            FROM pg_constraint k JOIN pg_class r ON r.oid = k.conrelid
            JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
            WHERE k.contype = 'f' AND k.confrelid = (quote_ident($1) || '.tool_data')::regclass
              AND r.relnamespace = k.connamespace AND array_length(k.conkey, 1) = 1 AND r.oid <> k.confrelid
            ORDER BY 1
            """, [schema])
        var dependants: [Dependant] = []
        for row in dependantRows.rows {
            let table = try row.requiredString("table")
            dependants.append(Dependant(table: table, keyColumn: try row.requiredString("column"),
                                        columns: try await Self.columns(session, schema: schema, table: table)))
        }
        var references: [IncomingReference] = []
        for reference in settings.references where reference.toSchema == schema {
            guard reference.toTable == "tool_data", reference.toColumn == "id" else {
                throw FTBackupError(.configuration, "\(policy.source): lifecycle.archive_tool_data.references: only references to tool_data.id are supported (got \(reference.toTable).\(reference.toColumn))")
            }
            let exists = try await session.query("""
                SELECT count(*) AS n FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3 AND NOT a.attisdropped
                """, [reference.fromSchema, reference.fromTable, reference.fromColumn]).first!.requiredInt("n")
            guard exists == 1 else {
                throw FTBackupError(.configuration, "\(policy.source): lifecycle.archive_tool_data.references names \(reference.fromSchema).\(reference.fromTable).\(reference.fromColumn), which does not exist",
                                    hint: "fix the reference in the policy")
            }
            references.append(IncomingReference(schema: reference.fromSchema, table: reference.fromTable, column: reference.fromColumn))
        }
        return ToolSchemaArchivePlan(schema: schema, ageColumn: ageColumn, toolDataColumns: columns,
                                     hasOrganization: columns.contains("organization_id"), dependants: dependants, references: references)
    }

    /// The rows that qualify, before references are considered: `$1` status, `$2` cutoff, `$3` legal-hold ids.
    func qualifies(_ q: (String) throws -> String) throws -> String {
        try Self.qualifies(alias: "t", ageColumn: ageColumn, hasOrganization: hasOrganization, q)
    }

    static func qualifies(alias t: String, ageColumn: String, hasOrganization: Bool, _ q: (String) throws -> String) throws -> String {
        var predicate = "\(t).status = $1 AND \(t).\(try q(ageColumn)) < $2::timestamptz"
        if hasOrganization {
            predicate += " AND (\(t).organization_id IS NULL OR NOT \(t).organization_id = ANY($3::uuid[]))"
        } else {
            predicate += " AND cardinality($3::uuid[]) >= 0"  // no organization: legal hold cannot apply
        }
        return predicate
    }

    /// No other tool's live data points at the row.
    func unreferenced(_ q: (String) throws -> String) throws -> String {
        try references.map { reference in
            var live = ""
            if let referrer = reference.archivedInRun {
                live = " AND NOT (\(try Self.qualifies(alias: "r", ageColumn: referrer.ageColumn, hasOrganization: referrer.hasOrganization, q)))"
            }
            return "NOT EXISTS (SELECT 1 FROM \(try q(reference.schema)).\(try q(reference.table)) r WHERE r.\(try q(reference.column)) = t.id\(live))"
        }.joined(separator: " AND ")
    }

    /// The stored size of a row: the sum of its columns' sizes (stable however the query is shaped).
    static func rowSize(alias: String, columns: [String], _ q: (String) throws -> String) throws -> String {
        "(" + (try columns.map { "coalesce(pg_column_size(\(alias).\(try q($0))), 0)" }.joined(separator: " + ")) + ")::bigint"
    }

    func predicate(_ q: (String) throws -> String) throws -> String {
        let unreferenced = try unreferenced(q)
        return try qualifies(q) + (unreferenced.isEmpty ? "" : " AND " + unreferenced)
    }
}
