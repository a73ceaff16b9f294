import Foundation

/// One batch of `tool_data` rows and every row that goes with them, held in temporary tables.
///
/// Each member of the plan's closure gets `pg_temp.ftbackup_set_<n>`: the identity of each row
/// that goes, and the `tool_data` id (root) it goes with — a row shared by two roots appears once
/// per root, so a root that must stay takes back exactly its own rows. Filling it follows the
/// closure edges (repeatedly when the closure has a cycle); in a real run every row is locked
/// `FOR UPDATE` as it is found, so neither a new reference nor a change can slip in before the
/// delete. Roots whose rows a blocking reference points at are then taken out, with the reason,
/// until nothing blocks.
struct ArchiveClosure {
    let connection: PGConnection
    let plan: ToolSchemaArchivePlan

    func q(_ name: String) throws -> String { try connection.escapeIdentifier(name) }
    func set(_ member: Int) -> String { "pg_temp.ftbackup_set_\(member)" }
    func table(_ member: Int) throws -> String {
        try connection.qualifiedName(plan.members[member].relation.schema, plan.members[member].relation.table)
    }

    /// Empty set tables for this plan (and an empty list of blocked roots).
    func create() throws {
        for (index, member) in plan.members.enumerated() {
            try connection.execute("""
                DROP TABLE IF EXISTS \(set(index));
                CREATE TEMP TABLE ftbackup_set_\(index) ON COMMIT DELETE ROWS AS
                  SELECT NULL::uuid AS ftbackup_root, \(try member.identity.select("c", q)) FROM \(try table(index)) c WITH NO DATA;
                CREATE INDEX ON \(set(index)) (\(try member.identity.storedColumns(q).joined(separator: ", ")))
                """)
        }
        try connection.execute("""
            DROP TABLE IF EXISTS pg_temp.ftbackup_blocked;
            CREATE TEMP TABLE ftbackup_blocked (id uuid PRIMARY KEY, reason text NOT NULL)
            """)
    }

    /// Picks up to `limit` eligible tool_data rows not known to be blocked; returns how many.
    func selectRoots(limit: Int?, lock: Bool, parameters: [any SQLParameter]) throws -> Int {
        // A failpoint widens the selection to every row: the guarded DELETE must then refuse the batch.
        let predicate = Failpoint.isActive("archive.widen-selection") ? "$1::text IS NOT NULL AND $2::timestamptz IS NOT NULL AND $3::uuid[] IS NOT NULL"
            : try plan.predicate(q)
        return try connection.query("""
            WITH picked AS (SELECT t.id FROM \(try table(0)) t
                            WHERE \(predicate) AND NOT EXISTS (SELECT 1 FROM pg_temp.ftbackup_blocked b WHERE b.id = t.id)
                            ORDER BY t.id\(limit.map { " LIMIT \($0)" } ?? "")\(lock ? " FOR UPDATE OF t" : ""))
            INSERT INTO \(set(0)) (ftbackup_root, id) SELECT id, id FROM picked
            """, parameters).affectedRows ?? 0
    }

    /// Follows the closure edges until every row that goes with the roots is in its set.
    func expand(lock: Bool) throws {
        while true {
            var added = 0
            for edge in plan.edges {
                let child = plan.members[edge.child], parent = plan.members[edge.parent]
                added += try connection.query("""
                    INSERT INTO \(set(edge.child)) (ftbackup_root, \(try child.identity.storedColumns(q).joined(separator: ", ")))
                    SELECT s.ftbackup_root, \(try child.identity.select("c", q))
                    FROM \(try table(edge.child)) c
                    JOIN \(try table(edge.parent)) p ON \(try edge.key.joinCondition(child: "c", parent: "p", q))
                    JOIN \(set(edge.parent)) s ON \(try parent.identity.same("p", "s", q))
                    WHERE NOT EXISTS (SELECT 1 FROM \(set(edge.child)) x WHERE x.ftbackup_root = s.ftbackup_root AND \(try child.identity.same("c", "x", q)))
                    \(lock ? "FOR UPDATE OF c" : "")
                    """).affectedRows ?? 0
            }
            if added == 0 || !plan.cyclic { return }
        }
    }

    /// Takes out every root that a blocking reference reaches, recording why; returns the blocked roots per reference.
    @discardableResult
    func removeBlocked() throws -> [(reference: String, roots: [String])] {
        var found: [(reference: String, roots: [String])] = []
        while true {
            var round: [String] = []
            for blocking in plan.blocking {
                let parent = plan.members[blocking.parent]
                var stays = ""
                if let child = blocking.child {
                    stays = "WHERE NOT EXISTS (SELECT 1 FROM \(set(child)) sx WHERE \(try plan.members[child].identity.same("x", "sx", q)))"
                }
                let roots = try connection.query("""
                    SELECT DISTINCT s.ftbackup_root::text AS root FROM \(set(blocking.parent)) s
                    JOIN \(try table(blocking.parent)) p ON \(try parent.identity.same("p", "s", q))
                    JOIN \(try connection.qualifiedName(blocking.key.child.schema, blocking.key.child.table)) x
                      ON \(try blocking.key.joinCondition(child: "x", parent: "p", q))
                    \(stays)
                    """).rows.map { try $0.requiredString("root") }
                guard !roots.isEmpty else { continue }
                let reason = "referenced by \(blocking.key)"
                try connection.query("""
                    INSERT INTO pg_temp.ftbackup_blocked (id, reason) SELECT r::uuid, $2 FROM unnest($1::text[]) r ON CONFLICT (id) DO NOTHING
                    """, [PostgresArray.text(roots), reason])
                found.append((reason, roots))
                round += roots
            }
            guard !round.isEmpty else { return found }
            let literal = try connection.escapeLiteral(PostgresArray.text(round))
            for index in plan.members.indices {
                try connection.execute("DELETE FROM \(set(index)) WHERE ftbackup_root = ANY(\(literal)::uuid[])")
            }
        }
    }

    /// The rows of member `index` that go (each once).
    func rows(_ index: Int, alias: String = "c") throws -> String {
        "FROM \(try table(index)) \(alias) WHERE \(try plan.members[index].identity.isIn(alias, set: set(index), q))"
    }

    /// `SELECT roots, columns …` of member `index`'s rows: what its archive file holds.
    func archiveQuery(_ index: Int) throws -> String {
        let member = plan.members[index]
        let columns = try member.columns.writable.map { "c.\(try q($0))" }.joined(separator: ", ")
        return """
            SELECT (SELECT array_agg(DISTINCT s.ftbackup_root ORDER BY s.ftbackup_root) FROM \(set(index)) s
                    WHERE \(try member.identity.same("c", "s", q))) AS ftbackup_roots, \(columns)
            \(try rows(index))
            """
    }

    /// Deletes the rows of `members` in ONE statement, a data-modifying WITH per table, and returns
    /// the count per member. One statement, because every sub-statement sees the same snapshot and
    /// the database's own foreign-key actions run only at its end, when every row is gone: no order
    /// of separate DELETEs survives a cycle of CASCADE keys between two tables (each would cascade
    /// into the other's rows before their own guarded, counted DELETE). The root's guard is
    /// `rootGuard` (on alias `t`, with `parameters`); every other table's is `deleteGuard`.
    func deleteAll(members: [Int], rootGuard: String, parameters: [any SQLParameter]) throws -> [Int: Int64] {
        let statements = try members.map { index in
            index == 0
                ? "d0 AS (DELETE FROM \(try table(0)) t WHERE t.id IN (SELECT id FROM \(set(0))) AND \(rootGuard) RETURNING 1)"
                : "d\(index) AS (DELETE FROM \(try table(index)) c WHERE \(try plan.members[index].identity.isIn("c", set: set(index), q)) AND \(try deleteGuard(index)) RETURNING 1)"
        }
        let counts = members.map { "(SELECT count(*) FROM d\($0)) AS n\($0)" }.joined(separator: ", ")
        let row = try connection.query("WITH \(statements.joined(separator: ",\n     ")) SELECT \(counts)", parameters).first!
        return Dictionary(uniqueKeysWithValues: try members.map { ($0, try row.int64("n\($0)")) })
    }

    /// The guard a member's DELETE carries: every row it removes references, through a closure
    /// edge, a row of its parent's set (and the root's DELETE carries the eligibility predicate), so
    /// a wrong selection can only remove rows that hang from an eligible tool_data row.
    func deleteGuard(_ index: Int) throws -> String {
        let incoming = plan.edges.filter { $0.child == index }
        return try "(" + incoming.map { edge in
            "EXISTS (SELECT 1 FROM \(try table(edge.parent)) p WHERE \(try edge.key.joinCondition(child: "c", parent: "p", q)) AND \(try plan.members[edge.parent].identity.isIn("p", set: set(edge.parent), q)))"
        }.joined(separator: " OR ") + ")"
    }
}
