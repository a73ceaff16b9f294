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
    /// A newline in the unlogged table's name is listed as a space by `pg_restore --list`, so the listing does not say the
    /// key is on an unlogged table; the catalog does, once the keys are in (adv28 D2).
    @Test(arguments: ["cache", "cache\nx"])
    func anUnloggedTablesKeyIsNeverLeftViolated(name: String) async throws {
        let table = "fku.\"\(name.replacingOccurrences(of: "\"", with: "\"\""))\""
        try await ArchivedDatabase.with(prepare: """
            CREATE SCHEMA fku;
            CREATE TABLE fku.parent (id int PRIMARY KEY);
            CREATE UNLOGGED TABLE \(table) (id int PRIMARY KEY, parent_id int REFERENCES fku.parent ON DELETE CASCADE);
            INSERT INTO fku.parent SELECT generate_series(1, 10);
            INSERT INTO \(table) SELECT g, g FROM generate_series(1, 10) g;
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
                    SELECT count(*) AS n FROM pg_constraint WHERE conname = $1 AND convalidated
                    """, [name + "_parent_id_fkey"]).first!.int64("n")
                let orphans = try await t.query("""
                    SELECT count(*) AS n FROM \(table) c WHERE NOT EXISTS (SELECT 1 FROM fku.parent p WHERE p.id = c.parent_id)
                    """).first!.int64("n")
                if let failure {
                    #expect(failure.message.contains("_parent_id_fkey"), "\(failure.message)")
                    #expect(key == 0)
                } else {
                    #expect(orphans == 0, "the restore succeeded with \(table)'s key violated")
                }
            }
        }
    }

    /// The catalog's check behind the listing's: with the listing's check switched off (failpoint), the key of an unlogged
    /// table whose name has a newline is added before the replay; the catalog shows it reaching an unlogged table, every
    /// key the pass added is dropped, and all wait for the replay, whose rows break that key: the restore fails naming
    /// it, with no key left violated.
    @Test func theCatalogTakesBackAnUnloggedTablesKeyTheListingHid() async throws {
        try await ArchivedDatabase.with(prepare: """
            CREATE SCHEMA fkc;
            CREATE TABLE fkc.parent (id int PRIMARY KEY);
            CREATE TABLE fkc.child (id int PRIMARY KEY, parent_id int REFERENCES fkc.parent);
            CREATE UNLOGGED TABLE fkc."cache\nx" (id int PRIMARY KEY, parent_id int REFERENCES fkc.parent ON DELETE CASCADE);
            INSERT INTO fkc.parent SELECT generate_series(1, 10);
            INSERT INTO fkc.child SELECT g, g FROM generate_series(1, 5) g;
            INSERT INTO fkc."cache\nx" SELECT g, g FROM generate_series(6, 10) g;
            """) { a in
            _ = try await a.full()
            try await a.session.execute("DELETE FROM fkc.parent WHERE id = 8")
            let (at, _) = try await a.instant()
            _ = try await a.incremental()
            try await TestServer.withDatabase(seeded: false) { target in
                let outcome = try await FTBackupBinary.run(
                    ["restore", "--repo", a.repo.path, "--at", Timestamps.displayExact(at), "--target", "\(try TestServer.dsn) dbname=\(target.name)"],
                    environment: ["FTBACKUP_FAILPOINT": "restore.keys-trust-listing"])
                #expect(outcome.stderr.contains("foreign keys wait for the replay: one reaches an unlogged table"), "\(outcome.stderr)")
                #expect(outcome.status != 0, "\(outcome.stderr)")
                #expect(outcome.stderr.contains("_parent_id_fkey"), "\(outcome.stderr)")
                let t = try await target.connect()
                defer { t.close() }
                let key = try await t.query("SELECT count(*) AS n FROM pg_constraint WHERE conname = $1", ["cache\nx_parent_id_fkey"]).first!.int64("n")
                #expect(key == 0)
            }
        }
    }

    /// The referenced key's name has a newline, which `pg_restore --list` prints as a space: the restore does not
    /// recognise its entry and leaves the key to post-data, so a key referencing it cannot be added before the replay.
    /// The early pass fails as a whole and every key waits for the replay, as before: the restore succeeds, exact (adv28 D1).
    @Test func aKeyWhoseReferencedKeyIsLeftToPostDataWaitsForTheReplay() async throws {
        try await ArchivedDatabase.with(prepare: """
            CREATE SCHEMA fkn;
            CREATE TABLE fkn.parent (id int CONSTRAINT "parent\npk" PRIMARY KEY);
            CREATE TABLE fkn.child (id int PRIMARY KEY, parent_id int REFERENCES fkn.parent);
            INSERT INTO fkn.parent SELECT generate_series(1, 1000);
            INSERT INTO fkn.child SELECT g, 1 + g % 1000 FROM generate_series(1, 5000) g;
            """) { a in
            _ = try await a.full()
            let unloggedAtFull = try await a.unloggedFingerprints()
            try await a.session.execute("UPDATE fkn.child SET parent_id = 7 WHERE id = 3")
            let (at, expected) = try await a.instant()
            _ = try await a.incremental()
            try await Self.restoreExactly(a, at: at, expected: expected.replacing(unloggedAtFull), schema: "fkn", keys: 1)
        }
    }

    /// A row of the full broke a key (written as a replica, which checks none) and the source mended it before T: the keys
    /// cannot be added before the replay, so they wait for it, and the restore as of T succeeds, exact (adv28 D3).
    @Test func keysTheFullBreaksAndTMendsWaitForTheReplay() async throws {
        try await ArchivedDatabase.with(prepare: """
            CREATE SCHEMA fko;
            CREATE TABLE fko.parent (id int PRIMARY KEY);
            CREATE TABLE fko.child (id int PRIMARY KEY, parent_id int REFERENCES fko.parent);
            INSERT INTO fko.parent SELECT generate_series(1, 100);
            INSERT INTO fko.child SELECT g, g FROM generate_series(1, 100) g;
            SET session_replication_role = replica;
            INSERT INTO fko.child VALUES (1000, 999);
            SET session_replication_role = origin;
            """) { a in
            _ = try await a.full()
            let unloggedAtFull = try await a.unloggedFingerprints()
            try await a.session.execute("INSERT INTO fko.parent VALUES (999)")
            let (at, expected) = try await a.instant()
            _ = try await a.incremental()
            try await Self.restoreExactly(a, at: at, expected: expected.replacing(unloggedAtFull), schema: "fko", keys: 1)
        }
    }

    /// A LATIN9 database's non-ASCII names are misread in the dump's listing (as UTF-8), so the restore does not recognise
    /// the key `café_pkey` and leaves it to post-data: the keys wait for the replay, and the restore succeeds, exact (adv28 D1).
    @Test func aLatin9DatabasesKeysWithNonASCIINamesWaitForTheReplay() async throws {
        let latin9 = "TEMPLATE template0 ENCODING 'LATIN9' LC_COLLATE 'C' LC_CTYPE 'C'"
        try await ServerWideResource.replicationSlots.shared {
            try await TestServer.withDatabase(seeded: false, options: latin9) { db in
                let session = try await db.connect("writer")
                defer { session.close() }
                try await session.execute("""
                    CREATE TABLE "café" (id int PRIMARY KEY, nom text);
                    CREATE TABLE child (id int PRIMARY KEY, cafe_id int REFERENCES "café" ON DELETE CASCADE);
                    INSERT INTO "café" SELECT g, 'nº ' || g FROM generate_series(1, 500) g;
                    INSERT INTO child SELECT g, 1 + g % 500 FROM generate_series(1, 2000) g;
                    """)
                try await TestRepository.with { repo in
                    _ = try await ChangeArchivalSetup.setup(db.connectionString, dryRun: false, fixReplicaIdentity: true)
                    do {
                        try await Self.latin9Restore(db, session, repo, options: latin9)
                    } catch {
                        _ = try? await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false)
                        throw error
                    }
                    _ = try await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false)
                }
            }
        }
    }

    static func latin9Restore(_ db: TestDatabase, _ session: DatabaseSession, _ repo: TestRepository, options latin9: String) async throws {
        _ = try await BackupRunner.runFull(try .test(db, repo))
        // Only the ASCII-named table changes: archival cannot decode a change of a table with a non-ASCII name in a LATIN9
        // database (names are read as UTF-8 there; found with this test, left as it was, see the session note).
        try await session.execute("UPDATE child SET cafe_id = 7 WHERE id = 3; DELETE FROM child WHERE id = 9")
        let expected = try await TableFingerprint.compute(session)
        let at = try await session.query("SELECT extract(epoch FROM clock_timestamp()) AS t").first!.epochDate("t")!
        _ = try await ChangeArchiver.runIncremental(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy())
        try await restoreExactly(repo.path, at: at, expected: expected, schema: "public", keys: 1, targetOptions: latin9)
    }

    /// Restores `a` as at `at` into a fresh database: it succeeds, equals `expected`, and `schema` has `keys` validated keys.
    static func restoreExactly(_ a: ArchivedDatabase, at: Date, expected: [TableFingerprint], schema: String, keys: Int64) async throws {
        try await restoreExactly(a.repo.path, at: at, expected: expected, schema: schema, keys: keys)
    }

    static func restoreExactly(_ repository: String, at: Date, expected: [TableFingerprint], schema: String, keys: Int64,
                               targetOptions: String = "") async throws {
        try await TestServer.withDatabase(seeded: false, options: targetOptions) { target in
            _ = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: repository,
                                                                showProgress: false), at: at)
            let t = try await target.connect()
            defer { t.close() }
            let restored = try await TableFingerprint.compute(t)
            #expect(TableFingerprint.differences(source: expected, restored: restored) == [])
            let validated = try await t.query("""
                SELECT count(*) AS n FROM pg_constraint WHERE contype = 'f' AND convalidated AND connamespace = $1::regnamespace
                """, [schema]).first!.int64("n")
            #expect(validated == keys)
        }
    }
}
