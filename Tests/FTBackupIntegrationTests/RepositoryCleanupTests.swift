import Crypto
import Foundation
import Testing
@testable import FTBackupKit

/// `ftbackup repo cleanup`: what killed runs left goes, under the repository's locks, and nothing a
/// manifest references is touched (every other file keeps its bytes).
@Suite struct RepositoryCleanupTests {
    /// Path → SHA-256 of every file in a folder repository (locks aside).
    static func localFiles(_ root: String) throws -> [String: String] {
        var files: [String: String] = [:]
        for path in try FileManager.default.subpathsOfDirectory(atPath: root) where !path.hasPrefix("locks") {
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: "\(root)/\(path)", isDirectory: &isDirectory)
            if isDirectory.boolValue { continue }
            files[path] = SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: "\(root)/\(path)"))).map { String(format: "%02x", $0) }.joined()
        }
        return files
    }

    /// The pid of a process that has ended.
    static func deadPid() throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/true")
        try process.run()
        process.waitUntilExit()
        return process.processIdentifier
    }

    static func json(_ text: String) -> [String: Any] { (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:] }

    @Test func cleanupOfAFolderRemovesTemporaryFilesUnfinishedBackupsAndSegmentsOnlyAndHonoursTheLocks() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                let full = try await FTBackupBinary.run(["backup", "--type", "full", "--repo", repo.path, "--db", db.connectionString.raw])
                #expect(full.status == 0, "\(full.stderr)")
                let kept = try Self.localFiles(repo.path)
                let label = try #require(try repo.repository.entries().first?.label)
                let dead = try Self.deadPid()
                let leftovers = ["backups/\(label)/data/9.copy.zst.tmp-\(dead)", "source.json.tmp-\(dead)", "keys/x.json.tmp-\(dead)-77",
                                 "backups/20200101T000000Z-F/data/1.copy.zst", "changes/segments/0000000000000000-20200101T000000Z-1.seg.zst"]
                let live = "drills/20200101T000000Z.json.tmp-\(getpid())"
                for path in leftovers + [live] {
                    try FileManager.default.createDirectory(atPath: "\(repo.path)/\(LocalStorage.parentFolder(path))", withIntermediateDirectories: true)
                    FileManager.default.createFile(atPath: "\(repo.path)/\(path)", contents: Data("partial".utf8))
                }
                let before = try Self.localFiles(repo.path)
                let cleanup = ["repo", "cleanup", "--repo", repo.path, "--output", "json"]

                // --dry-run lists each leftover and changes nothing.
                let dry = try await FTBackupBinary.run(cleanup + ["--dry-run"])
                #expect(dry.status == 0, "\(dry.stderr)")
                let planned = Self.json(dry.stdout)
                #expect(Set(planned["removedTemporaryFiles"] as? [String] ?? []) == Set(leftovers.prefix(3)), "\(dry.stdout)")
                #expect(planned["removedIncompleteBackups"] as? [String] == ["20200101T000000Z-F"], "\(dry.stdout)")
                #expect(planned["removedIncompleteSegments"] as? [String] == [leftovers[4]], "\(dry.stdout)")
                #expect(try Self.localFiles(repo.path) == before)

                // Another run holds the write lock: refused (exit 75), nothing touched.
                let writer = try RepositoryLock.acquire(repositoryRoot: repo.path, kind: .write, exclusive: true, command: "test backup")
                let locked = try await FTBackupBinary.run(cleanup)
                writer.release()
                #expect(locked.status == 75, "\(locked.stderr)")
                #expect(try Self.localFiles(repo.path) == before)

                // A follower holds the changes lock: changes/ is left alone, the rest goes.
                let follower = try RepositoryLock.acquire(repositoryRoot: repo.path, kind: .changes, exclusive: true, command: "test follow")
                let partial = try await FTBackupBinary.run(cleanup)
                follower.release()
                #expect(partial.status == 0, "\(partial.stderr)")
                #expect((Self.json(partial.stdout)["leftAlone"] as? [String] ?? []).contains { $0.hasPrefix("changes/segments/: the changes lock is held") }, "\(partial.stdout)")
                #expect(FileManager.default.fileExists(atPath: "\(repo.path)/\(leftovers[4])"))

                let real = try await FTBackupBinary.run(cleanup)
                #expect(real.status == 0, "\(real.stderr)")
                #expect(Self.json(real.stdout)["removedIncompleteSegments"] as? [String] == [leftovers[4]], "\(real.stdout)")
                // Exactly the leftovers are gone: every file of the backup keeps its bytes; the live writer's file stays.
                var expected = kept
                expected[live] = before[live]
                #expect(try Self.localFiles(repo.path).filter { !$0.key.hasPrefix("schedule/") } == expected.filter { !$0.key.hasPrefix("schedule/") })
                let verify = try await FTBackupBinary.run(["verify", "--repo", repo.path])
                #expect(verify.status == 0 && verify.stdout.contains("all good"), "\(verify.stdout)\(verify.stderr)")
            }
        }
    }

    @Test func cleanupOnS3AbortsAbandonedUploadsAndRemovesUnfinishedBackupsButNeverAManifestsObjects() async throws {
        try await TestServer.withDatabase { db in
            try await S3TestStore.with { store in
                let full = try await store.run(["backup", "--type", "full"], database: db)
                #expect(full.status == 0, "\(full.stderr)")
                let storage = try store.storage
                let client = try store.client
                func objects() throws -> [String: String] {
                    Dictionary(uniqueKeysWithValues: try store.keys().filter { !$0.hasPrefix("repo/locks/") }.map {
                        ($0, SHA256.hash(data: try client.expect([200], "GET", key: $0).body).map { String(format: "%02x", $0) }.joined())
                    })
                }
                let kept = try objects()
                // What killed runs leave: an unfinished upload (one part sent), an unfinished backup, an unsealed segment.
                let uploadKey = storage.key("backups/20990101T000000Z-F/data/1.copy.zst")
                let started = try client.expect([200], "POST", key: uploadKey, query: [("uploads", "")])
                let uploadId = try #require(S3XML.first("UploadId", in: started.body))
                try client.expect([200], "PUT", key: uploadKey, query: [("partNumber", "1"), ("uploadId", uploadId)], body: Array(repeating: 7, count: 1024))
                try storage.writeAll("backups/20200101T000000Z-F/data/1.copy.zst", Array("partial".utf8))
                try storage.writeAll("changes/segments/0000000000000000-20200101T000000Z-1.seg.zst", Array("partial".utf8))
                #expect(try store.uploads() == [uploadKey])

                let dry = try await store.run(["repo", "cleanup", "--dry-run", "--output", "json"])
                #expect(dry.status == 0, "\(dry.stderr)")
                let planned = Self.json(dry.stdout)
                #expect((planned["abortedUploads"] as? [[String: Any]])?.compactMap { $0["path"] as? String } == ["backups/20990101T000000Z-F/data/1.copy.zst"], "\(dry.stdout)")
                #expect(planned["removedIncompleteBackups"] as? [String] == ["20200101T000000Z-F"], "\(dry.stdout)")
                #expect(planned["removedIncompleteSegments"] as? [String] == ["changes/segments/0000000000000000-20200101T000000Z-1.seg.zst"], "\(dry.stdout)")
                #expect(try store.uploads() == [uploadKey])

                // --older-than keeps what is younger. moto reports every upload as initiated on 2010-11-10 (a fixed
                // value), so the limit here is 19 years: the upload, the 2020 backup and the 2020 segment all stay.
                let young = try await store.run(["repo", "cleanup", "--older-than", "10000000", "--output", "json"])
                #expect(young.status == 0, "\(young.stderr)")
                let spared = Self.json(young.stdout)
                #expect((spared["abortedUploads"] as? [Any])?.isEmpty == true && (spared["removedIncompleteBackups"] as? [Any])?.isEmpty == true, "\(young.stdout)")
                #expect((spared["leftAlone"] as? [String] ?? []).filter { $0.contains("younger than 10000000 min") }.count == 3, "\(young.stdout)")
                #expect(try store.uploads() == [uploadKey])

                let real = try await store.run(["repo", "cleanup"])
                #expect(real.status == 0 && real.stdout.contains("abort upload backups/20990101T000000Z-F/data/1.copy.zst"), "\(real.stdout)\(real.stderr)")
                #expect(try store.uploads().isEmpty)
                // Every object of the complete backup (and the source record) keeps its bytes; the leftovers are gone.
                #expect(try objects() == kept)
                let verify = try await store.run(["verify"])
                #expect(verify.status == 0 && verify.stdout.contains("all good"), "\(verify.stdout)\(verify.stderr)")
            }
        }
    }
}
