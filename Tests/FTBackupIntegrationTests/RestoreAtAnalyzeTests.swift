import Foundation
import Testing
@testable import FTBackupKit

extension ChangeArchivalTests.PointInTimeTests {
    /// Issue 14: after a replay, each table's ANALYZE runs on the -j workers as soon as its indexes are
    /// built (no sequential ANALYZE phase afterwards): every restored table is analyzed (as in a plain restore: tables with rows, not partitioned
    /// parents or materialized views), its indexes
    /// exist, and the database is exactly the source's at TIME.
    @Test func restoreAtAnalyzesEveryTableWithItsIndexBuildsAndIsExact() async throws {
        try await restoreAtIndexesAndStatistics(skipAnalyze: false)
    }

    /// `restore --at --skip-analyze`: every index is still built after the replay, no table is analyzed by the
    /// restore, and the database is exactly the source's at TIME.
    @Test func restoreAtWithSkipAnalyzeBuildsEveryIndexAndAnalyzesNoTable() async throws {
        try await restoreAtIndexesAndStatistics(skipAnalyze: true)
    }

    private func restoreAtIndexesAndStatistics(skipAnalyze: Bool) async throws {
        try await ArchivedDatabase.with(prepare: workloadSchemaSQL) { a in
            _ = try await a.full()
            try await writeWorkload(a.session, round: 1)
            try await writeWorkload(a.session, round: 2)
            let (at, expected) = try await a.instant()
            _ = try await a.incremental()
            try await TestServer.withDatabase(seeded: false) { target in
                var options = RestoreOptions(target: target.connectionString, repositoryPath: a.repo.path, jobs: 2, showProgress: false)
                options.skipAnalyze = skipAnalyze
                let report = try await PointInTimeRestore.run(options, at: at)
                let phases = try #require(report.fullRestore?.phases)
                #expect(phases["indexes"] != nil && phases["analyze"] == nil, "\(phases)")
                let t = try await target.connect()
                defer { t.close() }
                let tables = try await t.query("""
                    SELECT s.schemaname || '.' || s.relname AS name, s.analyze_count > 0 AS analyzed
                    FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
                    WHERE s.schemaname <> 'ftbackup' AND c.relkind = 'r' ORDER BY 1
                    """).rows
                #expect(!tables.isEmpty)
                let wrong = try tables.filter { try $0.bool("analyzed") == skipAnalyze }.map { try $0.requiredString("name") }
                #expect(wrong == [], skipAnalyze ? "analyzed although skipped: \(wrong)" : "not analyzed: \(wrong)")
                try await BackupRestoreTests.expectPartitionedStatistics(t, present: !skipAnalyze)
                let source = try await a.session.query("SELECT count(*) AS n FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'ftbackup')").first!.requiredInt("n")
                let restoredIndexes = try await t.query("SELECT count(*) AS n FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'ftbackup')").first!.requiredInt("n")
                #expect(restoredIndexes == source)
                let restored = try await TableFingerprint.compute(t)
                #expect(TableFingerprint.differences(source: expected, restored: restored) == [])
            }
        }
    }
}

extension ChangeArchivalTests.PointInTimeTests {
    /// Issue 14: a table the replay changes by fewer rows than would make autovacuum analyze it (50 + 10 % of its rows) is
    /// indexed and analyzed before the replay, as in a plain restore, and the replay's changes count towards its next
    /// autovacuum ANALYZE (`n_mod_since_analyze`); a table changed more is analyzed after the replay. A partitioned table
    /// is judged as one table too: one whose partitions each change a little but together by more than its threshold is
    /// analyzed after the replay (autovacuum never analyzes one: analyzed before, its statistics lacked the replayed rows
    /// for good, adv26 D1); one changed little, before it. Every table has its indexes, and the
    /// database is exactly the source's at TIME. The counts themselves are exact: a load's were reported after its
    /// table's ANALYZE, so every restored table looked wholly modified since (adv26 D4).
    @Test func aTableTheReplayChangesLittleIsAnalyzedBeforeItAndOneChangedMuchAfterIt() async throws {
        try await ArchivedDatabase.with(prepare: """
            CREATE TABLE public.light (id int PRIMARY KEY, v text); CREATE INDEX light_v ON public.light (v);
            CREATE TABLE public.heavy (id int PRIMARY KEY, v text); CREATE INDEX heavy_v ON public.heavy (v);
            INSERT INTO public.light SELECT g, md5(g::text) FROM generate_series(1, 2000) g;
            INSERT INTO public.heavy SELECT g, md5(g::text) FROM generate_series(1, 100) g;
            CREATE TABLE public.parted (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
            CREATE TABLE public.parted_1 PARTITION OF public.parted FOR VALUES IN (1);
            CREATE TABLE public.parted_2 PARTITION OF public.parted FOR VALUES IN (2);
            INSERT INTO public.parted SELECT g, 1 + g % 2, 'old' FROM generate_series(1, 2000) g;
            CREATE INDEX parted_v ON public.parted (v);
            CREATE TABLE public.grown (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
            CREATE TABLE public.grown_0 PARTITION OF public.grown FOR VALUES IN (0);
            CREATE TABLE public.grown_1 PARTITION OF public.grown FOR VALUES IN (1);
            CREATE TABLE public.grown_2 PARTITION OF public.grown FOR VALUES IN (2);
            INSERT INTO public.grown SELECT g, g % 3, 'old' FROM generate_series(1, 1500) g;
            CREATE INDEX grown_v ON public.grown (v);
            """) { a in
            _ = try await a.full()
            try await a.session.execute("""
                UPDATE public.light SET v = 'changed ' || id WHERE id <= 10;
                INSERT INTO public.heavy SELECT g, 'new ' || g FROM generate_series(101, 1100) g;
                UPDATE public.parted SET v = 'new' WHERE id <= 12 AND k = 1;
                INSERT INTO public.grown SELECT g, g % 3, 'new' FROM generate_series(1501, 1770) g;
                """)
            let (at, expected) = try await a.instant()
            _ = try await a.incremental()
            try await TestServer.withDatabase(seeded: false) { target in
                _ = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: a.repo.path, jobs: 2,
                                                                    showProgress: false), at: at)
                let t = try await target.connect()
                defer { t.close() }
                // The restore's sessions report their counts as they end, just after it returns.
                var stats: [String] = []
                let settled = try await Eventually.holds {
                    stats = try await t.query("""
                        SELECT relname || ' ' || analyze_count || ' ' || n_mod_since_analyze AS d FROM pg_stat_user_tables
                        WHERE schemaname = 'public' ORDER BY relname
                        """).rows.map { try $0.requiredString("d") }
                    // grown: 90 new rows in each 500-row partition (under 50 + 10 %), 270 in all (over 50 + 10 % of 1500).
                    return stats == ["grown 1 0", "grown_0 1 0", "grown_1 1 0", "grown_2 1 0",
                                     "heavy 1 0", "light 1 10", "parted 1 0", "parted_1 1 6", "parted_2 1 0"]
                }
                #expect(settled, "\(stats)")
                // Partitions' other indexes are built and attached with their table's (parted, before the replay) or after it
                // (grown): each attached to its parent's, every one valid.
                let indexes = try await t.query("""
                    SELECT string_agg(c.relname || ':' || i.indisvalid || ':' || coalesce(p.inhparent::regclass::text, '-'), ' ' ORDER BY c.relname) AS i
                    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid LEFT JOIN pg_inherits p ON p.inhrelid = c.oid
                    WHERE c.relnamespace = 'public'::regnamespace
                    """)
                #expect(try indexes.first?.string("i") == """
                    grown_0_pkey:true:grown_pkey grown_0_v_idx:true:grown_v grown_1_pkey:true:grown_pkey grown_1_v_idx:true:grown_v \
                    grown_2_pkey:true:grown_pkey grown_2_v_idx:true:grown_v grown_pkey:true:- grown_v:true:- heavy_pkey:true:- heavy_v:true:- \
                    light_pkey:true:- light_v:true:- parted_1_pkey:true:parted_pkey parted_1_v_idx:true:parted_v parted_2_pkey:true:parted_pkey \
                    parted_2_v_idx:true:parted_v parted_pkey:true:- parted_v:true:-
                    """)
                #expect(TableFingerprint.differences(source: expected, restored: try await TableFingerprint.compute(t)) == [])
            }
        }
    }
}

extension BackupRestoreTests {
    /// Every partitioned table (`audit.events`) has statistics over its whole hierarchy after a restore that analyzes, and
    /// none after `--skip-analyze`. Autovacuum never gathers them: restored copies lacked them for good (the source had them).
    static func expectPartitionedStatistics(_ t: DatabaseSession, present: Bool) async throws {
        let parents = try await t.query("""
            SELECT c.oid::regclass::text AS name, EXISTS (SELECT 1 FROM pg_statistic s WHERE s.starelid = c.oid AND s.stainherit) AS analyzed
            FROM pg_class c WHERE c.relkind = 'p' AND c.relnamespace::regnamespace::text <> 'ftbackup' ORDER BY 1
            """).rows
        #expect(try parents.contains { try $0.requiredString("name") == "audit.events" }, "no partitioned table to check")
        let wrong = try parents.filter { try $0.bool("analyzed") != present }.map { try $0.requiredString("name") }
        #expect(wrong == [], present ? "partitioned tables without statistics: \(wrong)" : "analyzed although skipped: \(wrong)")
    }

    /// Issue 14: `restore --skip-analyze` leaves planner statistics to autovacuum as `pg_restore` does: no
    /// restored table was analyzed by the restore, the summary says so, and the data is exact; the same
    /// backup restored without the flag has every table analyzed.
    @Test func skipAnalyzeLeavesStatisticsToAutovacuumAndRestoresExactly() async throws {
        try await TestServer.withDatabase { source in
            let session = try await source.connect()
            defer { session.close() }
            try await Fixtures.addFidelityObjects(session)
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                let expected = try await TableFingerprint.compute(session)
                let analyzedByRestore = """
                    SELECT s.schemaname || '.' || s.relname AS name, s.analyze_count > 0 AS analyzed
                    FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
                    WHERE s.schemaname <> 'ftbackup' AND c.relkind = 'r' ORDER BY 1
                    """
                for skip in [true, false] {
                    try await TestServer.withDatabase(seeded: false) { target in
                        let outcome = try await FTBackupBinary.run(["restore", "--target", target.connectionString.raw, "--repo", repo.path, "-j", "2"]
                                                             + (skip ? ["--skip-analyze"] : []))
                        #expect(outcome.status == 0, "\(outcome.stderr)")
                        #expect(outcome.stdout.contains("statistics: not gathered (--skip-analyze)") == skip, "\(outcome.stdout)")
                        let t = try await target.connect()
                        defer { t.close() }
                        let tables = try await t.query(analyzedByRestore).rows
                        #expect(tables.count > 10)
                        let analyzed = try tables.filter { try $0.bool("analyzed") == true }.map { try $0.requiredString("name") }
                        let notAnalyzed = try tables.filter { try $0.bool("analyzed") != true }.map { try $0.requiredString("name") }
                        if skip { #expect(analyzed == [], "\(analyzed)") } else { #expect(notAnalyzed == [], "\(notAnalyzed)") }
                        try await Self.expectPartitionedStatistics(t, present: !skip)
                        #expect(TableFingerprint.differences(source: expected, restored: try await TableFingerprint.compute(t)) == [])
                    }
                }
            }
        }
    }
}

extension BackupRestoreTests {
    /// Partition shapes adv24 broke the first version of the partitioned statistics with: every partition is analyzed exactly
    /// once and every partitioned table has statistics (a sub-partitioned table's middle level was analyzed again at the end,
    /// its partitions with it); a hierarchy with a foreign partition whose file is gone on the restore host is left to its
    /// local partitions' own ANALYZE (ANALYZE of the root read the file and failed the whole restore); and "pa.rt".c and
    /// pa."rt.c", one key when joined by a dot, are two hierarchies, both analyzed (one was never).
    @Test func everyPartitionIsAnalyzedOnceAndEveryPartitionedTableHasStatistics() async throws {
        let file = NSTemporaryDirectory() + "ftbackup-far-rows-\(UUID().uuidString).csv"
        try (1...100).map { "\($0),2,x" }.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o644)
        defer { try? FileManager.default.removeItem(atPath: file) }
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute("""
                CREATE SCHEMA pa; CREATE SCHEMA "pa.rt";
                CREATE TABLE pa.multi (id int, y int, k int, v text) PARTITION BY RANGE (y);
                CREATE TABLE pa.multi_a PARTITION OF pa.multi FOR VALUES FROM (0) TO (10) PARTITION BY LIST (k);
                CREATE TABLE pa.multi_a1 PARTITION OF pa.multi_a FOR VALUES IN (1);
                CREATE TABLE pa.multi_a2 PARTITION OF pa.multi_a FOR VALUES IN (2);
                CREATE TABLE pa.multi_b PARTITION OF pa.multi FOR VALUES FROM (10) TO (20);
                INSERT INTO pa.multi SELECT g, g % 20, 1 + g % 2, md5(g::text) FROM generate_series(1, 3000) g;
                CREATE EXTENSION file_fdw;
                CREATE SERVER far FOREIGN DATA WRAPPER file_fdw;
                CREATE TABLE pa.mixed (id int, k int, v text) PARTITION BY LIST (k);
                CREATE TABLE pa.mixed_1 PARTITION OF pa.mixed FOR VALUES IN (1);
                CREATE FOREIGN TABLE pa.mixed_2 PARTITION OF pa.mixed FOR VALUES IN (2) SERVER far OPTIONS (filename '\(file)', format 'csv');
                INSERT INTO pa.mixed_1 SELECT g, 1, 'y' FROM generate_series(1, 500) g;
                CREATE TABLE "pa.rt".c (id int, k int) PARTITION BY LIST (k);
                CREATE TABLE "pa.rt".c1 PARTITION OF "pa.rt".c FOR VALUES IN (1);
                CREATE TABLE pa."rt.c" (id int, k int) PARTITION BY LIST (k);
                CREATE TABLE pa."rt.c1" PARTITION OF pa."rt.c" FOR VALUES IN (1);
                INSERT INTO "pa.rt".c SELECT g, 1 FROM generate_series(1, 200) g;
                INSERT INTO pa."rt.c" SELECT g, 1 FROM generate_series(1, 300) g;
                """)
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                let expected = try await TableFingerprint.compute(s)
                try FileManager.default.removeItem(atPath: file)  // the restore host has no such file
                try await TestServer.withDatabase(seeded: false) { target in
                    let t = try await target.connect()
                    defer { t.close() }
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    let counts = try await t.query("""
                        SELECT s.schemaname || '|' || s.relname || '|' || s.analyze_count AS d FROM pg_stat_user_tables s
                        WHERE s.schemaname IN ('pa', 'pa.rt') ORDER BY 1
                        """).rows.map { try $0.requiredString("d") }
                    // Partitioned tables are listed too: each analyzed once (the middle level through its root), the root of the
                    // hierarchy with a foreign partition not at all.
                    #expect(counts == ["pa.rt|c1|1", "pa.rt|c|1", "pa|mixed_1|1", "pa|mixed|0", "pa|multi_a1|1", "pa|multi_a2|1", "pa|multi_a|1",
                                       "pa|multi_b|1", "pa|multi|1", "pa|rt.c1|1", "pa|rt.c|1"], "\(counts)")
                    let parents = try await t.query("""
                        SELECT c.oid::regclass::text || ' ' || EXISTS (SELECT 1 FROM pg_statistic s WHERE s.starelid = c.oid AND s.stainherit) AS d
                        FROM pg_class c WHERE c.relkind = 'p' AND c.relnamespace::regnamespace::text IN ('pa', '"pa.rt"') ORDER BY 1
                        """).rows.map { try $0.requiredString("d") }
                    // The hierarchy with a foreign partition: its root is not analyzed (its local partition is, on its own).
                    #expect(parents == ["\"pa.rt\".c true", "pa.\"rt.c\" true", "pa.mixed false", "pa.multi true", "pa.multi_a true"], "\(parents)")
                    #expect(TableFingerprint.differences(source: expected, restored: try await TableFingerprint.compute(t)) == [])
                }
            }
        }
    }
}

extension ChangeArchivalTests.PointInTimeTests {
    /// A target database with a statement_timeout (an application's setting, here 1 ms so every statement would hit it):
    /// `restore --at` still builds every index, analyzes and replays, exactly. The load sessions reset it, but the sessions of
    /// the index and ANALYZE phase after the replay, the main session and the end-phase ANALYZE did not (adv24 noticed).
    @Test func aTargetDatabasesStatementTimeoutCancelsNothingOfARestoreAt() async throws {
        try await ArchivedDatabase.with { a in
            _ = try await a.full()
            try await a.session.execute("UPDATE users.accounts SET last_seen_at = now() WHERE id IN (SELECT id FROM users.accounts ORDER BY id LIMIT 20)")
            let (at, expected) = try await a.instant()
            _ = try await a.incremental()
            try await TestServer.withDatabase(seeded: false) { target in
                let admin = try await TestServer.admin()
                defer { admin.close() }
                try await admin.execute("ALTER DATABASE \(try admin.escapeIdentifier(target.name)) SET statement_timeout = '1ms'")
                let report = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: a.repo.path,
                                                                             jobs: 2, showProgress: false), at: at)
                #expect(report.changesApplied > 0)
                try await admin.execute("ALTER DATABASE \(try admin.escapeIdentifier(target.name)) RESET statement_timeout")
                let t = try await target.connect()
                defer { t.close() }
                #expect(TableFingerprint.differences(source: expected, restored: try await TableFingerprint.compute(t)) == [])
                try await BackupRestoreTests.expectPartitionedStatistics(t, present: true)
            }
        }
    }
}
