import Foundation
import Testing
@testable import FTBackupKit

/// Adversarial review of how a restore ends (post-data, refresh, dependants, the backup's event
/// triggers last): nothing the restore itself does may fire an application's event trigger or
/// leave a failed run looking other than half-built.
@Suite struct AdversarialRestoreEndTests {
    /// An application event trigger logging every DDL command into a table of the database.
    static let ddlLogger = """
        CREATE TABLE public.app_ddl_log (n bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tag text, object text);
        CREATE FUNCTION public.app_log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO public.app_ddl_log (tag, object) SELECT command_tag, object_identity FROM pg_event_trigger_ddl_commands(); END $$;
        CREATE EVENT TRIGGER app_ddl_logged ON ddl_command_end EXECUTE FUNCTION public.app_log_ddl();
        CREATE TABLE public.app_after_trigger (id int PRIMARY KEY)
        """

    /// The re-application of retired data (archive and prune records) creates temporary tables and
    /// indexes; it ran after the backup's event triggers were created, so an application's trigger
    /// logging DDL added rows to a restored table (`app_ddl_log` gained `CREATE TABLE AS pg_temp.…`).
    @Test func removingRetiredDataAgainDoesNotFireTheBackupsEventTriggers() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await LifecycleShapes.add(session)
            try await TestRepository.with { repo in
                let pruned = try await AuditPruner.run(try pruneOptions(db, repo, asOf: try await databaseNow(session), batch: 500))
                #expect(pruned.rows > 0)
                let archived = try await ToolDataArchiver.run(ArchiveOptions(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy()))
                #expect(archived.rows > 0)
                try await session.execute(Self.ddlLogger)
                _ = try await BackupRunner.runFull(try .test(db, repo))
                let source = try await TableFingerprint.compute(session)
                #expect(source.contains { $0.schema == "public" && $0.table == "app_ddl_log" && $0.rows == 2 })
                try await TestServer.withDatabase(seeded: false) { target in
                    let report = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    #expect(report.retired != nil)
                    let t = try await target.connect()
                    defer { t.close() }
                    let logged = try await t.query("SELECT tag || ' ' || object AS line FROM public.app_ddl_log ORDER BY n").rows.map { try $0.requiredString("line") }
                    #expect(Array(logged.prefix(3)) == ["CREATE TABLE public.app_after_trigger", "CREATE INDEX public.app_after_trigger_pkey"], "\(logged.count) rows")
                    let differences = retiredDifferences(source: source, restored: try await TableFingerprint.compute(t))
                    #expect(differences == [], "\(differences)")
                    #expect(try await t.query("SELECT count(*) AS n FROM pg_event_trigger WHERE evtname = 'app_ddl_logged'").first!.int64("n") == 1)
                }
            }
        }
    }

    /// A partition's index and a materialized view, as slow as the database settings `app.index_sleep`
    /// (seconds a row) and `app.view_sleep` say (0 at the source).
    static let slowEnd = """
        CREATE SCHEMA app;
        CREATE FUNCTION app.slow(n int) RETURNS int IMMUTABLE LANGUAGE sql
            AS $$ SELECT n FROM pg_sleep(coalesce(nullif(current_setting('app.index_sleep', true), ''), '0')::float8) $$;
        CREATE TABLE public.parted (id int PRIMARY KEY, v int) PARTITION BY RANGE (id);
        CREATE TABLE public.parted_1 PARTITION OF public.parted FOR VALUES FROM (0) TO (100000);
        INSERT INTO public.parted SELECT g, g FROM generate_series(1, 600) g;
        CREATE INDEX parted_slow ON public.parted (app.slow(v));
        CREATE MATERIALIZED VIEW public.slow_view AS SELECT count(*) AS n FROM public.parted,
            pg_sleep(coalesce(nullif(current_setting('app.view_sleep', true), ''), '0')::float8)
        """

    /// SIGTERM while pg_restore runs (here its pre-data creates an extension as slow as `app.extension_sleep`
    /// says, `scripts/test-extension/ftbackup_test_slow`), or while the restore refreshes a materialized view:
    /// nothing may go on changing the target once ftbackup has said it was interrupted. pg_restore inherited a
    /// signal mask blocking SIGTERM (the ftbackup threads that start it block signals), so the SIGTERM sent to
    /// it stayed pending and it finished its section on its own; and the REFRESH ran on in its server session
    /// after ftbackup was gone. The same restore with `--clean` then restores exactly.
    ///
    /// SIGKILL too (no handler runs): pg_restore is started through `setpriv --pdeathsig TERM`, and
    /// ftbackup's own sessions set `client_connection_check_interval`, so neither pg_restore's work nor
    /// the REFRESH go on for nobody (before, both ran to their end after the kill). This test interrupted
    /// a partition's index build in post-data until the restore built those itself, in the data phase.
    @Test(arguments: zip(["pre-data", "refresh", "pre-data", "refresh"], [SIGTERM, SIGTERM, SIGKILL, SIGKILL]))
    func interruptedRestoreLeavesNothingRunningOnTheTarget(stage: String, signal: Int32) async throws {
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            // The slow extension only where it is interrupted: a --clean restore refuses to drop an extension in a schema it drops.
            try await s.execute(Self.slowEnd + (stage == "pre-data" ? "; CREATE EXTENSION ftbackup_test_slow SCHEMA app" : ""))
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                try await TestServer.withDatabase(seeded: false) { target in
                    let t = try await target.connect()
                    defer { t.close() }
                    let database = try t.escapeIdentifier(target.name)
                    // Slow in the target only: the extension takes 12 s to create, the view 60 s to refresh.
                    try await t.execute("ALTER DATABASE \(database) SET \(stage == "pre-data" ? "app.extension_sleep = '12'" : "app.view_sleep = '60'")")
                    let (process, _, err) = try FTBackupBinary.start(["restore", "--repo", repo.path, "-j", "2",
                                                                      "--target", "\(try TestServer.dsn) dbname=\(target.name)"])
                    let statement = stage == "pre-data" ? "CREATE EXTENSION%ftbackup_test_slow%" : "REFRESH MATERIALIZED VIEW%"
                    var signalled = false
                    for _ in 0..<60_000 where process.isRunning {
                        let running = try await t.query("""
                            SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
                              AND state = 'active' AND query LIKE $1
                            """, [statement]).first!.int64("n")
                        if running > 0 {
                            kill(process.processIdentifier, signal)
                            signalled = true
                            break
                        }
                        try await Task.sleep(for: .microseconds(10_000))
                    }
                    if !signalled { kill(process.processIdentifier, SIGKILL) }
                    let stderr = await FTBackupBinary.text(of: err)
                    await FTBackupBinary.waitForExit(process)
                    #expect(signalled, "\(stage) never ran: \(stderr)")
                    #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == signal, "\(stderr)")
                    // Up to 10 s for the server to see the cancelled statements end (the extension alone takes
                    // 12 s, the view 60 s).
                    var left: [String] = []
                    for _ in 0..<100 {
                        left = try await t.query("""
                            SELECT application_name || ': ' || state || ': ' || left(query, 60) AS s FROM pg_stat_activity
                            WHERE datname = current_database() AND pid <> pg_backend_pid()
                            """).rows.map { try $0.requiredString("s") }
                        if left.isEmpty { break }
                        try await Task.sleep(for: .microseconds(100_000))
                    }
                    #expect(left == [], "still running on the target after the interrupt: \(left)")
                    // The documented way back: the same restore with --clean.
                    try await t.execute("ALTER DATABASE \(database) RESET ALL")
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, clean: true,
                                                                   confirmed: true, showProgress: false))
                    let restored = try await target.connect()
                    defer { restored.close() }
                    #expect(TableFingerprint.differences(source: try await TableFingerprint.compute(s), restored: try await TableFingerprint.compute(restored)) == [])
                    #expect(try await ZooTests.populatedViews(restored) == ZooTests.populatedViews(s))
                    let version = s.serverVersionNumber
                    #expect(ZooTests.lineDiff(try Fixtures.schemaDDL(source.connectionString, serverVersion: version),
                                              try Fixtures.schemaDDL(target.connectionString, serverVersion: version)) == [])
                }
            }
        }
    }

    /// A whole-database restore that fails after pre-data (here the REFRESH of a materialized view) has
    /// created the backup's function and type in `public` and its cast: the same restore with `--clean`
    /// would refuse to start on them. The failure used to advise exactly that rerun; it now says to
    /// restore into a fresh database and names what a `--clean` rerun would refuse, and following it
    /// gives the source back exactly.
    @Test func aFailedWholeRestoreSaysHowBackWhenACleanRerunWouldBeRefused() async throws {
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute(Self.slowEnd + """
                ;
                CREATE TYPE public.mood AS ENUM ('low', 'high');
                CREATE FUNCTION public.mood_of(n int) RETURNS public.mood IMMUTABLE LANGUAGE sql AS $$ SELECT CASE WHEN n > 300 THEN 'high'::public.mood ELSE 'low' END $$;
                CREATE FUNCTION public.mood_text(public.mood) RETURNS text IMMUTABLE LANGUAGE sql AS $$ SELECT $1::text $$;
                CREATE CAST (public.mood AS int) WITH INOUT
                """)
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                try await TestServer.withDatabase(seeded: false) { target in
                    let admin = try await TestServer.admin()
                    defer { admin.close() }
                    let database = try admin.escapeIdentifier(target.name)
                    try await admin.execute("ALTER DATABASE \(database) SET app.view_sleep = 'not a number'")
                    let options = RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false)
                    do {
                        _ = try await RestoreRunner.run(options)
                        Issue.record("the restore did not fail")
                    } catch let error as FTBackupError {
                        #expect(error.message.contains("half-built"), "\(error.message)")
                        let hint = error.hint ?? ""
                        #expect(hint.contains("restore into a fresh database") && hint.contains("would refuse"), "\(hint)")
                        #expect(hint.contains("mood_of") && hint.contains("object(s) outside the schemas --clean drops"), "\(hint)")
                    }
                    // What the hint says works: a refused --clean rerun, then the fresh database.
                    await #expect(throws: FTBackupError.self) {
                        _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, clean: true,
                                                                       confirmed: true, showProgress: false))
                    }
                    try await admin.execute("DROP DATABASE \(database) WITH (FORCE)")
                    try await admin.execute("CREATE DATABASE \(database)")
                    _ = try await RestoreRunner.run(options)
                    let restored = try await target.connect()
                    defer { restored.close() }
                    #expect(TableFingerprint.differences(source: try await TableFingerprint.compute(s), restored: try await TableFingerprint.compute(restored)) == [])
                    let version = s.serverVersionNumber
                    #expect(ZooTests.lineDiff(try Fixtures.schemaDDL(source.connectionString, serverVersion: version),
                                              try Fixtures.schemaDDL(target.connectionString, serverVersion: version)) == [])
                }
            }
        }
    }

    /// `--schema --clean` into a target where a user the backup's tool rows reference is gone: the
    /// foreign key fails in post-data. Exit 65 (rows a constraint rejects), one line naming the cause,
    /// the half-built schema and the files keeping what other schemas held on it (a foreign key and a
    /// view); fixing the cause, the same restore with `--clean` and those files give the source back
    /// exactly (ordered per-table hashes, keys and policies, views).
    @Test func postDataFailureKeepsTheDependantsAndTheRerunIsExact() async throws {
        try await TestServer.withDatabase { source in
            let s = try await source.connect()
            defer { s.close() }
            let schema = "sprint_15_value_proposition"
            try await s.execute("""
                CREATE SCHEMA reporting;
                CREATE VIEW reporting.canvas_status AS SELECT id, status FROM \(schema).tool_data
                """)
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                let expected = try await TableFingerprint.compute(s)
                let expectedKeys = try await CleanRestoreTests.keysAndPolicies(s)
                try await TestServer.withDatabase(seeded: false) { target in
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    let t = try await target.connect()
                    defer { t.close() }
                    // The cause: a user the backup's tool rows reference, deleted without its references.
                    try await t.execute("""
                        CREATE TABLE public.gone AS SELECT * FROM users.accounts
                          WHERE id = (SELECT user_id FROM \(schema).tool_data WHERE user_id IS NOT NULL ORDER BY id LIMIT 1);
                        BEGIN; SET LOCAL session_replication_role = replica; DELETE FROM users.accounts WHERE id IN (SELECT id FROM public.gone); COMMIT
                        """)
                    let tmp = NSTemporaryDirectory() + "ftbackup-tmpdir-\(UUID().uuidString)"
                    try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: false)
                    defer { try? FileManager.default.removeItem(atPath: tmp) }
                    let failed = try await FTBackupBinary.run(["restore", "--repo", repo.path, "--schema", schema, "--clean",
                                                        "--target", "\(try TestServer.dsn) dbname=\(target.name)"], environment: ["TMPDIR": tmp])
                    #expect(failed.status == 65, "\(failed.stderr)")
                    #expect(failed.stderr.split(separator: "\n").filter { $0.hasPrefix("ftbackup: error:") }.count == 1, "\(failed.stderr)")
                    #expect(failed.stderr.contains("violates foreign key constraint \"tool_data_user_id_fkey\""), "\(failed.stderr)")
                    #expect(failed.stderr.contains("schema(s) \(schema) were dropped by --clean and are only partly restored"), "\(failed.stderr)")
                    let kept = try FileManager.default.contentsOfDirectory(atPath: tmp).sorted()
                    let script = try #require(kept.first { $0.hasSuffix(".sql") }.map { "\(tmp)/\($0)" }, "\(kept)")
                    let views = try #require(kept.first { $0.hasSuffix(".pgdump") }.map { "\(tmp)/\($0)" }, "\(kept)")
                    #expect(failed.stderr.contains("psql -f \(script)") && failed.stderr.contains("pg_restore -d TARGET \(views)"), "\(failed.stderr)")
                    // Fix the cause, run the same restore with --clean, then put back what was kept, as the line says.
                    try await t.execute("INSERT INTO users.accounts SELECT * FROM public.gone; DROP TABLE public.gone")
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, schemas: [schema],
                                                                   clean: true, showProgress: false))
                    try await t.execute(try String(contentsOfFile: script, encoding: .utf8))
                    let pgRestore = try PostgresTools.path(of: "pg_restore", serverVersionNumber: t.serverVersionNumber)
                    try PostgresTools.run(pgRestore, ["--exit-on-error", "--dbname=\(target.connectionString.raw)", views])
                    #expect(TableFingerprint.differences(source: expected, restored: try await TableFingerprint.compute(t)) == [])
                    #expect(try await CleanRestoreTests.keysAndPolicies(t) == expectedKeys)
                    #expect(try await t.query("SELECT count(*) AS n FROM reporting.canvas_status").first!.int64("n")
                            == s.query("SELECT count(*) AS n FROM reporting.canvas_status").first!.int64("n"))
                }
            }
        }
    }

    /// An index the restore builds itself fails (its expression calls a function that resolves only with
    /// the source's search_path, which pg_dump's empty one does not give): the error names the index,
    /// as pg_restore names its command. It said only "data phase: function g(integer) does not exist".
    @Test func anIndexBuildFailureNamesTheIndex() async throws {
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute("""
                CREATE FUNCTION public.g(n int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT n * 2';
                CREATE FUNCTION public.f(n int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT g(n)';
                CREATE TABLE public.t (id int PRIMARY KEY, v int);
                INSERT INTO public.t SELECT g, g FROM generate_series(1, 100) g;
                CREATE INDEX "t by f" ON public.t (public.f(v))
                """)
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                try await TestServer.withDatabase(seeded: false) { target in
                    let error = await #expect(throws: FTBackupError.self) {
                        _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    }
                    #expect(error?.status == .dataError)
                    #expect(error?.message.hasPrefix("data phase: building index public.t by f: function g(integer) does not exist") == true,
                            "\(String(describing: error))")
                    #expect(error?.message.contains("half-built") == true)
                }
            }
        }
    }
}
