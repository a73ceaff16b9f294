import Crypto
import Foundation
import Testing
@testable import FTBackupKit

/// Encryption at rest on an S3 repository (loopback moto): the bucket holds ciphertext only, restores are
/// exact with the key, a wrong key is refused, `key rotate` works on it, and `sync` copies the ciphertext.
@Suite struct S3EncryptionTests {
    /// A new master key in a folder of its own (`ftbackup key create`).
    static func newKey() async throws -> String {
        let folder = NSTemporaryDirectory() + "ftbackup-s3-keys-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/master.key"
        let created = try await FTBackupBinary.run(["key", "create", "--key-file", path])
        #expect(created.status == 0, "\(created.stderr)")
        return path
    }

    /// The database clock now, as `--at` text.
    static func now(_ s: DatabaseSession) async throws -> String {
        try await Task.sleep(for: .milliseconds(20))
        let at = try await s.query("""
            SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t
            """).first!.requiredString("t")
        try await Task.sleep(for: .milliseconds(20))
        return at
    }

    /// Every stored file of `storage` (as stored: ciphertext) by path, locks and scheduler state aside.
    static func rawFiles(_ storage: any RepositoryStorage, _ folder: String = "") throws -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        for entry in try storage.list(folder) {
            if folder.isEmpty && ["locks", "schedule"].contains(entry.path) { continue }
            if entry.isDirectory {
                files.merge(try rawFiles(storage, entry.path)) { $1 }
            } else if !entry.path.contains(".tmp-") {
                files[entry.path] = try storage.readAll(entry.path)
            }
        }
        return files
    }

    static let knownValues = ["s3.vault.secret@example.org", "zz_s3_confidential_marker", "s3.incr.secret@example.org"]

    /// Fails the test if any stored object holds a known value in plaintext, or a unit's file is not encrypted.
    static func expectCiphertextOnly(_ files: [String: [UInt8]]) {
        #expect(files.keys.contains { $0.hasPrefix("keys/") } && files.keys.contains(RepositoryEncryptionMarker.fileName), "\(files.keys.sorted())")
        for (path, bytes) in files {
            for value in knownValues {
                #expect(bytes.firstRange(of: Array(value.utf8)) == nil, "\(path) holds \(value) in plaintext")
            }
            if EncryptionUnit.of(path) != nil {
                #expect(EncryptedFilePrefix.isEncrypted(Array(bytes.prefix(EncryptedFilePrefix.size))), "\(path) is not encrypted")
            }
        }
    }

    @Test func anEncryptedFullAndIncrementalOnS3LeakNothingAndRestoreExactly() async throws {
        try await ServerWideResource.replicationSlots.shared { try await TestServer.withDatabase { db in
            try await S3TestStore.with { store in
                _ = try await ChangeArchivalSetup.setup(db.connectionString, dryRun: false, fixReplicaIdentity: true)
                defer { Task { _ = try? await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false) } }
                let key = try await Self.newKey()
                let s = try await db.connect()
                defer { s.close() }
                try await s.execute("""
                    SET session_replication_role = replica;
                    UPDATE users.accounts SET email = 's3.vault.secret@example.org' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1);
                    UPDATE users.profiles SET preferences = coalesce(preferences, '{}') || '{"zz_s3_confidential_marker": true}';
                    RESET session_replication_role;
                    """)
                let atFull = try await TableFingerprint.compute(s)
                let full = try await store.run(["backup", "--type", "full", "--key-file", key], database: db)
                #expect(full.status == 0, "\(full.stderr)")
                try await s.execute("UPDATE users.accounts SET email = 's3.incr.secret@example.org' WHERE id = (SELECT id FROM users.accounts ORDER BY id DESC LIMIT 1)")
                let at = try await Self.now(s)
                let atIncremental = try await TableFingerprint.compute(s)
                try await s.execute("UPDATE users.accounts SET email = 'after@example.org' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1 OFFSET 1)")
                let incremental = try await store.run(["backup", "--type", "incr", "--key-file", key], database: db)
                #expect(incremental.status == 0, "\(incremental.stderr)")

                let stored = try store.storage
                let files = try Self.rawFiles(stored)
                #expect(files.keys.contains { $0.hasPrefix("changes/") }, "\(files.keys.sorted())")
                Self.expectCiphertextOnly(files)

                let verify = try await store.run(["verify", "--key-file", key])
                #expect(verify.status == 0 && verify.stdout.contains("all good"), "\(verify.stdout)\(verify.stderr)")
                try await TestServer.withDatabase(seeded: false) { target in
                    let restore = try await store.run(["restore", "--target", target.connectionString.raw, "--key-file", key])
                    #expect(restore.status == 0, "\(restore.stderr)")
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(TableFingerprint.differences(source: atFull, restored: try await TableFingerprint.compute(t)) == [])
                }
                try await TestServer.withDatabase(seeded: false) { target in
                    let restore = try await store.run(["restore", "--at", at, "--target", target.connectionString.raw, "--key-file", key])
                    #expect(restore.status == 0, "\(restore.stderr)")
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(TableFingerprint.differences(source: atIncremental, restored: try await TableFingerprint.compute(t)) == [])
                }
                // No key, or another key: refused at once (exit 77).
                let noKey = try await store.run(["info"])
                #expect(noKey.status == 77, "\(noKey.stdout)\(noKey.stderr)")
                let wrong = try await store.run(["info", "--key-file", try Self.newKey()])
                #expect(wrong.status == 77 && wrong.stderr.contains("is not repository"), "\(wrong.stderr)")
            }
        } }
    }

    @Test func aKeyRecordOnS3IsCreatedOnlyOnceAndTheSecondCreatorReadsTheFirstOnesKey() async throws {
        try await S3TestStore.with { store in
            let storage = try store.storage
            let master = try await MasterKey.load(path: try Self.newKey())
            let first = KeyStore(base: storage, master: master), second = KeyStore(base: storage, master: master)
            // Two runs start the same unit: the conditional PUT lets one record in; the other uses its key.
            #expect(try ExclusiveCreation.create("keys/probe.json", Array("one".utf8), in: storage))
            #expect(try !ExclusiveCreation.create("keys/probe.json", Array("two".utf8), in: storage))
            #expect(try storage.readAll("keys/probe.json") == Array("one".utf8))
            try storage.remove("keys/probe.json")
            let (recordA, keyA) = try #require(try first.keyForWriting("backups/20260101T000000Z-F"))
            let (recordB, keyB) = try #require(try second.keyForWriting("backups/20260101T000000Z-F"))
            #expect(recordA == recordB)
            #expect(keyA.withUnsafeBytes { Array($0) } == keyB.withUnsafeBytes { Array($0) })
        }
    }

    @Test func keyRotateOnS3LeavesOnlyTheNewKeyOpeningTheRepository() async throws {
        try await TestServer.withDatabase { db in
            try await S3TestStore.with { store in
                let old = try await Self.newKey(), new = try await Self.newKey()
                let s = try await db.connect()
                defer { s.close() }
                let before = try await TableFingerprint.compute(s)
                let full = try await store.run(["backup", "--type", "full", "--key-file", old], database: db)
                #expect(full.status == 0, "\(full.stderr)")
                let stored = try store.storage
                let dataBefore = try Self.rawFiles(stored).filter { !$0.key.hasPrefix("keys/") && $0.key != RepositoryEncryptionMarker.fileName }

                // Killed after its first record: the repository opens with neither key until it is run again.
                let killed = try await store.run(["key", "rotate", "--key-file", old, "--new-key-file", new],
                                           environment: ["FTBACKUP_FAILPOINT": KeyRotation.failpointAfterFirstRecord])
                #expect(killed.status == -9, "\(killed.stderr)")
                #expect(try await store.run(["info", "--key-file", old]).status == 77)
                #expect(try await store.run(["info", "--key-file", new]).status == 77)
                let rotate = try await store.run(["key", "rotate", "--key-file", old, "--new-key-file", new, "--output", "json"])
                #expect(rotate.status == 0 && rotate.stdout.contains("\"alreadyNew\" : 1"), "\(rotate.stdout)\(rotate.stderr)")

                // Only the key records and the marker changed; the old key opens nothing, the new one restores exactly.
                let after = try Self.rawFiles(stored)
                #expect(after.filter { !$0.key.hasPrefix("keys/") && $0.key != RepositoryEncryptionMarker.fileName } == dataBefore)
                for (path, bytes) in after where path.hasPrefix("keys/") {
                    let record = try DataKeyRecord.decode(bytes, shown: path)
                    #expect(record.masterKeyId == (try MasterKey.load(path: new)).id, "\(path)")
                }
                let withOld = try await store.run(["info", "--key-file", old])
                #expect(withOld.status == 77, "\(withOld.stderr)")
                try await TestServer.withDatabase(seeded: false) { target in
                    let restore = try await store.run(["restore", "--target", target.connectionString.raw, "--key-file", new])
                    #expect(restore.status == 0, "\(restore.stderr)")
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(TableFingerprint.differences(source: before, restored: try await TableFingerprint.compute(t)) == [])
                }
            }
        }
    }

    @Test func syncOfAnEncryptedRepositoryCopiesTheCiphertextBothWaysAndTheCopiesRestoreExactly() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                try await S3TestStore.with { store in
                    let key = try await Self.newKey()
                    let s = try await db.connect()
                    defer { s.close() }
                    try await s.execute("""
                        SET session_replication_role = replica;
                        UPDATE users.accounts SET email = 's3.vault.secret@example.org' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1);
                        RESET session_replication_role;
                        """)
                    let before = try await TableFingerprint.compute(s)
                    let full = try await FTBackupBinary.run(["backup", "--type", "full", "--repo", repo.path, "--db", db.connectionString.raw, "--key-file", key])
                    #expect(full.status == 0, "\(full.stderr)")

                    // local → S3, without the key: refused (exit 77); with it: the objects are the files' bytes exactly.
                    let keyless = try await FTBackupBinary.run(["sync", "--repo", repo.path, "--to", store.url], environment: store.environment)
                    #expect(keyless.status == 77, "\(keyless.stderr)")
                    let up = try await FTBackupBinary.run(["sync", "--repo", repo.path, "--to", store.url, "--key-file", key], environment: store.environment)
                    #expect(up.status == 0, "\(up.stderr)")
                    let local = try Self.rawFiles(LocalStorage(root: repo.path))
                    let remote = try Self.rawFiles(try store.storage)
                    #expect(remote == local, "\(Set(remote.keys).symmetricDifference(local.keys).sorted())")
                    Self.expectCiphertextOnly(remote)

                    // S3 → a second local folder: the same bytes again, and it restores with the key.
                    let copy = repo.path + "-copy"
                    defer { try? FileManager.default.removeItem(atPath: copy) }
                    let down = try await store.run(["sync", "--to", copy, "--key-file", key])
                    #expect(down.status == 0, "\(down.stderr)")
                    #expect(try Self.rawFiles(LocalStorage(root: copy)) == local)
                    let again = try await store.run(["sync", "--to", copy, "--key-file", key, "--output", "json"])
                    #expect(again.status == 0 && again.stdout.contains("\"copiedFiles\" : 0"), "\(again.stdout)\(again.stderr)")
                    for restoreFrom in [["--repo", copy], ["--repo", store.url]] {
                        try await TestServer.withDatabase(seeded: false) { target in
                            let restore = try await FTBackupBinary.run(["restore", "--target", target.connectionString.raw, "--key-file", key] + restoreFrom,
                                                                 environment: store.environment)
                            #expect(restore.status == 0, "\(restore.stderr)")
                            let t = try await target.connect()
                            defer { t.close() }
                            #expect(TableFingerprint.differences(source: before, restored: try await TableFingerprint.compute(t)) == [])
                        }
                    }
                    // A second repository under another key is refused (exit 77).
                    let other = try await FTBackupBinary.run(["sync", "--repo", copy, "--to", store.url, "--key-file", try Self.newKey()], environment: store.environment)
                    #expect(other.status == 77, "\(other.stderr)")
                }
            }
        }
    }
}
