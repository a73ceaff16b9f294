import Foundation
import Testing
@testable import FTBackupKit

/// The adversarial review's DDL-capture defects (1, 3, 4, 5, 6, 10): DDL that used to go unrecorded,
/// or was recorded under a schema that let a `--schema` restore cross it, and refreshes that were
/// counted as DDL.
extension ChangeArchivalTests.PointInTimeTests {
    /// Plans `restore --at` (dry run, so nothing is touched) and returns the refusal, if any.
    private func refusal(_ a: ArchivedDatabase, at: Date, schemas: [String]) async -> FTBackupError? {
        do {
            _ = try await PointInTimeRestore.run(RestoreOptions(target: a.db.connectionString, repositoryPath: a.repo.path, schemas: schemas,
                                                                dryRun: true, showProgress: false), at: at)
            return nil
        } catch let error as FTBackupError {
            return error
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    /// Defect 1: migration scripts set session_replication_role = replica, where ordinary event
    /// triggers do not fire. Setup upgrades an older installation to ENABLE ALWAYS, and the DDL is
    /// recorded: a new full is needed and restore --at refuses a time past it.
    @Test func ddlInReplicaModeIsRecordedAndSetupUpgradesAnOlderInstallation() async throws {
        try await ArchivedDatabase.with(prepare: "CREATE TABLE public.adv_t (id int PRIMARY KEY, v text); INSERT INTO public.adv_t SELECT g, 'v' || g FROM generate_series(1, 5) g") { a in
            // An installation by the previous version: triggers firing in origin mode only, an older function body.
            let admin = try await a.db.connect("admin")
            defer { admin.close() }
            try await admin.execute("ALTER EVENT TRIGGER ftbackup_ddl ENABLE; ALTER EVENT TRIGGER ftbackup_ddl_drop ENABLE")
            #expect(try await DDLCapture.isCurrent(admin) == false)
            let report = try await ChangeArchivalSetup.setup(a.db.connectionString, dryRun: false, fixReplicaIdentity: true)
            #expect(report.actions.contains { $0.hasPrefix("upgrade event triggers") }, "\(report.actions)")
            #expect(try await admin.query("SELECT count(*) AS n FROM pg_event_trigger WHERE evtname LIKE 'ftbackup%' AND evtenabled = 'A'").first!.requiredInt("n") == 2)
            #expect(try await DDLCapture.isCurrent(admin))
            let again = try await ChangeArchivalSetup.setup(a.db.connectionString, dryRun: false, fixReplicaIdentity: true)
            #expect(again.actions.contains { $0.hasPrefix("keep event triggers") }, "\(again.actions)")

            _ = try await a.full()
            let (before, beforePrints) = try await a.instant()
            try await a.session.execute("SET session_replication_role = replica; ALTER TABLE public.adv_t ADD COLUMN c int DEFAULT 7; RESET session_replication_role")
            let (afterDDL, _) = try await a.instant()
            let segment = try #require(try await a.incremental().segment)
            #expect(segment.ddl?.contains { $0.commandTag == "ALTER TABLE" && $0.objectIdentity == "public.adv_t" } == true, "\(String(describing: segment.ddl))")
            #expect(try ChangeArchiver.needsNewFull(repositoryPath: a.repo.path))
            let error = await refusal(a, at: afterDDL, schemas: [])
            #expect(error?.status == .usage && error?.message.contains("ALTER TABLE public.adv_t") == true, "\(String(describing: error))")
            let restored = try await a.restore(at: before)
            #expect(TableFingerprint.differences(source: beforePrints, restored: restored) == [])
        }
    }

    /// Defect 5: DROP TYPE public.mood CASCADE drops column adv_other.t.m; a --schema adv_other restore
    /// past it is refused.
    @Test func objectsDroppedByCascadeInAnotherSchemaBlockThatSchemasRestore() async throws {
        try await ArchivedDatabase.with(prepare: """
            CREATE TYPE public.adv_mood AS ENUM ('sad', 'ok'); CREATE SCHEMA adv_other;
            CREATE TABLE adv_other.t (id int PRIMARY KEY, m public.adv_mood, v int); INSERT INTO adv_other.t SELECT g, 'ok', g FROM generate_series(1, 5) g
            """) { a in
            _ = try await a.full()
            try await a.session.execute("DROP TYPE public.adv_mood CASCADE")
            let (at, _) = try await a.instant()
            let segment = try #require(try await a.incremental().segment)
            #expect(segment.ddl?.first?.objectIdentity == "public.adv_mood", "\(String(describing: segment.ddl))")
            #expect(segment.ddl?.contains { $0.schema == "adv_other" && $0.objectIdentity == "adv_other.t.m" } == true, "\(String(describing: segment.ddl))")
            let error = await refusal(a, at: at, schemas: ["adv_other"])
            #expect(error?.status == .usage && error?.message.contains("DROP TYPE adv_other.t.m (table column)") == true, "\(String(describing: error))")
        }
    }

    /// Defect 3: ALTER TABLE public.x SET SCHEMA adv_other: the table left public; a --schema public
    /// restore past it is refused (the old schema is not known to the trigger, so every schema is).
    @Test func setSchemaBlocksARestoreOfTheSchemaTheObjectLeft() async throws {
        try await ArchivedDatabase.with(prepare: "CREATE SCHEMA adv_other; CREATE TABLE public.adv_x (id int PRIMARY KEY); INSERT INTO public.adv_x VALUES (1)") { a in
            _ = try await a.full()
            try await a.session.execute("ALTER TABLE public.adv_x SET SCHEMA adv_other")
            let (at, _) = try await a.instant()
            _ = try await a.incremental()
            let error = await refusal(a, at: at, schemas: ["public"])
            #expect(error?.status == .usage && error?.message.contains("adv_other.adv_x") == true, "\(String(describing: error))")
        }
    }

    /// Defect 4: ALTER SCHEMA adv_s2 RENAME TO adv_s3 is logged under the new name; a --schema adv_s2
    /// restore past it is refused.
    @Test func schemaRenameBlocksARestoreOfTheOldName() async throws {
        try await ArchivedDatabase.with(prepare: "CREATE SCHEMA adv_s2; CREATE TABLE adv_s2.z (id int PRIMARY KEY); INSERT INTO adv_s2.z VALUES (1)") { a in
            _ = try await a.full()
            try await a.session.execute("ALTER SCHEMA adv_s2 RENAME TO adv_s3")
            let (at, _) = try await a.instant()
            _ = try await a.incremental()
            let error = await refusal(a, at: at, schemas: ["adv_s2"])
            #expect(error?.status == .usage && error?.message.contains("ALTER SCHEMA adv_s3") == true, "\(String(describing: error))")
        }
    }

    /// Defect 6: privileges are logged with no schema; a --schema restore past them is refused.
    @Test(arguments: ["GRANT SELECT ON adv_other.t TO PUBLIC", "ALTER DEFAULT PRIVILEGES IN SCHEMA adv_other GRANT SELECT ON TABLES TO PUBLIC"])
    func privilegeChangesBlockASchemaRestore(statement: String) async throws {
        try await ArchivedDatabase.with(prepare: "CREATE SCHEMA adv_other; CREATE TABLE adv_other.t (id int PRIMARY KEY); INSERT INTO adv_other.t VALUES (1)") { a in
            _ = try await a.full()
            try await a.session.execute(statement)
            let (at, _) = try await a.instant()
            _ = try await a.incremental()
            let error = await refusal(a, at: at, schemas: ["adv_other"])
            #expect(error?.status == .usage && error?.message.contains(statement) == true, "\(String(describing: error))")
        }
    }

    /// Defect 10: a REFRESH MATERIALIZED VIEW is no barrier: no new full is needed and restore --at a
    /// time after it restores exactly, with the views populated from the data as at that time (one
    /// the full held unpopulated included).
    @Test func materializedViewRefreshIsNoBarrier() async throws {
        try await ArchivedDatabase.with(prepare: """
            CREATE TABLE public.adv_m (id int PRIMARY KEY, v int); INSERT INTO public.adv_m SELECT g, g FROM generate_series(1, 5) g;
            CREATE MATERIALIZED VIEW public.adv_mv AS SELECT sum(v) AS s FROM public.adv_m;
            CREATE MATERIALIZED VIEW public.adv_mv_empty AS SELECT count(*) AS n FROM public.adv_m WITH NO DATA
            """) { a in
            _ = try await a.full()
            try await a.session.execute("UPDATE public.adv_m SET v = v * 10 WHERE id = 3; REFRESH MATERIALIZED VIEW public.adv_mv; REFRESH MATERIALIZED VIEW public.adv_mv_empty")
            let (at, prints) = try await a.instant()
            let segment = try #require(try await a.incremental().segment)
            #expect(segment.ddl?.contains { $0.isRefresh } == true, "\(String(describing: segment.ddl))")
            #expect(try ChangeArchiver.needsNewFull(repositoryPath: a.repo.path) == false)
            #expect(RecordedDDLWindow.list(segments: try ChangeSegmentManifest.all(a.repo.repository.storage), fulls: []).isEmpty)
            #expect(await refusal(a, at: at, schemas: []) == nil)
            try await TestServer.withDatabase(seeded: false) { target in
                _ = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: a.repo.path, showProgress: false), at: at)
                let t = try await target.connect()
                defer { t.close() }
                #expect(TableFingerprint.differences(source: prints, restored: try await TableFingerprint.compute(t)) == [])
                #expect(try await t.query("SELECT s::int AS s FROM public.adv_mv").first!.requiredInt("s") == 42)
                #expect(try await t.query("SELECT n::int AS n FROM public.adv_mv_empty").first!.requiredInt("n") == 5)
            }
        }
    }
}
