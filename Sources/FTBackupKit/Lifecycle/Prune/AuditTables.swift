import Foundation

/// The audit tables retention applies to, leaf by leaf, and how legal hold reaches their rows.
///
/// `audit.events` is kept 7 years, so in production it is partitioned by range on its timestamp
/// (a partition per year or month, and a DEFAULT partition for clock-skewed rows). A ctid names a
/// row only inside one partition, so pruning works one leaf at a time; and a leaf whose whole range
/// lies before the cut-off can go as a whole (exported first) rather than row by row.
struct AuditTable: Sendable {
    var relation: RelationName
    /// The parent's columns in order; every leaf's rows are written in this order.
    var columns: [String]
    /// The SQL type of the "timestamp" column (cut-offs and bounds are cast to it).
    var timestampType: String
    var hasOrganization: Bool
    var hasUser: Bool
    var leaves: [AuditLeaf]
    /// The table and every partition under it, at any level.
    var treeOids: [Int64]
}

/// One leaf of an audit table (the table itself when it is not partitioned).
struct AuditLeaf: Sendable {
    var relation: RelationName
    /// `FOR VALUES FROM (…) TO (…)`, `DEFAULT`, or nil for a table that is not a partition.
    var bound: String?
    var parent: RelationName?
    /// The exclusive upper bound of the leaf's range, as SQL text of the timestamp type, when its
    /// parent is range-partitioned on "timestamp" alone and the bound is not MAXVALUE.
    var upperBound: String?
}

extension AuditTable {
    /// `audit.events` and every tool schema's `audit_log` that has a "timestamp" column.
    static func discover(_ connection: PGConnection) throws -> [AuditTable] {
        let tables = try connection.query("""
            SELECT n.nspname AS schema, c.relname AS table, c.oid::int8 AS oid,
                   format_type(ts.atttypid, ts.atttypmod) AS ts_type,
                   EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped) AS org,
                   EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped) AS usr
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute ts ON ts.attrelid = c.oid AND ts.attname = 'timestamp' AND NOT ts.attisdropped
            WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
              AND ((n.nspname = 'audit' AND c.relname = 'events') OR (n.nspname LIKE 'sprint\\_%' AND c.relname = 'audit_log'))
            ORDER BY 1, 2
            """).rows
        var result: [AuditTable] = []
        for row in tables {
            let schema = try row.requiredString("schema")
            guard schema == "audit" || SchemaKind.isToolSchema(schema) else { continue }
            let relation = RelationName(schema: schema, table: try row.requiredString("table"), oid: try row.int64("oid"))
            result.append(AuditTable(relation: relation, columns: try TableColumns.of(connection, oid: relation.oid).all,
                                     timestampType: try row.requiredString("ts_type"), hasOrganization: try row.bool("org") ?? false,
                                     hasUser: try row.bool("usr") ?? false, leaves: try leaves(connection, of: relation),
                                     treeOids: try connection.query("""
                                        SELECT $1::int8 AS oid UNION SELECT relid::oid::int8 FROM pg_partition_tree($1::oid)
                                        """, [relation.oid]).rows.map { try $0.int64("oid") }))
        }
        return result
    }

    static func leaves(_ connection: PGConnection, of table: RelationName) throws -> [AuditLeaf] {
        try connection.query("""
            SELECT n.nspname AS schema, c.relname AS table, c.oid::int8 AS oid, c.relkind::text AS kind,
                   CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS bound,
                   pn.nspname AS parent_schema, p.relname AS parent_table, p.oid::int8 AS parent_oid,
                   coalesce(pt.partstrat = 'r' AND pt.partnatts = 1
                            AND pt.partattrs[0] = (SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = p.oid AND a.attname = 'timestamp'), false) AS by_time
            FROM (SELECT relid FROM pg_partition_tree($1::oid) WHERE isleaf
                  UNION SELECT oid FROM pg_class WHERE oid = $1::oid AND relkind = 'r') t
            JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
            LEFT JOIN pg_class p ON p.oid = i.inhparent LEFT JOIN pg_namespace pn ON pn.oid = p.relnamespace
            LEFT JOIN pg_partitioned_table pt ON pt.partrelid = i.inhparent
            ORDER BY c.relname
            """, [table.oid]).rows.map { row in
            let kind = try row.requiredString("kind")
            let name = RelationName(schema: try row.requiredString("schema"), table: try row.requiredString("table"), oid: try row.int64("oid"))
            guard kind == "r" else {
                throw FTBackupError(.configuration, "audit table \(table) has a partition \(name) of kind \(kind) (foreign or other); prune-audit cannot delete from it",
                                    hint: "prune that partition by hand, or detach it from \(table)")
            }
            let bound = try row.string("bound")
            var parent: RelationName?
            if let schema = try row.string("parent_schema") {
                parent = RelationName(schema: schema, table: try row.requiredString("parent_table"), oid: try row.int64("parent_oid"))
            }
            let upper = try row.bool("by_time") == true ? bound.flatMap(Self.upperBound) : nil
            return AuditLeaf(relation: name, bound: bound, parent: parent, upperBound: upper)
        }
    }

    /// The literal after `TO (` in `FOR VALUES FROM ('…') TO ('…')`, unquoted; nil for MAXVALUE or anything else.
    static func upperBound(_ bound: String) -> String? {
        guard bound.hasPrefix("FOR VALUES FROM ("), let to = bound.range(of: ") TO (", options: .backwards), bound.hasSuffix(")") else { return nil }
        let literal = String(bound[to.upperBound..<bound.index(before: bound.endIndex)])
        guard literal.count >= 2, literal.hasPrefix("'"), literal.hasSuffix("'") else { return nil }
        return String(literal.dropFirst().dropLast()).replacingOccurrences(of: "''", with: "'")
    }

    /// SQL on alias `e`: the row belongs to an organization under legal hold, directly or through
    /// its user. `hold` is the SQL literal of the uuid[] of held organizations.
    func held(hold: String, holdCount: Int) -> String {
        guard holdCount > 0 else { return "false" }
        var parts: [String] = []
        if hasOrganization { parts.append("coalesce(e.organization_id = ANY(\(hold)::uuid[]), false)") }
        if hasUser {
            parts.append("EXISTS (SELECT 1 FROM users.accounts ha WHERE ha.id = e.user_id AND ha.organization_id = ANY(\(hold)::uuid[]))")
        }
        return parts.isEmpty ? "false" : "(" + parts.joined(separator: " OR ") + ")"
    }

    /// The cut-off (an instant, as a `timestamptz` literal) as a value of the "timestamp" column's
    /// type: a wall time in the session's zone, which the pruner sets to the database's own.
    func cutoffValue(_ cutoff: String) -> String { "\(cutoff)::timestamptz::\(timestampType)" }

    /// SQL on alias `e`: the row may be pruned — older than the cut-off and not held.
    func eligible(cutoff: String, hold: String, holdCount: Int) -> String {
        "(e.\"timestamp\" < \(cutoffValue(cutoff)) AND NOT \(held(hold: hold, holdCount: holdCount)))"
    }

    /// SQL on alias `e`: a row of another table still references the row through `keys` (NO ACTION
    /// or RESTRICT keys into the table or any of its partitions); such a row stays.
    func referenced(by keys: [ForeignKey], _ q: (String) throws -> String) throws -> String {
        guard !keys.isEmpty else { return "false" }
        return "(" + (try keys.map { key in
            let child = "\(try q(key.child.schema)).\(try q(key.child.table))"
            return "EXISTS (SELECT 1 FROM \(child) x WHERE \(try key.joinCondition(child: "x", parent: "e", q)))"
        }.joined(separator: " OR ")) + ")"
    }
}
