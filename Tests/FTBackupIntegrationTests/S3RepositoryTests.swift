import Foundation
import Testing
@testable import FTBackupKit

/// An S3 repository end to end through the real binary against the loopback S3 server (moto, IAM checks on).
@Suite struct S3RepositoryTests {
    @Test func aFullBackupToS3VerifiesAndRestoresEveryTableRowForRow() async throws {
        try await TestServer.withDatabase { db in
            try await S3TestStore.with { store in
                let source = try await db.connect()
                defer { source.close() }
                let before = try await TableFingerprint.compute(source)
                let backup = try await store.run(["backup", "--type", "full"], database: db)
                #expect(backup.status == 0, "\(backup.stderr)")
                #expect(try store.keys().contains { $0.hasPrefix("repo/backups/") && $0.hasSuffix("/manifest.json") })
                let verify = try await store.run(["verify"])
                #expect(verify.status == 0 && verify.stdout.contains("all good"), "\(verify.stdout)\(verify.stderr)")
                let info = try await store.run(["info", "--output", "json"])
                #expect(info.status == 0 && info.stdout.contains("\"complete\""), "\(info.stdout)\(info.stderr)")
                try await TestServer.withDatabase(seeded: false) { target in
                    let restore = try await store.run(["restore", "--target", target.connectionString.raw])
                    #expect(restore.status == 0, "\(restore.stderr)")
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(TableFingerprint.differences(source: before, restored: try await TableFingerprint.compute(t)) == [])
                }
            }
        }
    }

    @Test func anIncrementalOnS3RestoresTheDatabaseAsAtATime() async throws {
        try await ServerWideResource.replicationSlots.shared { try await TestServer.withDatabase { db in
            try await S3TestStore.with { store in
                _ = try await ChangeArchivalSetup.setup(db.connectionString, dryRun: false, fixReplicaIdentity: true)
                defer { Task { _ = try? await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false) } }
                let s = try await db.connect()
                defer { s.close() }
                let full = try await store.run(["backup", "--type", "full"], database: db)
                #expect(full.status == 0, "\(full.stderr)")
                try await s.execute("""
                    UPDATE users.accounts SET email = 's3.incr@example.org' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1);
                    DELETE FROM audit.events WHERE id IN (SELECT id FROM audit.events ORDER BY id LIMIT 5);
                    """)
                try await Task.sleep(for: .milliseconds(20))
                let at = try await s.query("""
                    SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t
                    """).first!.requiredString("t")
                let atPoint = try await TableFingerprint.compute(s)
                try await Task.sleep(for: .milliseconds(20))
                try await s.execute("UPDATE users.accounts SET email = 's3.after@example.org' WHERE id = (SELECT id FROM users.accounts ORDER BY id DESC LIMIT 1)")
                let incremental = try await store.run(["backup", "--type", "incr"], database: db)
                #expect(incremental.status == 0, "\(incremental.stderr)")
                #expect(try store.keys().contains { $0.hasPrefix("repo/changes/") })
                try await TestServer.withDatabase(seeded: false) { target in
                    let outcome = try await store.run(["restore", "--at", at, "--target", target.connectionString.raw])
                    #expect(outcome.status == 0, "\(outcome.stderr)")
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(TableFingerprint.differences(source: atPoint, restored: try await TableFingerprint.compute(t)) == [])
                }
            }
        } }
    }

    /// A table whose compressed file needs more than three 5 MiB parts (moto's minimum part size).
    static let bigTable = """
        CREATE TABLE public.s3_big (id int PRIMARY KEY, a text, b text);
        INSERT INTO public.s3_big SELECT g, md5(random()::text) || md5(random()::text) || md5(random()::text),
               md5(random()::text) || md5(random()::text) || md5(random()::text) FROM generate_series(1, 260000) g;
        """
    static let partSize = ["FTBACKUP_S3_PART_SIZE": "\(5 << 20)"]

    @Test func aFileOfMoreThanThreePartsStreamsInBoundedMemory() async throws {
        try await TestServer.withDatabase { db in
            try await S3TestStore.with { store in
                let s = try await db.connect()
                defer { s.close() }
                try await s.execute(Self.bigTable)
                let before = try await TableFingerprint.compute(s, schemas: ["public"])
                let rssFile = NSTemporaryDirectory() + "ftbackup-rss-\(UUID())"
                defer { try? FileManager.default.removeItem(atPath: rssFile) }
                let backup = try await FTBackupBinary.run(["/usr/bin/time", "-f", "%M", "-o", rssFile, try FTBackupBinary.path, "backup", "--type", "full",
                                                     "--repo", store.url, "--db", db.connectionString.raw],
                                                    environment: store.environment.merging(Self.partSize) { $1 }, executable: "/usr/bin/env")
                #expect(backup.status == 0, "\(backup.stderr)")
                // The big table's file went up as a multipart upload of at least four parts (its ETag says how many).
                let storage = try store.storage
                let label = try storage.list("backups").first!.path
                let files = try storage.list("\(label)/data").sorted { $0.size > $1.size }
                #expect(files[0].size > 3 * (5 << 20), "\(files.map(\.size))")
                let etag = try storage.client.expect([200], "HEAD", key: storage.key(files[0].path)).headers["etag"] ?? ""
                #expect(Int(etag.split(separator: "-").last?.dropLast() ?? "") ?? 0 >= 4, "\(etag)")
                // Peak memory: far below the file's size (one part per stream, two streams).
                let peakKiB = Int(try String(contentsOfFile: rssFile, encoding: .utf8).split(separator: "\n").last ?? "") ?? 0
                #expect(peakKiB > 0 && peakKiB < 150 * 1024, "peak RSS \(peakKiB) KiB")
                try await TestServer.withDatabase(seeded: false) { target in
                    let restore = try await store.run(["restore", "--target", target.connectionString.raw])
                    #expect(restore.status == 0, "\(restore.stderr)")
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(TableFingerprint.differences(source: before, restored: try await TableFingerprint.compute(t, schemas: ["public"])) == [])
                }
            }
        }
    }

    @Test func aKilledUploadLeavesNothingVisibleAndTheNextBackupAbortsIt() async throws {
        try await TestServer.withDatabase { db in
            try await S3TestStore.with { store in
                let s = try await db.connect()
                defer { s.close() }
                try await s.execute(Self.bigTable)
                let killed = try await store.run(["backup", "--type", "full"], database: db,
                                           environment: Self.partSize.merging(["FTBACKUP_FAILPOINT": "s3.after-second-part"]) { $1 })
                #expect(killed.status == -9, "\(killed.stderr)")
                #expect(!(try store.uploads()).isEmpty)
                #expect(!(try store.keys()).contains { $0.hasSuffix("/manifest.json") })
                let info = try await store.run(["info"])
                #expect(!info.stdout.contains("  complete"), "\(info.stdout)")
                let next = try await store.run(["backup", "--type", "full"], database: db, environment: Self.partSize)
                #expect(next.status == 0, "\(next.stderr)")
                #expect(try store.uploads() == [])
                let manifests = try store.keys().filter { $0.hasSuffix("/manifest.json") && $0.contains("/backups/") }
                let folders = Set(try store.keys().filter { $0.contains("/backups/") }.map { $0.split(separator: "/")[2] })
                #expect(manifests.count == 1 && folders.count == 1, "\(folders)")
                #expect(try await store.run(["verify"]).status == 0)
            }
        }
    }

    @Test func aWrongSecretAndAMissingBucketEachGiveOneLine() async throws {
        try await S3TestStore.with { store in
            let wrong = try await store.run(["info"], environment: ["AWS_SECRET_ACCESS_KEY": "wrong-secret-value"])
            #expect(wrong.status == 77, "\(wrong.stderr)")
            #expect(wrong.stderr.split(separator: "\n").count == 1 && !wrong.stderr.contains("wrong-secret-value"), "\(wrong.stderr)")
            let missing = try await FTBackupBinary.run(["info", "--repo", "s3://no-such-bucket-\(store.bucket)/x"], environment: store.environment)
            #expect(missing.status == 69, "\(missing.stderr)")
            #expect(missing.stderr.split(separator: "\n").count == 1 && missing.stderr.contains("does not exist"), "\(missing.stderr)")
        }
    }

    @Test func listingFollowsContinuationAcrossPages() async throws {
        try await S3TestStore.with { store in
            let storage = try store.storage
            let names = (0..<1_500).map { String(format: "many/%05d.json", $0) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for chunk in stride(from: 0, to: names.count, by: 250) {
                    let slice = Array(names[chunk..<min(chunk + 250, names.count)])
                    group.addTask { for name in slice { try storage.writeAll(name, Array("{}".utf8)) } }
                }
                try await group.waitForAll()
            }
            #expect(try storage.list("many").map(\.path) == names)
            try storage.remove("many")
            #expect(try storage.list("many") == [])
        }
    }
}
