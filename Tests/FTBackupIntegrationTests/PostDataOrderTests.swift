import Foundation
import Testing
@testable import FTBackupKit

extension BackupRestoreTests {
    /// adv24 D5: a sub-partitioned table with an index and a foreign key on its root. pg_restore `--jobs` ran `ALTER INDEX …
    /// ATTACH PARTITION` beside `ALTER TABLE root ADD FOREIGN KEY` (its scheduler sees no table lock in an attachment), each
    /// waited for the other's lock, and the server ended one as a deadlock: 3 restores in 6 failed half-built. Post-data
    /// then built and attached the indexes first; the restore now builds and attaches them itself, each after its
    /// partition's rows, and a restore this small runs post-data on one connection. Six restores at -j2, each whole: the
    /// key valid, every index attached and valid, the rows exact.
    @Test func aSubPartitionedTableWithAnIndexAndAForeignKeyOnItsRootRestoresAtJ2EveryTime() async throws {
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute("""
                CREATE SCHEMA app;
                CREATE TABLE app.acct (id int PRIMARY KEY, k int);
                CREATE TABLE app.m (id int, k int, acct int, v text, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
                CREATE TABLE app.m_a PARTITION OF app.m FOR VALUES IN (1, 2) PARTITION BY LIST (k);
                CREATE TABLE app.m_a1 PARTITION OF app.m_a FOR VALUES IN (1);
                CREATE TABLE app.m_a2 PARTITION OF app.m_a FOR VALUES IN (2);
                CREATE TABLE app.m_d PARTITION OF app.m DEFAULT;
                CREATE INDEX m_acct ON app.m (acct);
                COMMENT ON INDEX app.m_acct IS 'by account';
                ALTER TABLE app.m ADD CONSTRAINT m_acct_fkey FOREIGN KEY (acct) REFERENCES app.acct (id);
                COMMENT ON CONSTRAINT m_acct_fkey ON app.m IS 'every row has its account';
                INSERT INTO app.acct SELECT g, g FROM generate_series(1, 100) g;
                INSERT INTO app.m SELECT g, 1 + g % 4, 1 + g % 100, md5(g::text) FROM generate_series(1, 30000) g;
                """)
            let shape = """
                SELECT (SELECT string_agg(c.relname || ':' || i.indisvalid || ':' || coalesce(p.inhparent::regclass::text, '-'), ' ' ORDER BY c.relname)
                        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid LEFT JOIN pg_inherits p ON p.inhrelid = c.oid
                        WHERE c.relnamespace = 'app'::regnamespace) AS indexes,
                       (SELECT string_agg(conrelid::regclass::text || ':' || conname || ':' || convalidated, ' ' ORDER BY conrelid::regclass::text, conname)
                        FROM pg_constraint WHERE contype = 'f' AND connamespace = 'app'::regnamespace) AS keys,
                       obj_description('app.m_acct'::regclass, 'pg_class') || ' / '
                       || (SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint WHERE conname = 'm_acct_fkey' AND conrelid = 'app.m'::regclass) AS comments
                """
            let expectedShape = try await s.query(shape).rows.first!
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                let expected = try await TableFingerprint.compute(s)
                for attempt in 1...6 {
                    try await TestServer.withDatabase(seeded: false) { target in
                        _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path,
                                                                       jobs: 2, showProgress: false))
                        let t = try await target.connect()
                        defer { t.close() }
                        let restored = try await t.query(shape).rows.first!
                        for column in ["indexes", "keys", "comments"] {
                            #expect(try restored.string(column) == (try expectedShape.string(column)), "attempt \(attempt): \(column)")
                        }
                        #expect(TableFingerprint.differences(source: expected, restored: try await TableFingerprint.compute(t)) == [])
                    }
                }
            }
        }
    }

    /// adv25 D3: a table of the restored schema is in a publication. pg_restore --schema keeps the membership but not the
    /// publication, and `ALTER PUBLICATION … ADD TABLE` failed post-data with every row loaded, the target half-built. Into a
    /// fresh database the membership is left out with a warning; in place (`--clean`), the publication is there and the
    /// table is in it again.
    @Test func aSchemaRestoreOfATableInAPublicationSucceedsInAFreshDatabaseAndKeepsItsMembershipInPlace() async throws {
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute("""
                CREATE SCHEMA app; CREATE SCHEMA other;
                CREATE TABLE app.t (id int PRIMARY KEY, v text);
                CREATE TABLE other.u (id int PRIMARY KEY);
                INSERT INTO app.t SELECT g, md5(g::text) FROM generate_series(1, 500) g;
                CREATE PUBLICATION "app pub" FOR TABLE app.t, other.u;
                """)
            let members = "SELECT string_agg(pubname || ':' || schemaname || '.' || tablename, ' ' ORDER BY schemaname, tablename) AS m FROM pg_publication_tables"
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                let expected = try await TableFingerprint.compute(s, schemas: ["app"])
                try await TestServer.withDatabase(seeded: false) { target in
                    let report = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path,
                                                                            schemas: ["app"], showProgress: false))
                    // Named once, for the restored schema's table only.
                    #expect(report.warnings?.filter { $0.contains("no such publication") } == [
                        "publication table app pub t not restored: the target has no such publication (a --schema restore does not create publications)"
                    ], "\(report.warnings ?? [])")
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(TableFingerprint.differences(source: expected, restored: try await TableFingerprint.compute(t, schemas: ["app"])) == [])
                }
                _ = try await RestoreRunner.run(RestoreOptions(target: source.connectionString, repositoryPath: repo.path, schemas: ["app"],
                                                               clean: true, confirmed: true, showProgress: false))
                let inPlace = try await s.query(members).rows.first?.string("m")
                #expect(inPlace == "app pub:app.t app pub:other.u", "\(inPlace ?? "none")")
                #expect(TableFingerprint.differences(source: expected, restored: try await TableFingerprint.compute(s, schemas: ["app"])) == [])
            }
        }
    }
}
