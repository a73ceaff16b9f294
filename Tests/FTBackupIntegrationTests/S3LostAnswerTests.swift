import Crypto
import Foundation
import Testing
@testable import FTBackupKit

/// Requests whose answer was lost (scripts/s3-fault-proxy.py `--lost-on` / `--lost-every`: the request reaches
/// moto, then the connection is reset), so the client's retry meets the request's own effect: a completed
/// upload, a lock or key record already created, a lease already renewed. Each must count as done when the
/// store provably holds what we sent, and as a failure or "exists" otherwise.
@Suite struct S3LostAnswerTests {
    /// The repository storage of `store` reached through `proxy`, in this process, retrying fast.
    static func storage(_ store: S3TestStore, through proxy: S3FaultProxy, partSize: Int = 5 << 20) throws -> S3Storage {
        var credentials = try S3TestStore.credentials()
        credentials.endpoint = URL(string: proxy.endpoint)!
        credentials.partSize = partSize
        let client = S3Client(credentials: credentials, bucket: store.bucket, retry: S3Retry(attempts: 5, baseDelay: 0.01))
        return S3Storage(location: try S3Location(store.url), client: client)
    }

    static func sha256(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }

    /// 11 MiB of varied bytes: two full 5 MiB parts and a last one.
    static let threeParts: [UInt8] = (0..<(11 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }

    static func write(_ bytes: [UInt8], to path: String, in storage: S3Storage) throws {
        let writer = try storage.openWrite(path)
        try bytes.withUnsafeBytes { try writer.write($0) }
        try writer.commit()
    }

    /// moto answers a retried CompleteMultipartUpload 200 (as AWS does within its window); MinIO, and AWS after it,
    /// answer 404 NoSuchUpload: the proxy does that to the retry.
    @Test func aCompletedMultipartUploadWhoseAnswerWasLostIsAcceptedBecauseTheStoredObjectIsProvablyOurs() async throws {
        try await S3TestStore.with { store in
            let complete = "POST /\(store.bucket)/repo/t/big.bin?uploadId="
            let proxy = try await S3FaultProxy(["--lost-on", "\(complete)=1", "--status-on", "\(complete)=2:404:NoSuchUpload"])
            defer { proxy.stop() }
            try Self.write(Self.threeParts, to: "t/big.bin", in: try Self.storage(store, through: proxy))
            #expect(proxy.count("lost") == 1 && proxy.count("status-404") == 1, "\(proxy.log)")
            let stored = try store.storage
            #expect(Self.sha256(try stored.readAll("t/big.bin")) == Self.sha256(Self.threeParts))
            #expect(try stored.head("t/big.bin").etag?.hasSuffix("-3\"") == true)
            #expect(try store.uploads().isEmpty)
        }
    }

    @Test func aRetriedCompleteAnsweredNoSuchUploadFailsWhenTheObjectIsNotProvablyOurs() async throws {
        try await S3TestStore.with { store in
            // The first attempt never reaches the store (503), the retry is told 404 NoSuchUpload: nothing is there.
            let complete = "POST /\(store.bucket)/repo/t/big.bin?uploadId="
            let proxy = try await S3FaultProxy(["--status-on", "\(complete)=1:503:SlowDown", "--status-on", "\(complete)=2:404:NoSuchUpload"])
            defer { proxy.stop() }
            #expect(throws: FTBackupError.self) { try Self.write(Self.threeParts, to: "t/big.bin", in: try Self.storage(store, through: proxy)) }
            #expect(proxy.count("status-503") == 1 && proxy.count("status-404") == 1, "\(proxy.log)")
            #expect(try store.storage.exists("t/big.bin") == false)
            #expect(try store.uploads().isEmpty, "the failed upload was not aborted")
            // Someone else's object is there: still a failure, and their object stays.
            let theirs = Array("theirs".utf8)
            try store.storage.writeAll("t/big.bin", theirs)
            let again = try await S3FaultProxy(["--status-on", "\(complete)=1:503:SlowDown", "--status-on", "\(complete)=2:404:NoSuchUpload"])
            defer { again.stop() }
            #expect(throws: FTBackupError.self) { try Self.write(Self.threeParts, to: "t/big.bin", in: try Self.storage(store, through: again)) }
            #expect(try store.storage.readAll("t/big.bin") == theirs)
        }
    }

    @Test func aLostMultipartCreateLeavesNoUploadBehind() async throws {
        try await S3TestStore.with { store in
            let proxy = try await S3FaultProxy(["--lost-on", "POST /\(store.bucket)/repo/t/big.bin?uploads=1"])
            defer { proxy.stop() }
            try Self.write(Self.threeParts, to: "t/big.bin", in: try Self.storage(store, through: proxy))
            #expect(proxy.count("lost") == 1, "\(proxy.log)")
            #expect(Self.sha256(try store.storage.readAll("t/big.bin")) == Self.sha256(Self.threeParts))
            #expect(try store.uploads().isEmpty, "the first create's upload is left behind")
        }
    }

    @Test func aKeyRecordCreateWhoseAnswerWasLostIsOursOnlyWhenTheStoredBytesAreExactlyOurs() async throws {
        try await S3TestStore.with { store in
            let proxy = try await S3FaultProxy(["--lost-on", "PUT /\(store.bucket)/repo/keys/a.json=1", "--lost-on", "PUT /\(store.bucket)/repo/keys/b.json=1"])
            defer { proxy.stop() }
            let storage = try Self.storage(store, through: proxy)
            let mine = Array("{\"record\":\"mine \(UUID())\"}".utf8)
            #expect(try ExclusiveCreation.create("keys/a.json", mine, in: storage), "our own create, answer lost, counted as someone else's")
            #expect(try store.storage.readAll("keys/a.json") == mine)
            #expect(try ExclusiveCreation.create("keys/a.json", Array("other".utf8), in: try store.storage) == false)
            // Someone else's record is there: the lost answer of our (refused) create stays "exists", bytes unchanged.
            let theirs = Array("{\"record\":\"theirs\"}".utf8)
            try store.storage.writeAll("keys/b.json", theirs)
            #expect(try ExclusiveCreation.create("keys/b.json", mine, in: storage) == false)
            #expect(try store.storage.readAll("keys/b.json") == theirs)
            #expect(proxy.count("lost") == 2, "\(proxy.log)")
        }
    }

    @Test func aLockCreateWhoseAnswerWasLostIsTakenByUsAndTheBackupRuns() async throws {
        try await TestServer.withDatabase { db in
            try await S3TestStore.with { store in
                let proxy = try await S3FaultProxy(["--lost-on", "PUT /\(store.bucket)/repo/locks/write.lock=1"])
                defer { proxy.stop() }
                let backup = try await store.run(["backup", "--type", "full"], database: db, environment: proxy.environment(store))
                #expect(backup.status == 0, "\(backup.stderr)")
                #expect(proxy.count("lost") == 1, "\(proxy.log)")
                #expect(!(try store.keys()).contains { $0.hasPrefix("repo/locks/") })
                #expect(try await store.run(["verify"]).status == 0)
            }
        }
    }

    @Test func aLeaseRenewalWhoseAnswerWasLostKeepsTheLockAndItsReleaseRemovesIt() async throws {
        try await S3TestStore.with { store in
            // The 1st PUT creates the lock, the 2nd is the first renewal (a third of the 3 s lease): its answer is lost.
            let proxy = try await S3FaultProxy(["--lost-on", "PUT /\(store.bucket)/repo/locks/renew.lock=2"])
            defer { proxy.stop() }
            let storage = try Self.storage(store, through: proxy)
            guard case .acquired(let lock) = try S3LeaseLock.tryExclusive(storage: storage, path: "locks/renew.lock", command: "test", lease: 3) else {
                Issue.record("the lock was not taken"); return
            }
            let deadline = Date().addingTimeInterval(600)  // the renewal thread runs late on a loaded machine
            while proxy.count("lost") == 0 && Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
            #expect(proxy.count("lost") == 1, "\(proxy.log)")
            // A later renewal goes through too (the ETag it matches on is the lost renewal's).
            try await Task.sleep(for: .milliseconds(1500))
            if case .acquired = try S3LeaseLock.tryExclusive(storage: try store.storage, path: "locks/renew.lock", command: "other", lease: 3) {
                Issue.record("another run took a live lock")
            }
            #expect(!lock.lost, "the run believes its lock was taken over")
            lock.release()
            #expect(!(try store.keys()).contains("repo/locks/renew.lock"), "the released lock was left behind")
        }
    }

    @Test func aTakeoverWhoseAnswerWasLostIsTakenByUs() async throws {
        try await S3TestStore.with { store in
            // A dead holder on another host (its 1 s lease long over by the store's clock).
            let dead = S3LeaseLock.Holder(id: "dead", pid: 1, host: "other-host.example", command: "backup", started: "2026-01-01T00:00:00Z",
                                          leaseUntil: 0, leaseSeconds: 1)
            try store.storage.writeAll("locks/take.lock", S3LeaseLock.encode(dead))
            try await Task.sleep(for: .seconds(4))
            // The 1st PUT is the refused create, the 2nd the takeover (If-Match): its answer is lost.
            let proxy = try await S3FaultProxy(["--lost-on", "PUT /\(store.bucket)/repo/locks/take.lock=2"])
            defer { proxy.stop() }
            let attempt = try S3LeaseLock.tryExclusive(storage: try Self.storage(store, through: proxy), path: "locks/take.lock", command: "test")
            #expect(proxy.count("lost") == 1, "\(proxy.log)")
            guard case .acquired(let lock) = attempt else { Issue.record("our own takeover was taken for someone else's: \(attempt)"); return }
            lock.release()
            #expect(!(try store.keys()).contains("repo/locks/take.lock"))
        }
    }

    @Test func backupIncrementalVerifyRestoreAndRestoreAtAreExactWhenEveryThirdChangingRequestLosesItsAnswerAndLeaveNothingBehind() async throws {
        try await ServerWideResource.replicationSlots.shared { try await TestServer.withDatabase { db in
            try await S3TestStore.with { store in
                _ = try await ChangeArchivalSetup.setup(db.connectionString, dryRun: false, fixReplicaIdentity: true)
                defer { Task { _ = try? await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false) } }
                let s = try await db.connect()
                defer { s.close() }
                let proxy = try await S3FaultProxy(["--lost-every", "3"])
                defer { proxy.stop() }
                let lossy = proxy.environment(store)
                let atFull = try await TableFingerprint.compute(s)
                let full = try await store.run(["backup", "--type", "full"], database: db, environment: lossy)
                #expect(full.status == 0, "\(full.stderr)")
                try await s.execute("""
                    UPDATE users.accounts SET email = 's3.lost@example.org' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1);
                    DELETE FROM audit.events WHERE id IN (SELECT id FROM audit.events ORDER BY id LIMIT 5);
                    """)
                try await Task.sleep(for: .milliseconds(20))
                let at = try await s.query("""
                    SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t
                    """).first!.requiredString("t")
                let atPoint = try await TableFingerprint.compute(s)
                try await Task.sleep(for: .milliseconds(20))
                try await s.execute("UPDATE users.accounts SET email = 's3.lost.after@example.org' WHERE id = (SELECT id FROM users.accounts ORDER BY id DESC LIMIT 1)")
                let incremental = try await store.run(["backup", "--type", "incr"], database: db, environment: lossy)
                #expect(incremental.status == 0, "\(incremental.stderr)")
                let verify = try await store.run(["verify"], environment: lossy)
                #expect(verify.status == 0 && verify.stdout.contains("all good"), "\(verify.stdout)\(verify.stderr)")

                let restored = try await S3FaultTests.restoredFingerprints(store, [], environment: lossy)
                #expect(TableFingerprint.differences(source: atFull, restored: restored) == [])
                let restoredAt = try await S3FaultTests.restoredFingerprints(store, ["--at", at], environment: lossy)
                #expect(TableFingerprint.differences(source: atPoint, restored: restoredAt) == [])
                #expect(proxy.count("lost") >= 10, "\(proxy.log)")

                // Nothing left behind: no lock object, no unfinished upload, nothing for repo cleanup to do.
                let keys = try store.keys()
                #expect(!keys.contains { $0.hasPrefix("repo/locks/") }, "\(keys)")
                #expect(try store.uploads().isEmpty)
                let dry = try await store.run(["repo", "cleanup", "--dry-run", "--output", "json"])
                #expect(dry.status == 0, "\(dry.stderr)")
                let plan = try #require(try JSONSerialization.jsonObject(with: Data(dry.stdout.utf8)) as? [String: Any])
                for field in ["abortedUploads", "removedTemporaryFiles", "removedIncompleteBackups", "removedIncompleteSegments"] {
                    #expect((plan[field] as? [Any])?.isEmpty == true, "\(field): \(dry.stdout)")
                }
            }
        } }
    }
}
