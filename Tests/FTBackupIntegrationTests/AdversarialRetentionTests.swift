import Foundation
import Testing
@testable import FTBackupKit

/// Reproductions of retention defects found by an adversarial review of issue 8: each test failed
/// for the reason its comment gives, and states what must hold now.
@Suite struct AdversarialRetentionTests {
    static let toolAudit = "sprint_01_know_thyself.audit_log"

    func conninfo(_ db: TestDatabase) throws -> String { "\(try TestServer.dsn) dbname=\(db.name)" }

    /// 1. A `timestamptz` audit table in a database whose TimeZone is not UTC: the prune's cut-off is
    /// recorded as zone-less text, and the restore re-applies it in the target's zone (UTC), so
    /// rows up to 9 hours younger than 7 years, which the prune itself kept, are deleted from the
    /// restored database. Today: 9 of the 12 edge rows kept by the prune are missing after restore.
    @Test func restoreReappliesThePruneCutoffAtTheSameInstantWhateverTheTargetsTimeZone() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute("""
                ALTER TABLE \(Self.toolAudit) ALTER "timestamp" TYPE timestamptz;
                INSERT INTO \(Self.toolAudit) (action, "timestamp")
                  SELECT 'edge ' || k, now() - interval '7 years' + k * interval '1 hour' FROM generate_series(-12, 12) k;
                ALTER DATABASE \(db.name) SET timezone = 'Asia/Tokyo'
                """)
            let edges = "SELECT count(*) AS n FROM \(Self.toolAudit) WHERE action LIKE 'edge %'"
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(db, repo))
                var options = AuditPruner.Options(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy())
                options.batchSize = 500
                _ = try await AuditPruner.run(options)
                let kept = try await session.query(edges).first!.int64("n")
                #expect(kept == 12)
                try await TestServer.withDatabase(seeded: false) { target in
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    let t = try await target.connect()
                    defer { t.close() }
                    let restored = try await t.query(edges).first!.int64("n")
                    #expect(restored == kept, "the restore deleted \(kept - restored) audit rows younger than the prune's cut-off")
                }
            }
        }
    }

    /// 2. A foreign key ON DELETE CASCADE into one leaf partition of audit.events (not the parent):
    /// prune-audit's refusal of cascading keys looks only at keys on the parent, the partition's
    /// drop fails on the key, the rows go by batches, and the cascade silently deletes every row of
    /// the referencing (non-audit) table. Today: 5 → 0 rows, exit 0.
    @Test func pruneNeverCascadesIntoATableThatReferencesOneAuditPartition() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute("""
                CREATE TABLE public.incident_evidence (id serial PRIMARY KEY, event_id uuid NOT NULL, event_ts timestamp NOT NULL, note text,
                  FOREIGN KEY (event_id, event_ts) REFERENCES audit.events_2018 (id, "timestamp") ON DELETE CASCADE);
                INSERT INTO public.incident_evidence (event_id, event_ts, note) SELECT id, "timestamp", 'keep' FROM audit.events_2018 LIMIT 5
                """)
            try await TestRepository.with { repo in
                let outcome = try await FTBackupBinary.run(["lifecycle", "prune-audit", "--db", try conninfo(db), "--repo", repo.path])
                let left = try await session.query("SELECT count(*) AS n FROM public.incident_evidence").first!.int64("n")
                #expect(left == 5, "prune-audit (exit \(outcome.status)) deleted \(5 - left) rows of public.incident_evidence through a cascade")
            }
        }
    }

    /// 3a. An archive run killed after its COMMIT leaves its manifest pending. The next archive run
    /// against ANOTHER database that shares the repository (a staging copy, a restored drill
    /// database) "reconciles" it by looking for the ids there, finds them, and deletes the archive —
    /// the only copy of rows already deleted from the source. Even with --schema naming another tool.
    @Test func archiveReconcileNeverDiscardsAnArchiveBecauseAnotherDatabaseStillHasItsRows() async throws {
        try await TestServer.withDatabase { source in
            try await TestRepository.with { repo in
                let killed = try await FTBackupBinary.run(["lifecycle", "archive", "--db", try conninfo(source), "--repo", repo.path,
                                                     "--schema", "sprint_03_purpose"], environment: ["FTBACKUP_FAILPOINT": "archive.after-commit"])
                #expect(killed.status == -SIGKILL, "\(killed.stderr)")
                let store = ArchiveStore(storage: repo.repository.storage)
                let (name, pending) = try #require(try store.all().first)
                #expect(pending?.status == .pending)
                try await TestServer.withDatabase { copy in
                    _ = try await FTBackupBinary.run(["lifecycle", "archive", "--db", try conninfo(copy), "--repo", repo.path,
                                                "--schema", "sprint_04_core_values"])
                }
                let s = try await source.connect()
                defer { s.close() }
                let gone = try await s.query("SELECT count(*) AS n FROM sprint_03_purpose.tool_data WHERE id::text = ANY($1::text[])",
                                             [PostgresArray.text(pending!.ids)]).first!.int64("n") == 0
                #expect(gone)
                #expect(try repo.repository.storage.exists(store.folder(name)),
                        "archive \(name) was discarded; its \(pending!.ids.count) tool_data rows are no longer anywhere")
            }
        }
    }

    /// 3b. The same for a partition export: prune killed after the drop committed, then a prune of a
    /// copy of the database (same oids) with the same repository discards the export of a
    /// partition the source no longer has.
    @Test func partitionExportReconcileNeverDiscardsAnExportBecauseAnotherDatabaseStillHasThePartition() async throws {
        try await TestServer.withDatabase { source in
            try await TestRepository.with { repo in
                let killed = try await FTBackupBinary.run(["lifecycle", "prune-audit", "--db", try conninfo(source), "--repo", repo.path],
                                                    environment: ["FTBACKUP_FAILPOINT": "prune.after-drop"])
                #expect(killed.status == -SIGKILL, "\(killed.stderr)")
                let exports = PartitionExportStore(storage: repo.repository.storage)
                let (name, pending) = try #require(try exports.all().first)
                try await TestServer.withDatabase { copy in
                    _ = try await FTBackupBinary.run(["lifecycle", "prune-audit", "--db", try conninfo(copy), "--repo", repo.path, "--no-partition-drop"])
                }
                let s = try await source.connect()
                defer { s.close() }
                let present = try await s.query("SELECT to_regclass($1) IS NOT NULL AS p", [pending!.partition.description]).first!.bool("p")
                #expect(present == false)
                #expect(try repo.repository.storage.exists(exports.folder(name)),
                        "export \(name) was discarded; the \(pending!.rows) rows of the dropped \(pending!.partition) are no longer anywhere")
            }
        }
    }

    /// 4. A closure table that references both tool_data and another closure table whose name sorts
    /// after it (notes on items, each note also naming its tool_data row): the members are deleted
    /// in reverse discovery order, so the items go first, their cascade deletes the notes, and the
    /// notes' own guarded delete finds 0 rows. Today: exit 70 on every run, nothing archived.
    @Test func archiveOfAClosureTableReferencingToolDataAndALaterSiblingSucceeds() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            let s = "sprint_03_purpose"
            try await session.execute("""
                CREATE TABLE \(s).zz_items (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                  tool_data_id uuid NOT NULL REFERENCES \(s).tool_data(id) ON DELETE CASCADE, label text);
                CREATE TABLE \(s).aa_notes (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                  tool_data_id uuid REFERENCES \(s).tool_data(id) ON DELETE CASCADE,
                  item_id uuid NOT NULL REFERENCES \(s).zz_items(id) ON DELETE CASCADE, body text);
                INSERT INTO \(s).zz_items (tool_data_id, label) SELECT id, 'item' FROM \(s).tool_data;
                INSERT INTO \(s).aa_notes (tool_data_id, item_id, body) SELECT tool_data_id, id, 'note' FROM \(s).zz_items
                """)
            try await TestRepository.with { repo in
                let outcome = try await FTBackupBinary.run(["lifecycle", "archive", "--db", try conninfo(db), "--repo", repo.path, "--schema", s])
                #expect(outcome.status == 0, "\(outcome.stderr)")
            }
        }
    }

    /// 5. One flipped bit in the prune evidence (the cut-off's year 2019 → 2039): `verify` says all
    /// good (evidence is only parsed, it carries no checksum), and the next restore uses that
    /// cut-off to delete every audit row of the restored database, future-dated ones included.
    @Test func aFlippedBitInPruneEvidenceIsCaughtBeforeARestoreDeletesWithIt() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(db, repo))
                let pruned = try await AuditPruner.run(try pruneOptions(db, repo, asOf: try await databaseNow(session), batch: 500))
                let storage = repo.repository.storage
                let path = "lifecycle/prune-audit/\(pruned.run).json"
                var bytes = try storage.readAll(path)
                let marker = Array("\"cutoff\" : \"".utf8)
                let at = try #require((0...(bytes.count - marker.count)).first { Array(bytes[$0..<($0 + marker.count)]) == marker })
                bytes[at + marker.count + 2] ^= 0x02  // "2019-…" → "2039-…"
                try storage.writeAll(path, bytes)

                let verified = try await RepositoryVerifier.verify(repo.repository, .init())
                #expect(!verified.ok, "verify found nothing wrong with the flipped evidence")
                // The restore refuses before it touches the target (exit 65), rather than delete with a damaged cut-off.
                try await TestServer.withDatabase(seeded: false) { target in
                    let refused = await #expect(throws: FTBackupError.self) {
                        _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    }
                    #expect(refused?.status == .dataError)
                    #expect(refused?.message.contains("seal") == true, "\(refused?.message ?? "")")
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(try await t.query("SELECT count(*) AS n FROM pg_namespace WHERE nspname = 'audit'").first!.int64("n") == 0)
                }
                // With --keep-retired the restore goes on and says nothing was removed again.
                try await TestServer.withDatabase(seeded: false) { target in
                    var options = RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false)
                    options.keepRetired = true
                    let report = try await RestoreRunner.run(options)
                    #expect(report.retired == nil)
                }
            }
        }
    }

    /// 6. audit "timestamp" columns are `timestamp without time zone` and hold UTC wall time; the
    /// cut-off is `localtimestamp - 7 years` in whatever TimeZone the session has (PGTZ, a role or
    /// database setting), so PGTZ=Pacific/Kiritimati deletes rows up to 14 hours younger than
    /// 7 years. The report calls it "database time".
    @Test func theCutoffDoesNotMoveWithTheClientsTimeZone() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute("""
                INSERT INTO audit.events (action, "timestamp")
                  SELECT 'edge ' || k, (now() AT TIME ZONE 'UTC') - interval '7 years' + k * interval '1 hour' FROM generate_series(1, 13) k
                """)
            try await TestRepository.with { repo in
                let outcome = try await FTBackupBinary.run(["lifecycle", "prune-audit", "--db", try conninfo(db), "--repo", repo.path],
                                                     environment: ["PGTZ": "Pacific/Kiritimati"])
                #expect(outcome.status == 0, "\(outcome.stderr)")
                let left = try await session.query("SELECT count(*) AS n FROM audit.events WHERE action LIKE 'edge %'").first!.int64("n")
                #expect(left == 13, "\(13 - left) audit rows younger than 7 years (UTC) were pruned")
            }
        }
    }

    /// 7. One old audit row referenced by a NO ACTION key stops the whole prune with a raw
    /// foreign-key error (exit 1): no other audit table is pruned, on every run, until someone
    /// finds the reference. The referenced row should stay (and be reported), the rest go.
    @Test func aReferencedOldAuditRowDoesNotStopTheWholePrune() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute("""
                CREATE TABLE public.case_refs (id serial PRIMARY KEY, event_id uuid, event_ts timestamp,
                  FOREIGN KEY (event_id, event_ts) REFERENCES audit.events (id, "timestamp"));
                INSERT INTO public.case_refs (event_id, event_ts) SELECT id, "timestamp" FROM audit.events_2019 ORDER BY "timestamp" LIMIT 1
                """)
            try await TestRepository.with { repo in
                let outcome = try await FTBackupBinary.run(["lifecycle", "prune-audit", "--db", try conninfo(db), "--repo", repo.path])
                #expect(outcome.status == 0, "\(outcome.stderr)")
                let old = try await session.query("""
                    SELECT count(*) AS n FROM sprint_29_digital_heart.audit_log WHERE "timestamp" < localtimestamp - interval '7 years'
                    """).first!.int64("n")
                #expect(old == 0, "tool audit logs were never pruned")
            }
        }
    }
}
