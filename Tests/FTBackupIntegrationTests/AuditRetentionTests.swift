import Foundation
import Testing
@testable import FTBackupKit

/// Per leaf of every audit table (every partition, DEFAULT included, every tool's audit_log): rows
/// before and at-or-after the cut-off. Independent of the pruner's SQL.
func auditCensus(_ session: DatabaseSession, cutoff: String) async throws -> [String: (before: Int64, kept: Int64)] {
    let leaves = try await session.query("""
        SELECT format('%I.%I', n.nspname, c.relname) AS leaf FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND ((n.nspname = 'audit' AND (c.relname = 'events' OR c.relispartition))
                                   OR (n.nspname LIKE 'sprint\\_%' AND c.relname = 'audit_log'))
        ORDER BY 1
        """).rows.map { try $0.requiredString("leaf") }
    var census: [String: (before: Int64, kept: Int64)] = [:]
    for leaf in leaves {
        let row = try await session.query("""
            SELECT count(*) FILTER (WHERE "timestamp" < $1::timestamp) AS before,
                   count(*) FILTER (WHERE "timestamp" >= $1::timestamp OR "timestamp" IS NULL) AS kept FROM ONLY \(leaf)
            """, [cutoff]).first!
        census[leaf] = (try row.int64("before"), try row.int64("kept"))
    }
    return census
}

/// The database's local time now, as prune-audit's `asOf` takes it.
func databaseNow(_ session: DatabaseSession) async throws -> String {
    try await session.query("SELECT localtimestamp::text AS t").first!.requiredString("t")
}

func pruneOptions(_ db: TestDatabase, _ repo: TestRepository, asOf: String, batch: Int = 50,
                  _ edit: (inout Policy) -> Void = { _ in }) throws -> AuditPruner.Options {
    var options = AuditPruner.Options(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy(edit))
    options.asOf = asOf
    options.batchSize = batch
    return options
}

@Suite struct AuditRetentionTests {
    /// audit.events partitioned by year with a DEFAULT partition holding future rows: every row at
    /// or after the cut-off stays in every leaf, none before it remains, old partitions are dropped
    /// whole after an export that verifies, and each table's evidence has newest < cutoff.
    @Test func pruneOnPartitionedAuditKeepsEveryRowAtOrAfterTheCutoffAndDropsOldPartitions() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await LifecycleShapes.add(session)
            let now = try await databaseNow(session)
            try await TestRepository.with { repo in
                let dry = try await AuditPruner.run({ var o = try pruneOptions(db, repo, asOf: now); o.dryRun = true; return o }())
                let before = try await auditCensus(session, cutoff: dry.cutoff)
                #expect(before.values.reduce(0) { $0 + $1.before } > 100)
                #expect((before["audit.events_default"]?.kept ?? 0) >= 120)  // the clock-skewed future rows
                let events = try #require(dry.tables.first { $0.schema == "audit" && $0.table == "events" })
                let wouldDrop = events.partitions.filter { $0.method == .drop }
                #expect(wouldDrop.count >= 2, "\(events.partitions)")
                #expect(events.partitions.contains { $0.method == .rows && $0.partition == "audit.events_default" })

                let run = try await AuditPruner.run(try pruneOptions(db, repo, asOf: now))
                #expect(run.cutoff == dry.cutoff)
                let after = try await auditCensus(session, cutoff: run.cutoff)
                for (leaf, counts) in before {
                    if let now = after[leaf] {
                        #expect(now.kept == counts.kept, "\(leaf): rows at or after the cut-off changed")
                        #expect(now.before == 0, "\(leaf): rows before the cut-off remain")
                    } else {
                        #expect(counts.kept == 0, "\(leaf) was dropped though it held rows to keep")
                    }
                }
                #expect(run.rows == before.values.reduce(0) { $0 + $1.before })
                for (d, r) in zip(dry.tables, run.tables) {
                    #expect(d.rows == r.rows && d.oldest == r.oldest && d.newest == r.newest, "\(d.schema).\(d.table)")
                }
                for table in run.tables {
                    if let newest = table.newest {
                        #expect(try await session.query("SELECT $1::timestamp < $2::timestamp AS ok", [newest, run.cutoff]).first!.bool("ok") == true)
                    }
                }
                let dropped = run.tables.first { $0.schema == "audit" }!.partitions.filter { $0.method == .drop }
                #expect(dropped.map(\.partition) == wouldDrop.map(\.partition))
                let exports = PartitionExportStore(storage: repo.repository.storage)
                let stored = try exports.all()
                #expect(stored.count == dropped.count)
                #expect(stored.allSatisfy { $0.export?.status == .dropped })
                for export in stored.compactMap(\.export) {
                    #expect(try await session.query("SELECT to_regclass($1) IS NULL AS gone", [export.partition.description]).first!.bool("gone") == true)
                    #expect(dropped.first { $0.export == export.name }?.rows == export.rows)
                }
                let verified = try await FTBackupBinary.run(["verify", "--archives", "--repo", repo.path])
                #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
                // A flipped byte in an export (the only copy of a dropped year) fails verify.
                let export = try #require(stored.first?.export)
                let path = "\(repo.path)/\(exports.folder(export.name))/\(export.file.path)"
                var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
                bytes[bytes.count / 2] ^= 0x20
                try bytes.write(to: URL(fileURLWithPath: path))
                let damaged = try await FTBackupBinary.run(["verify", "--archives", "--repo", repo.path])
                #expect(damaged.status == 65)
                #expect(damaged.stdout.contains(export.file.path) || damaged.stderr.contains(export.file.path))

                let second = try await AuditPruner.run(try pruneOptions(db, repo, asOf: now))
                #expect(second.rows == 0)
            }
        }
    }

    /// The guard in the DELETE stops a widened selection; with the guard gone too, the database's
    /// check of the batch's evidence rolls it back and the run fails with exit 70.
    @Test(arguments: ["prune.widen-selection", "prune.drop-guard"])
    func aWidenedSelectionNeverRemovesARowAtOrAfterTheCutoff(failpoint: String) async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await LifecycleShapes.add(session)
            try await TestRepository.with { repo in
                let cutoff = try await session.query("SELECT (localtimestamp - interval '7 years' - interval '1 minute')::text AS c").first!.requiredString("c")
                let before = try await auditCensus(session, cutoff: cutoff)
                let outcome = try await FTBackupBinary.run(["lifecycle", "prune-audit", "--batch", "30", "--db", "\(try TestServer.dsn) dbname=\(db.name)",
                                                      "--repo", repo.path], environment: ["FTBACKUP_FAILPOINT": failpoint])
                let after = try await auditCensus(session, cutoff: cutoff)
                for (leaf, counts) in before {
                    #expect((after[leaf]?.kept ?? 0) == counts.kept, "\(leaf): a row at or after the cut-off was removed")
                }
                if failpoint == "prune.drop-guard" {
                    #expect(outcome.status == 70, "\(outcome.stderr)")
                    #expect(outcome.stderr.contains("stopped before commit"), "\(outcome.stderr)")
                } else {
                    #expect(outcome.status == 0, "\(outcome.stderr)")
                }
            }
        }
    }

    /// SIGKILL after the export is written, before the drop commits, and after the drop commits:
    /// nothing is lost and the next run settles the export.
    @Test(arguments: ["prune.after-export", "prune.after-drop"])
    func killedBetweenExportAndDropLosesNothing(failpoint: String) async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await LifecycleShapes.add(session)
            try await TestRepository.with { repo in
                let conninfo = "\(try TestServer.dsn) dbname=\(db.name)"
                let all = "SELECT count(*) AS n FROM audit.events"
                let total = try await session.query(all).first!.int64("n")
                let killed = try await FTBackupBinary.run(["lifecycle", "prune-audit", "--db", conninfo, "--repo", repo.path],
                                                    environment: ["FTBACKUP_FAILPOINT": failpoint])
                #expect(killed.status == -SIGKILL, "\(killed.stderr)")
                let exports = PartitionExportStore(storage: repo.repository.storage)
                let pending = try #require(try exports.all().first?.export)
                #expect(pending.status == .pending)
                let present = try await session.query("SELECT to_regclass($1) IS NOT NULL AS present", [pending.partition.description]).first!.bool("present")
                #expect(present == (failpoint == "prune.after-export"))
                // Nothing lost: the rows are in the database or in the verified export.
                let remaining = try await session.query(all).first!.int64("n")
                #expect(remaining + (present == true ? 0 : pending.rows) == total)

                let next = try await FTBackupBinary.run(["lifecycle", "prune-audit", "--db", conninfo, "--repo", repo.path])
                #expect(next.status == 0, "\(next.stderr)")
                #expect(next.stdout.contains("reconciled"), "\(next.stdout)")
                let settled = try exports.all().compactMap(\.export)
                #expect(settled.allSatisfy { $0.status == .dropped })
                #expect(Set(settled.map(\.partition.table)).count == settled.count)  // each partition exported once
                let cutoff = try await session.query("SELECT (localtimestamp - interval '7 years')::text AS c").first!.requiredString("c")
                #expect(try await session.query("SELECT count(*) AS n FROM audit.events WHERE \"timestamp\" < $1::timestamp - interval '1 minute'", [cutoff]).first!.int64("n") == 0)
            }
        }
    }

    /// Legal hold reaches audit.events through the row's user, and keeps a partition from being
    /// dropped whole: it is pruned by rows around the held row.
    @Test func legalHoldThroughTheUserKeepsRowsAndTheirPartitionIsPrunedByRows() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await LifecycleShapes.add(session)
            let held = try await session.query("""
                SELECT id::text AS u, organization_id::text AS o FROM users.accounts WHERE organization_id IS NOT NULL ORDER BY id LIMIT 1
                """).first!
            let user = try held.requiredString("u"), org = try held.requiredString("o")
            // Eight years old, no organization on the row itself: only its user ties it to the held organization.
            let year = try await session.query("SELECT extract(year FROM localtimestamp - interval '8 years')::int AS y").first!.requiredInt("y")
            try await session.execute("""
                INSERT INTO audit.events (id, user_id, organization_id, action, "timestamp")
                VALUES ('00000000-0000-0000-0000-0000000000e1', '\(user)', NULL, 'held-through-user', make_timestamp(\(year), 6, 1, 0, 0, 0));
                INSERT INTO sprint_05_vision_statement.audit_log (id, user_id, action, "timestamp")
                VALUES ('00000000-0000-0000-0000-0000000000e2', '\(user)', 'held-through-user', make_timestamp(\(year), 6, 1, 0, 0, 0))
                """)
            try await TestRepository.with { repo in
                let now = try await databaseNow(session)
                let report = try await AuditPruner.run(try pruneOptions(db, repo, asOf: now) { $0.legalHoldOrganizations = [org] })
                #expect(report.rows > 0)
                let kept = try await session.query("""
                    SELECT (SELECT count(*) FROM audit.events WHERE id = '00000000-0000-0000-0000-0000000000e1') +
                           (SELECT count(*) FROM sprint_05_vision_statement.audit_log WHERE id = '00000000-0000-0000-0000-0000000000e2') AS n
                    """).first!.int64("n")
                #expect(kept == 2)
                let partition = try #require(report.tables.first { $0.schema == "audit" }?.partitions.first { $0.partition == "audit.events_\(year)" })
                #expect(partition.method == .rows)
                #expect(partition.reason?.contains("legal hold") == true)
                let heldLeft = try await session.query("""
                    SELECT count(*) AS n FROM audit.events e WHERE "timestamp" < $1::timestamp - interval '7 years'
                      AND NOT (coalesce(e.organization_id = $2::uuid, false)
                               OR EXISTS (SELECT 1 FROM users.accounts a WHERE a.id = e.user_id AND a.organization_id = $2::uuid))
                    """, [now, org]).first!.int64("n")
                #expect(heldLeft == 0)
            }
        }
    }

    /// A trigger that fires whatever session_replication_role says is refused before anything is deleted.
    @Test func anEnableAlwaysTriggerOnAnAuditTableIsRefused() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute("""
                CREATE FUNCTION public.fx_count() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$;
                CREATE TRIGGER fx_always AFTER DELETE ON sprint_07_swot_analysis.audit_log FOR EACH ROW EXECUTE FUNCTION public.fx_count();
                ALTER TABLE sprint_07_swot_analysis.audit_log ENABLE ALWAYS TRIGGER fx_always
                """)
            let count = "SELECT count(*) AS n FROM audit.events"
            let before = try await session.query(count).first!.int64("n")
            try await TestRepository.with { repo in
                let outcome = try await FTBackupBinary.run(["lifecycle", "prune-audit", "--db", "\(try TestServer.dsn) dbname=\(db.name)", "--repo", repo.path])
                #expect(outcome.status == 78, "\(outcome.stderr)")
                #expect(outcome.stderr.contains("fx_always"), "\(outcome.stderr)")
                #expect(try await session.query(count).first!.int64("n") == before)
            }
        }
    }
}
