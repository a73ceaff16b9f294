import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import FTBackupKit

/// adv17: the compliance evidence (record chains and their anchors in the database) and the
/// lifecycle's destructive paths, attacked as a hostile auditor and a careless operator would.
@Suite struct AdversarialEvidenceAnchorTests {
    /// The anchors protect records only while no one else can write them. A database whose owner set
    /// `ALTER DEFAULT PRIVILEGES … GRANT ALL ON TABLES TO app` (common, so the application can use new tables) gave that
    /// role INSERT, UPDATE and DELETE on `ftbackup.record_chain_anchors` as ftbackup created it: the application's role
    /// could then anchor a forged record or remove a real one's anchor. The table is created with every change
    /// privilege taken from everyone but its owner; a table created beside it still gets the default grant.
    @Test func theAnchorTableIsWritableByItsOwnerAloneWhateverTheDefaultPrivileges() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            let role = "anchor_app_\(UInt32.random(in: 0...UInt32.max))"
            try await session.execute("CREATE ROLE \(role) NOLOGIN; ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO \(role)")
            do {
                let anchors = "ftbackup.\(RecordChainAnchor.table)"
                #expect(try await session.query("SELECT to_regclass($1) IS NULL AS missing", [anchors]).first!.bool("missing") == true)
                try await TestRepository.with { repo in
                    let prune = try await FTBackupBinary.run(["lifecycle", "prune-audit", "--db", db.connectionString.raw, "--repo", repo.path])
                    #expect(prune.status == 0, "\(prune.stderr)")
                }
                let anchored = try await session.query("SELECT count(*) AS n FROM \(anchors)").first!.int64("n")
                #expect(anchored > 0)
                try await session.execute("CREATE TABLE public.anchor_neighbour (id int)")
                func canWrite(_ table: String) async throws -> Bool {
                    try await session.query("SELECT has_table_privilege($1, $2, 'INSERT, UPDATE, DELETE, TRUNCATE') AS w", [role, table]).first!.bool("w") == true
                }
                #expect(try await canWrite("public.anchor_neighbour"), "the default privileges are not in force: the test proves nothing")
                #expect(try await !canWrite(anchors), "\(role) can change the anchors")
                #expect(try await session.query("SELECT has_table_privilege('public', $1, 'INSERT, UPDATE, DELETE') AS w", [anchors]).first!.bool("w") == false)
            } catch {
                try? await session.execute("DROP OWNED BY \(role); DROP ROLE \(role)")
                throw error
            }
            try await session.execute("DROP OWNED BY \(role); DROP ROLE \(role)")
        }
    }

    /// A record appended by hand at the head of a chain, linked and sealed as ftbackup would (anyone
    /// can compute SHA-256), walks intact; the database's anchors are the only thing that can tell it
    /// from a real one. Once the database holds anchors of a kind, a later record of that kind with
    /// no anchor must be a finding: otherwise a forged prune run (or drill) passes the report.
    @Test func aRecordAppendedByHandWithoutAnAnchorIsAFinding() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                let policy = try testPolicy()
                var runs: [String] = []
                for _ in 0..<2 {
                    runs.append(try await AuditPruner.run(AuditPruner.Options(database: db.connectionString, repositoryPath: repo.path, policy: policy)).run)
                    try await Task.sleep(for: .milliseconds(1100))
                }
                let storage = repo.repository.storage
                let folder = "lifecycle/prune-audit"
                let now = Date()
                // The forger copies the newest run, names it just after it and links it to the head.
                let forgedRun = DrillTarget.timestamp(now.addingTimeInterval(2))
                #expect(forgedRun > runs[1])
                var forged = try BackupManifest.decoder().decode(AuditPruner.Report.self, from: Data(try storage.readAll("\(folder)/\(runs[1]).json")))
                forged.run = forgedRun
                try RecordChain.write(try forged.sealed(), kind: "prune-audit", folder: folder, name: "\(forgedRun).json", storage: storage)

                let period = try ReportPeriod.parse(month: nil, from: ReportPeriod.dayText(now.addingTimeInterval(-86_400)),
                                                    to: ReportPeriod.dayText(now.addingTimeInterval(86_400)))
                func evidence() async throws -> (findings: [String], anchored: Int?, intact: Bool) {
                    let report = try await ComplianceReport.build(ComplianceReportOptions(database: db.connectionString, repositoryPath: repo.path,
                                                                                         policy: policy, period: period, now: now))
                    return (report.findings(in: .evidence).map(\.message), report.evidence.anchored,
                            report.evidence.chains.first { $0.kind == "prune-audit" }!.intact)
                }
                let appended = try await evidence()
                #expect(appended.intact, "the chain alone cannot see it")
                #expect(appended.anchored == 2)
                #expect(appended.findings.count == 1 && appended.findings.first?.hasPrefix("\(folder)/\(forgedRun).json is not anchored in the database") == true,
                        "\(appended)")
                // Records of a kind the database never anchored (restores' re-applied retention) are no finding.
                #expect(!appended.findings.contains { $0.contains("reapplied") }, "\(appended)")

                // Named before every real record (a drill that started first may finish last) but linked to the head: the same.
                try storage.remove("\(folder)/\(forgedRun).json")
                let early = DrillTarget.timestamp(now.addingTimeInterval(-7200))
                #expect(early < runs[0])
                forged.run = early
                try RecordChain.write(try forged.sealed(), kind: "prune-audit", folder: folder, name: "\(early).json", storage: storage)
                let slipped = try await evidence()
                #expect(slipped.intact, "the chain alone cannot see it")
                #expect(slipped.findings.count == 1 && slipped.findings.first?.hasPrefix("\(folder)/\(early).json is not anchored in the database") == true,
                        "\(slipped)")
            }
        }
    }

    /// A prune-audit run killed (-9) after a batch's DELETE committed but before its evidence was
    /// written (here: waiting for `locks/records.lock`, which another writer holds) deleted audit
    /// rows that no evidence names; the rerun records only what it removes itself. Every row
    /// removed must be on record: the rows deleted equal the rows the evidence of all runs counts.
    /// Both ways rows go: a partition dropped whole (the default's first leaf) and batches of rows
    /// (`--no-partition-drop`).
    @Test(arguments: [false, true])
    func aPruneKilledBetweenCommitAndEvidenceLeavesEveryDeletedRowOnRecord(byRows: Bool) async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                let session = try await db.connect()
                defer { session.close() }
                let count = "SELECT count(*) AS n FROM audit.events"
                let before = try await session.query(count).first!.int64("n")
                // Another writer of records (a drill finishing, say) holds the chain lock for a moment.
                let locks = "\(repo.path)/locks"
                try FileManager.default.createDirectory(atPath: locks, withIntermediateDirectories: true)
                let fd = open("\(locks)/records.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
                try #require(fd >= 0)
                defer { close(fd) }
                try #require(flock(fd, LOCK_EX) == 0)
                let (process, _, _) = try FTBackupBinary.start(["lifecycle", "prune-audit", "--batch", "25", "--db",
                                                                 "\(try TestServer.dsn) dbname=\(db.name)", "--repo", repo.path]
                                                                + (byRows ? ["--no-partition-drop"] : []),
                                                                environment: ["PGAPPNAME": "adv17-prune"])
                // Wait until the run is held up at the lock: rows gone, or its transaction open and waiting.
                let deadline = Date().addingTimeInterval(600)
                var held = false
                while process.isRunning && Date() < deadline {
                    let gone = try await session.query(count).first!.int64("n") < before
                    let waiting = try await session.query("""
                        SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()
                          AND application_name = 'adv17-prune' AND state = 'idle in transaction'
                        """).first!.int64("n") > 0
                    if gone || waiting {
                        try await Task.sleep(for: .milliseconds(500))
                        held = true
                        break
                    }
                    try await Task.sleep(for: .milliseconds(50))
                }
                try #require(held && process.isRunning, "the run never reached the lock")
                kill(process.processIdentifier, SIGKILL)
                await FTBackupBinary.waitForExit(process)
                flock(fd, LOCK_UN)
                // The killed session's transaction (if any) ends with its connection.
                let ended = try await Eventually.holds(every: .milliseconds(100)) {
                    try await session.query("""
                        SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'adv17-prune'
                        """).first!.int64("n") == 0
                }
                #expect(ended, "the killed run's session never ended")
                let afterKill = try await session.query(count).first!.int64("n")

                func recorded() throws -> Int64 {
                    let storage = repo.repository.storage
                    let names = try RecordChain.names(storage, folder: "lifecycle/prune-audit")
                    return try names.reduce(Int64(0)) { total, name in
                        let report = try BackupManifest.decoder().decode(AuditPruner.Report.self,
                                                                         from: Data(try storage.readAll("lifecycle/prune-audit/\(name)")))
                        return total + report.tables.filter { $0.schema == "audit" && $0.table == "events" }.reduce(0) { $0 + $1.rows }
                    }
                }
                // What the killed run deleted is on record (its evidence, or the pending batch the next run settles).
                let pending = try repo.repository.storage.list("lifecycle/prune-audit").filter { $0.path.hasSuffix(".pending-batch") }
                let recordedAfterKill = try recorded()
                #expect(before - afterKill == 0 || recordedAfterKill == before - afterKill || pending.count == 1,
                        "rows deleted by the killed run: \(before - afterKill), recorded \(recordedAfterKill), pending \(pending.map(\.path))")

                // The rerun finishes the job; all evidence together names every row removed, once.
                let rerun = try await FTBackupBinary.run(["lifecycle", "prune-audit", "--batch", "25", "--db",
                                                    "\(try TestServer.dsn) dbname=\(db.name)", "--repo", repo.path])
                #expect(rerun.status == 0, "\(rerun.stderr)")
                let after = try await session.query(count).first!.int64("n")
                #expect(before > after)
                let recordedInAll = try recorded()
                #expect(recordedInAll == before - after, "rows deleted in all: \(before - after), recorded \(recordedInAll); \(rerun.stdout)")
            }
        }
    }

    /// `lifecycle unarchive` is a writer of the repository (the archive's manifest, its run log and
    /// anchor) but did not check that its database is the repository's source: put back into a
    /// scratch copy, the archive was marked restored, so the source could never get the rows back
    /// ("nothing left to put back"), every later restore of the source kept those retired rows, and
    /// the report listed a put-back that never reached the source. Like every writer, it must refuse
    /// another database (exit 64, one line) and leave the archive as it was.
    @Test func unarchiveIntoADatabaseThatIsNotTheSourceIsRefusedAndLeavesTheArchiveAsItWas() async throws {
        try await TestServer.withDatabase { db in
            try await TestServer.withDatabase { scratch in
                try await TestRepository.with { repo in
                    try await TestRepository.with { scratchRepo in
                        let schema = "sprint_15_value_proposition"
                        _ = try await ToolDataArchiver.run(ArchiveOptions(database: db.connectionString, repositoryPath: repo.path,
                                                                          policy: try testPolicy(), schemas: [schema]))
                        // The scratch copy has lost the same rows (so nothing clashes there).
                        _ = try await ToolDataArchiver.run(ArchiveOptions(database: scratch.connectionString, repositoryPath: scratchRepo.path,
                                                                          policy: try testPolicy(), schemas: [schema]))
                        let store = ArchiveStore(storage: repo.repository.storage)
                        let (name, manifest) = try #require(try store.all().first)
                        try #require(manifest?.status == .committed)
                        let outcome = try await FTBackupBinary.run(["lifecycle", "unarchive", "--archive", name,
                                                              "--db", "\(try TestServer.dsn) dbname=\(scratch.name)", "--repo", repo.path])
                        #expect(outcome.status == 64, "\(outcome.stderr)")
                        #expect(outcome.stderr.split(separator: "\n").count == 1, "\(outcome.stderr)")
                        let after = try store.read(name)
                        #expect(after.status == .committed && after.restoredIds.isEmpty && after.unarchivingIds.isEmpty,
                                "\(after.status) \(after.restoredIds.count) restored")
                        #expect(try RecordChain.names(repo.repository.storage, folder: "lifecycle/unarchive").isEmpty)
                        // The source still gets its rows back.
                        let back = try await Unarchiver.run(database: db.connectionString, repositoryPath: repo.path, archive: name, ids: [])
                        #expect(back.status == .restored)
                    }
                }
            }
        }
    }

    /// A migration adds `ON DELETE CASCADE` from a new table to a tool's tool_data while an archive
    /// run is going (between two of its batches). The run planned its closure at its start, so its
    /// next batch's DELETE cascaded into the new table's rows: deleted, archived nowhere, not counted
    /// (the counts compare only the tables of the plan). Every batch must check the keys into its
    /// tables before it deletes: the new table's rows are archived with their parent, or the batch
    /// is refused; none may vanish.
    @Test func aCascadingKeyAddedDuringAnArchiveRunLosesNoRow() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            let schema = "sprint_15_value_proposition"
            let eligible = try await session.query("""
                SELECT id::text AS id FROM \(schema).tool_data WHERE status = 'completed' AND completed_at < now() - interval '2 years' ORDER BY id
                """).rows.map { try $0.requiredString("id") }
            try #require(eligible.count >= 3)
            try await TestRepository.with { repo in
                // The migration's session holds the second root, so the run stops at its second batch.
                let migration = try await db.connect("migration")
                defer { migration.close() }
                try await migration.execute("BEGIN")
                _ = try await migration.query("SELECT id FROM \(schema).tool_data WHERE id = $1::uuid FOR UPDATE", [eligible[1]])
                let (process, _, err) = try FTBackupBinary.start(["lifecycle", "archive", "--schema", schema, "--batch", "1",
                                                                  "--db", "\(try TestServer.dsn) dbname=\(db.name)", "--repo", repo.path],
                                                                 environment: ["PGAPPNAME": "adv17-archive"])
                var waiting = false
                for _ in 0..<12_000 where process.isRunning {
                    waiting = try await session.query("""
                        SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'adv17-archive' AND wait_event_type = 'Lock'
                        """).first!.int64("n") > 0
                    if waiting { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                try #require(waiting, "the run never reached the second root")
                try await migration.execute("""
                    CREATE TABLE public.canvas_notes (id serial PRIMARY KEY, tool_data_id uuid NOT NULL, note text NOT NULL);
                    INSERT INTO public.canvas_notes (tool_data_id, note) SELECT id, 'kept for the customer' FROM \(schema).tool_data;
                    ALTER TABLE public.canvas_notes ADD FOREIGN KEY (tool_data_id) REFERENCES \(schema).tool_data (id) ON DELETE CASCADE;
                    COMMIT
                    """)
                let notes = try await session.query("SELECT count(*) AS n FROM public.canvas_notes").first!.int64("n")
                let stderr = await FTBackupBinary.text(of: err)
                await FTBackupBinary.waitForExit(process)
                // Every note is still there, or archived with its tool_data row (and put back with it).
                let left = try await session.query("SELECT count(*) AS n FROM public.canvas_notes").first!.int64("n")
                var archivedNotes: Int64 = 0
                for (_, manifest) in try ArchiveStore(storage: repo.repository.storage).all() {
                    archivedNotes += manifest?.tables.filter { $0.schema == "public" && $0.name == "canvas_notes" }.reduce(0) { $0 + $1.rows } ?? 0
                }
                // Here the batch that met the new key is refused (70, one line); the next run plans with it.
                #expect(process.terminationStatus == 70 && stderr.contains("foreign keys into its archived tables changed"), "\(stderr)")
                #expect(left + archivedNotes == notes, "notes \(notes), left \(left), archived \(archivedNotes); exit \(process.terminationStatus): \(stderr)")
            }
        }
    }

    /// The same for prune-audit: keys into the audit tables were checked once, when the run started
    /// (CASCADE or SET NULL keys are refused: those rows are part of the audit record). A key added
    /// while the run waits between two tables' batches made the later DELETE cascade into rows the
    /// evidence never names. Every batch must check the keys before it deletes.
    @Test func aCascadingKeyAddedIntoAnAuditTableDuringAPruneRunLosesNoRow() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            let old = try await session.query("""
                SELECT count(*) AS n FROM sprint_00_woop.audit_log WHERE "timestamp" < localtimestamp - interval '7 years'
                """).first!.int64("n")
            try #require(old > 0)
            try await TestRepository.with { repo in
                // Another writer of records holds the chain lock: the run waits after its first table's first batch.
                let locks = "\(repo.path)/locks"
                try FileManager.default.createDirectory(atPath: locks, withIntermediateDirectories: true)
                let fd = open("\(locks)/records.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
                try #require(fd >= 0)
                defer { close(fd) }
                try #require(flock(fd, LOCK_EX) == 0)
                let (process, _, err) = try FTBackupBinary.start(["lifecycle", "prune-audit", "--batch", "25", "--no-partition-drop", "--db",
                                                                  "\(try TestServer.dsn) dbname=\(db.name)", "--repo", repo.path],
                                                                 environment: ["PGAPPNAME": "adv17-prune"])
                let before = try await session.query("SELECT count(*) AS n FROM audit.events").first!.int64("n")
                var started = false
                for _ in 0..<12_000 where process.isRunning {
                    started = try await session.query("SELECT count(*) AS n FROM audit.events").first!.int64("n") < before
                    if started { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                try #require(started, "the run never deleted its first batch")
                // A migration references the tool's audit rows, cascading.
                try await session.execute("""
                    CREATE TABLE public.audit_annotations (id serial PRIMARY KEY, audit_id uuid NOT NULL
                        REFERENCES sprint_00_woop.audit_log (id) ON DELETE CASCADE, note text NOT NULL);
                    INSERT INTO public.audit_annotations (audit_id, note) SELECT id, 'reviewed' FROM sprint_00_woop.audit_log
                    """)
                let annotations = try await session.query("SELECT count(*) AS n FROM public.audit_annotations").first!.int64("n")
                flock(fd, LOCK_UN)
                let stderr = await FTBackupBinary.text(of: err)
                await FTBackupBinary.waitForExit(process)
                let left = try await session.query("SELECT count(*) AS n FROM public.audit_annotations").first!.int64("n")
                #expect(left == annotations, "annotations \(annotations), left \(left); exit \(process.terminationStatus): \(stderr)")
                #expect(process.terminationStatus == 70 || process.terminationStatus == 78, "\(stderr)")
            }
        }
    }

    /// adv17 (noted, fixed after): a restore removes audit rows again by the newest prune record's cut-off,
    /// which it checked only against the retention the record itself states. A record forged with a one-day
    /// retention and a cut-off of yesterday (copied, resealed, linked: anyone can) passed, and every restore
    /// deleted audit rows the policy keeps for years. The cut-off must also lie the policy's retention back.
    @Test func aForgedPruneRecordWithAShortRetentionCannotMakeARestoreDeleteKeptAuditRows() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                let session = try await db.connect()
                defer { session.close() }
                _ = try await BackupRunner.runFull(try .test(db, repo))
                let pruned = try await AuditPruner.run(AuditPruner.Options(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy()))
                let storage = repo.repository.storage
                let folder = "lifecycle/prune-audit"
                var forged = try BackupManifest.decoder().decode(AuditPruner.Report.self, from: Data(try storage.readAll("\(folder)/\(pruned.run).json")))
                let now = Date()
                forged.run = DrillTarget.timestamp(now.addingTimeInterval(2))
                forged.retention = "1d"
                let yesterday = try await session.query("SELECT (now() - interval '12 hours')::timestamp::text AS wall, (now() - interval '12 hours')::text AS instant").first!
                forged.cutoff = try yesterday.requiredString("wall")
                forged.cutoffInstant = try yesterday.requiredString("instant")
                try RecordChain.write(try forged.sealed(), kind: "prune-audit", folder: folder, name: "\(forged.run).json", storage: storage)
                let kept = try await session.query("SELECT count(*) AS n FROM audit.events WHERE \"timestamp\" < $1::timestamp", [forged.cutoff]).first!.requiredInt("n")
                #expect(kept > 0, "the seeded audit log has rows inside retention that the forged cut-off would take")

                try await TestServer.withDatabase(seeded: false) { target in
                    let error = await #expect(throws: FTBackupError.self) {
                        _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    }
                    #expect(error?.status == .dataError && error?.message.contains("later than its start minus the policy's audit retention 7y") == true,
                            "\(String(describing: error))")
                    let t = try await target.connect()
                    defer { t.close() }
                    let tables = try await t.query("SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'audit'").first!.requiredInt("n")
                    #expect(tables == 0, "refused before the target was changed")
                }
            }
        }
    }
}
