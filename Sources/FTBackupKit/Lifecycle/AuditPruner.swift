import Foundation
import Logging

/// Deletes audit rows past the policy's retention, in short batches, and keeps evidence.
///
/// Audit data must go when its retention ends (7 years) but never earlier, never rows of an
/// organization under legal hold, and never in one long transaction that blocks the application's
/// inserts. Each batch deletes at most `batchSize` rows with `COPY (DELETE … RETURNING …)`, so the
/// deleted rows stream through SHA-256 as they go: the evidence names, per table, the cut-off, how
/// many rows went, the oldest and newest deleted timestamp and the digest of what was deleted.
public enum AuditPruner {
    public struct TableEvidence: Codable, Sendable, Equatable {
        public var schema: String
        public var table: String
        public var rows: Int64
        public var oldest: String?
        public var newest: String?
        /// SHA-256 over the deleted rows' COPY text, in deletion order (empty stream's digest if none).
        public var sha256: String?
        public var batches: Int
        public var longestBatchSeconds: Double
    }

    public struct Report: Codable, Sendable {
        public var run: String
        public var dryRun: Bool
        /// Rows with a timestamp strictly before this instant go; a row exactly at it stays.
        public var cutoff: String
        public var retention: String
        public var legalHoldOrganizations: [String]
        public var batchSize: Int
        public var tables: [TableEvidence]
        public var seconds: Double
        /// False while the run is going (the evidence is rewritten after every batch, so rows already
        /// deleted are recorded even if the run dies); true once every table is done.
        public var complete: Bool
        public var rows: Int64 { tables.reduce(0) { $0 + $1.rows } }
    }

    /// An audit table and how legal hold reaches it.
    struct AuditTable: Sendable {
        var schema: String
        var table: String
        /// `audit.events` has organization_id; a tool's audit_log reaches it through its user.
        var hasOrganization: Bool
    }

    /// `asOf` replaces the database's current time (`localtimestamp`) as the point retention counts back
    /// from; nil in production. It lets a test place a row exactly on the cut-off.
    public static func run(database: ConnectionString, repositoryPath: String, policy: Policy, batchSize: Int = 5000,
                           dryRun: Bool, asOf: String? = nil, logger: Logger = Logger(label: "ftbackup")) async throws -> Report {
        let started = Date()
        guard batchSize > 0 else { throw FTBackupError(.usage, "--batch must be positive") }
        let store = ArchiveStore(storage: LocalStorage(root: repositoryPath))
        let lock = dryRun ? nil : try RepositoryLock.acquire(repositoryRoot: repositoryPath, kind: .write, exclusive: true,
                                                              command: "lifecycle prune-audit")
        defer { lock?.release() }
        let session = try await DatabaseSession.connect(database, name: "ftbackup-prune")
        defer { session.close() }
        try await session.execute(SessionSettings.copy(encoding: "UTF8"))
        // Computed once, in the database's time; rendered in the session's zone, compared as such.
        let cutoff = try await session.query("SELECT (coalesce($2::timestamp, localtimestamp) - $1::interval)::text AS at",
                                             [policy.auditRetention.sqlInterval, asOf])
            .first!.requiredString("at")
        let tables = try await auditTables(session)
        let hold = PostgresArray.text(policy.legalHoldOrganizations)
        var evidence: [TableEvidence] = []
        for table in tables {
            let name = try session.qualifiedName(table.schema, table.table)
            let predicate = try condition(table, session: session)
            if dryRun {
                let row = try await session.query("""
                    SELECT count(*) AS n, min(e."timestamp")::text AS oldest, max(e."timestamp")::text AS newest
                    FROM \(name) e WHERE \(predicate)
                    """, [cutoff, hold]).first!
                let rows = try row.int64("n")
                evidence.append(TableEvidence(schema: table.schema, table: table.table, rows: rows, oldest: try row.string("oldest"),
                                              newest: try row.string("newest"), sha256: nil,
                                              batches: Int((rows + Int64(batchSize) - 1) / Int64(batchSize)), longestBatchSeconds: 0))
                continue
            }
            let literalCutoff = try session.escapeLiteral(cutoff)
            let literalHold = try session.escapeLiteral(hold)
            let literal = predicate.replacingOccurrences(of: "$1", with: literalCutoff).replacingOccurrences(of: "$2", with: literalHold)
            let run = RunLabel.make(started)
            let done = evidence
            let partial: @Sendable (TableResult) throws -> Void = { result in
                let current = TableEvidence(schema: table.schema, table: table.table, rows: result.rows, oldest: result.oldest,
                                            newest: result.newest, sha256: result.digest, batches: result.batches,
                                            longestBatchSeconds: result.longest)
                try store.writeRunLog(kind: "prune-audit", run: run, Report(
                    run: run, dryRun: false, cutoff: cutoff, retention: policy.auditRetention.description,
                    legalHoldOrganizations: policy.legalHoldOrganizations, batchSize: batchSize, tables: done + [current],
                    seconds: Date().timeIntervalSince(started), complete: false))
            }
            let result = try await session.withConnection { connection in
                try pruneTable(connection, name: name, predicate: literal, batchSize: batchSize, afterBatch: partial)
            }
            evidence.append(TableEvidence(schema: table.schema, table: table.table, rows: result.rows, oldest: result.oldest,
                                          newest: result.newest, sha256: result.digest, batches: result.batches,
                                          longestBatchSeconds: result.longest))
            if result.rows > 0 {
                logger.info("pruned audit rows", metadata: ["table": .string("\(table.schema).\(table.table)"), "rows": .string("\(result.rows)")])
            }
        }
        let report = Report(run: RunLabel.make(started), dryRun: dryRun, cutoff: cutoff, retention: policy.auditRetention.description,
                            legalHoldOrganizations: policy.legalHoldOrganizations, batchSize: batchSize, tables: evidence,
                            seconds: Date().timeIntervalSince(started), complete: true)
        if !dryRun { try store.writeRunLog(kind: "prune-audit", run: report.run, report) }
        return report
    }

    static func auditTables(_ session: DatabaseSession) async throws -> [AuditTable] {
        try await session.query("""
            SELECT n.nspname AS schema, c.relname AS table,
                   EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped) AS org
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND ((n.nspname = 'audit' AND c.relname = 'events') OR (n.nspname LIKE 'sprint\\_%' AND c.relname = 'audit_log'))
              AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'timestamp' AND NOT a.attisdropped)
            ORDER BY 1, 2
            """).rows.compactMap { row in
            let schema = try row.requiredString("schema")
            guard schema == "audit" || SchemaKind.isToolSchema(schema) else { return nil }
            return AuditTable(schema: schema, table: try row.requiredString("table"), hasOrganization: try row.bool("org") ?? false)
        }
    }

    /// `$1` the cut-off, `$2` the legal-hold ids.
    static func condition(_ table: AuditTable, session: DatabaseSession) throws -> String {
        let hold = table.hasOrganization
            ? "(e.organization_id IS NULL OR NOT e.organization_id = ANY($2::uuid[]))"
            : "NOT EXISTS (SELECT 1 FROM users.accounts a WHERE a.id = e.user_id AND a.organization_id = ANY($2::uuid[]))"
        return "e.\"timestamp\" < $1::timestamp AND \(hold)"
    }

    struct TableResult: Sendable {
        var rows: Int64 = 0
        var oldest: String?
        var newest: String?
        var digest: String
        var batches = 0
        var longest = 0.0
    }

    /// Deletes in batches of `batchSize`, each its own short transaction, streaming what it deletes.
    static func pruneTable(_ connection: PGConnection, name: String, predicate: String, batchSize: Int,
                           afterBatch: (TableResult) throws -> Void) throws -> TableResult {
        var digest = StreamDigest()
        var result = TableResult(digest: "")
        while true {
            let started = Date()
            var firstField = [UInt8]()
            var atLineStart = true, inFirst = true
            var oldest: String?, newest: String?
            // The first column is the row's timestamp (ISO, so text order is time order); the rest is the row.
            let outcome = try connection.copyOut("""
                COPY (DELETE FROM \(name) e WHERE e.ctid = ANY(ARRAY(SELECT e.ctid FROM \(name) e WHERE \(predicate) LIMIT \(batchSize)))
                      RETURNING e."timestamp", e.*) TO STDOUT
                """) { chunk in
                digest.update(chunk)
                for byte in chunk {
                    if atLineStart { firstField.removeAll(keepingCapacity: true); inFirst = true; atLineStart = false }
                    if byte == 0x0A {
                        atLineStart = true
                        continue
                    }
                    if inFirst {
                        if byte == 0x09 {
                            inFirst = false
                            let value = String(decoding: firstField, as: UTF8.self)
                            if oldest == nil || value < oldest! { oldest = value }
                            if newest == nil || value > newest! { newest = value }
                        } else {
                            firstField.append(byte)
                        }
                    }
                }
            }
            if outcome.rows == 0 { break }
            result.rows += outcome.rows
            result.batches += 1
            result.longest = max(result.longest, Date().timeIntervalSince(started))
            if let oldest, result.oldest == nil || oldest < result.oldest! { result.oldest = oldest }
            if let newest, result.newest == nil || newest > result.newest! { result.newest = newest }
            result.digest = digest.hexDigest()
            try afterBatch(result)
            Failpoint.hit("prune.after-batch")
            if outcome.rows < batchSize { break }
        }
        result.digest = digest.hexDigest()
        return result
    }
}
