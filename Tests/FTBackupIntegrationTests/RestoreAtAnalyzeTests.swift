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
