import Foundation

/// How one tool schema's completed, old `tool_data` rows are found and what goes with them.
///
/// Built from the catalog and the policy at the start of a run: the age column (policy default or
/// per-tool override); the **closure** of foreign keys that would act on a deleted `tool_data` row,
/// to any depth, across schemas, single- or multi-column; and the application-level references the
/// policy lists (rows still referenced by another tool's live data are kept).
///
/// Each foreign key into a table of the closure is one of:
/// - a **closure edge**: its rows go with their parent — the tool's own tables (same schema, the
///   key CASCADE, NO ACTION or RESTRICT: hypotheses, team_assessments, votes on hypotheses …) and
///   any table whose key would CASCADE (the database would delete those rows anyway; archiving
///   them lets `unarchive` bring them back);
/// - a **blocking edge**: `tool_data` referencing itself (a row that goes must be eligible on its
///   own), and any other key (another schema's NO ACTION or RESTRICT, any SET NULL or
///   SET DEFAULT): deleting the parent would fail or change a row that stays, so a `tool_data` row
///   whose closure such a row references is kept, and reported.
struct ToolSchemaArchivePlan: Sendable {
    /// A table of the closure; member 0 is `tool_data` itself.
    struct Member: Sendable {
        var relation: RelationName
        var identity: RowIdentity
        var columns: TableColumns
    }

    struct Edge: Sendable {
        var key: ForeignKey
        var parent: Int
        var child: Int
    }

    struct Blocking: Sendable {
        var key: ForeignKey
        var parent: Int
        /// The referencing table when it is itself a member (its rows that go too do not block).
        var child: Int?
    }

    struct IncomingReference: Sendable {
        var schema: String
        var table: String
        var column: String
        /// When the referring rows are another tool's tool_data archived in the same run: that tool's
        /// age column, organization and user columns. A referring row that this run archives is not
        /// live data, so it does not keep the row it points at.
        var archivedInRun: (ageColumn: String, hasOrganization: Bool, hasUser: Bool)?
    }

    var schema: String
    var ageColumn: String
    var hasOrganization: Bool
    var hasUser: Bool
    var members: [Member]
    var edges: [Edge]
    var blocking: [Blocking]
    var references: [IncomingReference]

    var toolDataColumns: [String] { members[0].columns.writable }
    /// True when the closure has a cycle (a self-referencing table, say): expansion repeats until nothing is added.
    var cyclic: Bool { edges.contains { $0.parent >= $0.child } }

    /// Every tool schema with a `tool_data` table (or only `requested`), validated against the policy.
    static func discover(_ connection: PGConnection, policy: Policy, requested: [String]) throws -> [ToolSchemaArchivePlan] {
        let found = try connection.query("""
            SELECT n.nspname AS schema FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relname = 'tool_data' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1
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
        let foreignKeys = try ForeignKey.all(connection)
        var plans: [ToolSchemaArchivePlan] = []
        for schema in found where requested.isEmpty || requested.contains(schema) {
            plans.append(try plan(connection, schema: schema, policy: policy, foreignKeys: foreignKeys))
        }
        for index in plans.indices {
            for r in plans[index].references.indices {
                let reference = plans[index].references[r]
                if reference.table == "tool_data", let referrer = plans.first(where: { $0.schema == reference.schema }) {
                    plans[index].references[r].archivedInRun = (referrer.ageColumn, referrer.hasOrganization, referrer.hasUser)
                }
            }
        }
        // Referring tools first, so an interrupted run never leaves a live row pointing at an archived one.
        let referenced = Set(plans.flatMap { plan in plan.references.filter { $0.archivedInRun != nil }.map { _ in plan.schema } })
        return plans.filter { !referenced.contains($0.schema) } + plans.filter { referenced.contains($0.schema) }
    }

    static func plan(_ connection: PGConnection, schema: String, policy: Policy, foreignKeys: [ForeignKey]) throws -> ToolSchemaArchivePlan {
        let settings = policy.archiveToolData
        let ageColumn = settings.ageColumnOverrides[schema] ?? settings.ageColumn
        let oid = try connection.query("SELECT (quote_ident($1) || '.tool_data')::regclass::oid::int8 AS oid", [schema]).first!.int64("oid")
        let toolData = RelationName(schema: schema, table: "tool_data", oid: oid)
        let columns = try TableColumns.of(connection, oid: oid)
        let key = settings.ageColumnOverrides[schema] != nil ? "age_column_overrides.\(schema)" : "age_column"
        guard columns.all.contains(ageColumn) else {
            throw FTBackupError(.configuration, "\(policy.source): lifecycle.archive_tool_data.\(key) is \(ageColumn), but \(schema).tool_data has no such column",
                                hint: "add an age_column_overrides entry for \(schema) naming one of: \(columns.all.joined(separator: ", "))")
        }
        for needed in ["id", "status"] where !columns.all.contains(needed) {
            throw FTBackupError(.configuration, "\(schema).tool_data has no \(needed) column; it cannot be archived by this policy")
        }

        // The closure, breadth first from tool_data.
        var members = [Member(relation: toolData, identity: .key(["id"]), columns: columns)]
        var edges: [Edge] = []
        var pending: [ForeignKey] = []
        var next = 0
        while next < members.count {
            let parent = members[next]
            for key in foreignKeys where key.parent.oid == parent.relation.oid {
                let owned = key.child.schema == schema && key.onDelete != .setNull && key.onDelete != .setDefault
                // tool_data referencing tool_data: the referencing row goes only if it is eligible itself.
                guard key.child.oid != oid, owned || key.onDelete == .cascade else {
                    pending.append(key)
                    continue
                }
                var child = members.firstIndex { $0.relation.oid == key.child.oid }
                if child == nil {
                    guard let identity = try RowIdentity.of(connection, oid: key.child.oid) else {
                        throw FTBackupError(.configuration, "\(key.child) goes with archived \(schema).tool_data rows (\(key)), but it is partitioned and has no primary key or unique NOT NULL key to name its rows by",
                                            hint: "add a primary key to \(key.child), or exclude \(schema) with --schema")
                    }
                    members.append(Member(relation: key.child, identity: identity, columns: try TableColumns.of(connection, oid: key.child.oid)))
                    child = members.count - 1
                }
                edges.append(Edge(key: key, parent: next, child: child!))
            }
            next += 1
        }
        (members, edges) = parentsFirst(members, edges)
        let blocking = pending.map { key in
            Blocking(key: key, parent: members.firstIndex { $0.relation.oid == key.parent.oid }!,
                     child: members.firstIndex { $0.relation.oid == key.child.oid })
        }

        var references: [IncomingReference] = []
        for reference in settings.references where reference.toSchema == schema {
            guard reference.toTable == "tool_data", reference.toColumn == "id" else {
                throw FTBackupError(.configuration, "\(policy.source): lifecycle.archive_tool_data.references: only references to tool_data.id are supported (got \(reference.toTable).\(reference.toColumn))")
            }
            let exists = try connection.query("""
                SELECT count(*) AS n FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3 AND NOT a.attisdropped
                """, [reference.fromSchema, reference.fromTable, reference.fromColumn]).first!.requiredInt("n")
            guard exists == 1 else {
                throw FTBackupError(.configuration, "\(policy.source): lifecycle.archive_tool_data.references names \(reference.fromSchema).\(reference.fromTable).\(reference.fromColumn), which does not exist",
                                    hint: "fix the reference in the policy")
            }
            references.append(IncomingReference(schema: reference.fromSchema, table: reference.fromTable, column: reference.fromColumn))
        }
        return ToolSchemaArchivePlan(schema: schema, ageColumn: ageColumn, hasOrganization: columns.all.contains("organization_id"),
                                     hasUser: columns.all.contains("user_id"), members: members, edges: edges, blocking: blocking,
                                     references: references)
    }

    /// Reorders the members so that every table comes after each table it references through a
    /// closure edge (tool_data stays first): unarchive inserts in this order, archive deletes in the
    /// reverse, so neither a foreign key check nor a cascade ever meets a row out of turn. Tables on
    /// a cycle other than a self-reference keep their discovery order.
    static func parentsFirst(_ members: [Member], _ edges: [Edge]) -> ([Member], [Edge]) {
        var order: [Int] = [0]
        var placed: Set<Int> = [0]
        while order.count < members.count {
            let ready = members.indices.first { index in
                !placed.contains(index) && edges.allSatisfy { $0.child != index || $0.parent == index || placed.contains($0.parent) }
            } ?? members.indices.first { !placed.contains($0) }!
            order.append(ready)
            placed.insert(ready)
        }
        let position = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        return (order.map { members[$0] },
                edges.map { Edge(key: $0.key, parent: position[$0.parent]!, child: position[$0.child]!) })
    }

    /// The rows that qualify, before references are considered: `$1` status, `$2` cutoff, `$3` legal-hold ids.
    func qualifies(_ q: (String) throws -> String) throws -> String {
        try Self.qualifies(alias: "t", ageColumn: ageColumn, hasOrganization: hasOrganization, hasUser: hasUser, q)
    }

    /// Legal hold the same way as prune-audit: the row's organization, or its user's.
    static func qualifies(alias t: String, ageColumn: String, hasOrganization: Bool, hasUser: Bool, _ q: (String) throws -> String) throws -> String {
        var predicate = "\(t).status = $1 AND \(t).\(try q(ageColumn)) < $2::timestamptz AND cardinality($3::uuid[]) >= 0"
        if hasOrganization {
            predicate += " AND (\(t).organization_id IS NULL OR NOT \(t).organization_id = ANY($3::uuid[]))"
        }
        if hasUser {
            predicate += " AND NOT EXISTS (SELECT 1 FROM users.accounts ha WHERE ha.id = \(t).user_id AND ha.organization_id = ANY($3::uuid[]))"
        }
        return predicate
    }

    /// No other tool's live data points at the row (application-level references from the policy).
    func unreferenced(_ q: (String) throws -> String) throws -> String {
        try references.map { reference in
            var live = ""
            if let referrer = reference.archivedInRun {
                live = " AND NOT (\(try Self.qualifies(alias: "r", ageColumn: referrer.ageColumn, hasOrganization: referrer.hasOrganization, hasUser: referrer.hasUser, q)))"
            }
            return "NOT EXISTS (SELECT 1 FROM \(try q(reference.schema)).\(try q(reference.table)) r WHERE r.\(try q(reference.column)) = t.id\(live))"
        }.joined(separator: " AND ")
    }

    /// The stored size of a row: the sum of its columns' sizes (stable however the query is shaped).
    static func rowSize(alias: String, columns: [String], _ q: (String) throws -> String) throws -> String {
        "(" + (try columns.map { "coalesce(pg_column_size(\(alias).\(try q($0))), 0)" }.joined(separator: " + ")) + ")::bigint"
    }

    /// Eligibility of a tool_data row: qualifies and is not referenced by live data.
    func predicate(_ q: (String) throws -> String) throws -> String {
        let unreferenced = try unreferenced(q)
        return try qualifies(q) + (unreferenced.isEmpty ? "" : " AND " + unreferenced)
    }
}
