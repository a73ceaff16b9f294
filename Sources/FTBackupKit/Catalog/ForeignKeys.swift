import Foundation

/// A table named by schema and name, with its oid in the database it was read from.
public struct RelationName: Sendable, Hashable, Codable, CustomStringConvertible {
    public var schema: String
    public var table: String
    public var oid: Int64

    public var description: String { "\(schema).\(table)" }
}

/// One foreign key as the catalog declares it: who references whom, by which columns, and what a
/// DELETE of a referenced row does to the referencing rows.
///
/// It exists because everything that deletes rows (archive, prune, retired-data re-application)
/// must know, from the catalog and not from the design document, every row that depends on the
/// rows it removes: multi-column keys, keys across schemas, chains of any depth.
public struct ForeignKey: Sendable, Hashable, CustomStringConvertible {
    public enum OnDelete: String, Sendable, Codable {
        case noAction = "a", restrict = "r", cascade = "c", setNull = "n", setDefault = "d"

        public var sql: String {
            switch self {
            case .noAction: "NO ACTION"
            case .restrict: "RESTRICT"
            case .cascade: "CASCADE"
            case .setNull: "SET NULL"
            case .setDefault: "SET DEFAULT"
            }
        }
    }

    public var name: String
    /// The referencing table and its columns.
    public var child: RelationName
    public var childColumns: [String]
    /// The referenced table and its (unique) columns, in the same order.
    public var parent: RelationName
    public var parentColumns: [String]
    public var onDelete: OnDelete

    public var description: String {
        "\(child)(\(childColumns.joined(separator: ", "))) → \(parent)(\(parentColumns.joined(separator: ", "))) ON DELETE \(onDelete.sql)"
    }

    /// Every foreign key of the database, once per declaration (the copies PostgreSQL makes on
    /// partitions are left out: the declaration on the partitioned table stands for them).
    static func all(_ connection: PGConnection) throws -> [ForeignKey] {
        try connection.query("""
            SELECT k.conname AS name, k.confdeltype::text AS action,
                   k.conrelid::int8 AS child_oid, cn.nspname AS child_schema, c.relname AS child_table,
                   k.confrelid::int8 AS parent_oid, pn.nspname AS parent_schema, p.relname AS parent_table,
                   array_to_json(ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                                       JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i))::text AS child_columns,
                   array_to_json(ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(n, i)
                                       JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i))::text AS parent_columns
            FROM pg_constraint k
            JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
            JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
            WHERE k.contype = 'f' AND k.conparentid = 0
            ORDER BY cn.nspname, c.relname, k.conname
            """).rows.map { row in
            ForeignKey(name: try row.requiredString("name"),
                       child: RelationName(schema: try row.requiredString("child_schema"), table: try row.requiredString("child_table"),
                                           oid: try row.int64("child_oid")),
                       childColumns: try JSONDecoder().decode([String].self, from: Data(try row.requiredString("child_columns").utf8)),
                       parent: RelationName(schema: try row.requiredString("parent_schema"), table: try row.requiredString("parent_table"),
                                            oid: try row.int64("parent_oid")),
                       parentColumns: try JSONDecoder().decode([String].self, from: Data(try row.requiredString("parent_columns").utf8)),
                       onDelete: OnDelete(rawValue: try row.requiredString("action")) ?? .noAction)
        }
    }

    /// `(c.a, c.b) = (p.x, p.y)` with every name quoted.
    func joinCondition(child c: String, parent p: String, _ q: (String) throws -> String) throws -> String {
        let left = try childColumns.map { "\(c).\(try q($0))" }.joined(separator: ", ")
        let right = try parentColumns.map { "\(p).\(try q($0))" }.joined(separator: ", ")
        return "(\(left)) = (\(right))"
    }
}

/// How one row of a table is named for the length of a transaction: by its primary key (or a
/// unique key of NOT NULL columns), or, for a plain table with neither, by its `ctid` (stable while
/// the row is locked). A ctid names a row only within one table, never across partitions, so a
/// partitioned table without such a key has no row identity and is refused by its callers.
public enum RowIdentity: Sendable, Equatable {
    case key([String])
    case ctid

    /// The identity as `alias.col, …` (or `alias.ctid AS row_ctid`), for filling a set table.
    func select(_ alias: String, _ q: (String) throws -> String) throws -> String {
        switch self {
        case .key(let columns): try columns.map { "\(alias).\(try q($0))" }.joined(separator: ", ")
        case .ctid: "\(alias).ctid AS row_ctid"
        }
    }

    /// The identity columns' names as a set table stores them (quoted).
    func storedColumns(_ q: (String) throws -> String) throws -> [String] {
        switch self {
        case .key(let columns): try columns.map(q)
        case .ctid: ["row_ctid"]
        }
    }

    /// True when table alias `row` names the same row as set-table alias `stored`.
    func same(_ row: String, _ stored: String, _ q: (String) throws -> String) throws -> String {
        switch self {
        case .key(let columns):
            let left = try columns.map { "\(row).\(try q($0))" }.joined(separator: ", ")
            let right = try columns.map { "\(stored).\(try q($0))" }.joined(separator: ", ")
            return "(\(left)) = (\(right))"
        case .ctid:
            return "\(row).ctid = \(stored).row_ctid"
        }
    }

    /// True when `alias`'s row is among the rows of `set` (a table holding `storedColumns`).
    func isIn(_ alias: String, set: String, _ q: (String) throws -> String) throws -> String {
        switch self {
        case .key(let columns):
            let row = try columns.map { "\(alias).\(try q($0))" }.joined(separator: ", ")
            let list = try columns.map { try q($0) }.joined(separator: ", ")
            return "(\(row)) IN (SELECT \(list) FROM \(set))"
        case .ctid:
            return "\(alias).ctid = ANY(ARRAY(SELECT row_ctid FROM \(set)))"
        }
    }

    /// Reads a table's identity from the catalog; nil for a partitioned table without a usable key.
    static func of(_ connection: PGConnection, oid: Int64) throws -> RowIdentity? {
        let row = try connection.query("""
            SELECT c.relkind::text AS kind,
                   (SELECT array_to_json(ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY u(n, o)
                                               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.n ORDER BY u.o))::text
                    FROM pg_index i
                    WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid AND i.indimmediate
                      AND i.indexprs IS NULL AND i.indpred IS NULL
                      AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey::int2[]) u(n) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.n
                                      WHERE NOT a.attnotnull)
                    ORDER BY i.indisprimary DESC, i.indnatts, i.indexrelid LIMIT 1) AS key
            FROM pg_class c WHERE c.oid = $1::oid
            """, [oid]).first
        guard let row else { return nil }
        if let key = try row.string("key") { return .key(try JSONDecoder().decode([String].self, from: Data(key.utf8))) }
        return try row.requiredString("kind") == "r" ? .ctid : nil
    }
}

/// Columns of a table in their order, and which of them the database computes.
struct TableColumns: Sendable, Equatable {
    /// Every column, in attribute order.
    var all: [String]
    /// Columns a COPY or INSERT may write (stored generated columns are computed again on insert).
    var writable: [String]
    /// True when an identity column is GENERATED ALWAYS (an insert of its old value needs OVERRIDING SYSTEM VALUE).
    var identityAlways: Bool

    static func of(_ connection: PGConnection, oid: Int64) throws -> TableColumns {
        let rows = try connection.query("""
            SELECT a.attname AS name, a.attgenerated::text AS generated, a.attidentity::text AS identity FROM pg_attribute a
            WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
            """, [oid]).rows
        var all: [String] = [], writable: [String] = []
        var always = false
        for row in rows {
            let name = try row.requiredString("name")
            all.append(name)
            if try row.string("generated") ?? "" == "" { writable.append(name) }
            if try row.string("identity") == "a" { always = true }
        }
        return TableColumns(all: all, writable: writable, identityAlways: always)
    }
}
