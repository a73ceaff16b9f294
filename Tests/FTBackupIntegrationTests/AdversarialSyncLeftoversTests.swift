import Foundation
import Testing
@testable import FTBackupKit

/// What a second repository is left with: no backup runs there, so nothing but `sync` (under its write lock)
/// ever clears what a killed sync left, and a sync must not carry pending work (a segment without its manifest)
/// over to it. Both repositories must end identical, and the second must verify.
@Suite struct AdversarialSyncLeftoversTests {
    /// Every file of a folder repository, locks and scheduler state aside (path → SHA-256).
    static func files(_ root: String) throws -> [String: String] {
        try RepositoryCleanupTests.localFiles(root).filter { !$0.key.hasPrefix("schedule/") }
    }

    @Test func aSegmentDataFileWithoutItsManifestIsNotCopiedAndTheSecondStillVerifies() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { first in
                try await TestRepository.with { second in
                    let full = try await FTBackupBinary.run(["backup", "--type", "full", "--repo", first.path, "--db", db.connectionString.raw])
                    #expect(full.status == 0, "\(full.stderr)")
                    // What a follower pass killed before it sealed its segment leaves (or one being sealed right now).
                    let orphan = "changes/segments/0000000001000000-20200101T000000Z-1.seg.zst"
                    try FileManager.default.createDirectory(atPath: "\(first.path)/changes/segments", withIntermediateDirectories: true)
                    FileManager.default.createFile(atPath: "\(first.path)/\(orphan)", contents: Data("partial".utf8))

                    let sync = try await FTBackupBinary.run(["sync", "--repo", first.path, "--to", second.path])
                    #expect(sync.status == 0, "\(sync.stderr)")
                    #expect(sync.stdout.contains("skipped \(orphan)"), "\(sync.stdout)")
                    #expect(!FileManager.default.fileExists(atPath: "\(second.path)/\(orphan)"))

                    // The first clears it (its next pass, or repo cleanup): both repositories are the same and both verify.
                    let cleanup = try await FTBackupBinary.run(["repo", "cleanup", "--repo", first.path])
                    #expect(cleanup.status == 0, "\(cleanup.stderr)")
                    #expect(try Self.files(second.path) == (try Self.files(first.path)))
                    let verify = try await FTBackupBinary.run(["verify", "--repo", second.path])
                    #expect(verify.status == 0 && verify.stdout.contains("all good"), "\(verify.stdout)\(verify.stderr)")
                }
            }
        }
    }

    @Test func whatAKilledSyncLeftInTheSecondIsClearedByTheNextSyncEvenWhenTheFirstNoLongerHoldsThatBackup() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { first in
                try await TestRepository.with { second in
                    let s = try await db.connect()
                    defer { s.close() }
                    let local = ["--repo", first.path, "--db", db.connectionString.raw]
                    let older = try await FTBackupBinary.run(["backup", "--type", "full"] + local)
                    #expect(older.status == 0, "\(older.stderr)")
                    let olderLabel = try #require(try first.repository.entries().last?.label)
                    // Killed after the first data file: the second holds part of the backup, no manifest.
                    let killed = try await FTBackupBinary.run(["sync", "--repo", first.path, "--to", second.path],
                                                        environment: ["FTBACKUP_FAILPOINT": RepositorySync.failpointAfterFirstDataFile])
                    #expect(killed.status == -9, "\(killed.stderr)")
                    #expect(FileManager.default.fileExists(atPath: "\(second.path)/backups/\(olderLabel)/data"))
                    // A copy killed mid-file leaves its temporary file (the pid is dead by now).
                    let dead = try RepositoryCleanupTests.deadPid()
                    FileManager.default.createFile(atPath: "\(second.path)/backups/\(olderLabel)/data/9.copy.zst.tmp-\(dead)", contents: Data("part".utf8))
                    try FileManager.default.createDirectory(atPath: "\(second.path)/drills", withIntermediateDirectories: true)
                    FileManager.default.createFile(atPath: "\(second.path)/drills/20200101T000000Z.json.tmp-\(dead)", contents: Data("part".utf8))

                    // Before the next sync the first takes a new full and retention removes the older one there.
                    let newer = try await FTBackupBinary.run(["backup", "--type", "full"] + local)
                    #expect(newer.status == 0, "\(newer.stderr)")
                    try first.repository.storage.remove(first.repository.backupFolder(olderLabel))
                    let before = try await TableFingerprint.compute(s)

                    let again = try await FTBackupBinary.run(["sync", "--repo", first.path, "--to", second.path])
                    #expect(again.status == 0, "\(again.stderr)")
                    #expect(again.stdout.contains("removed leftover backups/\(olderLabel)"), "\(again.stdout)")
                    // Identical repositories, file for file and byte for byte; the second verifies and restores exactly.
                    #expect(try Self.files(second.path) == (try Self.files(first.path)))
                    let verify = try await FTBackupBinary.run(["verify", "--repo", second.path])
                    #expect(verify.status == 0 && verify.stdout.contains("all good"), "\(verify.stdout)\(verify.stderr)")
                    try await TestServer.withDatabase(seeded: false) { target in
                        let restore = try await FTBackupBinary.run(["restore", "--repo", second.path, "--target", target.connectionString.raw])
                        #expect(restore.status == 0, "\(restore.stderr)")
                        let t = try await target.connect()
                        defer { t.close() }
                        #expect(TableFingerprint.differences(source: before, restored: try await TableFingerprint.compute(t)) == [])
                    }
                }
            }
        }
    }

    @Test func aSyncRefusesToCopyABackupWhoseManifestListsAFileTheSourceNoLongerHas() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { first in
                try await TestRepository.with { second in
                    let full = try await FTBackupBinary.run(["backup", "--type", "full", "--repo", first.path, "--db", db.connectionString.raw])
                    #expect(full.status == 0, "\(full.stderr)")
                    let manifest = try first.repository.backup(label: nil)
                    let lost = "backups/\(manifest.label)/\(try #require(manifest.files.last).path)"
                    try first.repository.storage.remove(lost)

                    let sync = try await FTBackupBinary.run(["sync", "--repo", first.path, "--to", second.path])
                    #expect(sync.status == 65, "\(sync.stdout)\(sync.stderr)")
                    #expect(sync.stderr.contains("\(lost) is missing"), "\(sync.stderr)")
                    // No manifest reached the second: it holds no backup that promises a missing file.
                    #expect(!FileManager.default.fileExists(atPath: "\(second.path)/\(first.repository.manifestPath(manifest.label))"))
                }
            }
        }
    }
}
