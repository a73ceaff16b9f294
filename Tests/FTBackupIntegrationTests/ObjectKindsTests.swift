import Foundation
import Testing
@testable import FTBackupKit

/// Issue 10, items 4, 5, 6 and 8: objects a full backup lost or failed on. Each is backed up, restored
/// (per-table ordered hashes equal to the source's) and, where changes reach it, replayed by
/// `restore --at` exactly.
@Suite struct ObjectKindsTests {
    static let latin1 = "TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'"

    /// Runs `body` with change archival set up on `db` (teardown afterwards, whatever happened).
    static func withArchival(_ db: TestDatabase, _ body: () async throws -> Void) async throws {
        try await ServerWideResource.replicationSlots.shared {
            _ = try await ChangeArchivalSetup.setup(db.connectionString, dryRun: false, fixReplicaIdentity: true)
            do {
                try await body()
            } catch {
                _ = try? await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false)
                throw error
            }
            _ = try await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false)
        }
    }

    /// The database's clock now, a little after the last change.
    static func now(_ session: DatabaseSession) async throws -> Date {
        try await Task.sleep(for: .milliseconds(20))
        let at = try await session.query("SELECT extract(epoch FROM clock_timestamp()) AS t").first!.epochDate("t")!
        try await Task.sleep(for: .milliseconds(20))
        return at
    }

    /// A full restore of `label` (or, with `at`, a restore --at) into a fresh database made with
    /// `options`; returns its fingerprints.
    static func restored(_ repo: TestRepository, at: Date? = nil, options: String = "",
                         check: (DatabaseSession, TestDatabase) async throws -> Void = { _, _ in }) async throws -> [TableFingerprint] {
        try await TestServer.withDatabase(seeded: false, options: options) { target in
            let restore = RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false)
            if let at { _ = try await PointInTimeRestore.run(restore, at: at) } else { _ = try await RestoreRunner.run(restore) }
            let session = try await target.connect()
            defer { session.close() }
            try await check(session, target)
            return try await TableFingerprint.compute(session)
        }
    }

    // MARK: Item 5

    /// `CREATE TABLE t ()` made every full backup fail (`COPY … () TO STDOUT`: syntax error). Its rows
    /// (and those of a table whose only column is generated) are backed up, restored and replayed.
    @Test func aTableWithNoColumnsKeepsItsRowsThroughBackupRestoreAndReplay() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute("""
                CREATE SCHEMA app;
                CREATE TABLE app.nocol ();
                INSERT INTO app.nocol DEFAULT VALUES; INSERT INTO app.nocol DEFAULT VALUES;
                CREATE TABLE app.only_generated (g int GENERATED ALWAYS AS (7) STORED);
                INSERT INTO app.only_generated DEFAULT VALUES;
                CREATE TABLE app.neighbour (id int PRIMARY KEY, v text);
                INSERT INTO app.neighbour VALUES (1, 'a')
                """)
            try await TestRepository.with { repo in
                try await Self.withArchival(db) {
                    let manifest = try await BackupRunner.runFull(try .test(db, repo))
                    #expect(manifest.tables.first { $0.name == "nocol" }?.rows == 2)
                    #expect(manifest.tables.first { $0.name == "nocol" }?.columns == [])
                    #expect(manifest.tables.first { $0.name == "only_generated" }?.rows == 1)
                    let atFull = try await TableFingerprint.compute(session)
                    #expect(atFull.first { $0.table == "nocol" }?.rows == 2)
                    #expect(TableFingerprint.differences(source: atFull, restored: try await Self.restored(repo)) == [])

                    try await session.execute("""
                        INSERT INTO app.nocol DEFAULT VALUES; INSERT INTO app.nocol DEFAULT VALUES; INSERT INTO app.nocol DEFAULT VALUES;
                        DELETE FROM app.nocol WHERE ctid = (SELECT ctid FROM app.nocol LIMIT 1);
                        INSERT INTO app.only_generated DEFAULT VALUES;
                        INSERT INTO app.neighbour VALUES (2, 'b')
                        """)
                    let source = try await TableFingerprint.compute(session)
                    #expect(source.first { $0.table == "nocol" }?.rows == 4)
                    let at = try await Self.now(session)
                    try await session.execute("INSERT INTO app.nocol DEFAULT VALUES")  // after TIME: not replayed
                    _ = try await ChangeArchiver.runIncremental(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy())
                    #expect(TableFingerprint.differences(source: source, restored: try await Self.restored(repo, at: at)) == [])
                }
            }
        }
    }

    // MARK: Item 4

    /// A table an extension marks with `pg_extension_config_dump('…', 'WHERE NOT is_default')` had 3
    /// rows at the source and 1 after restore: the rows its filter selects are backed up (and only
    /// those: the extension's script puts the default one back), and later changes to it are replayed.
    @Test func anExtensionConfigurationTableKeepsTheRowsItsFilterSelects() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let session = try await db.connect()
            defer { session.close() }
            let available = try await session.query("SELECT count(*) AS n FROM pg_available_extensions WHERE name = 'ftbackup_test_config'").first!
            try #require(try available.requiredInt("n") == 1, "extension ftbackup_test_config is not installed: scripts/scratch-pg.sh installs it")
            try await session.execute("""
                CREATE SCHEMA app;
                CREATE EXTENSION ftbackup_test_config SCHEMA app;
                INSERT INTO app.ext_settings VALUES ('size', 'large', false), ('shape', E'round\\tish', false)
                """)
            let version = session.serverVersionNumber
            // (taken before setup adds ftbackup's own objects, which restores leave out)
            let sourceDDL = try Fixtures.schemaDDL(db.connectionString, serverVersion: version)
            try await TestRepository.with { repo in
                try await Self.withArchival(db) {
                    let manifest = try await BackupRunner.runFull(try .test(db, repo))
                    let table = manifest.tables.first { $0.name == "ext_settings" }
                    #expect(table?.rows == 2)
                    #expect(table?.extensionFilter == "WHERE NOT is_default")
                    #expect(!(manifest.tablesNotCopied ?? []).contains("app.ext_settings"))
                    let source = try await TableFingerprint.compute(session)
                    #expect(source.first { $0.table == "ext_settings" }?.rows == 3)
                    let restored = try await Self.restored(repo) { _, target in
                        let ddl = try Fixtures.schemaDDL(target.connectionString, serverVersion: version)
                        #expect(ddl == sourceDDL)
                    }
                    #expect(TableFingerprint.differences(source: source, restored: restored) == [])
                    // pg_restore --schema creates no extension: a --schema restore leaves its configuration table alone.
                    try await TestServer.withDatabase(seeded: false) { target in
                        let report = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path,
                                                                                schemas: ["app"], showProgress: false))
                        #expect(report.plan.tables == manifest.tables.count - 1)
                    }

                    try await session.execute("""
                        INSERT INTO app.ext_settings VALUES ('weight', 'heavy', false);
                        UPDATE app.ext_settings SET value = 'huge' WHERE name = 'size';
                        DELETE FROM app.ext_settings WHERE name = 'shape'
                        """)
                    let changed = try await TableFingerprint.compute(session)
                    let at = try await Self.now(session)
                    _ = try await ChangeArchiver.runIncremental(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy())
                    #expect(TableFingerprint.differences(source: changed, restored: try await Self.restored(repo, at: at)) == [])
                }
            }
        }
    }

    // MARK: Item 6

    /// A LATIN1 database with schema `données` and table `élèves` could not be backed up (`schema
    /// "donn�es" does not exist`): catalog results were read as UTF-8 in a LATIN1 session. Full backup,
    /// restore, change archival and restore --at are exact on it, names and values alike.
    @Test func aLatin1DatabaseWithNonASCIINamesIsBackedUpRestoredAndReplayedExactly() async throws {
        try await TestServer.withDatabase(seeded: false, options: Self.latin1) { db in
            let session = try await db.connect()
            defer { session.close() }
            // Written as UTF-8 (as psql does in a UTF-8 locale): the server stores LATIN1's é (0xE9).
            try await session.execute("""
                SET client_encoding = 'UTF8';
                CREATE SCHEMA "données";
                CREATE TABLE "données"."élèves" (id int PRIMARY KEY, "prénom" text, note text);
                INSERT INTO "données"."élèves" VALUES (1, 'Zoë', 'très bien ½ ¿ ß ÿ'), (2, 'Ærøskøbing', E'tab\\tü'), (3, 'Ñu', NULL);
                CREATE SEQUENCE "données"."numéro" START 10;
                SELECT nextval('"données"."numéro"')
                """)
            let encoding = try await session.query("SELECT current_setting('server_encoding') AS e").first!.requiredString("e")
            try #require(encoding == "LATIN1")
            let stored = try await session.query("SELECT encode(convert_to(nspname, 'LATIN1'), 'hex') AS h FROM pg_namespace WHERE nspname LIKE 'donn%'")
            try #require(try stored.first?.string("h") == "646f6e6ee96573")
            try await TestRepository.with { repo in
                try await Self.withArchival(db) {
                    let manifest = try await BackupRunner.runFull(try .test(db, repo))
                    #expect(manifest.source.encoding == "LATIN1")
                    #expect(manifest.schemas.contains("données"))
                    #expect(manifest.tables.first { $0.name == "élèves" }?.columns == ["id", "prénom", "note"])
                    let source = try await TableFingerprint.compute(session)
                    #expect(source.map(\.description).contains { $0.hasPrefix("données.élèves: 3 rows") })
                    let restored = try await Self.restored(repo, options: Self.latin1) { target, _ in
                        let row = try await target.query("SELECT \"prénom\" AS p, note FROM \"données\".\"élèves\" WHERE id = 1").first!
                        #expect(try row.string("p") == "Zoë" && row.string("note") == "très bien ½ ¿ ß ÿ")
                    }
                    #expect(TableFingerprint.differences(source: source, restored: restored) == [])

                    try await session.execute("""
                        INSERT INTO "données"."élèves" VALUES (4, 'Øyvind', 'àéîõü');
                        UPDATE "données"."élèves" SET note = 'déjà vu' WHERE id = 2;
                        DELETE FROM "données"."élèves" WHERE id = 3
                        """)
                    let changed = try await TableFingerprint.compute(session)
                    let at = try await Self.now(session)
                    let pass = try await ChangeArchiver.runIncremental(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy())
                    #expect(pass.segment != nil)
                    let replayed = try await Self.restored(repo, at: at, options: Self.latin1) { target, _ in
                        let row = try await target.query("SELECT note FROM \"données\".\"élèves\" WHERE id = 4").first
                        #expect(try row?.string("note") == "àéîõü")
                    }
                    #expect(TableFingerprint.differences(source: changed, restored: replayed) == [])
                }
            }
        }
    }

    // MARK: Item 8

    /// `ALTER DATABASE … SET` and `ALTER ROLE … IN DATABASE … SET` were neither backed up nor restored.
    /// The backup records them, a whole-database restore makes the target's settings exactly those
    /// (a setting the target had is reset), and `info --set` shows them (text and JSON).
    @Test func databaseSettingsAreRecordedRestoredAndShown() async throws {
        let role = "ftb_settings_\(UUID().uuidString.prefix(8).lowercased())"
        let admin = try await TestServer.admin()
        defer { admin.close() }
        try await admin.execute("CREATE ROLE \(role)")
        do {
            try await Self.checkDatabaseSettings(role: role, admin: admin)
        } catch {
            try? await admin.execute("DROP ROLE IF EXISTS \(role)")
            throw error
        }
        try await admin.execute("DROP ROLE IF EXISTS \(role)")
    }

    static func checkDatabaseSettings(role: String, admin: DatabaseSession) async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute("""
                CREATE SCHEMA app; CREATE SCHEMA "Odd Schema"; CREATE TABLE app.t (id int PRIMARY KEY); INSERT INTO app.t VALUES (1);
                ALTER DATABASE \(db.name) SET TimeZone = 'Europe/Berlin';
                ALTER DATABASE \(db.name) SET search_path = "$user", app, "Odd Schema";
                ALTER DATABASE \(db.name) SET statement_timeout = '5min';
                ALTER DATABASE \(db.name) SET app.tenant = 'acme';
                ALTER ROLE \(role) IN DATABASE \(db.name) SET work_mem = '64MB'
                """)
            let settings = try await DatabaseSettings.read(session)
            #expect(settings.map(\.description) == ["TimeZone=Europe/Berlin", "search_path=\"$user\", app, \"Odd Schema\"",
                                                    "statement_timeout=5min", "app.tenant=acme", "role \(role): work_mem=64MB"])
            try await TestRepository.with { repo in
                let manifest = try await BackupRunner.runFull(try .test(db, repo))
                #expect(manifest.databaseSettings == settings)
                try await TestServer.withDatabase(seeded: false) { target in
                    try await admin.execute("ALTER DATABASE \(target.name) SET DateStyle = 'German'")
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(try await DatabaseSettings.read(t) == settings)
                    let shown = try await t.query("SELECT current_setting('TimeZone') AS tz, current_setting('search_path') AS sp").first!
                    #expect(try shown.string("tz") == "Europe/Berlin" && shown.string("sp") == "\"$user\", app, \"Odd Schema\"")
                }
                // A --schema restore leaves the target database's settings alone.
                try await TestServer.withDatabase(seeded: false) { target in
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path,
                                                                   schemas: ["app"], showProgress: false))
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(try await DatabaseSettings.read(t) == [])
                }
                let text = try await FTBackupBinary.run(["info", "--repo", repo.path, "--set", manifest.label])
                #expect(text.status == 0, "\(text.stderr)")
                #expect(text.stdout.contains("db settings:    5"))
                #expect(text.stdout.contains("TimeZone=Europe/Berlin") && text.stdout.contains("role \(role): work_mem=64MB"))
                let json = try await FTBackupBinary.run(["info", "--repo", repo.path, "--set", manifest.label, "--output", "json"])
                let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
                let backup = (object?["backups"] as? [[String: Any]])?.first
                let recorded = backup?["databaseSettings"] as? [[String: Any]]
                #expect(recorded?.count == 5)
                #expect(recorded?.last?["role"] as? String == role && recorded?.last?["value"] as? String == "64MB")
            }
        }
    }

    /// Stored lists split as the server wrote them: quoted elements keep commas, spaces and quotes.
    @Test func storedSettingListsSplitIntoTheirElements() throws {
        #expect(try DatabaseSettings.splitList("\"$user\", public") == ["$user", "public"])
        #expect(try DatabaseSettings.splitList("\"\"") == [""])
        #expect(try DatabaseSettings.splitList("\"a, \"\"b\"\"\",c") == ["a, \"b\"", "c"])
        #expect(try DatabaseSettings.splitList("") == [])
    }
}
