import Foundation

/// What the compliance report reads from the database itself (sections 1–2): per audit leaf its
/// oldest row and the rows past retention; audit rows by age in years; per tool the completed rows
/// past the archive age. Read-only, on one connection, in the database's own TimeZone (as
/// prune-audit reads wall times), with the cut-offs computed by the database.
struct DatabaseFacts: Sendable {
    struct AuditLeafFacts: Codable, Sendable, Equatable {
        var table: String
        var leaf: String
        var bound: String?
        var rows: Int64
        var oldest: String?
        /// Rows older than the retention.
        var pastRetention: Int64
        /// Of those, rows prune-audit keeps on purpose: under legal hold, or still referenced.
        var kept: Int64
        /// Rows older than the retention plus the grace, not kept on purpose: what should be gone.
        var overdue: Int64
    }

    struct ToolFacts: Codable, Sendable, Equatable {
        var schema: String
        var ageColumn: String
        /// Completed rows older than the archive age.
        var pastAge: Int64
        /// Of those, rows under legal hold.
        var held: Int64
        /// Completed rows older than the age plus the grace, not held: what should be archived.
        var overdue: Int64
        var oldestCompleted: String?
    }

    var timeZone: String
    var retentionCutoff: String
    var archiveCutoff: String
    var leaves: [AuditLeafFacts]
    /// Audit rows by whole years of age (all audit tables).
    var ageByYear: [Int: Int64]
    var tools: [ToolFacts]
    /// This repository's record anchors in the database (``RecordChainAnchor``); nil when there is
    /// no anchor table or the repository has no recorded source.
    var anchors: [RecordChainAnchor.Anchor]?

    static func read(_ database: ConnectionString, repositoryPath: String, policy: Policy, now: Date) async throws -> DatabaseFacts {
        let session = try await DatabaseSession.connect(database, name: "ftbackup-report")
        defer { session.close() }
        try await session.execute("SET default_transaction_read_only = on; " + SessionSettings.qualifiedNames)
        let identity = try await session.withConnection { try DatabaseIdentity.of($0) }
        // The facts must be about the repository's own database (exit 64 otherwise, as every command).
        try RepositorySource.claim(repositoryPath: repositoryPath, identity: identity, command: "report", record: false)
        let repositoryID = try RecordChainAnchor.repositoryID(try RepositoryStorageFactory.open(repositoryPath))
        return try await session.withConnection { connection in
            var facts = try read(connection, policy: policy)
            facts.anchors = try repositoryID.flatMap { try RecordChainAnchor.read(connection, repositoryID: $0) }
            return facts
        }
    }

    static func read(_ connection: PGConnection, policy: Policy) throws -> DatabaseFacts {
        let zone = try DatabaseTimeZone.resolve(connection)
        try connection.execute("SET TimeZone = \(try connection.escapeLiteral(zone))")
        let grace = policy.scheduling.lifecycle.interval.sqlInterval
        let cutoffs = try connection.query("""
            SELECT (now() - $1::interval)::text AS retention, (now() - $1::interval - $2::interval)::text AS retention_grace,
                   (now() - $3::interval)::text AS archive, (now() - $3::interval - $2::interval)::text AS archive_grace
            """, [policy.auditRetention.sqlInterval, grace, policy.archiveToolData.after.sqlInterval]).first!
        let retention = try cutoffs.requiredString("retention"), retentionGrace = try cutoffs.requiredString("retention_grace")
        let q = { (name: String) in try connection.escapeIdentifier(name) }
        let hold = policy.legalHoldOrganizations
        let holdLiteral = try connection.escapeLiteral(PostgresArray.text(hold))
        let foreignKeys = try ForeignKey.all(connection)
        var leaves: [AuditLeafFacts] = []
        var ageByYear: [Int: Int64] = [:]
        for table in try AuditTable.discover(connection) {
            let referenced = try table.referenced(by: foreignKeys.filter { table.treeOids.contains($0.parent.oid) }, q)
            let kept = "(\(table.held(hold: holdLiteral, holdCount: hold.count)) OR \(referenced))"
            let past = "e.\"timestamp\" < \(table.cutoffValue(try connection.escapeLiteral(retention)))"
            let overdue = "e.\"timestamp\" < \(table.cutoffValue(try connection.escapeLiteral(retentionGrace)))"
            for leaf in table.leaves {
                let row = try connection.query("""
                    SELECT count(*) AS n, min(e."timestamp")::text AS oldest,
                           count(*) FILTER (WHERE \(past)) AS past, count(*) FILTER (WHERE \(past) AND \(kept)) AS kept,
                           count(*) FILTER (WHERE \(overdue) AND NOT \(kept)) AS overdue
                    FROM ONLY \(try connection.qualifiedName(leaf.relation.schema, leaf.relation.table)) e
                    """).first!
                leaves.append(AuditLeafFacts(table: table.relation.description, leaf: leaf.relation.description, bound: leaf.bound,
                                             rows: try row.int64("n"), oldest: try row.string("oldest"), pastRetention: try row.int64("past"),
                                             kept: try row.int64("kept"), overdue: try row.int64("overdue")))
            }
            for row in try connection.query("""
                SELECT floor(extract(epoch FROM now() - e."timestamp"::timestamptz) / 31556952)::int AS age, count(*) AS n
                FROM \(try connection.qualifiedName(table.relation.schema, table.relation.table)) e
                WHERE e."timestamp" IS NOT NULL GROUP BY 1
                """).rows {
                ageByYear[max(0, Int(try row.int64("age"))), default: 0] += try row.int64("n")
            }
        }
        var tools: [ToolFacts] = []
        for plan in try ToolSchemaArchivePlan.discover(connection, policy: policy, requested: []).sorted(by: { $0.schema < $1.schema }) {
            let qualifies = try plan.qualifies(q)
            let age = "t.\(try q(plan.ageColumn))"
            let row = try connection.query("""
                SELECT count(*) FILTER (WHERE t.status = $1 AND \(age) < $4::timestamptz) AS past,
                       count(*) FILTER (WHERE t.status = $1 AND \(age) < $4::timestamptz AND NOT (\(qualifies.replacingOccurrences(of: "$2", with: "$4")))) AS held,
                       count(*) FILTER (WHERE \(qualifies)) AS overdue,
                       min(\(age)) FILTER (WHERE t.status = $1)::text AS oldest
                FROM \(try connection.qualifiedName(plan.schema, "tool_data")) t
                """, [policy.archiveToolData.status, try cutoffs.requiredString("archive_grace"), PostgresArray.text(hold),
                      try cutoffs.requiredString("archive")]).first!
            tools.append(ToolFacts(schema: plan.schema, ageColumn: plan.ageColumn, pastAge: try row.int64("past"), held: try row.int64("held"),
                                   overdue: try row.int64("overdue"), oldestCompleted: try row.string("oldest")))
        }
        return DatabaseFacts(timeZone: zone, retentionCutoff: retention, archiveCutoff: try cutoffs.requiredString("archive"),
                             leaves: leaves, ageByYear: ageByYear, tools: tools, anchors: nil)
    }
}
