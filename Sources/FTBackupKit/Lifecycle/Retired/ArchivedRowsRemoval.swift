import Foundation

/// Removes one tool's retired tool_data rows, and everything that hangs from them, from a restored
/// database.
///
/// The restored state may hold more than the archive did: a backup older than the archive run has
/// rows the application deleted in between (hypotheses of a canvas, say). So the rows to remove are
/// not read from the archive but found as an archive run finds them — `ArchiveClosure` over the
/// target's own catalog, seeded with the retired ids instead of the eligibility predicate. Tables of
/// the closure outside the restored schemas are not touched (a `--schema` restore leaves the rest of
/// the target as it is): a row there that references the closure keeps its tool_data row, as any
/// blocking reference does, and the outcome names it.
public enum ArchivedRowsRemoval {
    public struct Outcome: Codable, Sendable, Equatable {
        public var schema: String
        public var archives: [String]
        /// Rows deleted again, per `schema.table`.
        public var rows: [String: Int64]
        /// Retired ids kept because a row that stays references their closure in the restored state.
        public var kept: [ArchiveReport.Blocked]
        public var silencedTriggers: [String]
    }

    static func remove(_ connection: PGConnection, schema: String, ids: [String], restoredSchemas: Set<String>, policy: Policy,
                       foreignKeys: [ForeignKey]) throws -> Outcome {
        var plan = try ToolSchemaArchivePlan.plan(connection, schema: schema, policy: policy, foreignKeys: foreignKeys)
        // A closure table outside the restored schemas is left alone: its references block instead.
        let outside = Set(plan.members.indices.filter { !restoredSchemas.contains(plan.members[$0].relation.schema) })
        if !outside.isEmpty {
            plan.blocking += plan.edges.filter { outside.contains($0.child) && !outside.contains($0.parent) }
                .map { ToolSchemaArchivePlan.Blocking(key: $0.key, parent: $0.parent, child: nil) }
            plan.edges.removeAll { outside.contains($0.child) || outside.contains($0.parent) }
        }
        let kept = Set(plan.members.indices).subtracting(outside)
        let triggers = try ApplicationTriggerGuard.decide(connection, oids: kept.map { plan.members[$0].relation.oid }, event: .delete,
                                                          policy: policy.applicationTriggers, work: "removing retired \(schema) rows from the restored database")
        let closure = ArchiveClosure(connection: connection, plan: plan)
        let idLiteral = try connection.escapeLiteral(PostgresArray.text(ids))
        return try connection.transaction {
            try triggers.enter(connection, work: "removing retired \(schema) rows from the restored database")
            try closure.create()
            try connection.execute("""
                INSERT INTO \(closure.set(0)) (ftbackup_root, id) SELECT t.id, t.id FROM \(try closure.table(0)) t WHERE t.id::text = ANY(\(idLiteral)::text[])
                """)
            try closure.expand(lock: false)
            let blocked = try closure.removeBlocked()
            var rows: [String: Int64] = [:]
            let counts = try closure.deleteAll(members: kept.sorted(), rootGuard: "t.id::text = ANY(\(idLiteral)::text[])", parameters: [])
            for (index, deleted) in counts where deleted > 0 || index == 0 {
                rows[plan.members[index].relation.description] = deleted
            }
            let summary = Dictionary(grouping: blocked, by: \.reference).map { reference, groups in
                let roots = Array(Set(groups.flatMap(\.roots))).sorted()
                return ArchiveReport.Blocked(reference: reference.replacingOccurrences(of: "referenced by ", with: ""),
                                             rows: Int64(roots.count), ids: Array(roots.prefix(50)))
            }.sorted { $0.reference < $1.reference }
            return Outcome(schema: schema, archives: [], rows: rows, kept: summary, silencedTriggers: triggers.silenced.map(\.description))
        }
    }
}
