import Foundation
import Testing
@testable import FTBackupKit

/// A database with change archival set up, a repository, and the helpers a PITR test needs.
struct ArchivedDatabase {
    let db: TestDatabase
    let repo: TestRepository
    let session: DatabaseSession

    /// Holds ``ServerWideResource/replicationSlots`` throughout: the database's slot lives until its teardown.
    static func with(prepare: String? = nil, _ body: (ArchivedDatabase) async throws -> Void) async throws {
        try await ServerWideResource.replicationSlots.shared {
            try await TestServer.withDatabase { db in
                let session = try await db.connect("writer")
                defer { session.close() }
                if let prepare { try await session.execute(prepare) }
                try await TestRepository.with { repo in
                    _ = try await ChangeArchivalSetup.setup(db.connectionString, dryRun: false, fixReplicaIdentity: true)
                    do {
                        try await body(ArchivedDatabase(db: db, repo: repo, session: session))
                    } catch {
                        _ = try? await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false)
                        throw error
                    }
                    _ = try await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false)
                }
            }
        }
    }

    func full() async throws -> BackupManifest { try await BackupRunner.runFull(try .test(db, repo)) }

    func incremental() async throws -> ChangeArchiver.Report {
        try await ChangeArchiver.runIncremental(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy())
    }

    /// Fingerprints of every table, and the database's clock just after: the instant they describe.
    func instant() async throws -> (Date, [TableFingerprint]) {
        let prints = try await TableFingerprint.compute(session)
        try await Task.sleep(for: .milliseconds(20))
        let at = try await session.query("SELECT extract(epoch FROM clock_timestamp()) AS t").first!.epochDate("t")!
        try await Task.sleep(for: .milliseconds(20))
        return (at, prints)
    }

    /// Fingerprints of the unlogged tables (their changes are not decoded, so restore --at keeps the full's contents).
    func unloggedFingerprints() async throws -> [TableFingerprint] {
        let unlogged = Set(try await session.query("""
            SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND c.relpersistence = 'u'
            """).rows.map { try $0.requiredString("name") })
        return try await TableFingerprint.compute(session).filter { unlogged.contains("\($0.schema).\($0.table)") }
    }

    /// Restores the database as at `at` into a fresh database and returns its fingerprints. With
    /// `schemas`, the target is a copy of the seeded database without them (their foreign keys need
    /// the shared schemas there, as in production).
    func restore(at: Date, schemas: [String] = []) async throws -> [TableFingerprint] {
        try await TestServer.withDatabase(seeded: !schemas.isEmpty) { target in
            if !schemas.isEmpty {
                let t = try await target.connect()
                defer { t.close() }
                for schema in schemas { try await t.execute("DROP SCHEMA \(try t.escapeIdentifier(schema)) CASCADE") }
            }
            _ = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path,
                                                                schemas: schemas, showProgress: false), at: at)
            let t = try await target.connect()
            defer { t.close() }
            return try await TableFingerprint.compute(t, schemas: schemas.isEmpty ? nil : schemas)
        }
    }
}

extension [TableFingerprint] {
    /// These fingerprints with the tables of `others` replaced by theirs.
    func replacing(_ others: [TableFingerprint]) -> [TableFingerprint] {
        let byName = Dictionary(uniqueKeysWithValues: others.map { ("\($0.schema).\($0.table)", $0) })
        return map { byName["\($0.schema).\($0.table)"] ?? $0 }
    }
}

/// Carries an instant out of the backup's callback.
final class InstantBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: (Date, [TableFingerprint])?
    func set(_ value: (Date, [TableFingerprint])) { lock.withLock { stored = value } }
    var value: (Date, [TableFingerprint])? { lock.withLock { stored } }
}

/// Writes the kinds of change replay must handle, `rounds` times.
func writeWorkload(_ s: DatabaseSession, round: Int, truncate: Bool = true) async throws {
    try await s.execute("""
        BEGIN;
        INSERT INTO sprint_15_value_proposition.tool_data (data, status) VALUES ('{"round": \(round), "t": "tab\\there"}', 'draft');
        UPDATE users.accounts SET full_name = 'round \(round) ' || left(full_name, 20) WHERE id IN (SELECT id FROM users.accounts ORDER BY id LIMIT 3 OFFSET \(round));
        -- A large TOASTed JSONB value left unchanged by an update of another column.
        UPDATE public.big_docs SET note = 'round \(round)' WHERE id = 1;
        DELETE FROM audit.events WHERE id IN (SELECT id FROM audit.events ORDER BY id LIMIT 2);
        SAVEPOINT s1;
        INSERT INTO public.no_key VALUES (\(round), 'rolled back');
        ROLLBACK TO SAVEPOINT s1;
        INSERT INTO public.no_key VALUES (\(round), 'kept'), (\(round), 'kept');
        UPDATE public.no_key SET b = 'updated' WHERE a = \(round - 1) AND b = 'kept' AND ctid = (SELECT min(ctid) FROM public.no_key WHERE a = \(round - 1) AND b = 'kept');
        DELETE FROM public.no_key WHERE a = \(round - 2) AND b = 'kept';
        INSERT INTO public.counted (note) VALUES ('round \(round)');
        -- Production's shapes: an identity GENERATED ALWAYS, a cascade two foreign keys deep, a BEFORE trigger
        -- rewriting columns, a row dated in the future (DEFAULT partition) and one moved across partitions.
        INSERT INTO sprint_15_value_proposition.hypothesis_votes (hypothesis_id, vote)
            SELECT id, 1 FROM sprint_15_value_proposition.hypotheses ORDER BY id LIMIT 2 OFFSET \(round);
        DELETE FROM sprint_15_value_proposition.hypotheses WHERE id = (SELECT h.id FROM sprint_15_value_proposition.hypotheses h
            WHERE EXISTS (SELECT 1 FROM sprint_15_value_proposition.hypothesis_votes v WHERE v.hypothesis_id = h.id) ORDER BY h.id LIMIT 1);
        UPDATE sprint_24_fit_abc_analysis.tool_data SET status = ' In_Progress ', version = version + 1
            WHERE id = (SELECT id FROM sprint_24_fit_abc_analysis.tool_data ORDER BY id LIMIT 1 OFFSET \(round % 20));
        INSERT INTO audit.events (action, "timestamp") VALUES ('clock skew \(round)', localtimestamp + interval '3 years');
        UPDATE audit.events SET "timestamp" = "timestamp" - interval '1 year'
            WHERE id = (SELECT id FROM audit.events ORDER BY id LIMIT 1 OFFSET \(round));
        COMMIT;
        """)
    if round % 3 == 1 {
        // Cascades: a two-column foreign key (assessment_actions), the tool's audit_log, and across schemas (shared_links).
        try await s.execute("""
            WITH victim AS (SELECT td.id FROM sprint_24_fit_abc_analysis.tool_data td
                            WHERE EXISTS (SELECT 1 FROM tool_access.shared_links l WHERE l.tool_data_id = td.id) ORDER BY td.id LIMIT 1),
                 members AS (DELETE FROM sprint_24_fit_abc_analysis.team_assessments WHERE tool_data_id IN (SELECT id FROM victim))
            DELETE FROM sprint_24_fit_abc_analysis.tool_data WHERE id IN (SELECT id FROM victim)
            """)
    }
    if truncate && round % 3 == 2 { try await s.execute("TRUNCATE public.scratch RESTART IDENTITY; INSERT INTO public.scratch (v) VALUES ('after truncate \(round)')") }
    else { try await s.execute("INSERT INTO public.scratch (v) VALUES ('round \(round)')") }
}

let workloadSchemaSQL = """
    CREATE TABLE public.big_docs (id int PRIMARY KEY, doc jsonb, note text);
    INSERT INTO public.big_docs VALUES (1, jsonb_build_object('blob', (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 20000) g)), 'start');
    CREATE TABLE public.no_key (a int, b text);
    CREATE TABLE public.counted (id serial PRIMARY KEY, note text);
    CREATE TABLE public.scratch (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
    -- An application trigger enabled ALWAYS: it would fire even under replay's session_replication_role = replica.
    CREATE TABLE public.counted_log (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, counted_id int, note text);
    CREATE FUNCTION public.counted_logged() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO public.counted_log (counted_id, note) VALUES (NEW.id, NEW.note); RETURN NULL; END $$;
    CREATE TRIGGER counted_logged AFTER INSERT ON public.counted FOR EACH ROW EXECUTE FUNCTION public.counted_logged();
    ALTER TABLE public.counted ENABLE ALWAYS TRIGGER counted_logged;
    """

/// The tests of change archival and point-in-time restore. They used to run one at a time (one of them changes
/// max_slot_wal_keep_size for the whole server); that test now holds ``ServerWideResource/replicationSlots``
/// exclusively, and the serial chain of 57 tests had become the whole run's long pole (21 of its 30 minutes), so
/// they run beside each other like every other suite, within the run's width (scripts/run-tests.sh).
@Suite struct ChangeArchivalTests {

@Suite struct PointInTimeTests {
    /// A writer runs during and after the full backup; restore --at each recorded instant reproduces
    /// that instant's per-table hashes exactly, including instants between two incrementals.
    @Test func restoreAtEachInstantReproducesItExactly() async throws {
        try await ArchivedDatabase.with(prepare: workloadSchemaSQL) { a in
            let background = Task {
                let w = try await a.db.connect("background")
                defer { w.close() }
                // No TRUNCATE while the full backup runs: like pg_dump -j, a backup that meets an ACCESS EXCLUSIVE
                // request starts over (BackupRunner.runFull), which this test does not mean to exercise.
                for round in 100..<140 { try await writeWorkload(w, round: round, truncate: false) }
            }
            // An instant in the middle of the full backup: after its snapshot, before its copies.
            let during = InstantBox()
            var options = try BackupOptions.test(a.db, a.repo)
            options.whileRunning = {
                // The writer has run through the slot's creation; let it finish so the instant's hashes are one consistent state.
                try await background.value
                try await writeWorkload(a.session, round: 50, truncate: false)
                during.set(try await a.instant())
            }
            let full = try await BackupRunner.runFull(options)
            #expect(full.snapshot.origin == "replication-slot")
            try await background.value
            let duringBackup = try #require(during.value)
            #expect(duringBackup.0 < full.stoppedAt)
            // Unlogged tables are not decoded: restore --at gives them the full's contents. Only the rounds after
            // the full write to the seeded users.sessions_cache, so its contents now are the full's.
            let unloggedAtFull = try await a.unloggedFingerprints()
            #expect(unloggedAtFull.contains { $0.table == "sessions_cache" })
            var instants: [(Date, [TableFingerprint])] = []
            for round in 1...6 {
                try await writeWorkload(a.session, round: round)
                try await a.session.execute("""
                    INSERT INTO users.sessions_cache VALUES ('round \(round)', gen_random_uuid(), '{}', now());
                    UPDATE users.sessions_cache SET data = '{"touched": true}' WHERE session_id = (SELECT min(session_id) FROM users.sessions_cache)
                    """)
                instants.append(try await a.instant())
                if round == 2 || round == 4 { _ = try await a.incremental() }
            }
            let last = try await a.incremental()
            #expect(last.segment?.transactions ?? 0 > 0)
            for (at, expected) in [duringBackup, instants[0], instants[2], instants[3], instants[5]] {
                let restored = try await a.restore(at: at)
                #expect(TableFingerprint.differences(source: expected.replacing(unloggedAtFull), restored: restored) == [],
                        "at \(Timestamps.iso8601UTC(at))")
            }
            // One tool schema only, as of an instant between two incrementals.
            let schema = "sprint_15_value_proposition"
            let restored = try await a.restore(at: instants[2].0, schemas: [schema])
            #expect(TableFingerprint.differences(source: instants[2].1.filter { $0.schema == schema }, restored: restored) == [])
        }
    }

    @Test func timesOutsideTheArchiveAreRefused() async throws {
        try await ArchivedDatabase.with { a in
            let before = Date()
            try await Task.sleep(for: .milliseconds(50))
            _ = try await a.full()
            try await a.session.execute("UPDATE users.accounts SET full_name = 'x' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1)")
            _ = try await a.incremental()
            let options = RestoreOptions(target: a.db.connectionString, repositoryPath: a.repo.path, dryRun: true, showProgress: false)
            let early = await #expect(throws: FTBackupError.self) { _ = try await PointInTimeRestore.run(options, at: before) }
            #expect(early?.message.contains("no full backup") == true)
            let late = await #expect(throws: FTBackupError.self) { _ = try await PointInTimeRestore.run(options, at: Date().addingTimeInterval(3600)) }
            #expect(late?.message.contains("does not reach past") == true)
            #expect(late?.hint?.contains("backup --type incr") == true)
        }
    }

    /// SIGKILL before the segment is renamed, and after it is sealed but before the slot advances:
    /// the next pass loses nothing and replay applies nothing twice.
    @Test(arguments: ["incr.before-rename", "incr.before-advance"])
    func killedIncrementalLosesNothingAndDuplicatesNothing(failpoint: String) async throws {
        try await ArchivedDatabase.with(prepare: workloadSchemaSQL) { a in
            _ = try await a.full()
            for round in 1...3 { try await writeWorkload(a.session, round: round) }
            let killed = try await FTBackupBinary.run(["backup", "--type", "incr", "--db", "\(try TestServer.dsn) dbname=\(a.db.name)", "--repo", a.repo.path],
                                                environment: ["FTBACKUP_FAILPOINT": failpoint])
            #expect(killed.status == -SIGKILL, "\(killed.stderr)")
            for round in 4...5 { try await writeWorkload(a.session, round: round) }
            let (at, expected) = try await a.instant()
            let next = try await a.incremental()
            if failpoint == "incr.before-rename" { #expect(!next.removedIncomplete.isEmpty) }
            let segments = try ChangeSegmentManifest.all(a.repo.repository.storage)
            #expect(segments.count == (failpoint == "incr.before-advance" ? 2 : 1))
            let restored = try await a.restore(at: at)
            #expect(TableFingerprint.differences(source: expected, restored: restored) == [])
        }
    }

    @Test func droppedSlotBreaksTheChainLoudly() async throws {
        try await ArchivedDatabase.with { a in
            _ = try await a.full()
            let slot = try await ChangeArchivalNames.slot(a.session)
            try await a.session.query("SELECT pg_drop_replication_slot($1)", [slot])
            let error = await #expect(throws: FTBackupError.self) { _ = try await a.incremental() }
            #expect(error?.status == .unavailable)
            #expect(error?.message.contains("chain is broken") == true)
            #expect(error?.hint?.contains("new full backup") == true)
        }
    }

    @Test func setupIsIdempotentReportsAndFixesTablesWithoutReplicaIdentity() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute("CREATE TABLE public.keyless (a int)")
            let dry = try await ChangeArchivalSetup.setup(db.connectionString, dryRun: true, fixReplicaIdentity: false)
            #expect(dry.tablesWithoutReplicaIdentity == ["keyless"])
            #expect(dry.actions.contains { $0.contains("publication") })
            #expect(try await session.query("SELECT count(*) AS n FROM pg_publication").first!.requiredInt("n") == 0)
            let first = try await ChangeArchivalSetup.setup(db.connectionString, dryRun: false, fixReplicaIdentity: true)
            #expect(first.fixedReplicaIdentity == ["keyless"])
            let second = try await ChangeArchivalSetup.setup(db.connectionString, dryRun: false, fixReplicaIdentity: false)
            #expect(second.tablesWithoutReplicaIdentity.isEmpty)
            #expect(!second.actions.contains { $0.contains("slot") })
            try await session.execute("DELETE FROM public.keyless")  // works: the table has replica identity full now
            let removed = try await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false)
            #expect(removed.first?.contains("slot") == true)
            #expect(try await session.query("SELECT count(*) AS n FROM pg_replication_slots WHERE database = current_database()").first!.requiredInt("n") == 0)
        }
    }
}

@Suite struct FollowerTests {
    /// The follower streams the slot; killed right after sealing (before telling the server), restarted,
    /// then stopped with SIGTERM: restore --at reproduces each instant, nothing lost or applied twice.
    @Test func followerSegmentsReplayExactlyAcrossACrashAndAStop() async throws {
        try await ArchivedDatabase.with(prepare: workloadSchemaSQL) { a in
            let policyFile = try sealingEverySecondPolicyFile()
            defer { try? FileManager.default.removeItem(atPath: policyFile) }
            let conninfo = "\(try TestServer.dsn) dbname=\(a.db.name)"
            let arguments = ["follow", "--db", conninfo, "--repo", a.repo.path, "--policy", policyFile]
            _ = try await a.full()

            let crashed = try FTBackupBinary.start(arguments, environment: ["FTBACKUP_FAILPOINT": "follow.before-feedback"])
            try await writeWorkload(a.session, round: 1)
            await FTBackupBinary.waitForExit(crashed.0)
            #expect(crashed.0.terminationReason == .uncaughtSignal)

            let (follower, _, _) = try FTBackupBinary.start(arguments)
            defer { if follower.isRunning { kill(follower.processIdentifier, SIGKILL) } }
            var instants: [(Date, [TableFingerprint])] = []
            for round in 2...4 {
                try await writeWorkload(a.session, round: round)
                instants.append(try await a.instant())
            }
            // At least one seal and one heartbeat after the last instant.
            try await a.waitUntilSealed(after: try await a.clock(), by: follower, "the last instant")
            // While the follower runs, an hourly incremental says it is covered.
            let covered = try await a.incremental()
            #expect(covered.coveredByFollower != nil)
            kill(follower.processIdentifier, SIGTERM)
            await FTBackupBinary.waitForExit(follower)
            #expect(follower.terminationStatus == 0)

            // The crashed follower's segment and at least one of the restarted follower's (sealed after the last instant).
            // A third is there only when rounds 2-4 spanned two seal intervals or something was left to seal at SIGTERM:
            // timing, not the behaviour under test (a quiet CI run sealed rounds 2-4 and the wait's heartbeat in one).
            let segments = try ChangeSegmentManifest.all(a.repo.repository.storage)
            #expect(segments.count >= 2)
            for (at, expected) in instants {
                let restored = try await a.restore(at: at)
                #expect(TableFingerprint.differences(source: expected, restored: restored) == [], "at \(Timestamps.iso8601UTC(at))")
            }
        }
    }
}

@Suite struct ChangeArchivalOperationsTests {
    @Test func schemaChangeIsDetectedAndTheIncrementalTakesANewFull() async throws {
        try await ArchivedDatabase.with { a in
            _ = try await a.full()
            try await a.session.execute("ALTER TABLE users.profiles ADD COLUMN pronouns text; UPDATE users.profiles SET pronouns = 'they' WHERE user_id = (SELECT user_id FROM users.profiles ORDER BY 1 LIMIT 1)")
            let outcome = try await FTBackupBinary.run(["backup", "--type", "incr", "--db", "\(try TestServer.dsn) dbname=\(a.db.name)", "--repo", a.repo.path])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect(outcome.stderr.contains("schema change"))
            // A warning, not an error: the run goes on and succeeds (issue 9, item 11).
            #expect(outcome.stderr.contains("ftbackup: warning: a schema change"), "\(outcome.stderr)")
            #expect(!outcome.stderr.contains("ftbackup: error"), "\(outcome.stderr)")
            #expect(outcome.stdout.contains("new full backup:"))
            let segment = try ChangeSegmentManifest.all(a.repo.repository.storage).last
            #expect(segment?.schemaChanges == ["users.profiles"])
            #expect(try a.repo.repository.entries().filter { $0.manifest?.type == .full }.count == 2)
            #expect(try ChangeArchiver.needsNewFull(repositoryPath: a.repo.path) == false)
        }
    }

    @Test func slotCreationWaitIsBoundedAndNamesTheBlockingSession() async throws {
        try await TestServer.withDatabase { db in
            let blocker = try await db.connect("blocker")
            defer { blocker.close() }
            try await blocker.execute("BEGIN; CREATE TEMP TABLE holds_an_xid (x int)")
            let error = await #expect(throws: FTBackupError.self) {
                _ = try await ChangeArchivalSetup.setup(db.connectionString, dryRun: false, fixReplicaIdentity: false, slotWaitSeconds: 2)
            }
            #expect(error?.message.contains("pid \(blocker.backendPID)") == true, "\(String(describing: error))")
            try await blocker.execute("ROLLBACK")
            _ = try await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false)
        }
    }

    /// `FTBACKUP_SLOT_WAIT` sets the bound when `--slot-wait` is not given (the test run itself sets it to 600 s), and
    /// `--slot-wait` still wins over it.
    @Test func theSlotWaitComesFromTheEnvironmentUnlessGivenOnTheCommandLine() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let blocker = try await db.connect("blocker")
            defer { blocker.close() }
            try await blocker.execute("BEGIN; CREATE TEMP TABLE holds_an_xid (x int)")
            let conninfo = "\(try TestServer.dsn) dbname=\(db.name)"
            let fromEnvironment = try await FTBackupBinary.run(["setup", "--db", conninfo], environment: ["FTBACKUP_SLOT_WAIT": "2"])
            #expect(fromEnvironment.status == 69, "\(fromEnvironment.stderr)")
            #expect(fromEnvironment.stderr.contains("waited 2 s for open transactions to finish"), "\(fromEnvironment.stderr)")
            #expect(fromEnvironment.stderr.contains("pid \(blocker.backendPID)"), "\(fromEnvironment.stderr)")
            let fromOption = try await FTBackupBinary.run(["setup", "--db", conninfo, "--slot-wait", "3"], environment: ["FTBACKUP_SLOT_WAIT": "2"])
            #expect(fromOption.stderr.contains("waited 3 s for open transactions to finish"), "\(fromOption.stderr)")
            try await blocker.execute("ROLLBACK")
            _ = try await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false)
        }
    }
}

    /// max_slot_wal_keep_size invalidates a slot that holds too much WAL: reported, chain marked broken.
    /// Exclusive: max_slot_wal_keep_size and the checkpoints invalidate every slot on the server that is
    /// behind, not only this test's (see ``ServerWideResource/replicationSlots``).
    @Test func slotInvalidatedByMaxSlotWalKeepSizeBreaksTheChainLoudly() async throws {
        try await ServerWideResource.replicationSlots.exclusive { try await Self.invalidateTheSlotAndCheckTheChainIsBroken() }
    }

    static func invalidateTheSlotAndCheckTheChainIsBroken() async throws {
        try await ArchivedDatabase.with { a in
            _ = try await a.full()
            let admin = try await TestServer.admin()
            defer { admin.close() }
            try await admin.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
            try await admin.query("SELECT pg_reload_conf()")
            do {
                let slot = try await ChangeArchivalNames.slot(a.session)
                var status = ""
                for round in 0..<8 where status != "lost" {
                    try await a.session.execute("CREATE TABLE public.wal_filler_\(round) AS SELECT g, repeat('x', 200) AS v FROM generate_series(1, 100000) g")
                    try await admin.query("SELECT pg_switch_wal()")
                    try await admin.execute("CHECKPOINT")
                    status = try await a.session.query("SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1", [slot]).first?.string("wal_status") ?? "missing"
                }
                #expect(status == "lost")
                let error = await #expect(throws: FTBackupError.self) { _ = try await a.incremental() }
                #expect(error?.message.contains("lost") == true)
                #expect(error?.message.contains("chain is broken") == true)
                let info = try await FTBackupBinary.run(["info", "--repo", a.repo.path, "--db", "\(try TestServer.dsn) dbname=\(a.db.name)"])
                #expect(info.status == 69)
                #expect(info.stdout.contains("CHAIN BROKEN"))
            } catch {
                try? await admin.execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
                _ = try? await admin.query("SELECT pg_reload_conf()")
                throw error
            }
            try await admin.execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
            try await admin.query("SELECT pg_reload_conf()")
        }
    }
}

extension ChangeArchivalTests {
    /// A table created after the full: restore --at a time after it is refused before the target is
    /// touched; and a policy exclusion never looks like a schema change.
    @Test func tableCreatedAfterTheFullIsRefusedUpFrontAndExclusionsAreNotSchemaChanges() async throws {
        try await ArchivedDatabase.with(prepare: "CREATE TABLE public.not_backed_up (id int PRIMARY KEY, v text)") { a in
            var options = try BackupOptions.test(a.db, a.repo)
            options.policy.exclude = ["public.not_backed_up"]
            let full = try await BackupRunner.runFull(options)
            #expect(full.tablesNotCopied == ["public.not_backed_up"])
            try await a.session.execute("INSERT INTO public.not_backed_up VALUES (1, 'x'); UPDATE public.not_backed_up SET v = 'y'")
            let (unaffected, expected) = try await a.instant()
            let quiet = try await a.incremental()
            #expect(quiet.segment?.schemaChanges == nil)
            // The excluded table's changes are skipped in replay; everything else matches.
            let restored = try await a.restore(at: unaffected)
            #expect(TableFingerprint.differences(source: expected.filter { $0.table != "not_backed_up" },
                                                 restored: restored.filter { $0.table != "not_backed_up" }) == [])

            try await a.session.execute("CREATE TABLE public.brand_new (id int PRIMARY KEY); INSERT INTO public.brand_new VALUES (1)")
            let (after, _) = try await a.instant()
            let pass = try await a.incremental()
            #expect(pass.segment?.schemaChanges == ["public.brand_new"])
            try await TestServer.withDatabase(seeded: false) { target in
                let error = await #expect(throws: FTBackupError.self) {
                    _ = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: a.repo.path,
                                                                        showProgress: false), at: after)
                }
                // The CREATE TABLE itself is recorded DDL (issue 9, item 2): refused for it, naming the table.
                #expect(error?.message.contains("CREATE TABLE public.brand_new") == true, "\(String(describing: error))")
                let t = try await target.connect()
                defer { t.close() }
                #expect(try await t.query("SELECT count(*) AS n FROM pg_namespace WHERE nspname = 'users'").first!.requiredInt("n") == 0)
            }
        }
    }
}
