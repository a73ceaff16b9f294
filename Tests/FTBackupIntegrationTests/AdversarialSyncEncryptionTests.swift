import Foundation
import Testing
@testable import FTBackupKit

/// Encryption turned on in the first repository while the second (on S3) still holds plain backups the first no
/// longer has: the first sync of ciphertext must not make them unreadable there (`encryption.json` lists the units
/// that may stay plain; the first's list knows nothing of the second's own).
@Suite struct AdversarialSyncEncryptionTests {
    @Test func turningOnEncryptionInTheFirstKeepsThePlainBackupsOnlyTheSecondStillHoldsReadable() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { first in
                try await S3TestStore.with { store in
                    let s = try await db.connect()
                    defer { s.close() }
                    let key = try await S3EncryptionTests.newKey()
                    let local = ["--repo", first.path, "--db", db.connectionString.raw]
                    let plain = try await FTBackupBinary.run(["backup", "--type", "full"] + local)
                    #expect(plain.status == 0, "\(plain.stderr)")
                    let plainLabel = try #require(try first.repository.entries().last?.label)
                    let atPlain = try await TableFingerprint.compute(s)
                    let sync = try await FTBackupBinary.run(["sync", "--repo", first.path, "--to", store.url], environment: store.environment)
                    #expect(sync.status == 0, "\(sync.stderr)")

                    // The first's retention removed the plain backup; the second (expired later, or behind) still has it.
                    try first.repository.storage.remove(first.repository.backupFolder(plainLabel))
                    try await s.execute("UPDATE users.accounts SET email = 'after.plain@example.org' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1)")
                    // Encryption is turned on in the first (its first run with a key), then the second is synced.
                    let encrypted = try await FTBackupBinary.run(["backup", "--type", "full", "--key-file", key] + local)
                    #expect(encrypted.status == 0, "\(encrypted.stderr)")
                    let again = try await FTBackupBinary.run(["sync", "--repo", first.path, "--to", store.url, "--key-file", key], environment: store.environment)
                    #expect(again.status == 0, "\(again.stderr)")

                    // The second opens with the key, every backup verifies, and the plain one restores row for row.
                    let verify = try await store.run(["verify", "--key-file", key])
                    #expect(verify.status == 0 && verify.stdout.contains("all good"), "\(verify.stdout)\(verify.stderr)")
                    try await TestServer.withDatabase(seeded: false) { target in
                        let restore = try await store.run(["restore", "--set", plainLabel, "--key-file", key, "--target", target.connectionString.raw])
                        #expect(restore.status == 0, "\(restore.stderr)")
                        let t = try await target.connect()
                        defer { t.close() }
                        #expect(TableFingerprint.differences(source: atPlain, restored: try await TableFingerprint.compute(t)) == [])
                    }
                    // A re-sync changes nothing and keeps it readable.
                    let third = try await FTBackupBinary.run(["sync", "--repo", first.path, "--to", store.url, "--key-file", key], environment: store.environment)
                    #expect(third.status == 0 && third.stdout.contains("copied 0 files"), "\(third.stdout)\(third.stderr)")
                    #expect(try await store.run(["verify", "--key-file", key]).status == 0)
                }
            }
        }
    }
}
