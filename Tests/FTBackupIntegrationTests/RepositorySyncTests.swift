import Crypto
import Foundation
import Testing
@testable import FTBackupKit

/// `ftbackup sync --to REPO`: a second repository (here an S3 bucket) with the same history.
@Suite struct RepositorySyncTests {
    /// Path → SHA-256 of every file sync copies (locks and scheduler state aside).
    static func contents(_ storage: any RepositoryStorage) throws -> [String: String] {
        var files: [StorageEntry] = [], skipped: [String] = []
        try RepositorySync.collect("", in: storage, into: &files, skipped: &skipped)
        return try Dictionary(uniqueKeysWithValues: files.map { ($0.path, SHA256.hash(data: try storage.readAll($0.path)).map { String(format: "%02x", $0) }.joined()) })
    }

    @Test func aSyncKilledHalfwayThenRunAgainGivesAnIdenticalRepositoryThatRestoresExactly() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                try await S3TestStore.with { store in
                    let s = try await db.connect()
                    defer { s.close() }
                    let before = try await TableFingerprint.compute(s)
                    let local = ["--repo", repo.path, "--db", db.connectionString.raw]
                    let full = try await FTBackupBinary.run(["backup", "--type", "full"] + local)
                    #expect(full.status == 0, "\(full.stderr)")
                    let archive = try await FTBackupBinary.run(["lifecycle", "archive"] + local)
                    #expect(archive.status == 0, "\(archive.stderr)")
                    // An unfinished backup folder (no manifest) stays behind.
                    try FileManager.default.createDirectory(atPath: "\(repo.path)/backups/20200101T000000Z-F/data", withIntermediateDirectories: true)
                    FileManager.default.createFile(atPath: "\(repo.path)/backups/20200101T000000Z-F/data/1.copy.zst", contents: Data([1, 2, 3]))

                    let killed = try await FTBackupBinary.run(["sync", "--repo", repo.path, "--to", store.url],
                                                        environment: store.environment.merging(["FTBACKUP_FAILPOINT": RepositorySync.failpointAfterFirstDataFile]) { $1 })
                    #expect(killed.status == -9, "\(killed.stderr)")
                    let partial = try Self.contents(try store.storage)
                    #expect(!partial.keys.contains { $0.hasSuffix("manifest.json") }, "\(partial.keys.sorted())")
                    let info = try await store.run(["info"])
                    #expect(!info.stdout.contains("  complete"), "\(info.stdout)")

                    let again = try await FTBackupBinary.run(["sync", "--repo", repo.path, "--to", store.url], environment: store.environment)
                    #expect(again.status == 0, "\(again.stderr)")
                    #expect(again.stdout.contains("skipped backups/20200101T000000Z-F"), "\(again.stdout)")
                    var expected = try Self.contents(LocalStorage(root: repo.path))
                    expected = expected.filter { !$0.key.hasPrefix("backups/20200101T000000Z-F") }
                    #expect(try Self.contents(try store.storage) == expected)

                    // Both show the same history; the copy restores row for row.
                    let here = try await FTBackupBinary.run(["info", "--output", "json", "--repo", repo.path])
                    let there = try await store.run(["info", "--output", "json"])
                    func labels(_ text: String) -> [String] {
                        ((try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?["backups"] as? [[String: Any]] ?? [])
                            .compactMap { $0["label"] as? String }.filter { $0 != "20200101T000000Z-F" }
                    }
                    #expect(!labels(here.stdout).isEmpty && labels(here.stdout) == labels(there.stdout), "\(here.stdout)\n\(there.stdout)")
                    #expect(try await store.run(["verify"]).status == 0)
                    try await TestServer.withDatabase(seeded: false) { target in
                        let restore = try await store.run(["restore", "--target", target.connectionString.raw, "--keep-retired"])
                        #expect(restore.status == 0, "\(restore.stderr)")
                        let t = try await target.connect()
                        defer { t.close() }
                        #expect(TableFingerprint.differences(source: before, restored: try await TableFingerprint.compute(t)) == [])
                    }
                }
            }
        }
    }
}
