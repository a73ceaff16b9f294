import Foundation
import Testing
@testable import FTBackupKit

/// A whole-database restore --at adds the backup's foreign keys before its replay (`ForeignKeysBeforeReplay`): the
/// replay, as a replica, must then bring every table to T exactly, cascades included, and the keys must hold there.
@Suite struct ForeignKeysBeforeReplayTests {
    static let schemaSQL = """
        CREATE SCHEMA fkr;
        CREATE TABLE fkr.parent (id int PRIMARY KEY, code text UNIQUE NOT NULL);
        CREATE TABLE fkr.child (id int PRIMARY KEY,
            parent_id int REFERENCES fkr.parent ON DELETE CASCADE ON UPDATE CASCADE,
            parent_code text REFERENCES fkr.parent (code) ON UPDATE CASCADE ON DELETE SET NULL);
        CREATE TABLE fkr.grandchild (id int PRIMARY KEY, child_id int NOT NULL REFERENCES fkr.child ON DELETE CASCADE);
        CREATE TABLE fkr."Odd ""Referrer"" table" (id int PRIMARY KEY, parent_id int REFERENCES fkr.parent DEFERRABLE INITIALLY DEFERRED);
        INSERT INTO fkr.parent SELECT g, 'c' || g FROM generate_series(1, 2000) g;
        INSERT INTO fkr.child SELECT g, 1 + g % 2000, 'c' || (1 + (g + 7) % 2000) FROM generate_series(1, 20000) g;
        INSERT INTO fkr.grandchild SELECT g, 1 + g % 20000 FROM generate_series(1, 40000) g;
        INSERT INTO fkr."Odd ""Referrer"" table" SELECT g, 5 + 10 * (g % 200) FROM generate_series(1, 1000) g;
        """

    /// The keys are added before the replay, which then deletes parents (their children and grandchildren deleted by the
    /// source's cascades, replayed as rows), changes keys referenced by code and id, and moves rows between parents: the
    /// restore is exact, and every key is there, validated, holding. Then the family is truncated and refilled: the keys
    /// wait for that replay (its tables are analyzed after it), and the restore is exact too.
    @Test func keysAddedBeforeTheReplayHoldAtTAndItsCascadesAreExact() async throws {
        try await ArchivedDatabase.with(prepare: Self.schemaSQL) { a in
            _ = try await a.full()
            let unloggedAtFull = try await a.unloggedFingerprints()
            try await a.session.execute("""
                DELETE FROM fkr.parent WHERE id % 100 = 0;
                UPDATE fkr.parent SET id = id + 10000, code = code || '!' WHERE id % 100 = 1;
                UPDATE fkr.child SET parent_id = 2 WHERE id % 131 = 0;
                BEGIN; DELETE FROM fkr.parent WHERE id = 3; INSERT INTO fkr."Odd ""Referrer"" table" VALUES (5000, 3); DELETE FROM fkr."Odd ""Referrer"" table" WHERE parent_id = 3; COMMIT;
                """)
            let changed = try await a.instant()
            // Sealed here: the segments up to the first instant do not hold the truncation (their footprint would).
            _ = try await a.incremental()
            try await a.session.execute("""
                TRUNCATE fkr.parent, fkr.child, fkr.grandchild, fkr."Odd ""Referrer"" table";
                INSERT INTO fkr.parent VALUES (1, 'again');
                INSERT INTO fkr.child VALUES (1, 1, 'again');
                INSERT INTO fkr.grandchild VALUES (1, 1);
                """)
            let truncated = try await a.instant()
            _ = try await a.incremental()
            for (at, expected) in [changed, truncated] {
                try await TestServer.withDatabase(seeded: false) { target in
                    let report = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: a.repo.path,
                                                                                 showProgress: false), at: at)
                    // The first instant's replay changes every table by less than would make autovacuum analyze it
                    // (`ReplayFootprint`): all are analyzed before the replay, and the keys checked then. A truncated
                    // table is analyzed after it, and the keys wait for the replay as before.
                    #expect((report.fullRestore?.phases["foreign-keys"] != nil) == (at == changed.0), "at \(Timestamps.iso8601UTC(at))")
                    #expect(report.changesApplied > 0)
                    let t = try await target.connect()
                    defer { t.close() }
                    let restored = try await TableFingerprint.compute(t)
                    #expect(TableFingerprint.differences(source: expected.replacing(unloggedAtFull), restored: restored) == [])
                    let keys = try await t.query("""
                        SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f' AND connamespace = 'fkr'::regnamespace ORDER BY 1
                        """).rows.map { (try $0.requiredString("conname"), try $0.bool("convalidated") == true) }
                    #expect(keys.map(\.0) == ["Odd \"Referrer\" table_parent_id_fkey", "child_parent_code_fkey", "child_parent_id_fkey", "grandchild_child_id_fkey"])
                    #expect(keys.allSatisfy { $0.1 })
                    // Every key holds: no row references a missing one.
                    let orphans = try await t.query("""
                        SELECT (SELECT count(*) FROM fkr.child c WHERE c.parent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM fkr.parent p WHERE p.id = c.parent_id))
                             + (SELECT count(*) FROM fkr.child c WHERE c.parent_code IS NOT NULL AND NOT EXISTS (SELECT 1 FROM fkr.parent p WHERE p.code = c.parent_code))
                             + (SELECT count(*) FROM fkr.grandchild g WHERE NOT EXISTS (SELECT 1 FROM fkr.child c WHERE c.id = g.child_id))
                             + (SELECT count(*) FROM fkr."Odd ""Referrer"" table" o WHERE o.parent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM fkr.parent p WHERE p.id = o.parent_id)) AS n
                        """).first!.int64("n")
                    #expect(orphans == 0)
                }
            }
        }
    }

    /// An unlogged table's rows come back as the full had them (logical decoding carries none of its changes), while
    /// the table it references moves on to T: here the source's cascade deleted a row of it the restore still has. Its
    /// key must not be added before the replay, where it would pass and then be broken by it: the restore either fails
    /// naming the key or ends with the key holding, never with a key its rows violate.
    @Test func anUnloggedTablesKeyIsNeverLeftViolated() async throws {
        try await ArchivedDatabase.with(prepare: """
            CREATE SCHEMA fku;
            CREATE TABLE fku.parent (id int PRIMARY KEY);
            CREATE UNLOGGED TABLE fku.cache (id int PRIMARY KEY, parent_id int REFERENCES fku.parent ON DELETE CASCADE);
            INSERT INTO fku.parent SELECT generate_series(1, 10);
            INSERT INTO fku.cache SELECT g, g FROM generate_series(1, 10) g;
            """) { a in
            _ = try await a.full()
            try await a.session.execute("DELETE FROM fku.parent WHERE id = 3")
            let (at, _) = try await a.instant()
            _ = try await a.incremental()
            try await TestServer.withDatabase(seeded: false) { target in
                var failure: FTBackupError?
                do {
                    _ = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: a.repo.path,
                                                                        showProgress: false), at: at)
                } catch let error as FTBackupError {
                    failure = error
                }
                let t = try await target.connect()
                defer { t.close() }
                let key = try await t.query("""
                    SELECT count(*) AS n FROM pg_constraint WHERE conname = 'cache_parent_id_fkey' AND convalidated
                    """).first!.int64("n")
                let orphans = try await t.query("""
                    SELECT count(*) AS n FROM fku.cache c WHERE NOT EXISTS (SELECT 1 FROM fku.parent p WHERE p.id = c.parent_id)
                    """).first!.int64("n")
                if let failure {
                    #expect(failure.message.contains("cache_parent_id_fkey"), "\(failure.message)")
                    #expect(key == 0)
                } else {
                    #expect(orphans == 0, "the restore succeeded with fku.cache's key violated")
                }
            }
        }
    }
}
