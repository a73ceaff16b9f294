import Foundation
import Testing
@testable import FTBackupKit

/// Databases with chosen names (suffixes after a random prefix), empty; every slot of theirs is
/// dropped before they are.
func withNamedDatabases(_ suffixes: [String], _ body: ([TestDatabase]) async throws -> Void) async throws {
    let prefix = "t_\(UUID().uuidString.prefix(8).lowercased())"
    let names = suffixes.map { prefix + $0 }
    let admin = try await TestServer.admin()
    defer { admin.close() }
    let cleanUp = {
        try await admin.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = ANY($1::text[])",
                              ["{" + names.map { "\"\($0)\"" }.joined(separator: ",") + "}"])
        for name in names { try await admin.execute("DROP DATABASE IF EXISTS \(try admin.escapeIdentifier(name)) WITH (FORCE)") }
    }
    do {
        var databases: [TestDatabase] = []
        for name in names {
            try await admin.execute("CREATE DATABASE \(try admin.escapeIdentifier(name))")
            databases.append(TestDatabase(name: name, connectionString: try TestServer.connectionString(database: name)))
        }
        try await body(databases)
    } catch {
        _ = try? await cleanUp()
        throw error
    }
    try await cleanUp()
}

/// The slots of one database, by name.
func slotsOf(_ database: String) async throws -> [String] {
    let admin = try await TestServer.admin()
    defer { admin.close() }
    return try await admin.query("SELECT slot_name::text AS s FROM pg_replication_slots WHERE database = $1 ORDER BY 1", [database])
        .rows.map { try $0.requiredString("s") }
}

extension ChangeArchivalTests {
    /// Issue 9, item 7: `rev_c-1` and `rev_c_1` once shared `ftbackup_archive_rev_c_1`: setup on the
    /// second made no slot of its own, and teardown on one dropped the other's.
    @Test func databasesWhoseNamesDifferInPunctuationGetTheirOwnSlots() async throws {
        try await withNamedDatabases(["_c-1", "_c_1"]) { dbs in
            let (a, b) = (dbs[0], dbs[1])
            _ = try await ChangeArchivalSetup.setup(a.connectionString, dryRun: false, fixReplicaIdentity: false)
            let second = try await ChangeArchivalSetup.setup(b.connectionString, dryRun: false, fixReplicaIdentity: false)
            #expect(second.actions.contains { $0.contains("create logical replication slot") }, "\(second.actions)")
            let slotsA = try await slotsOf(a.name), slotsB = try await slotsOf(b.name)
            #expect(slotsA.count == 1 && slotsB.count == 1, "\(slotsA) \(slotsB)")
            #expect(slotsA != slotsB)
            try await TestRepository.with { repo in
                let status = try await ChangeArchiveStatus.read(repo.repository, database: b.connectionString)
                #expect(status.slot?.exists == true)
                #expect(status.slot?.name == slotsB.first)
            }
            let removed = try await ChangeArchivalSetup.teardown(a.connectionString, dryRun: false)
            #expect(removed.first == "drop replication slot \(slotsA[0])", "\(removed)")
            #expect(try await slotsOf(a.name).isEmpty)
            #expect(try await slotsOf(b.name) == slotsB, "teardown of \(a.name) must leave \(b.name)'s slot")
            _ = try await ChangeArchivalSetup.teardown(b.connectionString, dryRun: false)
            #expect(try await slotsOf(b.name).isEmpty)
        }
    }

    /// A slot under this database's name that belongs to another database is never used, advanced or
    /// dropped: setup, teardown, info, incr and follow refuse it with a clear error (exit 78).
    @Test func aSlotOfAnotherDatabaseUnderThisDatabasesNameIsRefused() async throws {
        try await withNamedDatabases(["_mine", "_other"]) { dbs in
            let (mine, other) = (dbs[0], dbs[1])
            let squatter = ChangeArchivalNames.slot(database: mine.name)
            let session = try await other.connect()
            defer { session.close() }
            try await session.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [squatter])

            let setup = await #expect(throws: FTBackupError.self) {
                _ = try await ChangeArchivalSetup.setup(mine.connectionString, dryRun: false, fixReplicaIdentity: false)
            }
            #expect(setup?.status == .configuration)
            #expect(setup?.message.contains("replication slot \(squatter) belongs to database \(other.name), not to \(mine.name)") == true,
                    "\(String(describing: setup))")
            let teardown = await #expect(throws: FTBackupError.self) { _ = try await ChangeArchivalSetup.teardown(mine.connectionString, dryRun: false) }
            #expect(teardown?.status == .configuration)
            #expect(try await slotsOf(other.name) == [squatter], "the other database's slot must survive")
            try await TestRepository.with { repo in
                let conninfo = "\(try TestServer.dsn) dbname=\(mine.name)"
                for arguments in [["info"], ["backup", "--type", "incr"], ["follow"]] {
                    try FileManager.default.createDirectory(atPath: repo.path, withIntermediateDirectories: true)
                    let outcome = try await FTBackupBinary.run(arguments + ["--db", conninfo, "--repo", repo.path])
                    #expect(outcome.status == 78, "\(arguments): \(outcome.stderr)")
                    #expect(outcome.stderr.contains("belongs to database \(other.name)"), "\(arguments): \(outcome.stderr)")
                }
            }
            #expect(try await slotsOf(other.name) == [squatter])
        }
    }

    /// Deployments made before per-database names keep their slot (and chain) when it belongs to
    /// their database; a database whose old name collides with it gets a slot of its own.
    @Test func aSlotWithTheOldNameKeepsWorkingForItsOwnDatabaseOnly() async throws {
        try await withNamedDatabases(["_c-1", "_c_1"]) { dbs in
            let (old, new) = (dbs[0], dbs[1])
            let legacy = "ftbackup_archive_" + old.name.replacingOccurrences(of: "-", with: "_")
            #expect(ChangeArchivalNames.legacySlot(database: old.name) == legacy)
            #expect(ChangeArchivalNames.legacySlot(database: new.name) == legacy)
            // An existing deployment: publication, schema, and the slot under the old name.
            _ = try await ChangeArchivalSetup.setup(old.connectionString, dryRun: false, fixReplicaIdentity: false)
            let session = try await old.connect()
            defer { session.close() }
            try await session.query("SELECT pg_drop_replication_slot($1)", [ChangeArchivalNames.slot(database: old.name)])
            try await session.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [legacy])
            try await session.execute("CREATE TABLE public.t (id int PRIMARY KEY, v text); INSERT INTO public.t VALUES (1, 'a')")

            let again = try await ChangeArchivalSetup.setup(old.connectionString, dryRun: false, fixReplicaIdentity: false)
            #expect(!again.actions.contains { $0.contains("create logical replication slot") }, "\(again.actions)")
            #expect(again.actions.contains { $0.contains(legacy) && $0.contains("older ftbackup versions") }, "\(again.actions)")
            #expect(try await slotsOf(old.name) == [legacy])
            try await TestRepository.with { repo in
                let pass = try await ChangeArchiver.runIncremental(database: old.connectionString, repositoryPath: repo.path, policy: try testPolicy())
                #expect(pass.segment?.slot == legacy)
                #expect(pass.segment?.transactions ?? 0 >= 2)
                let status = try await ChangeArchiveStatus.read(repo.repository, database: old.connectionString)
                #expect(status.slot?.name == legacy)
                #expect(status.slot?.note?.contains("older ftbackup versions") == true)
                #expect(status.broken == nil)
            }
            // The other database's setup does not take the old-named slot for its own, nor does its teardown drop it.
            _ = try await ChangeArchivalSetup.setup(new.connectionString, dryRun: false, fixReplicaIdentity: false)
            #expect(try await slotsOf(new.name) == [ChangeArchivalNames.slot(database: new.name)])
            _ = try await ChangeArchivalSetup.teardown(new.connectionString, dryRun: false)
            #expect(try await slotsOf(old.name) == [legacy])
            let removed = try await ChangeArchivalSetup.teardown(old.connectionString, dryRun: false)
            #expect(removed.first?.hasPrefix("drop replication slot \(legacy)") == true, "\(removed)")
            #expect(try await slotsOf(old.name).isEmpty)
        }
    }

    /// Issue 9, item 10: a pending prepared transaction holds a transaction id, so the full's slot
    /// cannot be created; the error names it (gid, owner, database, time) and says how to end it.
    @Test func aPreparedTransactionBlockingTheFullsSlotIsNamed() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let session = try await db.connect()
            defer { session.close() }
            let enabled = try await session.query("SELECT current_setting('max_prepared_transactions')::int AS n").first!.requiredInt("n")
            #expect(enabled > 0, "the scratch server needs max_prepared_transactions > 0 (scripts/scratch-pg.sh sets it)")
            guard enabled > 0 else { return }
            _ = try await ChangeArchivalSetup.setup(db.connectionString, dryRun: false, fixReplicaIdentity: false)
            let gid = "ftbackup-test-\(UUID().uuidString.prefix(8))"
            try await session.execute("BEGIN; CREATE TABLE public.in_doubt (id int); PREPARE TRANSACTION '\(gid)'")
            do {
                try await TestRepository.with { repo in
                    var options = try BackupOptions.test(db, repo)
                    options.snapshotSource = ReplicationSlotSnapshotSource(database: db.connectionString, waitSeconds: 2)
                    let error = await #expect(throws: FTBackupError.self) { _ = try await BackupRunner.runFull(options) }
                    let text = error?.description ?? ""
                    #expect(text.contains("prepared transaction '\(gid)' (owner postgres, database \(db.name), prepared 20"), "\(text)")
                    #expect(!text.contains("none still open"), "\(text)")
                    #expect(error?.hint?.contains("ROLLBACK PREPARED '\(gid)'") == true, "\(text)")
                    #expect(error?.hint?.contains("COMMIT PREPARED '\(gid)'") == true, "\(text)")
                    #expect(error?.hint?.contains("pg_terminate_backend") == false, "\(text)")
                }
            } catch {
                try? await session.execute("ROLLBACK PREPARED '\(gid)'")
                _ = try? await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false)
                throw error
            }
            try await session.execute("ROLLBACK PREPARED '\(gid)'")
            _ = try await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false)
        }
    }

    /// Issue 9, item 11: the end of `info`'s recoverable window (JSON and text) is a time `restore --at`
    /// accepts, and restores exactly the state at that commit.
    @Test func theEndOfInfosRecoverableWindowIsAccepted() async throws {
        try await ArchivedDatabase.with(prepare: workloadSchemaSQL) { a in
            _ = try await a.full()
            try await writeWorkload(a.session, round: 1)
            let (_, expected) = try await a.instant()
            _ = try await a.incremental()
            let conninfo = "\(try TestServer.dsn) dbname=\(a.db.name)"
            let json = try await FTBackupBinary.run(["info", "--repo", a.repo.path, "--db", conninfo, "--output", "json"])
            #expect(json.status == 0, "\(json.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            let until = try #require((object?["changeArchive"] as? [String: Any])?["recoverableUntil"] as? String)
            let text = try await FTBackupBinary.run(["info", "--repo", a.repo.path, "--db", conninfo])
            let line = try #require(text.stdout.split(separator: "\n").first { $0.contains("recoverable:") })
            let shown = String(try #require(line.components(separatedBy: " … ").last?.components(separatedBy: " (newest").first))
            let windowEnd = try #require(try await ChangeArchiveStatus.read(a.repo.repository, database: nil).recoverableUntil)
            let micros = PgOutputDecoder.postgresMicroseconds(from: windowEnd)
            #expect(PgOutputDecoder.postgresMicroseconds(from: try RecoveryTarget.parse(until)) == micros, "\(until)")
            #expect(PgOutputDecoder.postgresMicroseconds(from: try RecoveryTarget.parse(shown)) == micros, "\(shown) vs \(until)")
            let restored = try await a.restore(at: windowEnd)
            #expect(TableFingerprint.differences(source: expected, restored: restored) == [])
        }
    }
}

@Suite struct RepositoryPathTests {
    /// Issue 9, item 11: a repository path that is a regular file is a cannot-write error (73), said plainly.
    @Test func backupIntoARepositoryPathThatIsAFileExits73() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let file = NSTemporaryDirectory() + "ftbackup-not-a-folder-\(UUID())"
            defer { try? FileManager.default.removeItem(atPath: file) }
            try "x".write(toFile: file, atomically: true, encoding: .utf8)
            let outcome = try await FTBackupBinary.run(["backup", "--db", "\(try TestServer.dsn) dbname=\(db.name)", "--repo", file])
            #expect(outcome.status == 73, "\(outcome.stderr)")
            #expect(outcome.stderr.contains("cannot use \(file) as a folder: it is a file"), "\(outcome.stderr)")
            #expect(outcome.stderr.split(separator: "\n").count == 1, "\(outcome.stderr)")
        }
    }
}
