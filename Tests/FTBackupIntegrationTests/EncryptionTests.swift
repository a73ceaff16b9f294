import Foundation
import Testing
@testable import FTBackupKit

/// Encryption at rest end to end through the real binary (issue 13): what is on disk gives nothing away,
/// what is restored is exact, and every kind of damage or wrong key is refused before the target is touched.
@Suite struct EncryptionTests {
    /// A key made by `ftbackup key create` beside the test's repository, and the binary run with it.
    struct Keyed {
        let archived: ArchivedDatabase
        let keyFile: String

        var repo: String { archived.repo.path }
        var source: String { archived.db.connectionString.raw }

        static func with(_ body: (Keyed) async throws -> Void) async throws {
            try await ArchivedDatabase.with { archived in
                let folder = (archived.repo.path as NSString).deletingLastPathComponent
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                let keyFile = folder + "/master.key"
                let created = try await FTBackupBinary.run(["key", "create", "--key-file", keyFile])
                #expect(created.status == 0, "\(created.stderr)")
                try await body(Keyed(archived: archived, keyFile: keyFile))
            }
        }

        /// Runs ftbackup on the repository with the key (`key: nil` leaves it out).
        func run(_ arguments: [String], key: String?? = .some(nil), environment: [String: String] = [:]) async throws -> FTBackupBinary.Outcome {
            var full = arguments + ["--repo", repo, "--db", source]
            switch key {
            case .none: break
            case .some(.none): full += ["--key-file", keyFile]
            case .some(.some(let other)): full += ["--key-file", other]
            }
            return try await FTBackupBinary.run(full, environment: environment)
        }

        /// The database clock now, as `--at` text, after the last change.
        func now() async throws -> String {
            try await Task.sleep(for: .milliseconds(20))
            let at = try await archived.session.query("""
                SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t
                """).first!.requiredString("t")
            try await Task.sleep(for: .milliseconds(20))
            return at
        }
    }

    /// Every repository file that is meant to be encrypted (all but locks, key records and encryption.json).
    static func encryptedFiles(_ repo: String) throws -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: repo)!
        var files: [String] = []
        while let path = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: "\(repo)/\(path)", isDirectory: &isDirectory)
            if isDirectory.boolValue || EncryptionUnit.of(path) == nil { continue }
            files.append(path)
        }
        return files.sorted()
    }

    static func zstdDecompresses(_ path: String) throws -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["zstd", "-d", "-c", "-q", path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    static let knownValues = ["vault.secret@example.org", "zz_confidential_marker", "incr.secret@example.org", "zz_incr_marker", "zz_archive_marker"]

    @Test func aFullAnIncrementalAndAnArchiveRunLeakNothingAndRestoreExactly() async throws {
        try await Keyed.with { k in
            let s = k.archived.session
            try await s.execute("""
                SET session_replication_role = replica;
                UPDATE users.accounts SET email = 'vault.secret@example.org' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1);
                UPDATE users.profiles SET preferences = coalesce(preferences, '{}') || '{"zz_confidential_marker": true}';
                UPDATE sprint_03_purpose.tool_data SET data = coalesce(data, '{}') || '{"zz_archive_marker": "x"}';
                RESET session_replication_role;
                """)
            let atFull = try await TableFingerprint.compute(s)
            let full = try await k.run(["backup", "--type", "full"])
            #expect(full.status == 0, "\(full.stderr)")
            try await s.execute("""
                UPDATE users.accounts SET email = 'incr.secret@example.org' WHERE id = (SELECT id FROM users.accounts ORDER BY id DESC LIMIT 1);
                UPDATE users.profiles SET preferences = preferences || '{"zz_incr_marker": 1}' WHERE user_id = (SELECT min(user_id::text)::uuid FROM users.profiles);
                """)
            let at = try await k.now()
            let atIncremental = try await TableFingerprint.compute(s)
            let incremental = try await k.run(["backup", "--type", "incr"])
            #expect(incremental.status == 0, "\(incremental.stderr)")

            // Restore and restore --at with the key: per-table hashes identical to the source's.
            try await TestServer.withDatabase(seeded: false) { target in
                let outcome = try await k.run(["restore", "--target", target.connectionString.raw])
                #expect(outcome.status == 0, "\(outcome.stderr)")
                let t = try await target.connect()
                defer { t.close() }
                #expect(TableFingerprint.differences(source: atFull, restored: try await TableFingerprint.compute(t)) == [])
            }
            try await TestServer.withDatabase(seeded: false) { target in
                let outcome = try await k.run(["restore", "--at", at, "--target", target.connectionString.raw])
                #expect(outcome.status == 0, "\(outcome.stderr)")
                let t = try await target.connect()
                defer { t.close() }
                #expect(TableFingerprint.differences(source: atIncremental, restored: try await TableFingerprint.compute(t)) == [])
            }

            // An archive run, its verification without a database, and unarchive putting the rows back exactly.
            let beforeArchive = try await TableFingerprint.compute(s, schemas: ["sprint_03_purpose"])
            let archive = try await k.run(["lifecycle", "archive", "--schema", "sprint_03_purpose"])
            #expect(archive.status == 0, "\(archive.stderr)")
            let verify = try await FTBackupBinary.run(["verify", "--repo", k.repo, "--key-file", k.keyFile])
            #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
            #expect(verify.stdout.contains("all good"), "\(verify.stdout)")
            let list = try await k.run(["lifecycle", "list", "--output", "json"])
            let names = (try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            #expect(!names.isEmpty, "\(list.stdout)\(list.stderr)")

            // Nothing on disk decompresses or shows a known value; each kind of unit is there and encrypted.
            let files = try Self.encryptedFiles(k.repo)
            for prefix in ["backups/", "changes/segments/", "archive/", "lifecycle/archive/", "source.json"] {
                #expect(files.contains { $0.hasPrefix(prefix) }, "no \(prefix) file in \(files)")
            }
            for file in files {
                let bytes = try Data(contentsOf: URL(fileURLWithPath: "\(k.repo)/\(file)"))
                #expect(EncryptedFilePrefix.isEncrypted(Array(bytes.prefix(EncryptedFilePrefix.size))), "\(file) is not encrypted")
                #expect(try !Self.zstdDecompresses("\(k.repo)/\(file)"), "\(file) decompresses")
                for value in Self.knownValues { #expect(bytes.range(of: Data(value.utf8)) == nil, "\(file) holds \(value)") }
            }
            for name in names {
                let back = try await k.run(["lifecycle", "unarchive", "--archive", name])
                #expect(back.status == 0, "\(back.stderr)")
            }
            #expect(TableFingerprint.differences(source: beforeArchive, restored: try await TableFingerprint.compute(s, schemas: ["sprint_03_purpose"])) == [])
            // info says which backups are encrypted.
            let info = try await k.run(["info", "--output", "json"])
            #expect(info.status == 0, "\(info.stderr)")
            let backups = (try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any])?["backups"] as? [[String: Any]] ?? []
            #expect(!backups.isEmpty && backups.allSatisfy { $0["encrypted"] as? Bool == true }, "\(info.stdout)")
        }
    }

    /// One line on stderr, the exit code, and an empty target.
    static func expectRefused(_ outcome: FTBackupBinary.Outcome, _ status: Int32, _ phrase: String, target: TestDatabase,
                              sourceLocation: SourceLocation = #_sourceLocation) async throws {
        #expect(outcome.status == status, "\(outcome.stderr)", sourceLocation: sourceLocation)
        let errors = outcome.stderr.split(separator: "\n").filter { $0.hasPrefix("ftbackup: error:") }
        #expect(errors.count == 1, "\(outcome.stderr)", sourceLocation: sourceLocation)
        #expect(outcome.stderr.contains(phrase), "\(outcome.stderr)", sourceLocation: sourceLocation)
        let t = try await target.connect()
        defer { t.close() }
        #expect(try await TableFingerprint.compute(t).isEmpty, "the target was touched", sourceLocation: sourceLocation)
    }

    @Test func wrongOrMissingKeyAndEveryKindOfDamageAreRefusedBeforeTheTargetIsTouched() async throws {
        try await Keyed.with { k in
            let s = k.archived.session
            func backup(_ type: String) async throws -> String {
                let outcome = try await k.run(["backup", "--type", type])
                #expect(outcome.status == 0, "\(outcome.stderr)")
                return outcome.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let first = try await backup("full")
            try await s.execute("UPDATE users.accounts SET full_name = 'one' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1)")
            _ = try await backup("incr")
            try await s.execute("UPDATE users.accounts SET full_name = 'two' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1)")
            let at = try await k.now()
            _ = try await backup("incr")
            let second = try await backup("full")
            let otherKey = (k.repo as NSString).deletingLastPathComponent + "/other.key"
            #expect(try await FTBackupBinary.run(["key", "create", "--key-file", otherKey]).status == 0)

            try await TestServer.withDatabase(seeded: false) { target in
                let restore = ["restore", "--target", target.connectionString.raw]
                try await Self.expectRefused(try k.run(restore, key: .none), 77, "is encrypted", target: target)
                try await Self.expectRefused(try k.run(restore, key: otherKey), 77, "is not repository", target: target)
                // A key file others can read is refused as ssh refuses one.
                chmod(otherKey, 0o644)
                try await Self.expectRefused(try k.run(restore, key: otherKey), 77, "accessible by group or others", target: target)

                let data = try FileManager.default.contentsOfDirectory(atPath: "\(k.repo)/backups/\(second)/data").filter { $0.hasSuffix(".zst") }.sorted()
                let victim = "\(k.repo)/backups/\(second)/data/\(data[0])"
                let original = try Data(contentsOf: URL(fileURLWithPath: victim))
                defer { try? original.write(to: URL(fileURLWithPath: victim)) }
                // A flipped byte: restore refuses, verify (no database needed) names the file.
                var flipped = original
                flipped[original.count - 20] ^= 0x01
                try flipped.write(to: URL(fileURLWithPath: victim))
                try await Self.expectRefused(try k.run(restore), 65, "does not authenticate", target: target)
                let verify = try await FTBackupBinary.run(["verify", "--set", second, "--repo", k.repo, "--key-file", k.keyFile])
                #expect(verify.status == 65 && verify.stdout.contains(data[0]), "\(verify.stdout)\(verify.stderr)")
                // A truncated file.
                try original.prefix(original.count - 7).write(to: URL(fileURLWithPath: victim))
                try await Self.expectRefused(try k.run(restore), 65, "backups/\(second)/data/\(data[0])", target: target)
                // A file moved from the other backup.
                try FileManager.default.removeItem(atPath: victim)
                try FileManager.default.copyItem(atPath: "\(k.repo)/backups/\(first)/data/\(data[0])", toPath: victim)
                try await Self.expectRefused(try k.run(restore), 65, "moved or swapped", target: target)
                try original.write(to: URL(fileURLWithPath: victim))
                // Two change segments swapped.
                let segments = try FileManager.default.contentsOfDirectory(atPath: "\(k.repo)/changes/segments").filter { $0.hasSuffix(".seg.zst") }.sorted()
                #expect(segments.count >= 2)
                let a = "\(k.repo)/changes/segments/\(segments[0])", b = "\(k.repo)/changes/segments/\(segments[1])"
                let (bytesA, bytesB) = (try Data(contentsOf: URL(fileURLWithPath: a)), try Data(contentsOf: URL(fileURLWithPath: b)))
                try bytesB.write(to: URL(fileURLWithPath: a))
                try bytesA.write(to: URL(fileURLWithPath: b))
                try await Self.expectRefused(try await k.run(["restore", "--at", at, "--target", target.connectionString.raw]), 65, "moved or swapped", target: target)
                try bytesA.write(to: URL(fileURLWithPath: a))
                try bytesB.write(to: URL(fileURLWithPath: b))
                // Everything put back: the same restore --at works.
                let restored = try await k.run(["restore", "--at", at, "--target", target.connectionString.raw])
                #expect(restored.status == 0, "\(restored.stderr)")
            }
        }
    }

    @Test func keyRotateKilledHalfwayThenRunAgainCompletesAndOnlyTheNewKeyOpensTheRepository() async throws {
        try await Keyed.with { k in
            let s = k.archived.session
            #expect(try await k.run(["backup", "--type", "full"]).status == 0)
            try await s.execute("UPDATE users.accounts SET full_name = 'rotated' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1)")
            let source = try await TableFingerprint.compute(s)
            let at = try await k.now()
            #expect(try await k.run(["backup", "--type", "incr"]).status == 0)
            let newKey = (k.repo as NSString).deletingLastPathComponent + "/new.key"
            #expect(try await FTBackupBinary.run(["key", "create", "--key-file", newKey]).status == 0)
            let records = try FileManager.default.contentsOfDirectory(atPath: "\(k.repo)/keys").filter { $0.hasSuffix(".json") }
            #expect(records.count >= 3, "\(records)")
            let dataBefore = try Self.encryptedFiles(k.repo).map { try Data(contentsOf: URL(fileURLWithPath: "\(k.repo)/\($0)")) }

            let killed = try await FTBackupBinary.run(["key", "rotate", "--new-key-file", newKey, "--repo", k.repo, "--key-file", k.keyFile],
                                                environment: ["FTBACKUP_FAILPOINT": KeyRotation.failpointAfterFirstRecord])
            #expect(killed.status == -9, "\(killed.stderr)")
            try await TestServer.withDatabase(seeded: false) { target in
                // Half rotated: neither key opens the repository until the rotation is finished.
                for key in [k.keyFile, newKey] {
                    try await Self.expectRefused(try await k.run(["restore", "--target", target.connectionString.raw], key: key), 77,
                                                 "middle of a key rotation", target: target)
                }
                let finished = try await FTBackupBinary.run(["key", "rotate", "--new-key-file", newKey, "--repo", k.repo, "--key-file", k.keyFile])
                #expect(finished.status == 0, "\(finished.stderr)")
                #expect(finished.stdout.contains("\(records.count - 1) data keys re-wrapped, 1 already re-wrapped"), "\(finished.stdout)")
                try await Self.expectRefused(try await k.run(["restore", "--target", target.connectionString.raw]), 77, "is not repository", target: target)
            }
            // No data file was rewritten; every record is wrapped by the new key; the change archive reads with it.
            #expect(try Self.encryptedFiles(k.repo).map { try Data(contentsOf: URL(fileURLWithPath: "\(k.repo)/\($0)")) } == dataBefore)
            let newId = try MasterKey.load(path: newKey).id
            for record in records {
                let text = try String(contentsOfFile: "\(k.repo)/keys/\(record)", encoding: .utf8)
                #expect(text.contains("\"masterKeyId\" : \"\(newId)\""), "\(record): \(text)")
            }
            let verify = try await FTBackupBinary.run(["verify", "--repo", k.repo, "--key-file", newKey])
            #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
            // The full and the change archive, read with the new key, give the source exactly.
            try await TestServer.withDatabase(seeded: false) { target in
                let outcome = try await k.run(["restore", "--at", at, "--target", target.connectionString.raw], key: newKey)
                #expect(outcome.status == 0, "\(outcome.stderr)")
                let t = try await target.connect()
                defer { t.close() }
                #expect(TableFingerprint.differences(source: source, restored: try await TableFingerprint.compute(t)) == [])
            }
        }
    }
}
