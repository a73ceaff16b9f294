import Foundation
import Testing
@testable import FTBackupKit

/// SIGINT or SIGTERM in the middle of a run (issue 10, item 10): the process removes its temporary
/// files, stops its children, says so in one line and ends by the same signal.
@Suite struct InterruptTests {
    /// Runs the CLI with a private TMPDIR, sends `signal` once a temporary file whose name ends with
    /// `suffix` exists under it, and returns the outcome and what is left in that TMPDIR.
    static func interrupt(_ arguments: [String], signal signalNumber: Int32, whenFileEndsWith suffix: String)
        async throws -> (process: Process, stderr: String, left: [String], sawFile: Bool) {
        let tmp = NSTemporaryDirectory() + "ftbackup-tmpdir-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let (process, _, err) = try FTBackupBinary.start(arguments, environment: ["TMPDIR": tmp])
        var saw = false
        let deadline = Date().addingTimeInterval(600)  // a loaded machine takes its time to get there
        while process.isRunning && Date() < deadline {
            let files = FileManager.default.enumerator(atPath: tmp)?.allObjects as? [String] ?? []
            if files.contains(where: { $0.hasSuffix(suffix) }) {
                saw = true
                kill(process.processIdentifier, signalNumber)
                break
            }
            try await Task.sleep(for: .microseconds(2_000))
        }
        let stderr = await FTBackupBinary.text(of: err)
        await FTBackupBinary.waitForExit(process)
        let left = FileManager.default.enumerator(atPath: tmp)?.allObjects as? [String] ?? []
        return (process, stderr, left, saw)
    }

    /// A backup whose pg_dump waits for a lock (a partitioned parent held by another session) is interrupted.
    @Test(arguments: [SIGINT, SIGTERM])
    func backupInterruptedLeavesNoTemporaryFile(signal signalNumber: Int32) async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute("""
                CREATE TABLE parted (id int, v text) PARTITION BY RANGE (id);
                CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100000);
                INSERT INTO parted SELECT g, md5(g::text) FROM generate_series(1, 50000) g
                """)
            let holder = try await db.connect("holder")
            defer { holder.close() }
            try await holder.execute("BEGIN; LOCK TABLE ONLY parted IN ACCESS EXCLUSIVE MODE")
            try await TestRepository.with { repo in
                let run = try await Self.interrupt(["backup", "--db", "\(try TestServer.dsn) dbname=\(db.name)", "--repo", repo.path],
                                             signal: signalNumber, whenFileEndsWith: ".stderr")
                #expect(run.sawFile, "pg_dump never started: \(run.stderr)")
                #expect(run.process.terminationReason == .uncaughtSignal && run.process.terminationStatus == signalNumber, "\(run.stderr)")
                #expect(run.left == [], "left in TMPDIR: \(run.left)")
                #expect(run.stderr.contains("ftbackup: error: interrupted by \(signalNumber == SIGINT ? "SIGINT" : "SIGTERM"); temporary files removed"))
                // The interrupted backup is never usable; the next one succeeds.
                #expect(try repo.repository.entries().allSatisfy { $0.status != .complete })
                try await holder.execute("ROLLBACK")
                #expect(try await BackupRunner.runFull(try .test(db, repo)).tables.count == 1)
            }
        }
    }

    /// A restore interrupted after it decompressed the schema dump (`/tmp/ftbackup-<label>-*.pgdump` before).
    @Test func restoreInterruptedLeavesNoTemporaryFile() async throws {
        try await TestServer.withDatabase { source in
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                try await TestServer.withDatabase(seeded: false) { target in
                    let run = try await Self.interrupt(["restore", "--repo", repo.path, "--target", "\(try TestServer.dsn) dbname=\(target.name)"],
                                                 signal: SIGINT, whenFileEndsWith: ".pgdump")
                    #expect(run.sawFile, "\(run.stderr)")
                    #expect(run.process.terminationReason == .uncaughtSignal && run.process.terminationStatus == SIGINT, "\(run.stderr)")
                    #expect(run.left == [], "left in TMPDIR: \(run.left)")
                    #expect(run.stderr.contains("interrupted by SIGINT; temporary files removed"))
                }
            }
        }
    }

    /// SIGINT after `--clean` dropped a schema other schemas hold foreign keys on: the temporary folder goes,
    /// but the saved foreign keys are kept in a script named in the one line, and putting them back works.
    @Test func cleanRestoreInterruptedAfterTheDropKeepsWhatItSaved() async throws {
        try await TestServer.withDatabase { source in
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                try await TestServer.withDatabase { target in
                    let t = try await target.connect()
                    defer { t.close() }
                    let keysBefore = try await CleanRestoreTests.keysAndPolicies(t)
                    let usersOid = try await t.query("SELECT oid::text AS o FROM pg_namespace WHERE nspname = 'users'").first!.requiredString("o")
                    let tmp = NSTemporaryDirectory() + "ftbackup-tmpdir-\(UUID().uuidString)"
                    try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: false)
                    defer { try? FileManager.default.removeItem(atPath: tmp) }
                    let (process, _, err) = try FTBackupBinary.start(["restore", "--repo", repo.path, "--schema", "users", "--clean",
                                                                      "--target", "\(try TestServer.dsn) dbname=\(target.name)"],
                                                                     environment: ["TMPDIR": tmp, "FTBACKUP_FAILPOINT": "restore.after-clean-drop"])
                    var signalled = false
                    for _ in 0..<300_000 where process.isRunning {
                        let now = try await t.query("SELECT oid::text AS o FROM pg_namespace WHERE nspname = 'users'").first?.string("o")
                        if now != usersOid {
                            kill(process.processIdentifier, SIGINT)
                            signalled = true
                            break
                        }
                        try await Task.sleep(for: .microseconds(2_000))
                    }
                    let stderr = await FTBackupBinary.text(of: err)
                    await FTBackupBinary.waitForExit(process)
                    #expect(signalled, "the restore ended before its drop was seen: \(stderr)")
                    #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGINT, "\(stderr)")
                    let left = (try FileManager.default.contentsOfDirectory(atPath: tmp)).sorted()
                    // Only what was kept on purpose, outside the process's folder.
                    #expect(left.allSatisfy { $0.hasPrefix("ftbackup-dependants-") }, "\(left)")
                    let script = left.first { $0.hasSuffix(".sql") }.map { "\(tmp)/\($0)" }
                    #expect(script != nil && stderr.contains("psql -f \(script ?? "?")"), "\(stderr)")
                    #expect(stderr.contains("--clean was dropping or had dropped schema(s) users"), "\(stderr)")
                    // The documented way back: the same restore with --clean, then the kept script.
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path,
                                                                   schemas: ["users"], clean: true, showProgress: false))
                    if let script {
                        let sql = try String(contentsOfFile: script, encoding: .utf8)
                        #expect(sql.contains("FOREIGN KEY"))
                        // As an operator would: psql -f, here through one simple query (the drop had committed).
                        try await t.execute(sql)
                    }
                    let keysAfter = try await CleanRestoreTests.keysAndPolicies(t)
                    #expect(keysAfter == keysBefore, "missing: \(Set(keysBefore).subtracting(keysAfter)); extra: \(Set(keysAfter).subtracting(keysBefore))")
                }
            }
        }
    }
}
