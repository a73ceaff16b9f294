import Foundation

/// The checks a drill runs on its restored database before it calls it recovered: every table's row
/// count as the backup and the replayed changes say, every sequence ahead of its column, every index,
/// constraint, trigger, row-security policy and materialized view of the backup's schema present,
/// and the policy's own checks (`drills.checks`).
///
/// It exists because a restore that finished is not yet a database the application can use: a drill
/// validates instead of assuming.
enum DrillValidation {
    /// Row counts of the restored tables against the expected ones. Tables in `retiredSchemas` (where the
    /// restore removed retired rows again) may hold fewer rows, never more.
    static func rowCounts(_ target: DatabaseSession, tables: [BackupManifest.Table], expected: [String: Int64],
                          retired: [String: Int64]) async throws -> [DrillRecord.TableCount] {
        var result: [DrillRecord.TableCount] = []
        for table in tables {
            let name = "\(table.schema).\(table.name)"
            let rows = try await target.query("SELECT count(*) AS n FROM \(try target.qualifiedName(table.schema, table.name))").first!.int64("n")
            let want = expected[name] ?? table.rows
            let removed = retired[name] ?? 0
            let ok = rows == want - removed
            result.append(DrillRecord.TableCount(schema: table.schema, table: table.name, expectedRows: want - removed, rows: rows, ok: ok,
                                                 note: removed > 0 ? "\(removed) retired rows removed again by the restore" : nil))
        }
        return result
    }

    /// Every sequence owned by an integer column (serial or identity) must be at or above the column's maximum.
    static func sequences(_ target: DatabaseSession, schemas: Set<String>) async throws -> [DrillRecord.Check] {
        let owned = try await target.query("""
            SELECT sn.nspname AS seq_schema, s.relname AS seq_name, n.nspname AS schema, c.relname AS table, a.attname AS column
            FROM pg_depend d
            JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
            JOIN pg_namespace sn ON sn.oid = s.relnamespace
            JOIN pg_class c ON c.oid = d.refobjid AND c.relkind IN ('r', 'p')
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid
            WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
              AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) AND n.nspname = ANY($1::text[])
            ORDER BY 1, 2
            """, [PostgresArray.text(schemas.sorted())])
        var checks: [DrillRecord.Check] = []
        for row in owned.rows {
            let sequence = try target.qualifiedName(try row.requiredString("seq_schema"), try row.requiredString("seq_name"))
            let table = try target.qualifiedName(try row.requiredString("schema"), try row.requiredString("table"))
            let column = try target.escapeIdentifier(try row.requiredString("column"))
            let state = try await target.query("""
                SELECT (SELECT max(\(column))::int8 FROM \(table)) AS max, last_value::int8 AS last, is_called AS called FROM \(sequence)
                """).first!
            let name = "\(try row.requiredString("seq_schema")).\(try row.requiredString("seq_name"))"
            let last = try state.int64("last"), called = try state.bool("called") ?? false
            let maximum = try state.string("max").flatMap { Int64($0) }
            let ok = maximum.map { called ? last >= $0 : last > $0 } ?? true
            checks.append(DrillRecord.Check(kind: "sequence", name: name, ok: ok,
                                            detail: "last_value \(last)\(called ? "" : " (not called)"), column max \(maximum.map(String.init) ?? "none")"))
        }
        return checks
    }

    /// Every index, constraint, trigger, row-security policy, RLS switch and materialized view the
    /// backup's schema dump holds (in the restored schemas) must exist in the target.
    static func schemaObjects(_ target: DatabaseSession, contents: RestoreContents, schemas: Set<String>) async throws -> [DrillRecord.Check] {
        let catalog: [String: String] = [
            "INDEX": "SELECT schemaname || '|' || indexname AS k FROM pg_indexes",
            "CONSTRAINT": "SELECT n.nspname || '|' || c.relname || ' ' || k.conname AS k FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace",
            "TRIGGER": "SELECT n.nspname || '|' || c.relname || ' ' || t.tgname AS k FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal",
            "POLICY": "SELECT schemaname || '|' || tablename || ' ' || policyname AS k FROM pg_policies",
            "ROW SECURITY": "SELECT n.nspname || '|' || c.relname AS k FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relrowsecurity",
            "MATERIALIZED VIEW": "SELECT schemaname || '|' || matviewname AS k FROM pg_matviews",
        ]
        let kinds: [String: String] = ["INDEX": "INDEX", "CONSTRAINT": "CONSTRAINT", "FK CONSTRAINT": "CONSTRAINT", "CHECK CONSTRAINT": "CONSTRAINT",
                                       "TRIGGER": "TRIGGER", "POLICY": "POLICY", "ROW SECURITY": "ROW SECURITY", "MATERIALIZED VIEW": "MATERIALIZED VIEW"]
        var present: [String: Set<String>] = [:]
        for (kind, sql) in catalog { present[kind] = Set(try await target.query(sql).rows.map { try $0.requiredString("k") }) }
        var expected: [String: Int] = [:]
        var missing: [String: [String]] = [:]
        for entry in contents.entries {
            guard let kind = kinds[entry.type], let schema = entry.schema, schemas.contains(schema) else { continue }
            expected[kind, default: 0] += 1
            if !(present[kind]?.contains("\(schema)|\(entry.tag)") ?? false) { missing[kind, default: []].append("\(schema).\(entry.tag)") }
        }
        return kinds.values.reduce(into: Set<String>()) { $0.insert($1) }.sorted().map { kind in
            let gone = missing[kind] ?? []
            let detail = gone.isEmpty ? "\(expected[kind] ?? 0) present"
                : "\(gone.count) of \(expected[kind] ?? 0) missing: \(gone.prefix(5).joined(separator: ", "))"
            return DrillRecord.Check(kind: "schema", name: kind.lowercased(), ok: gone.isEmpty, detail: detail)
        }
    }

    /// The policy's own checks: the first value of the first row, as text, must equal `expect`.
    /// Each runs alone in a read-only transaction that is rolled back, under its own statement timeout:
    /// a check can neither change the restored database (nor switch read-only off for the checks after
    /// it) nor hold the drill forever.
    /// The value equals `expect` as text; or both are booleans that agree: PostgreSQL returns a
    /// boolean as `t`/`f`, and a policy's YAML naturally says `expect: true`.
    static func matches(_ value: String?, expect: String) -> Bool {
        guard let value else { return false }
        if value == expect { return true }
        func boolean(_ text: String) -> Bool? {
            switch text.lowercased() {
            case "t", "true", "yes", "on": return true
            case "f", "false", "no", "off": return false
            default: return nil
            }
        }
        guard let got = boolean(value), let want = boolean(expect) else { return false }
        return got == want
    }

    static func policyChecks(_ target: DatabaseSession, checks: [Policy.DrillCheck]) async throws -> [DrillRecord.Check] {
        var results: [DrillRecord.Check] = []
        for check in checks {
            try await target.execute("BEGIN TRANSACTION READ ONLY")
            do {
                try await target.execute("SET LOCAL statement_timeout = \(max(1, Int64(check.timeoutSeconds * 1000)))")
                let result = try await target.query(check.sql)
                let value = result.first.flatMap { row in row.values.first ?? nil }
                let ok = Self.matches(value, expect: check.expect)
                results.append(DrillRecord.Check(kind: "policy", name: check.name, ok: ok,
                                                 detail: "expected \(check.expect), got \(value ?? "no value")"))
            } catch {
                results.append(DrillRecord.Check(kind: "policy", name: check.name, ok: false,
                                                 detail: "failed: \((error as? PostgresError)?.description ?? (error as? FTBackupError)?.message ?? "\(error)")"))
            }
            try await target.execute("ROLLBACK")
        }
        return results
    }
}
