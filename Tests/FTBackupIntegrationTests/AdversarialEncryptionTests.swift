import Foundation
import Testing
@testable import FTBackupKit

/// Adversarial review of encryption at rest (issue 13) on the real server: what an attacker with write
/// access to the repository, or an unlucky 3 a.m., could get past the first version.
@Suite struct AdversarialEncryptionTests {
    typealias Keyed = EncryptionTests.Keyed

    static func backup(_ k: Keyed, _ type: String = "full", key: String?? = .some(nil)) async throws -> String {
        let outcome = try await k.run(["backup", "--type", type], key: key)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        return outcome.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Restores the newest backup (or `label`) with the key and compares every table with `expected`.
    static func expectRestores(_ k: Keyed, _ expected: [TableFingerprint], label: String? = nil, key: String?? = .some(nil),
                               sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await TestServer.withDatabase(seeded: false) { target in
            let outcome = try await k.run(["restore", "--target", target.connectionString.raw] + (label.map { ["--set", $0] } ?? []), key: key)
            #expect(outcome.status == 0, "\(outcome.stderr)", sourceLocation: sourceLocation)
            let t = try await target.connect()
            defer { t.close() }
            #expect(TableFingerprint.differences(source: expected, restored: try await TableFingerprint.compute(t)) == [], sourceLocation: sourceLocation)
        }
    }

    /// A plain backup (made in another repository, of data the attacker chose) copied into an encrypted
    /// repository under a newer label used to verify "all good" and be restored as the newest backup.
    @Test func aPlainBackupDroppedIntoAnEncryptedRepositoryIsRefusedBeforeTheTargetIsTouched() async throws {
        try await Keyed.with { k in
            let s = k.archived.session
            let genuine = try await TableFingerprint.compute(s)
            _ = try await Self.backup(k)
            try await s.execute("""
                SET session_replication_role = replica;
                UPDATE users.accounts SET email = 'forged@attacker.example' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1);
                RESET session_replication_role;
                """)
            try await TestRepository.with { plain in
                let made = try await FTBackupBinary.run(["backup", "--type", "full", "--repo", plain.path, "--db", k.source])
                #expect(made.status == 0, "\(made.stderr)")
                let label = made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                try FileManager.default.copyItem(atPath: "\(plain.path)/backups/\(label)", toPath: "\(k.repo)/backups/\(label)")
                try await TestServer.withDatabase(seeded: false) { target in
                    try await EncryptionTests.expectRefused(try await k.run(["restore", "--target", target.connectionString.raw]), 65,
                                                            "was not in the repository when encryption was turned on", target: target)
                }
                let verify = try await k.run(["verify"])
                #expect(verify.status == 65 && verify.stdout.contains("backups/\(label)/manifest.json"), "\(verify.stdout)\(verify.stderr)")
                // Without its key record the forged unit is no better: a unit needs one or a place in encryption.json.
                try FileManager.default.removeItem(atPath: "\(k.repo)/backups/\(label)")
            }
            try await Self.expectRestores(k, genuine)
        }
    }

    /// `encryption.json` removed used to turn the repository plain for a run without the key; changed
    /// (a forged unit added to the plain ones) it must not be believed.
    @Test func aRemovedOrChangedEncryptionMarkerIsRefused() async throws {
        try await Keyed.with { k in
            let genuine = try await TableFingerprint.compute(k.archived.session)
            _ = try await Self.backup(k)
            let markerPath = "\(k.repo)/\(RepositoryEncryptionMarker.fileName)"
            let original = try Data(contentsOf: URL(fileURLWithPath: markerPath))
            try await TestServer.withDatabase(seeded: false) { target in
                let restore = ["restore", "--target", target.connectionString.raw]
                try FileManager.default.removeItem(atPath: markerPath)
                try await EncryptionTests.expectRefused(try k.run(restore, key: .none), 65, "no encryption.json", target: target)
                try await EncryptionTests.expectRefused(try k.run(restore), 65, "no encryption.json", target: target)
                let backupWithoutKey = try await k.run(["backup", "--type", "full"], key: .none)
                #expect(backupWithoutKey.status == 65 && backupWithoutKey.stderr.contains("no encryption.json"), "\(backupWithoutKey.stderr)")
                var changed = try #require(try JSONSerialization.jsonObject(with: original) as? [String: Any])
                changed["plainUnits"] = ((changed["plainUnits"] as? [String]) ?? []) + ["backups/20990101T000000Z-F"]
                try JSONSerialization.data(withJSONObject: changed).write(to: URL(fileURLWithPath: markerPath))
                try await EncryptionTests.expectRefused(try k.run(restore), 65, "does not authenticate", target: target)
            }
            try original.write(to: URL(fileURLWithPath: markerPath))
            #expect(try await Self.backup(k).hasSuffix("-F"))
            try await Self.expectRestores(k, genuine)
        }
    }

    /// A run that opened the repository just before a `key rotate` finished (the backup opens it, then
    /// takes its lock) used to wrap its new data key with the retired key: the unit was then unreadable
    /// with the current key, and lost with the old one.
    @Test func aRunOpenedBeforeAKeyRotateNeverWrapsANewDataKeyWithTheRetiredKey() async throws {
        try await Keyed.with { k in
            let genuine = try await TableFingerprint.compute(k.archived.session)
            _ = try await Self.backup(k)
            let oldKey = try MasterKey.load(path: k.keyFile)
            RepositoryEncryption.use(oldKey, forRepository: k.repo)
            defer { RepositoryEncryption.use(nil, forRepository: k.repo) }
            let opened = try Repository.open(k.repo)
            let newKey = (k.repo as NSString).deletingLastPathComponent + "/new.key"
            #expect(try await FTBackupBinary.run(["key", "create", "--key-file", newKey]).status == 0)
            let rotated = try await FTBackupBinary.run(["key", "rotate", "--new-key-file", newKey, "--repo", k.repo, "--key-file", k.keyFile])
            #expect(rotated.status == 0, "\(rotated.stderr)")
            let late = #expect(throws: FTBackupError.self) { try opened.storage.writeAll("drills/20990101T000000Z.json", Array("{}".utf8)) }
            #expect(late?.status == .permission, "\(String(describing: late))")
            let newId = try MasterKey.load(path: newKey).id
            for record in try FileManager.default.contentsOfDirectory(atPath: "\(k.repo)/keys") {
                let text = try String(contentsOfFile: "\(k.repo)/keys/\(record)", encoding: .utf8)
                #expect(text.contains("\"masterKeyId\" : \"\(newId)\""), "\(record) is wrapped by another key: \(text)")
            }
            let verify = try await k.run(["verify"], key: newKey)
            #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
            try await Self.expectRestores(k, genuine, key: newKey)
        }
    }

    /// A byte flipped in the newest full backup's manifest used to make `restore` quietly restore the
    /// backup before it (older data, exit 0): the damaged newer backup is now named and nothing restored.
    @Test func restoreRefusesWhenTheNewestFullBackupIsUnreadableAndRestoresTheOlderOneWhenNamed() async throws {
        try await Keyed.with { k in
            let s = k.archived.session
            let older = try await Self.backup(k)
            let atOlder = try await TableFingerprint.compute(s)
            try await s.execute("UPDATE users.accounts SET full_name = 'newer' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1)")
            let newer = try await Self.backup(k)
            #expect(newer > older)
            let manifest = URL(fileURLWithPath: "\(k.repo)/backups/\(newer)/manifest.json")
            var bytes = try Data(contentsOf: manifest)
            bytes[bytes.count / 2] ^= 0x01
            try bytes.write(to: manifest)
            try await TestServer.withDatabase(seeded: false) { target in
                try await EncryptionTests.expectRefused(try await k.run(["restore", "--target", target.connectionString.raw]), 65,
                                                        "backup \(newer), newer than \(older), is unreadable", target: target)
            }
            try await Self.expectRestores(k, atOlder, label: older)
        }
    }

    /// `key create --key-file k` wrote the key, then crashed (SIGILL in Foundation's
    /// `deletingLastPathComponent` of a one-letter name) without printing its id; `--repo r` crashed the
    /// same way before anything was written. A key file in a missing folder was "damaged data" (65).
    @Test func oneLetterKeyFileAndRepositoryNamesWorkAndAMissingKeyFolderIsACannotWrite() async throws {
        try await TestServer.withDatabase { db in
            let folder = NSTemporaryDirectory() + "ftbackup-test-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let created = try await FTBackupBinary.run(["key", "create", "--key-file", "k"], in: folder)
            #expect(created.status == 0 && created.stdout.contains("written to k"), "\(created.stdout)\(created.stderr)")
            let attributes = try FileManager.default.attributesOfItem(atPath: folder + "/k")
            #expect(attributes[.size] as? Int == 32 && (attributes[.posixPermissions] as? Int) == 0o600, "\(attributes)")
            let session = try await db.connect()
            defer { session.close() }
            let source = try await TableFingerprint.compute(session)
            let backup = try await FTBackupBinary.run(["backup", "--type", "full", "--repo", "r", "--key-file", "k", "--db", db.connectionString.raw], in: folder)
            #expect(backup.status == 0, "\(backup.stderr)")
            try await TestServer.withDatabase(seeded: false) { target in
                let restore = try await FTBackupBinary.run(["restore", "--repo", "r", "--key-file", "k", "--db", db.connectionString.raw,
                                                      "--target", target.connectionString.raw], in: folder)
                #expect(restore.status == 0, "\(restore.stderr)")
                let t = try await target.connect()
                defer { t.close() }
                #expect(TableFingerprint.differences(source: source, restored: try await TableFingerprint.compute(t)) == [])
            }
            let missing = try await FTBackupBinary.run(["key", "create", "--key-file", folder + "/no/such/folder/k"])
            #expect(missing.status == 73 && missing.stderr.contains("its folder does not exist"), "\(missing.stderr)")
        }
    }

    /// A key record whose wrapped key was changed named the given key "wrong" (exit 77) although the
    /// record names that very key: on-call went looking for another key. It is damaged data (65).
    @Test func aChangedKeyRecordIsDamagedDataNotAWrongKey() async throws {
        try await Keyed.with { k in
            _ = try await Self.backup(k)
            let record = "\(k.repo)/keys/source.json.json"
            let original = try Data(contentsOf: URL(fileURLWithPath: record))
            var fields = try #require(try JSONSerialization.jsonObject(with: original) as? [String: Any])
            let text = try #require(fields["wrapped"] as? String)
            var wrapped = try #require(Data(base64Encoded: text))
            wrapped[0] ^= 0x01
            fields["wrapped"] = wrapped.base64EncodedString()
            try JSONSerialization.data(withJSONObject: fields).write(to: URL(fileURLWithPath: record))
            let info = try await k.run(["info"])
            #expect(info.status == 65 && info.stderr.contains("the record was changed") && !info.stderr.contains("wrong key"), "\(info.stderr)")
            try original.write(to: URL(fileURLWithPath: record))
            #expect(try await k.run(["info"]).status == 0)
        }
    }

    /// The same `key rotate` run again after it had finished (was it killed before its end?) said the key
    /// was wrong (77); a killed run's temporary record stayed in keys/ for good.
    @Test func keyRotateRunAgainAfterItFinishedChangesNothingAndLeavesNoTemporaryRecord() async throws {
        try await Keyed.with { k in
            let genuine = try await TableFingerprint.compute(k.archived.session)
            _ = try await Self.backup(k)
            let newKey = (k.repo as NSString).deletingLastPathComponent + "/new.key"
            #expect(try await FTBackupBinary.run(["key", "create", "--key-file", newKey]).status == 0)
            let leftover = "\(k.repo)/keys/backups%2Fx.json.tmp-12345"
            #expect(FileManager.default.createFile(atPath: leftover, contents: Data("{}".utf8)))
            let rotate = ["key", "rotate", "--new-key-file", newKey, "--repo", k.repo, "--key-file", k.keyFile]
            let first = try await FTBackupBinary.run(rotate)
            #expect(first.status == 0, "\(first.stderr)")
            #expect(!FileManager.default.fileExists(atPath: leftover))
            let records = try FileManager.default.contentsOfDirectory(atPath: "\(k.repo)/keys").sorted()
            let before = try records.map { try Data(contentsOf: URL(fileURLWithPath: "\(k.repo)/keys/\($0)")) }
            let again = try await FTBackupBinary.run(rotate)
            #expect(again.status == 0 && again.stdout.contains("0 data keys re-wrapped, \(records.count) already re-wrapped"), "\(again.stdout)\(again.stderr)")
            #expect(try records.map { try Data(contentsOf: URL(fileURLWithPath: "\(k.repo)/keys/\($0)")) } == before)
            #expect(try await k.run(["info"]).status == 77)
            try await Self.expectRestores(k, genuine, key: newKey)
        }
    }
}
