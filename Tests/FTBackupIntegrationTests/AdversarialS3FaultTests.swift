import Foundation
import Testing
@testable import FTBackupKit

/// Second hostile-operator pass on S3 repositories (adv15b): what a store that refuses, rots or lies does to
/// existence checks and to `sync`.
@Suite struct AdversarialS3FaultTests {
    /// F6: a HEAD the store refuses (403) on the newest backup's manifest used to read as "no manifest", so
    /// restore silently restored the backup before it and exited 0. Now the command fails with one line.
    @Test func aRefusedManifestCheckFailsTheRestoreInsteadOfRestoringAnOlderBackup() async throws {
        try await TestServer.withDatabase { db in
            try await S3TestStore.with { store in
                let s = try await db.connect()
                defer { s.close() }
                #expect(try await store.run(["backup", "--type", "full"], database: db).status == 0)
                try await s.execute("UPDATE users.accounts SET email = 's3.newest@example.org' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1)")
                #expect(try await store.run(["backup", "--type", "full"], database: db).status == 0)
                let newest = try #require(try store.storage.list("backups").map(\.path).sorted().last)
                let proxy = try await S3FaultProxy(["--status", "HEAD /\(store.bucket)/repo/\(newest)/manifest.json=403"])
                defer { proxy.stop() }
                try await TestServer.withDatabase(seeded: false) { target in
                    let restore = try await store.run(["restore", "--target", target.connectionString.raw], environment: proxy.environment(store))
                    #expect(restore.status == 77, "status \(restore.status): \(restore.stderr)")
                    #expect(restore.stderr.split(separator: "\n").filter { $0.contains("error:") }.count == 1 && restore.stderr.contains("repo/\(newest)/manifest.json")
                            && restore.stderr.contains("HTTP 403"), "\(restore.stderr)")
                }
                let info = try await store.run(["info"], environment: proxy.environment(store))
                #expect(info.status == 77, "status \(info.status): \(info.stdout)\(info.stderr)")
            }
        }
    }

    /// F4: a destination data file that rotted (same size, other bytes) used to be kept by every re-sync; now a
    /// sync checks it against the manifest's SHA-256 and copies it again.
    @Test func aResyncRepairsADestinationDataFileThatRottedWithItsSizeUnchanged() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                try await S3TestStore.with { store in
                    let full = try await FTBackupBinary.run(["backup", "--type", "full", "--repo", repo.path, "--db", db.connectionString.raw])
                    #expect(full.status == 0, "\(full.stderr)")
                    let sync = try await FTBackupBinary.run(["sync", "--repo", repo.path, "--to", store.url], environment: store.environment)
                    #expect(sync.status == 0, "\(sync.stderr)")
                    let file = try AdversarialS3Tests.largestDataFile(in: repo.path)
                    let storage = try store.storage
                    var bytes = try storage.readAll(file)
                    bytes[40] ^= 0xFF
                    try storage.writeAll(file, bytes)
                    #expect(try await store.run(["verify"]).status == 65)

                    let again = try await FTBackupBinary.run(["sync", "--repo", repo.path, "--to", store.url], environment: store.environment)
                    #expect(again.status == 0, "\(again.stderr)")
                    let original = try Array(Data(contentsOf: URL(fileURLWithPath: "\(repo.path)/\(file)")))
                    #expect(try storage.readAll(file) == original)
                    let verify = try await store.run(["verify"])
                    #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
                }
            }
        }
    }

    /// F5: a backup manifest damaged in the source used to be copied as is; now the sync fails (65) naming it
    /// and copies nothing that would make the backup look complete off-site.
    @Test func aSyncRefusesToCopyAManifestThatNoLongerParses() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                try await S3TestStore.with { store in
                    let full = try await FTBackupBinary.run(["backup", "--type", "full", "--repo", repo.path, "--db", db.connectionString.raw])
                    #expect(full.status == 0, "\(full.stderr)")
                    let label = try #require(try FileManager.default.contentsOfDirectory(atPath: "\(repo.path)/backups").sorted().last)
                    let manifest = "\(repo.path)/backups/\(label)/manifest.json"
                    var text = try String(contentsOfFile: manifest, encoding: .utf8)
                    text.removeLast(text.count / 3)
                    try text.write(toFile: manifest, atomically: true, encoding: .utf8)
                    let sync = try await FTBackupBinary.run(["sync", "--repo", repo.path, "--to", store.url], environment: store.environment)
                    #expect(sync.status == 65, "status \(sync.status): \(sync.stdout)\(sync.stderr)")
                    #expect(sync.stderr.contains("backups/\(label)/manifest.json"), "\(sync.stderr)")
                    #expect(!(try store.keys()).contains { $0.hasSuffix("manifest.json") })
                }
            }
        }
    }

    /// F5: a chained record (drill and lifecycle records link the SHA-256 of the one before) edited in the source
    /// is refused by sync, naming it, instead of being copied off-site where the edit would look confirmed.
    @Test func aSyncRefusesToCopyAChainedRecordEditedAfterTheNextOneLinkedIt() async throws {
        try await TestRepository.with { repo in
            try await S3TestStore.with { store in
                let local = LocalStorage(root: repo.path)
                let first = Array(#"{"recordKind":"drill","label":"a","previousRecord":null,"previousRecordSHA256":null}"#.utf8)
                try local.writeAll("drills/a.json", first)
                let second = #"{"recordKind":"drill","label":"b","previousRecord":"a.json","previousRecordSHA256":"\#(RecordChain.sha256(first))"}"#
                try local.writeAll("drills/b.json", Array(second.utf8))
                let good = try await FTBackupBinary.run(["sync", "--repo", repo.path, "--to", "\(store.url)-good"], environment: store.environment)
                #expect(good.status == 0, "\(good.stderr)")
                try local.writeAll("drills/a.json", Array(#"{"recordKind":"drill","label":"A","previousRecord":null,"previousRecordSHA256":null}"#.utf8))
                let sync = try await FTBackupBinary.run(["sync", "--repo", repo.path, "--to", store.url], environment: store.environment)
                #expect(sync.status == 65, "status \(sync.status): \(sync.stdout)\(sync.stderr)")
                #expect(sync.stderr.contains("drills/a.json"), "\(sync.stderr)")
                #expect(!(try store.keys()).contains { $0.hasPrefix("repo/drills/") })
            }
        }
    }
}

/// Credentials that are there but unusable: each gives one line and the documented exit code.
@Suite struct AdversarialS3CredentialTests {
    /// F7: a stale or invalid session token (400 InvalidToken / ExpiredToken) used to exit 1 with no hint.
    @Test func anExpiredOrInvalidSessionTokenFailsWithOneLineAndTheCredentialsExitCode() async throws {
        try await S3TestStore.with { store in
            let info = try await store.run(["info"], environment: ["AWS_SESSION_TOKEN": "FwoGZXIvYXdzEExpiredTokenValue"])
            #expect(info.status == 77, "status \(info.status): \(info.stderr)")
            #expect(info.stderr.split(separator: "\n").count == 1 && info.stderr.contains("session token")
                    && !info.stderr.contains("FwoGZXIvYXdzEExpiredTokenValue"), "\(info.stderr)")
        }
    }

    /// F8: a profile without its secret used to be reported as "no shared credentials file has them"; a missing
    /// profile is named too. Both are configuration errors (78), one line.
    @Test func aMissingOrIncompleteProfileIsNamedInOneLine() async throws {
        try await S3TestStore.with { store in
            let home = NSTemporaryDirectory() + "ftbackup-home-\(UUID())"
            defer { try? FileManager.default.removeItem(atPath: home) }
            try FileManager.default.createDirectory(atPath: "\(home)/.aws", withIntermediateDirectories: true)
            try "[half]\naws_access_key_id = AKIAHALF\n".write(toFile: "\(home)/.aws/credentials", atomically: true, encoding: .utf8)
            let base = ["HOME": home, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""]
            let half = try await store.run(["info"], environment: base.merging(["AWS_PROFILE": "half"]) { $1 })
            #expect(half.status == 78, "status \(half.status): \(half.stderr)")
            #expect(half.stderr.split(separator: "\n").count == 1 && half.stderr.contains("half") && half.stderr.contains("aws_secret_access_key"), "\(half.stderr)")
            let missing = try await store.run(["info"], environment: base.merging(["AWS_PROFILE": "nosuch"]) { $1 })
            #expect(missing.status == 78, "status \(missing.status): \(missing.stderr)")
            #expect(missing.stderr.split(separator: "\n").count == 1 && missing.stderr.contains("nosuch"), "\(missing.stderr)")
        }
    }
}

/// A store that fails is not a damaged backup.
@Suite struct AdversarialS3UnavailableTests {
    /// F9: when the data files cannot be read because the store keeps failing (503 after the retries), restore
    /// said "backup … is damaged, nothing was restored" (65) and verify marked every file BAD: an operator would
    /// think the backup corrupt (and might delete it). Now both fail with the store's one line, exit 69.
    @Test func aStoreThatKeepsFailingIsReportedAsUnavailableNotAsADamagedBackup() async throws {
        try await TestServer.withDatabase { db in
            try await S3TestStore.with { store in
                #expect(try await store.run(["backup", "--type", "full"], database: db).status == 0)
                let label = try #require(try store.storage.list("backups").map(\.path).last)
                let proxy = try await S3FaultProxy(["--status", "GET /\(store.bucket)/repo/\(label)/data/=503"])
                defer { proxy.stop() }
                let failing = proxy.environment(store).merging(["FTBACKUP_S3_RETRIES": "2"]) { $1 }
                try await TestServer.withDatabase(seeded: false) { target in
                    let restore = try await store.run(["restore", "--target", target.connectionString.raw], environment: failing)
                    #expect(restore.status == 69, "status \(restore.status): \(restore.stderr)")
                    #expect(!restore.stderr.contains("damaged") && restore.stderr.contains("HTTP 503"), "\(restore.stderr)")
                }
                let verify = try await store.run(["verify"], environment: failing)
                #expect(verify.status == 69, "status \(verify.status): \(verify.stdout)\(verify.stderr)")
                #expect(!verify.stdout.contains("BAD"), "\(verify.stdout)")
            }
        }
    }
}
