/// Per-table fingerprints of a database's content: row count and a hash over the ordered row hashes.
///
/// It exists to prove, row by row, that a restored database equals its source (tests, `make demo`,
/// restore drills). Row order on disk does not matter; every value does, since each row is hashed
/// through its text form.
public struct TableFingerprint: Codable, Sendable, Equatable, CustomStringConvertible {
    public var schema: String
    public var table: String
    public var rows: Int64
    public var hash: String

    public var description: String { "\(schema).\(table): \(rows) rows, \(hash)" }

    /// Fingerprints every ordinary table (partitions included, partitioned parents excluded) in the
    /// given schemas, or in every user schema when `schemas` is nil.
    public static func compute(_ session: DatabaseSession, schemas: [String]? = nil) async throws -> [TableFingerprint] {
        // Rows hash as text, and text depends on the session (a database's own TimeZone or search_path,
        // which a restore reproduces, reaches only sessions opened after it): pin every setting that
        // changes how a value prints, for this transaction only.
        try await session.execute("""
            BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, MDY';
            SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 3; SET LOCAL bytea_output = 'hex';
            SET LOCAL search_path = ''
            """)
        do {
            let result = try await hashTables(session, schemas: schemas)
            try await session.execute("COMMIT")
            return result
        } catch {
            try? await session.execute("ROLLBACK")
            throw error
        }
    }

    static func hashTables(_ session: DatabaseSession, schemas: [String]?) async throws -> [TableFingerprint] {
        let tables = try await session.query("""
            SELECT n.nspname AS schema, c.relname AS table
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND \(CatalogSQL.userSchemaFilter)
              AND ($1::text[] IS NULL OR n.nspname = ANY($1::text[]))
            ORDER BY 1, 2
            """, [schemas.map(PostgresArray.text)])
        var result: [TableFingerprint] = []
        for row in tables.rows {
            let schema = try row.requiredString("schema"), table = try row.requiredString("table")
            let name = try session.qualifiedName(schema, table)
            // ROW(t.*), not t: a table with a column named t would hash that column alone.
            let hashed = try await session.query("""
                SELECT count(*) AS rows, md5(coalesce(string_agg(h, '' ORDER BY h), '')) AS hash
                FROM (SELECT md5(ROW(t.*)::text) AS h FROM ONLY \(name) t) s
                """)
            result.append(TableFingerprint(schema: schema, table: table, rows: try hashed.first!.int64("rows"),
                                           hash: try hashed.first!.requiredString("hash")))
        }
        return result
    }

    /// Human-readable differences between two fingerprint sets (empty when they match). Tables are matched by schema and
    /// name as a pair: joined by a dot, "a.b".c and a."b.c" were one key, and the drill and `dev compare` crashed on a
    /// database holding both.
    public static func differences(source: [TableFingerprint], restored: [TableFingerprint]) -> [String] {
        struct Key: Hashable { var schema: String, table: String }
        let restoredByName = Dictionary(restored.map { (Key(schema: $0.schema, table: $0.table), $0) }, uniquingKeysWith: { first, _ in first })
        let sourceNames = Set(source.map { Key(schema: $0.schema, table: $0.table) })
        let shown = { (key: Key) in "\(key.schema).\(key.table)" }
        var problems: [String] = []
        for table in source {
            let key = Key(schema: table.schema, table: table.table), name = shown(key)
            guard let other = restoredByName[key] else { problems.append("\(name): missing"); continue }
            if other.rows != table.rows { problems.append("\(name): \(table.rows) rows in source, \(other.rows) restored") }
            else if other.hash != table.hash { problems.append("\(name): same row count, different content") }
        }
        for key in restoredByName.keys.sorted(by: { ($0.schema, $0.table) < ($1.schema, $1.table) }) where !sourceNames.contains(key) {
            problems.append("\(shown(key)): not in source")
        }
        return problems
    }
}

/// Renders Swift arrays as PostgreSQL array literals for text-format parameters.
public enum PostgresArray {
    public static func text(_ values: [String]) -> String {
        "{" + values.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
            .joined(separator: ",") + "}"
    }
}
