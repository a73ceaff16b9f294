import Foundation
import Testing
@testable import FTBackupKit

@Suite struct BackupRestoreTests {
    /// The whole seeded database plus every awkward object: restored row by row, DDL and sequences equal.
    @Test func wholeDatabaseRestoresExactly() async throws {
        try await TestServer.withDatabase { source in
            let session = try await source.connect()
            defer { session.close() }
            try await Fixtures.addFidelityObjects(session)
            try await TestRepository.with { repo in
                let manifest = try await BackupRunner.runFull(try .test(source, repo))
                #expect(manifest.tables.contains { $0.schema == "public" && $0.name == "events_2025" })
                #expect(!manifest.tables.contains { $0.name == "events_by_month" })  // partitioned parent: leaves only
                #expect(!manifest.tables.contains { $0.name == "completed_per_tool" })  // matview: refreshed, never copied
                #expect(manifest.tables.first { $0.name == "computed" }?.columns == ["id", "price", "qty"])
                #expect(manifest.tables.first { $0.name == "Mixed Table.Name" }?.rows == 2)
                #expect(manifest.tables.first { $0.name == "empty_one" }?.rows == 0)
                #expect(manifest.snapshot.origin == "pg_export_snapshot")
                #expect(manifest.source.systemIdentifier != nil)
                try await TestServer.withDatabase(seeded: false) { target in
                    let report = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path,
                                                                            jobs: 2, showProgress: false))
                    #expect(report.plan.tables == manifest.tables.count)
                    let restored = try await target.connect()
                    defer { restored.close() }
                    let expected = try await TableFingerprint.compute(session)
                    let actual = try await TableFingerprint.compute(restored)
                    #expect(expected.count == manifest.tables.count)
                    #expect(TableFingerprint.differences(source: expected, restored: actual) == [])
                    #expect(try await Fixtures.sequenceStates(restored) == Fixtures.sequenceStates(session))
                    // Restoring fired no application trigger (a BEFORE one rewriting a column, an AFTER one enabled ALWAYS).
                    let fired = try await restored.query("""
                        SELECT (SELECT count(*) FROM public.children_log) AS logged, (SELECT count(*) FROM public.children WHERE note LIKE '%!!') AS twice
                        """).first!
                    #expect(try fired.requiredInt("logged") == 200 && fired.requiredInt("twice") == 0)
                    let matview = try await restored.query("SELECT n FROM public.completed_per_tool").first
                    #expect(try matview?.int("n") ?? 0 > 0)
                    let version = session.serverVersionNumber
                    #expect(try Fixtures.schemaDDL(target.connectionString, serverVersion: version)
                            == Fixtures.schemaDDL(source.connectionString, serverVersion: version))
                    let nextval = try await restored.query("SELECT nextval('public.never_called') AS n").first!
                    #expect(try nextval.requiredInt("n") == 42)
                }
            }
        }
    }

    /// All tables are read as of one instant, whatever the writers do meanwhile.
    @Test func allTablesComeFromOneSnapshot() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute("""
                CREATE TABLE a (id int); CREATE TABLE b (id int);
                INSERT INTO a SELECT generate_series(1, 300000); INSERT INTO b SELECT generate_series(1, 300000)
                """)
            try await TestRepository.with { repo in
                // A writer moves rows from a to b in single transactions while the backup runs with 2 jobs.
                let writer = Task {
                    let w = try await db.connect("writer")
                    defer { w.close() }
                    for i in 1...200 where !Task.isCancelled {
                        try await w.execute("BEGIN; DELETE FROM a WHERE id = \(i); INSERT INTO b VALUES (\(i)); COMMIT")
                    }
                }
                let manifest = try await BackupRunner.runFull(try .test(db, repo))
                writer.cancel()
                _ = try? await writer.value
                let rows = manifest.tables.reduce(0) { $0 + $1.rows }
                #expect(rows == 600_000)  // every move is all-or-nothing in the snapshot
            }
        }
    }

    @Test func selectedSchemaRestoreLeavesTheRestOfTheTargetUntouched() async throws {
        try await TestServer.withDatabase { source in
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                try await TestServer.withDatabase { target in
                    let t = try await target.connect()
                    defer { t.close() }
                    try await t.execute("""
                        DROP SCHEMA sprint_15_value_proposition CASCADE;
                        UPDATE users.accounts SET full_name = 'changed after the backup' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1)
                        """)
                    let others = ["users", "organizations", "sprint_24_fit_abc_analysis"]
                    let before = try await TableFingerprint.compute(t, schemas: others)
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path,
                                                                   schemas: ["sprint_15_value_proposition"], showProgress: false))
                    let s = try await source.connect()
                    defer { s.close() }
                    let expected = try await TableFingerprint.compute(s, schemas: ["sprint_15_value_proposition"])
                    let restored = try await TableFingerprint.compute(t, schemas: ["sprint_15_value_proposition"])
                    #expect(expected.count >= 3)
                    #expect(TableFingerprint.differences(source: expected, restored: restored) == [])
                    #expect(try await TableFingerprint.compute(t, schemas: others) == before)
                    let policies = try await t.query("SELECT count(*) AS n FROM pg_policies WHERE schemaname = 'sprint_15_value_proposition'")
                    #expect(try policies.first!.requiredInt("n") == 2)
                }
            }
        }
    }

    /// --clean drops exactly the schemas restored: the foreign keys other schemas hold on them (one plain, one
    /// cascading) and the materialized view built on them come back, populated, as they were.
    @Test func cleanSchemaRestorePutsBackWhatOtherSchemasHoldOnIt() async throws {
        try await TestServer.withDatabase { source in
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                try await TestServer.withDatabase { target in
                    let t = try await target.connect()
                    defer { t.close() }
                    let restoredSchemas = ["sprint_15_value_proposition", "sprint_24_fit_abc_analysis"]
                    let others = ["audit", "organizations", "tool_access", "users"]
                    try await t.execute("UPDATE sprint_15_value_proposition.hypotheses SET priority = 99")
                    let before = try await TableFingerprint.compute(t, schemas: others)
                    let report = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path,
                                                                            schemas: restoredSchemas, clean: true, showProgress: false))
                    #expect(report.warnings == nil)
                    let s = try await source.connect()
                    defer { s.close() }
                    #expect(TableFingerprint.differences(source: try await TableFingerprint.compute(s, schemas: restoredSchemas),
                                                         restored: try await TableFingerprint.compute(t, schemas: restoredSchemas)) == [])
                    #expect(try await TableFingerprint.compute(t, schemas: others) == before)
                    let version = s.serverVersionNumber
                    #expect(try Fixtures.schemaDDL(target.connectionString, serverVersion: version)
                            == Fixtures.schemaDDL(source.connectionString, serverVersion: version))
                    let state = try await t.query("""
                        SELECT (SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated
                                AND conrelid IN ('organizations.featured_canvases'::regclass, 'tool_access.shared_links'::regclass)
                                AND confrelid IN ('sprint_15_value_proposition.tool_data'::regclass, 'sprint_24_fit_abc_analysis.tool_data'::regclass)) AS keys,
                               (SELECT relispopulated FROM pg_class WHERE oid = 'organizations.tool_usage_summary'::regclass) AS populated
                        """).first!
                    #expect(try state.requiredInt("keys") == 2)
                    #expect(try state.bool("populated") == true)
                    // The plain foreign key still blocks deleting a featured canvas.
                    let blocked = await #expect(throws: PostgresError.self) {
                        try await t.execute("""
                            WITH featured AS (SELECT tool_data_id AS id FROM organizations.featured_canvases),
                                 h AS (DELETE FROM sprint_15_value_proposition.hypotheses WHERE tool_data_id IN (SELECT id FROM featured))
                            DELETE FROM sprint_15_value_proposition.tool_data WHERE id IN (SELECT id FROM featured)
                            """)
                    }
                    #expect(blocked?.message.contains("featured_canvases") == true, "\(String(describing: blocked))")
                }
            }
        }
    }

    @Test func occupiedTargetIsRefusedUnlessClean() async throws {
        try await TestServer.withDatabase { source in
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                try await TestServer.withDatabase { target in
                    let t = try await target.connect()
                    defer { t.close() }
                    try await t.execute("DELETE FROM audit.events")
                    let options = RestoreOptions(target: target.connectionString, repositoryPath: repo.path, schemas: ["audit"], showProgress: false)
                    let error = await #expect(throws: FTBackupError.self) { _ = try await RestoreRunner.run(options) }
                    #expect(error?.status == .usage)
                    #expect(error?.message.contains("audit.events") == true)
                    #expect(try await t.query("SELECT count(*) AS n FROM audit.events").first!.requiredInt("n") == 0)
                    var clean = options
                    clean.clean = true
                    _ = try await RestoreRunner.run(clean)
                    let s = try await source.connect()
                    defer { s.close() }
                    #expect(TableFingerprint.differences(source: try await TableFingerprint.compute(s, schemas: ["audit"]),
                                                         restored: try await TableFingerprint.compute(t, schemas: ["audit"])) == [])
                }
            }
        }
    }

    @Test func theSourceItselfIsRefusedUnlessCleanAndYes() async throws {
        try await TestServer.withDatabase { source in
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                var options = RestoreOptions(target: source.connectionString, repositoryPath: repo.path, clean: true, showProgress: false)
                let error = await #expect(throws: FTBackupError.self) { _ = try await RestoreRunner.run(options) }
                #expect(error?.message.contains("own source") == true)
                options.confirmed = true
                _ = try await RestoreRunner.run(options)
            }
        }
    }

    @Test func unknownSchemaIsAUsageError() async throws {
        try await TestServer.withDatabase { source in
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                let error = await #expect(throws: FTBackupError.self) {
                    _ = try await RestoreRunner.run(RestoreOptions(target: source.connectionString, repositoryPath: repo.path,
                                                                   schemas: ["sprint_99_nope"], dryRun: true, showProgress: false))
                }
                #expect(error?.status == .usage)
                #expect(error?.message.contains("sprint_99_nope") == true)
            }
        }
    }

    @Test func missingRolesAreListedAndNoOwnerSkipsThem() async throws {
        let role = "ft_owner_\(UUID().uuidString.prefix(8).lowercased())"
        let admin = try await TestServer.admin()
        defer { admin.close() }
        try await admin.execute("CREATE ROLE \(role)")
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute("CREATE TABLE owned (id int); INSERT INTO owned VALUES (1); ALTER TABLE owned OWNER TO \(role)")
            try await TestRepository.with { repo in
                let manifest = try await BackupRunner.runFull(try .test(source, repo))
                #expect(manifest.roles.contains(role))
                try await s.execute("ALTER TABLE owned OWNER TO postgres")
                try await admin.execute("DROP ROLE \(role)")
                try await TestServer.withDatabase(seeded: false) { target in
                    let options = RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false)
                    let error = await #expect(throws: FTBackupError.self) { _ = try await RestoreRunner.run(options) }
                    #expect(error?.message.contains(role) == true, "\(String(describing: error))")
                    var noOwner = options
                    noOwner.noOwner = true
                    _ = try await RestoreRunner.run(noOwner)
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(try await t.query("SELECT count(*) AS n FROM owned").first!.requiredInt("n") == 1)
                }
            }
        }
    }

    @Test(arguments: ["flip", "truncate"])
    func damagedFileIsNamedByVerifyAndRestoreRefusesBeforeTouchingTarget(damage: String) async throws {
        try await TestServer.withDatabase { source in
            try await TestRepository.with { repo in
                let manifest = try await BackupRunner.runFull(try .test(source, repo))
                let victim = manifest.tables.max { $0.file.storedBytes < $1.file.storedBytes }!
                let path = "\(repo.path)/backups/\(manifest.label)/\(victim.file.path)"
                var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
                if damage == "flip" { bytes[bytes.count / 2] ^= 0x01 } else { bytes.removeLast(bytes.count / 3) }
                try Data(bytes).write(to: URL(fileURLWithPath: path))

                let results = try await BackupVerifier.verify(repo.repository, label: nil, jobs: 2)
                #expect(results.count == 1)
                #expect(results[0].ok == false)
                #expect(results[0].badFiles.map(\.path) == [path])
                #expect(results[0].badFiles[0].problem?.contains(damage == "flip" ? "SHA-256" : "truncated") == true)

                try await TestServer.withDatabase(seeded: false) { target in
                    let error = await #expect(throws: FTBackupError.self) {
                        _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    }
                    #expect(error?.status == .dataError)
                    #expect(error?.message.contains(victim.file.path) == true)
                    let t = try await target.connect()
                    defer { t.close() }
                    let relations = try await t.query("SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'")
                    #expect(try relations.first!.requiredInt("n") == 0)
                }
            }
        }
    }

    @Test func secondBackupOnALockedRepositoryFailsAtOnceNamingTheHolder() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            try await TestRepository.with { repo in
                let holder = try RepositoryLock.acquire(repositoryRoot: repo.path, kind: .write, exclusive: true, command: "backup --type full")
                let error = await #expect(throws: FTBackupError.self) { _ = try await BackupRunner.runFull(try .test(db, repo)) }
                #expect(error?.status == .locked)
                #expect(error?.message.contains("pid=\(getpid())") == true)
                #expect(error?.message.contains("started=") == true)
                holder.release()
                _ = try await BackupRunner.runFull(try .test(db, repo))
            }
        }
    }

    @Test func connectionDroppedMidCopyFailsCleanlyWithNoUsableBackup() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute("CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 8) AS v FROM generate_series(1, 1500000) g")
            try await TestRepository.with { repo in
                // The COPY of big is terminated once the server shows it running, however long the backup takes to get there.
                let killer = BackendTerminator(db.connectionString, queryLike: "COPY %big%")
                let error = await #expect(throws: (any Error).self) {
                    defer { killer.stop() }
                    _ = try await BackupRunner.runFull(try .test(db, repo, jobs: 1))
                }
                let killed = try await killer.terminated()
                #expect(killed, "the backup ended before its COPY of big was seen running")
                let status = (error as? PostgresError)?.exitStatus ?? (error as? FTBackupError)?.status
                #expect(status == .unavailable, "\(String(describing: error))")
                let entries = try repo.repository.entries()
                #expect(entries.allSatisfy { $0.status != .complete })
                #expect(throws: FTBackupError.self) { _ = try repo.repository.backup(label: nil) }
            }
        }
    }

    @Test func readOnlyRepositoryIsAClearError() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            var options = try BackupOptions.test(db, TestRepository(path: "/proc/ftbackup-repo"))
            options.jobs = 1
            let error = await #expect(throws: FTBackupError.self) { _ = try await BackupRunner.runFull(options) }
            #expect(error?.status == .cannotWrite || error?.status == .dataError)
            #expect(error?.message.contains("/proc/ftbackup-repo") == true)
        }
    }
}
