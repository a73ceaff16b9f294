import Foundation
import Testing
@testable import FTBackupKit

/// The faults issue 15 names, through scripts/s3-fault-proxy.py in front of the loopback S3 server: retries
/// survive 5xx answers, resets, slow answers and truncated reads; a store that stops mid-backup leaves nothing
/// that looks complete; a request that cannot succeed fails with one line.
@Suite struct S3FaultTests {
    static func restoredFingerprints(_ store: S3TestStore, _ arguments: [String], environment: [String: String]) async throws -> [TableFingerprint] {
        try await TestServer.withDatabase(seeded: false) { target in
            let restore = try await store.run(["restore", "--target", target.connectionString.raw] + arguments, environment: environment)
            #expect(restore.status == 0, "\(restore.stderr)")
            let t = try await target.connect()
            defer { t.close() }
            return try await TableFingerprint.compute(t)
        }
    }

    @Test func backupRestoreAndRestoreAtSurviveServerErrorsResetsSlowAnswersAndTruncatedReads() async throws {
        try await ServerWideResource.replicationSlots.shared { try await TestServer.withDatabase { db in
            try await S3TestStore.with { store in
                _ = try await ChangeArchivalSetup.setup(db.connectionString, dryRun: false, fixReplicaIdentity: true)
                defer { Task { _ = try? await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false) } }
                let s = try await db.connect()
                defer { s.close() }
                let proxy = try await S3FaultProxy(["--every", "7", "--faults", "503,reset,slow", "--truncate-every", "5"])
                defer { proxy.stop() }
                let faulty = proxy.environment(store)
                let atFull = try await TableFingerprint.compute(s)
                let full = try await store.run(["backup", "--type", "full"], database: db, environment: faulty)
                #expect(full.status == 0, "\(full.stderr)")
                try await s.execute("""
                    UPDATE users.accounts SET email = 's3.fault@example.org' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1);
                    DELETE FROM audit.events WHERE id IN (SELECT id FROM audit.events ORDER BY id LIMIT 5);
                    """)
                try await Task.sleep(for: .milliseconds(20))
                let at = try await s.query("""
                    SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t
                    """).first!.requiredString("t")
                let atPoint = try await TableFingerprint.compute(s)
                try await Task.sleep(for: .milliseconds(20))
                try await s.execute("UPDATE users.accounts SET email = 's3.fault.after@example.org' WHERE id = (SELECT id FROM users.accounts ORDER BY id DESC LIMIT 1)")
                let incremental = try await store.run(["backup", "--type", "incr"], database: db, environment: faulty)
                #expect(incremental.status == 0, "\(incremental.stderr)")
                let verify = try await store.run(["verify"], environment: faulty)
                #expect(verify.status == 0 && verify.stdout.contains("all good"), "\(verify.stdout)\(verify.stderr)")

                let restored = try await Self.restoredFingerprints(store, [], environment: faulty)
                #expect(TableFingerprint.differences(source: atFull, restored: restored) == [])
                let restoredAt = try await Self.restoredFingerprints(store, ["--at", at], environment: faulty)
                #expect(TableFingerprint.differences(source: atPoint, restored: restoredAt) == [])
                for kind in ["503", "reset", "slow", "truncate"] { #expect(proxy.count(kind) > 0, "no \(kind) fault: \(proxy.log)") }
            }
        } }
    }

    @Test func theStoreStoppingInTheMiddleOfABackupLeavesNothingThatLooksCompleteAndTheNextBackupWorks() async throws {
        try await TestServer.withDatabase { db in
            try await S3TestStore.with { store in
                let s = try await db.connect()
                defer { s.close() }
                let first = try await TableFingerprint.compute(s)
                let full = try await store.run(["backup", "--type", "full"], database: db)
                #expect(full.status == 0, "\(full.stderr)")
                try await s.execute("UPDATE users.accounts SET email = 's3.stopped@example.org' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1)")
                // The store goes away at the third data file of the second backup.
                let proxy = try await S3FaultProxy(["--stop-on", "PUT /\(store.bucket)/repo/backups/=3"])
                defer { proxy.stop() }
                let stopped = try await store.run(["backup", "--type", "full"], database: db,
                                            environment: proxy.environment(store).merging(["FTBACKUP_S3_RETRIES": "2"]) { $1 })
                #expect(stopped.status == 69, "status \(stopped.status): \(stopped.stderr)")
                #expect(stopped.stderr.contains("cannot reach S3 endpoint"), "\(stopped.stderr)")
                #expect(proxy.count("stopped") == 1, "\(proxy.log)")
                let folders = Set(try store.keys().filter { $0.hasPrefix("repo/backups/") }.map { $0.split(separator: "/")[2] })
                #expect(folders.count == 2, "the stopped backup left no files: \(folders)")

                let info = try await store.run(["info", "--output", "json"])
                #expect(info.status == 0 && info.stdout.components(separatedBy: "\"complete\"").count - 1 == 1, "\(info.stdout)\(info.stderr)")
                // verify names the stopped backup as incomplete (not complete, not used) until the next backup clears it.
                let verify = try await store.run(["verify"])
                #expect(verify.status == 65 && verify.stdout.contains("incomplete: no manifest"), "\(verify.stdout)\(verify.stderr)")
                let restored = try await Self.restoredFingerprints(store, [], environment: [:])
                #expect(TableFingerprint.differences(source: first, restored: restored) == [])

                let next = try await store.run(["backup", "--type", "full"], database: db)
                #expect(next.status == 0, "\(next.stderr)")
                let after = try await store.run(["info", "--output", "json"])
                #expect(after.stdout.components(separatedBy: "\"complete\"").count - 1 == 2, "\(after.stdout)")
                let clean = try await store.run(["verify"])
                #expect(clean.status == 0, "\(clean.stdout)\(clean.stderr)")
            }
        }
    }

    @Test func aRequestThatCannotSucceedFailsWithOneLineNamingBucketKeyAndStatus() async throws {
        try await TestServer.withDatabase { db in
            try await S3TestStore.with { store in
                let proxy = try await S3FaultProxy(["--status", "PUT /\(store.bucket)/repo/backups/=503"])
                defer { proxy.stop() }
                let backup = try await store.run(["backup", "--type", "full"], database: db,
                                           environment: proxy.environment(store).merging(["FTBACKUP_S3_RETRIES": "3"]) { $1 })
                #expect(backup.status == 69, "status \(backup.status): \(backup.stderr)")
                // One error line (the rest of stderr is the run's log).
                #expect(backup.stderr.split(separator: "\n").filter { $0.contains("error:") }.count == 1, "\(backup.stderr)")
                #expect(backup.stderr.contains("s3://\(store.bucket)/repo/backups/") && backup.stderr.contains("HTTP 503"), "\(backup.stderr)")
                #expect(proxy.count("status-503") >= 3, "\(proxy.log)")
                #expect(!(try store.keys()).contains { $0.hasSuffix("/manifest.json") })
            }
        }
    }
}
