import Foundation
import Testing
@testable import FTBackupKit

/// Two tables named `items` (in `app` and `public`), the database's search_path set to `app, public`,
/// and a table of `regclass`/`regtype` values naming the one in `app`.
let searchPathSchemaSQL = """
    CREATE SCHEMA app;
    CREATE TABLE app.items (id int PRIMARY KEY);
    CREATE TABLE public.items (id int PRIMARY KEY);
    CREATE TABLE public.audit (id int PRIMARY KEY, rel regclass, typ regtype);
    DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = app, public', current_database()); END $$;
    """

/// True when row `id` of `public.audit` names `app.items` (the relation and its row type), read by oid.
func auditNamesAppItems(_ session: DatabaseSession, id: Int) async throws -> Bool {
    try await session.query("""
        SELECT rel = 'app.items'::regclass AND typ = 'app.items'::regtype AS ok FROM public.audit WHERE id = $1::int
        """, [String(id)]).first?.bool("ok") ?? false
}

extension ChangeArchivalTests.PointInTimeTests {
    /// Adversarial review, defect 2: regclass/regtype values were decoded and copied under the source
    /// database's search_path (`app, public`): `app.items` travelled as a bare `items`, so `restore --at`
    /// brought back `public.items`, and a full taken after the insert could not be restored at all.
    @Test func regclassValuesComeBackAsTheSameObjectWhateverTheSearchPath() async throws {
        try await ArchivedDatabase.with(prepare: searchPathSchemaSQL) { a in
            _ = try await a.full()
            // Fingerprints hash each row's text: read with an empty search_path, regclass values print qualified on both sides.
            try await a.session.execute("SET search_path = ''")
            try await a.session.execute("INSERT INTO public.audit VALUES (1, 'app.items', 'app.items')")
            let afterInsert = try await a.instant()
            _ = try await a.incremental()
            try await a.restore(at: afterInsert.0) { t in
                #expect(try await auditNamesAppItems(t, id: 1))
                try await t.execute("SET search_path = ''")
                let restored = try await TableFingerprint.compute(t)
                #expect(TableFingerprint.differences(source: afterInsert.1, restored: restored) == [])
            }
            // A full taken after the insert holds the value qualified: it restores, row for row.
            let second = try await a.full()
            #expect(second.tables.contains { $0.schema == "public" && $0.name == "audit" && $0.rows == 1 })
            let source = try await TableFingerprint.compute(a.session)
            try await TestServer.withDatabase(seeded: false) { target in
                _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: a.repo.path, showProgress: false))
                let t = try await target.connect()
                defer { t.close() }
                #expect(try await auditNamesAppItems(t, id: 1))
                try await t.execute("SET search_path = ''")
                #expect(TableFingerprint.differences(source: source, restored: try await TableFingerprint.compute(t)) == [])
            }
        }
    }
}

extension CleanRestoreTests {
    /// True when each named relation or function exists in the target.
    static func existing(_ session: DatabaseSession, _ names: [String]) async throws -> [String] {
        try await session.query("""
            SELECT n FROM unnest($1::text[]) n WHERE to_regclass(n) IS NOT NULL OR to_regprocedure(n) IS NOT NULL ORDER BY 1
            """, [PostgresArray.text(names)]).rows.map { try $0.requiredString("n") }
    }

    /// Adversarial review, defect 8: a whole-database `--clean` dropped every relation in `public`, also the
    /// target's own (a table with a foreign key into a restored table, and its row), and by CASCADE a view and
    /// a function built on a restored table, without naming them. It drops only the backup's relations: what
    /// would go with them is named and refused (nothing dropped), and a target-only table is kept with its rows.
    @Test func wholeDatabaseCleanKeepsTheTargetsOwnObjectsInPublic() async throws {
        try await TestServer.withDatabase { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute("CREATE TABLE public.tr (id int PRIMARY KEY, v text); INSERT INTO public.tr SELECT g, 'row ' || g FROM generate_series(1, 5) g")
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                let expected = try await TableFingerprint.compute(s)
                try await TestServer.withDatabase(seeded: false) { target in
                    let options = RestoreOptions(target: target.connectionString, repositoryPath: repo.path, clean: true, showProgress: false)
                    _ = try await RestoreRunner.run(options)
                    let t = try await target.connect()
                    defer { t.close() }
                    try await t.execute("""
                        CREATE TABLE public.extra_t (id int PRIMARY KEY, tr_id int REFERENCES public.tr);
                        INSERT INTO public.extra_t VALUES (1, 3);
                        CREATE VIEW public.extra_v AS SELECT id FROM public.tr;
                        CREATE FUNCTION public.extra_f() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM public.tr; END;
                        """)
                    let extras = ["public.extra_f()", "public.extra_t", "public.extra_v"]
                    let before = try await TableFingerprint.compute(t)
                    let error = await #expect(throws: FTBackupError.self) { try await RestoreRunner.run(options) }
                    #expect(error?.status == .usage)
                    for name in ["extra_t_tr_id_fkey", "view public.extra_v", "function public.extra_f()"] {
                        #expect(error?.message.contains(name) == true, "\(name) named in: \(error?.message ?? "")")
                    }
                    // Nothing was dropped.
                    #expect(try await Self.existing(t, extras) == extras)
                    #expect(TableFingerprint.differences(source: before, restored: try await TableFingerprint.compute(t)) == [])

                    // Without what depends on the restored tables, the target's own table stays, row and all.
                    try await t.execute("DROP VIEW public.extra_v; DROP FUNCTION public.extra_f(); ALTER TABLE public.extra_t DROP CONSTRAINT extra_t_tr_id_fkey")
                    let extraTable = try await TableFingerprint.compute(t).filter { $0.table == "extra_t" }
                    _ = try await RestoreRunner.run(options)
                    let after = try await TableFingerprint.compute(t)
                    #expect(TableFingerprint.differences(source: expected + extraTable, restored: after) == [])
                    #expect(extraTable.first?.rows == 1)
                }
            }
        }
    }
}

extension ChangeArchivalTests.PointInTimeTests {
    /// Adversarial review, defect 7: a sequence drawn on by explicit `nextval()` (no column default) came back
    /// as of the full after restore --at (1, the source at 5), and the next insert duplicated a key. It is set
    /// from the first heartbeat read after TIME (never behind the source at TIME) and named in a warning,
    /// since the archive cannot tell exactly where it stood.
    @Test func aSequenceDrawnWithoutAColumnDefaultIsNeverBehindAfterRestoreAt() async throws {
        try await ArchivedDatabase.with(prepare: "CREATE SEQUENCE public.s; CREATE TABLE public.u (id int PRIMARY KEY)") { a in
            _ = try await a.full()
            try await a.session.execute("INSERT INTO public.u SELECT nextval('public.s') FROM generate_series(1, 5)")
            let atT = try await a.instant()
            let sourceState = try await sequenceStates(a.session, ["public.s"])
            #expect(sourceState == ["public.s=5,true"])
            _ = try await a.incremental()
            try await TestServer.withDatabase(seeded: false) { target in
                let report = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: a.repo.path,
                                                                             showProgress: false), at: atT.0)
                let t = try await target.connect()
                defer { t.close() }
                #expect(TableFingerprint.differences(source: atT.1, restored: try await TableFingerprint.compute(t)) == [])
                #expect(try await sequenceStates(t, ["public.s"]) == sourceState)
                #expect(report.sequenceWarnings.contains { $0.contains("public.s (between 1 (not yet called) and 5; set to 5)") },
                        "\(report.sequenceWarnings)")
                // The application's next insert takes a new key.
                try await t.execute("INSERT INTO public.u SELECT nextval('public.s')")
            }
        }
    }
}

extension CommandLineTests {
    /// Adversarial review, defect 9: `--at 2026-13-01 …` was normalised to 2027-01-01 (month 00 to December
    /// of the year before) and restored that instant. Refused in one line, exit 64, the target untouched.
    @Test(arguments: ["2026-13-01 10:00 UTC", "2026-00-15T10:00:00Z", "2026-12-32 10:00 UTC"])
    func restoreAtRefusesAMonthOrDayOutOfRange(at: String) async throws {
        try await TestServer.withDatabase { source in
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                try await TestServer.withDatabase(seeded: false) { target in
                    let outcome = try await FTBackupBinary.run(["restore", "--at", at, "--target", target.connectionString.raw,
                                                          "--repo", repo.path, "--db", source.connectionString.raw])
                    #expect(outcome.status == 64, "\(outcome.stderr)")
                    #expect(outcome.stderr.split(separator: "\n").count == 1, "\(outcome.stderr)")
                    #expect(outcome.stderr.contains("is not a valid date and time"), "\(outcome.stderr)")
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(try await TableFingerprint.compute(t).isEmpty)
                }
            }
        }
    }
}

extension CommandLineTests {
    /// Adversarial review, defect 12: a COPY the target rejected part-way through a plain restore (here a
    /// `regclass` value naming a table of a schema not restored) exited 64, "bad usage", although the target
    /// was already half-built. A failure of the data phase after the target was changed is 65, one line
    /// naming the phase, the cause and the state it left.
    @Test func aCopyRejectedPartWayThroughARestoreIsAPartialRestoreNotBadUsage() async throws {
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute("""
                CREATE SCHEMA app; CREATE TABLE app.items (id int PRIMARY KEY);
                CREATE TABLE public.audit (id int PRIMARY KEY, rel regclass);
                INSERT INTO public.audit VALUES (1, 'app.items');
                CREATE TABLE public.plain (id int PRIMARY KEY); INSERT INTO public.plain VALUES (1);
                """)
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                try await TestServer.withDatabase(seeded: false) { target in
                    let outcome = try await FTBackupBinary.run(["restore", "--schema", "public", "--target", target.connectionString.raw,
                                                          "--repo", repo.path, "--db", source.connectionString.raw, "-j", "1"])
                    #expect(outcome.status == 65, "\(outcome.stderr)")
                    #expect(outcome.stderr.split(separator: "\n").filter { $0.hasPrefix("ftbackup: error:") }.count == 1, "\(outcome.stderr)")
                    #expect(outcome.stderr.contains("data phase:"), "\(outcome.stderr)")
                    #expect(outcome.stderr.contains("schema \"app\" does not exist"), "\(outcome.stderr)")
                    #expect(outcome.stderr.contains("half-built"), "\(outcome.stderr)")
                    // The target was changed (its tables were created): that is why it is not "bad usage".
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(try await TableFingerprint.compute(t).map(\.table).contains("audit"))
                }
            }
        }
    }
}

extension ChangeArchivalTests.PointInTimeTests {
    /// Adversarial review, defect 11: a database dropped and created again under its name (a new oid) was
    /// taken into the old repository: its incremental passes succeeded and info showed a healthy chain. Every
    /// writer now refuses it (exit 64) naming both oids, info reports the chain broken, and a full backup
    /// with `--reattach` continues the repository with it deliberately, keeping the former oid on record.
    @Test func aDatabaseCreatedAgainUnderItsNameIsRefusedUntilReattached() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let create = "CREATE TABLE public.t (id int PRIMARY KEY, v text); INSERT INTO public.t VALUES (1, 'first life')"
            let first = try await db.connect()
            try await first.execute(create)
            first.close()
            try await TestRepository.with { repo in
                _ = try await ChangeArchivalSetup.setup(db.connectionString, dryRun: false, fixReplicaIdentity: false)
                _ = try await BackupRunner.runFull(try .test(db, repo))
                _ = try await ChangeArchiver.runIncremental(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy())
                let formerOid = try #require(try RepositorySource.read(repo.repository.storage)).source.databaseOid
                _ = try await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false)

                let admin = try await TestServer.admin()
                try await admin.execute("DROP DATABASE \(db.name) WITH (FORCE)")
                try await admin.execute("CREATE DATABASE \(db.name)")
                admin.close()
                let second = try await db.connect()
                try await second.execute(create + "; UPDATE public.t SET v = 'second life'")
                second.close()
                _ = try await ChangeArchivalSetup.setup(db.connectionString, dryRun: false, fixReplicaIdentity: false)
                do {
                    let entriesBefore = try repo.repository.entries().count
                    let segmentsBefore = try ChangeSegmentManifest.all(repo.repository.storage).count

                    let incr = await #expect(throws: FTBackupError.self) {
                        _ = try await ChangeArchiver.runIncremental(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy())
                    }
                    #expect(incr?.status == .usage)
                    #expect(incr?.message.contains("oid \(formerOid)") == true && incr?.message.contains("created again") == true, "\(incr?.message ?? "")")
                    #expect(incr?.hint?.contains("--reattach") == true)
                    let full = await #expect(throws: FTBackupError.self) { _ = try await BackupRunner.runFull(try .test(db, repo)) }
                    #expect(full?.status == .usage)
                    #expect(try repo.repository.entries().count == entriesBefore)
                    #expect(try ChangeSegmentManifest.all(repo.repository.storage).count == segmentsBefore)
                    let info = try await FTBackupBinary.run(["info", "--db", db.connectionString.raw, "--repo", repo.path])
                    #expect(info.status == 69, "\(info.stdout) \(info.stderr)")
                    #expect(info.stderr.contains("is gone"), "\(info.stderr)")

                    // Deliberately continued: the full records the new oid, the former one is kept, and passes work again.
                    var options = try BackupOptions.test(db, repo)
                    options.reattach = true
                    _ = try await BackupRunner.runFull(options)
                    let source = try #require(try RepositorySource.read(repo.repository.storage))
                    #expect(source.formerOids == [formerOid])
                    #expect(source.source.databaseOid != formerOid)
                    _ = try await ChangeArchiver.runIncremental(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy())
                } catch {
                    _ = try? await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false)
                    throw error
                }
                _ = try await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false)
            }
        }
    }
}
