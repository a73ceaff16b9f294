import Foundation
import Testing
@testable import FTBackupKit

extension ChangeArchivalTests.PointInTimeTests {
    /// Replay keeps at most `preparedStatements` prepared statements on the target: a keyless (REPLICA
    /// IDENTITY FULL) table whose updates and deletes come in many shapes of NULLs, keyed updates and
    /// multi-row inserts, replayed with a limit of 2 (deallocated and prepared again over and over),
    /// give exactly the source's state, as they do without the limit.
    @Test func replayUnderASmallPreparedStatementLimitIsExact() async throws {
        let schema = """
            \(replayPipelineSchemaSQL)
            CREATE TABLE rp.wide (a int, b text, c numeric, d date, e jsonb, f boolean);
            INSERT INTO rp.wide SELECT g, CASE WHEN g % 2 = 0 THEN 'b' || g END, CASE WHEN g % 3 = 0 THEN g END,
                CASE WHEN g % 5 = 0 THEN DATE '2026-01-01' + g END, CASE WHEN g % 7 = 0 THEN jsonb_build_object('g', g) END, g % 4 = 0
            FROM generate_series(1, 40) g;
            """
        try await ArchivedDatabase.with(prepare: schema) { a in
            _ = try await a.full()
            var instants: [(Date, [TableFingerprint])] = []
            for n in 1...6 {
                instants.append(try await a.step("""
                    BEGIN;
                    UPDATE rp.wide SET f = NOT coalesce(f, false) WHERE a % 6 = \(n % 6);
                    DELETE FROM rp.wide WHERE a = \(n * 5);
                    INSERT INTO rp.wide SELECT 100 * \(n) + g, NULL, g, NULL, NULL, NULL FROM generate_series(1, \(n)) g;
                    COMMIT;
                    """))
                instants.append(try await a.step(mixedTransaction(n)))
            }
            _ = try await a.incremental()
            for index in [5, instants.count - 1] {
                let limited = try await a.restoreRP(at: instants[index].0, grouping: ReplayGrouping(preparedStatements: 2))
                #expect(TableFingerprint.differences(source: instants[index].1, restored: limited) == [], "limit 2, at step \(index + 1)")
            }
            let unlimited = try await a.restoreRP(at: instants.last!.0, grouping: .standard)
            #expect(TableFingerprint.differences(source: instants.last!.1, restored: unlimited) == [])
        }
    }
}
