import Foundation
import Testing
@testable import FTBackupKit

/// Adversarial review (adv16) of restores interrupted by a signal: what the one line says about the
/// target, and whether following it literally gives the source back exactly.
@Suite struct AdversarialInterruptedRestoreTests {
    /// A whole-database restore without `--clean`, interrupted (SIGTERM) while it refreshes a materialized
    /// view, i.e. after pre-data committed the backup's function, type and cast in `public`. The line said
    /// only "interrupted by SIGTERM; temporary files removed": nothing about the half-built target, and
    /// the natural rerun with `--clean` is refused on what this run created outside the schemas it drops.
    /// It now says the target may be half-built and to restore into a fresh database, naming what a
    /// `--clean` rerun would refuse; following it gives the source back exactly.
    @Test func anInterruptedRestoreWithoutCleanSaysHowTheTargetIsLeft() async throws {
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute(AdversarialRestoreEndTests.slowEnd + """
                ;
                CREATE TYPE public.mood AS ENUM ('low', 'high');
                CREATE FUNCTION public.mood_of(n int) RETURNS public.mood IMMUTABLE LANGUAGE sql AS $$ SELECT CASE WHEN n > 300 THEN 'high'::public.mood ELSE 'low' END $$;
                CREATE CAST (public.mood AS int) WITH INOUT
                """)
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                try await TestServer.withDatabase(seeded: false) { target in
                    let admin = try await TestServer.admin()
                    defer { admin.close() }
                    let database = try admin.escapeIdentifier(target.name)
                    try await admin.execute("ALTER DATABASE \(database) SET app.view_sleep = '60'")
                    let t = try await target.connect()
                    let (process, _, err) = try FTBackupBinary.start(["restore", "--repo", repo.path,
                                                                      "--target", "\(try TestServer.dsn) dbname=\(target.name)"])
                    var signalled = false
                    for _ in 0..<60_000 where process.isRunning {
                        let running = try await t.query("""
                            SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
                              AND state = 'active' AND query LIKE 'REFRESH MATERIALIZED VIEW%'
                            """).first!.int64("n")
                        if running > 0 {
                            kill(process.processIdentifier, SIGTERM)
                            signalled = true
                            break
                        }
                        try await Task.sleep(for: .microseconds(10_000))
                    }
                    if !signalled { kill(process.processIdentifier, SIGKILL) }
                    let stderr = await FTBackupBinary.text(of: err)
                    await FTBackupBinary.waitForExit(process)
                    t.close()
                    #expect(signalled, "the refresh never ran: \(stderr)")
                    #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGTERM, "\(stderr)")
                    #expect(stderr.contains("interrupted by SIGTERM; temporary files removed"), "\(stderr)")
                    #expect(stderr.contains("half-built"), "the line does not say how the target is left: \(stderr)")
                    #expect(stderr.contains("restore into a fresh database") && stderr.contains("would refuse") && stderr.contains("mood_of"),
                            "the line does not say a --clean rerun is refused: \(stderr)")
                    // Why: the rerun with --clean an operator would try is refused.
                    try await admin.execute("ALTER DATABASE \(database) RESET ALL")
                    let rerun = try await FTBackupBinary.run(["restore", "--repo", repo.path, "--clean",
                                                       "--target", "\(try TestServer.dsn) dbname=\(target.name)"])
                    #expect(rerun.status == 64 && rerun.stderr.contains("mood_of"), "\(rerun.stderr)")
                    // Following the line literally: a fresh database, the same restore.
                    try await admin.execute("DROP DATABASE \(database) WITH (FORCE)")
                    try await admin.execute("CREATE DATABASE \(database)")
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    let restored = try await target.connect()
                    defer { restored.close() }
                    #expect(TableFingerprint.differences(source: try await TableFingerprint.compute(s), restored: try await TableFingerprint.compute(restored)) == [])
                    #expect(try await ZooTests.populatedViews(restored) == ZooTests.populatedViews(s))
                    let version = s.serverVersionNumber
                    #expect(ZooTests.lineDiff(try Fixtures.schemaDDL(source.connectionString, serverVersion: version),
                                              try Fixtures.schemaDDL(target.connectionString, serverVersion: version)) == [])
                }
            }
        }
    }
}
