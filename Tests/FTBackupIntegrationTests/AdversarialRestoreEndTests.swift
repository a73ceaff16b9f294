import Foundation
import Testing
@testable import FTBackupKit

/// Adversarial review of how a restore ends (post-data, refresh, dependants, the backup's event
/// triggers last): nothing the restore itself does may fire an application's event trigger or
/// leave a failed run looking other than half-built.
@Suite struct AdversarialRestoreEndTests {
    /// An application event trigger logging every DDL command into a table of the database.
    static let ddlLogger = """
        CREATE TABLE public.app_ddl_log (n bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tag text, object text);
        CREATE FUNCTION public.app_log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO public.app_ddl_log (tag, object) SELECT command_tag, object_identity FROM pg_event_trigger_ddl_commands(); END $$;
        CREATE EVENT TRIGGER app_ddl_logged ON ddl_command_end EXECUTE FUNCTION public.app_log_ddl();
        CREATE TABLE public.app_after_trigger (id int PRIMARY KEY)
        """

    /// The re-application of retired data (archive and prune records) creates temporary tables and
    /// indexes; it ran after the backup's event triggers were created, so an application's trigger
    /// logging DDL added rows to a restored table (`app_ddl_log` gained `CREATE TABLE AS pg_temp.…`).
    @Test func removingRetiredDataAgainDoesNotFireTheBackupsEventTriggers() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await LifecycleShapes.add(session)
            try await TestRepository.with { repo in
                let pruned = try await AuditPruner.run(try pruneOptions(db, repo, asOf: try await databaseNow(session), batch: 500))
                #expect(pruned.rows > 0)
                let archived = try await ToolDataArchiver.run(ArchiveOptions(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy()))
                #expect(archived.rows > 0)
                try await session.execute(Self.ddlLogger)
                _ = try await BackupRunner.runFull(try .test(db, repo))
                let source = try await TableFingerprint.compute(session)
                #expect(source.contains { $0.schema == "public" && $0.table == "app_ddl_log" && $0.rows == 2 })
                try await TestServer.withDatabase(seeded: false) { target in
                    let report = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    #expect(report.retired != nil)
                    let t = try await target.connect()
                    defer { t.close() }
                    let logged = try await t.query("SELECT tag || ' ' || object AS line FROM public.app_ddl_log ORDER BY n").rows.map { try $0.requiredString("line") }
                    #expect(logged == ["CREATE TABLE public.app_after_trigger", "CREATE INDEX public.app_after_trigger_pkey"])
                    let differences = retiredDifferences(source: source, restored: try await TableFingerprint.compute(t))
                    #expect(differences == [], "\(differences)")
                    #expect(try await t.query("SELECT count(*) AS n FROM pg_event_trigger WHERE evtname = 'app_ddl_logged'").first!.int64("n") == 1)
                }
            }
        }
    }
}
