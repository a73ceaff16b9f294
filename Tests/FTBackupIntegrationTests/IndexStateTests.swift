import Foundation
import Testing
@testable import FTBackupKit

/// Catalog state that lives in index and constraint definitions, and indexes a failed
/// `CREATE INDEX CONCURRENTLY` left invalid (issue 10, items 2 and 3).
enum IndexStateFixture {
    /// A replica identity on a unique index that backs no constraint, CLUSTER ON, an index statistics
    /// target, comments on indexes and on primary-key and unique constraints; a partitioned table
    /// (with a DEFAULT partition) whose partitions' keys replay finds rows by.
    static let sql = """
        CREATE SCHEMA idx_state;
        CREATE TABLE idx_state.accounts (id int PRIMARY KEY, email text NOT NULL, code text NOT NULL, note text,
                                         CONSTRAINT accounts_code_key UNIQUE (code));
        CREATE UNIQUE INDEX accounts_email_key ON idx_state.accounts (email);
        ALTER TABLE idx_state.accounts REPLICA IDENTITY USING INDEX accounts_email_key;
        CREATE INDEX accounts_lower_note ON idx_state.accounts (lower(note));
        ALTER TABLE idx_state.accounts CLUSTER ON accounts_lower_note;
        ALTER INDEX idx_state.accounts_lower_note ALTER COLUMN 1 SET STATISTICS 500;
        COMMENT ON INDEX idx_state.accounts_lower_note IS 'notes, lower-cased';
        COMMENT ON INDEX idx_state.accounts_email_key IS 'the replica identity';
        COMMENT ON CONSTRAINT accounts_pkey ON idx_state.accounts IS 'the primary key';
        COMMENT ON CONSTRAINT accounts_code_key ON idx_state.accounts IS 'codes are unique';
        INSERT INTO idx_state.accounts SELECT g, 'user' || g || '@example.com', 'c' || g, 'Note ' || g FROM generate_series(1, 500) g;
        CREATE TABLE idx_state.readings (id int, at date, v int, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
        CREATE TABLE idx_state.readings_2025 PARTITION OF idx_state.readings FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        CREATE TABLE idx_state.readings_default PARTITION OF idx_state.readings DEFAULT;
        CREATE INDEX readings_v ON idx_state.readings (v);
        COMMENT ON CONSTRAINT readings_pkey ON idx_state.readings IS 'the partitioned key';
        COMMENT ON CONSTRAINT readings_2025_pkey ON idx_state.readings_2025 IS 'a partition''s key';
        COMMENT ON INDEX idx_state.readings_v IS 'a partitioned index';
        INSERT INTO idx_state.readings SELECT g, date '2025-01-01' + g % 700, g FROM generate_series(1, 2000) g;
        """

    /// `pg_dump --schema-only` (optionally of one schema), without its random \\restrict keys.
    static func ddl(_ database: ConnectionString, schema: String? = nil) throws -> String {
        let pgDump = try PostgresTools.path(of: "pg_dump", serverVersionNumber: 150000)
        let child = database.forChildProcess()
        var output: [UInt8] = []
        try PostgresTools.run(pgDump, ["--schema-only", "--no-password", "--dbname=\(child.conninfo)"] + (schema.map { ["--schema=\($0)"] } ?? []),
                              environment: child.environment) { output.append(contentsOf: $0) }
        return String(decoding: output, as: UTF8.self).split(separator: "\n")
            .filter { !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }.joined(separator: "\n")
    }

    /// The state the restore used to lose, as the catalog tells it (so a failure says which part).
    static func state(_ session: DatabaseSession) async throws -> [String] {
        try await session.query("""
            SELECT c.relname || ' replident=' || c.relreplident::text AS s FROM pg_class c WHERE c.relnamespace = 'idx_state'::regnamespace AND c.relkind = 'r'
            UNION ALL SELECT ci.relname || coalesce(' comment=' || obj_description(ci.oid, 'pg_class'), '')
                   || CASE WHEN i.indisclustered THEN ' clustered' ELSE '' END || CASE WHEN i.indisreplident THEN ' replident' ELSE '' END
                   || coalesce(' stats=' || (SELECT string_agg(a.attstattarget::text, ',') FROM pg_attribute a WHERE a.attrelid = ci.oid), '')
              FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid WHERE ci.relnamespace = 'idx_state'::regnamespace
            UNION ALL SELECT conname || ' comment=' || coalesce(obj_description(oid, 'pg_constraint'), '-') FROM pg_constraint
              WHERE connamespace = 'idx_state'::regnamespace AND contype IN ('p', 'u')
            ORDER BY 1
            """).rows.map { try $0.requiredString("s") }
    }

    /// An UPDATE under a publication needs the replica identity (and a partition's key) to be there.
    static func updateUnderAPublication(_ session: DatabaseSession) async throws {
        try await session.execute("""
            CREATE PUBLICATION everything FOR ALL TABLES;
            UPDATE idx_state.accounts SET note = 'updated' WHERE id = 1;
            UPDATE idx_state.readings SET v = -v WHERE id = 2;
            DROP PUBLICATION everything;
            """)
    }
}

@Suite struct IndexStateTests {
    @Test func fullRestoreKeepsReplicaIdentityClusterStatisticsAndComments() async throws {
        try await TestServer.withDatabase { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute(IndexStateFixture.sql)
            let expectedState = try await IndexStateFixture.state(s)
            #expect(expectedState.contains { $0.hasPrefix("accounts_email_key comment=the replica identity replident") })
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                // The whole database: DDL identical to the source's.
                try await TestServer.withDatabase(seeded: false) { target in
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(try await IndexStateFixture.state(t) == expectedState)
                    #expect(try IndexStateFixture.ddl(target.connectionString) == IndexStateFixture.ddl(source.connectionString))
                    #expect(TableFingerprint.differences(source: try await TableFingerprint.compute(s),
                                                         restored: try await TableFingerprint.compute(t)) == [])
                    try await IndexStateFixture.updateUnderAPublication(t)
                }
                // One schema into a database that has the others.
                try await TestServer.withDatabase { target in
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path,
                                                                   schemas: ["idx_state"], showProgress: false))
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(try await IndexStateFixture.state(t) == expectedState)
                    #expect(try IndexStateFixture.ddl(target.connectionString, schema: "idx_state")
                            == IndexStateFixture.ddl(source.connectionString, schema: "idx_state"))
                    try await IndexStateFixture.updateUnderAPublication(t)
                }
            }
        }
    }

    /// restore --at into a target that publishes every table (as one with its own change archival
    /// does): replay's UPDATEs and DELETEs need the replica-identity index and the partitions' keys
    /// before post-data, and the DDL afterwards is the source's.
    @Test func restoreAtReplaysThroughReplicaIdentityAndPartitionKeysAndKeepsIndexState() async throws {
        try await ArchivedDatabase.with(prepare: IndexStateFixture.sql) { a in
            let expectedState = try await IndexStateFixture.state(a.session)
            _ = try await a.full()
            try await a.session.execute("""
                UPDATE idx_state.accounts SET note = 'changed ' || id WHERE id <= 40;
                DELETE FROM idx_state.accounts WHERE id BETWEEN 41 AND 60;
                UPDATE idx_state.readings SET v = v + 1 WHERE id <= 300;
                DELETE FROM idx_state.readings WHERE id BETWEEN 301 AND 400;
                UPDATE audit.events SET action = action || ' (replayed)' WHERE id IN (SELECT id FROM audit.events ORDER BY id LIMIT 50);
                DELETE FROM audit.events WHERE id IN (SELECT id FROM audit.events ORDER BY id DESC LIMIT 20);
                """)
            let (at, prints) = try await a.instant()
            _ = try await a.incremental()
            try await TestServer.withDatabase(seeded: false) { target in
                let t = try await target.connect()
                defer { t.close() }
                try await t.execute("CREATE PUBLICATION target_own FOR ALL TABLES")
                let report = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: a.repo.path,
                                                                             showProgress: false), at: at)
                #expect(report.changesApplied >= 40 + 20 + 300 + 100 + 50 + 20)
                try await t.execute("DROP PUBLICATION target_own")
                #expect(TableFingerprint.differences(source: prints, restored: try await TableFingerprint.compute(t)) == [])
                #expect(try await IndexStateFixture.state(t) == expectedState)
                // The source without its change archival (never restored) has exactly the restored DDL.
                _ = try await ChangeArchivalSetup.teardown(a.db.connectionString, dryRun: false)
                #expect(try IndexStateFixture.ddl(target.connectionString) == IndexStateFixture.ddl(a.db.connectionString))
                try await IndexStateFixture.updateUnderAPublication(t)
            }
        }
    }

    /// A failed CREATE UNIQUE INDEX CONCURRENTLY leaves an invalid index over duplicates: the backup leaves
    /// it out (as pg_dump does), the restore succeeds, and check lists it.
    @Test func invalidIndexIsLeftOutOfTheBackupAndListedByCheck() async throws {
        try await TestServer.withDatabase { source in
            let s = try await source.connect()
            defer { s.close() }
            try await Self.makeInvalidIndex(s)
            let check = try await Checker.run(database: source.connectionString, repositoryPath: nil)
            #expect(check.invalidIndexes.map { "\($0.schema).\($0.table).\($0.index)" } == ["public.dupes.dupes_code_key"])
            #expect(try JSONOutput.encode(check).contains("\"index\" : \"dupes_code_key\""))
            let text = try await FTBackupBinary.run(["check", "--db", "\(try TestServer.dsn) dbname=\(source.name)"])
            #expect(text.stdout.contains("invalid indexes: 1"))
            #expect(text.stdout.contains("public.dupes_code_key on dupes: CREATE UNIQUE INDEX dupes_code_key ON public.dupes USING btree (code)"))
            try await TestRepository.with { repo in
                let manifest = try await BackupRunner.runFull(try .test(source, repo))
                #expect(manifest.tables.first { $0.name == "dupes" }?.indexes.map(\.name) == ["dupes_pkey"])
                try await TestServer.withDatabase(seeded: false) { target in
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(TableFingerprint.differences(source: try await TableFingerprint.compute(s),
                                                         restored: try await TableFingerprint.compute(t)) == [])
                    #expect(try await t.query("SELECT 1 FROM pg_class WHERE relname = 'dupes_code_key'").count == 0)
                }
            }
        }
    }

    /// A backup taken before invalid indexes were left out lists one in its manifest: its restore
    /// builds what the schema dump holds and skips the index (pg_dump had left it out).
    @Test func olderBackupListingAnInvalidIndexStillRestores() async throws {
        try await TestServer.withDatabase { source in
            let s = try await source.connect()
            defer { s.close() }
            try await Self.makeInvalidIndex(s)
            try await TestRepository.with { repo in
                var manifest = try await BackupRunner.runFull(try .test(source, repo))
                let position = try #require(manifest.tables.firstIndex { $0.name == "dupes" })
                manifest.tables[position].indexes.append(.init(name: "dupes_code_key", constraint: nil,
                                                              sql: "CREATE UNIQUE INDEX dupes_code_key ON public.dupes USING btree (code)"))
                manifest.partitionedTables = nil
                for table in manifest.tables.indices where manifest.tables[table].indexes.contains(where: { $0.attachedTo != nil }) {
                    manifest.tables[table].indexes = []  // as older backups held partitions
                }
                try repo.repository.storage.writeAll(repo.repository.manifestPath(manifest.label), try manifest.encoded())
                try await TestServer.withDatabase(seeded: false) { target in
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(TableFingerprint.differences(source: try await TableFingerprint.compute(s),
                                                         restored: try await TableFingerprint.compute(t)) == [])
                    #expect(try IndexStateFixture.ddl(target.connectionString) == IndexStateFixture.ddl(source.connectionString))
                }
            }
        }
    }

    static func makeInvalidIndex(_ s: DatabaseSession) async throws {
        try await s.execute("""
            CREATE TABLE public.dupes (id int PRIMARY KEY, code text);
            INSERT INTO public.dupes SELECT g, 'code ' || g % 50 FROM generate_series(1, 400) g;
            """)
        await #expect(throws: PostgresError.self) {
            try await s.execute("CREATE UNIQUE INDEX CONCURRENTLY dupes_code_key ON public.dupes (code)")
        }
        #expect(try await s.query("SELECT 1 FROM pg_index WHERE indexrelid = 'public.dupes_code_key'::regclass AND NOT indisvalid").count == 1)
    }
}
