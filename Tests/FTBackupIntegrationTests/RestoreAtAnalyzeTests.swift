import Foundation
import Testing
@testable import FTBackupKit

extension ChangeArchivalTests.PointInTimeTests {
    /// Issue 14: after a replay, each table's ANALYZE runs on the -j workers as soon as its indexes are
    /// built (no sequential ANALYZE phase afterwards): every restored table is analyzed (as in a plain restore: tables with rows, not partitioned
    /// parents or materialized views), its indexes
    /// exist, and the database is exactly the source's at TIME.
    @Test func restoreAtAnalyzesEveryTableWithItsIndexBuildsAndIsExact() async throws {
        try await ArchivedDatabase.with(prepare: workloadSchemaSQL) { a in
            _ = try await a.full()
            try await writeWorkload(a.session, round: 1)
            try await writeWorkload(a.session, round: 2)
            let (at, expected) = try await a.instant()
            _ = try await a.incremental()
            try await TestServer.withDatabase(seeded: false) { target in
                let report = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: a.repo.path, jobs: 2,
                                                                             showProgress: false), at: at)
                let phases = try #require(report.fullRestore?.phases)
                #expect(phases["indexes"] != nil && phases["analyze"] == nil, "\(phases)")
                let t = try await target.connect()
                defer { t.close() }
                let unanalyzed = try await t.query("""
                    SELECT s.schemaname || '.' || s.relname AS name FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
                    WHERE s.analyze_count = 0 AND s.schemaname <> 'ftbackup' AND c.relkind = 'r' ORDER BY 1
                    """).rows.map { try $0.requiredString("name") }
                #expect(unanalyzed == [], "\(unanalyzed)")
                let source = try await a.session.query("SELECT count(*) AS n FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'ftbackup')").first!.requiredInt("n")
                let restoredIndexes = try await t.query("SELECT count(*) AS n FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'ftbackup')").first!.requiredInt("n")
                #expect(restoredIndexes == source)
                let restored = try await TableFingerprint.compute(t)
                #expect(TableFingerprint.differences(source: expected, restored: restored) == [])
            }
        }
    }
}
