import Foundation
import Testing
@testable import FTBackupKit

/// Issue 9, item 1: a repository belongs to one source database. Two databases backed up into one
/// repository made restore pick the other's newest full, `restore --at` merge both change streams
/// and expiry count one's full as the other's successor. Each test failed before `source.json`.
@Suite(.serialized) struct RepositorySourceTests {
    static func dsn(_ db: TestDatabase) throws -> String { "\(try TestServer.dsn) dbname=\(db.name)" }

    /// Marks a database so that a restore shows whose data it holds.
    static func mark(_ db: TestDatabase) async throws {
        let session = try await db.connect()
        defer { session.close() }
        try await session.execute("CREATE TABLE public.whoami (name text); INSERT INTO public.whoami VALUES ('\(db.name)')")
    }

    static func whoami(_ target: TestDatabase) async throws -> String? {
        let session = try await target.connect()
        defer { session.close() }
        return try await session.query("SELECT name FROM public.whoami").first?.string("name")
    }

    /// Copies backup `label` of `from` into `to` (as an operator pointing two databases at one folder would).
    static func plant(backup label: String, from: TestRepository, into: TestRepository) throws {
        try FileManager.default.copyItem(atPath: "\(from.path)/backups/\(label)", toPath: "\(into.path)/backups/\(label)")
    }

    @Test func everyWriterRefusesASecondDatabase() async throws {
        try await TestServer.withDatabase { first in
            try await TestServer.withDatabase { second in
                try await TestRepository.with { repo in
                    _ = try await BackupRunner.runFull(try .test(first, repo))
                    let path = "\(repo.path)/\(RepositorySource.fileName)"
                    let attributes = try FileManager.default.attributesOfItem(atPath: path)
                    #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
                    #expect(try RepositorySource.read(repo.repository.storage)?.source.database == first.name)
                    let before = try repo.repository.entries().map(\.label)
                    for command in [["backup", "--type", "full"], ["backup", "--type", "incr"], ["follow"],
                                    ["lifecycle", "archive"], ["lifecycle", "prune-audit"]] {
                        let outcome = try await FTBackupBinary.run(command + ["--db", try Self.dsn(second), "--repo", repo.path])
                        #expect(outcome.status == 64, "\(command): \(outcome.stderr)")
                        #expect(outcome.stderr.split(separator: "\n").count == 1, "\(command): \(outcome.stderr)")
                        #expect(outcome.stderr.contains("database \(first.name)") && outcome.stderr.contains("database \(second.name)"),
                                "\(command): \(outcome.stderr)")
                    }
                    #expect(try repo.repository.entries().map(\.label) == before)
                    // The source itself still writes.
                    _ = try await BackupRunner.runFull(try .test(first, repo))
                }
            }
        }
    }

    @Test func readersLeaveOutAndFlagAForeignBackup() async throws {
        try await TestServer.withDatabase { first in
            try await TestServer.withDatabase { second in
                try await Self.mark(first)
                try await Self.mark(second)
                try await TestRepository.with { repo in
                    try await TestRepository.with { other in
                        let own = try await BackupRunner.runFull(try .test(first, repo))
                        _ = try await BackupVerifier.verify(repo.repository, label: own.label, jobs: 2)
                        try await Task.sleep(for: .seconds(1.1))  // a later label, so the foreign full is the newest
                        let foreign = try await BackupRunner.runFull(try .test(second, other))
                        _ = try await BackupVerifier.verify(other.repository, label: foreign.label, jobs: 2)
                        try Self.plant(backup: foreign.label, from: other, into: repo)

                        // Plain restore: the newest full of the repository's own source.
                        try await TestServer.withDatabase(seeded: false) { target in
                            _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                            #expect(try await Self.whoami(target) == first.name)
                        }
                        // Named: refused.
                        let named = try await FTBackupBinary.run(["restore", "--repo", repo.path, "--set", foreign.label, "--dry-run",
                                                            "--target", "\(try TestServer.dsn) dbname=unused"])
                        #expect(named.status == 64, "\(named.stderr)")
                        #expect(named.stderr.contains("database \(second.name)"), "\(named.stderr)")
                        // info and verify flag it.
                        let info = try await FTBackupBinary.run(["info", "--repo", repo.path])
                        #expect(info.status == 65, "\(info.stdout)\(info.stderr)")
                        #expect(info.stdout.contains("\(foreign.label)  full  complete  FOREIGN SOURCE"), "\(info.stdout)")
                        let verify = try await FTBackupBinary.run(["verify", "--repo", repo.path])
                        #expect(verify.status == 65, "\(verify.stdout)")
                        #expect(verify.stdout.contains(foreign.label) && verify.stdout.contains("database \(second.name)"), "\(verify.stdout)")
                        #expect(VerificationRecord.read(repo.repository, label: foreign.label) == nil)
                        // Expiry (everything past retention): the foreign full is no successor, and is not removed.
                        try? FileManager.default.removeItem(atPath: "\(repo.path)/backups/\(foreign.label)/verified.json")
                        try FileManager.default.copyItem(atPath: "\(other.path)/backups/\(foreign.label)/verified.json",
                                                         toPath: "\(repo.path)/backups/\(foreign.label)/verified.json")
                        let report = try BackupExpiry.run(repositoryPath: repo.path, policy: try testPolicy(), dryRun: false,
                                                          now: Date().addingTimeInterval(400 * 86_400))
                        #expect(report.removed.isEmpty, "\(report.plan.items)")
                        #expect(report.plan.items.first { $0.label == own.label }?.reason == "newest full")
                        #expect(report.plan.items.first { $0.label == foreign.label }?.reason.hasPrefix("another source") == true)
                    }
                }
            }
        }
    }

    @Test func pointInTimeRestoreNeverMergesAnotherSourcesSegments() async throws {
        try await ArchivedDatabase.with { first in
            try await ArchivedDatabase.with { second in
                _ = try await first.full()
                _ = try await second.full()
                // The two change streams interleave in the cluster's WAL: the other database's segment
                // starts before this one's first segment ends, so merged by LSN it would sit in this chain.
                _ = try await first.incremental()
                try await second.session.execute("INSERT INTO organizations.companies (name) SELECT 'second ' || g FROM generate_series(1, 7) g")
                _ = try await second.incremental()
                try await first.session.execute("INSERT INTO organizations.companies (name) SELECT 'first ' || g FROM generate_series(1, 5) g")
                let (at, expected) = try await first.instant()
                _ = try await first.incremental()
                _ = try await second.incremental()
                // Plant the other database's segments: one as written, one as an older version wrote it (no source, slot only).
                let segments = try ChangeSegmentManifest.all(second.repo.repository.storage)
                for (index, segment) in segments.enumerated() {
                    for file in ["\(segment.label).seg.zst", "\(segment.label).json"] {
                        try FileManager.default.copyItem(atPath: "\(second.repo.path)/\(ChangeSegmentManifest.folder)/\(file)",
                                                         toPath: "\(first.repo.path)/\(ChangeSegmentManifest.folder)/\(file)")
                    }
                    if index == 0 {
                        let path = "\(first.repo.path)/\(ChangeSegmentManifest.manifestPath(segment.label))"
                        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
                        json["source"] = nil
                        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
                    }
                }
                #expect(try await first.restore(at: at) == expected)
                let verify = try await RepositoryVerifier.verify(first.repo.repository, .init(parts: .segments))
                #expect(!verify.ok)
                #expect(Set(verify.badFiles.compactMap(\.record)) == Set(segments.map(\.label)), "\(verify.badFiles)")
                let report = try BackupExpiry.run(repositoryPath: first.repo.path, policy: try testPolicy(), dryRun: true,
                                                  now: Date().addingTimeInterval(400 * 86_400))
                for segment in segments {
                    #expect(report.segments.first { $0.label == segment.label }?.reason.hasPrefix("another source") == true)
                }
            }
        }
    }

    @Test func anOlderRepositoryAdoptsItsSourceAndAMixedOneIsRefused() async throws {
        try await TestServer.withDatabase { first in
            try await TestServer.withDatabase { second in
                try await TestRepository.with { repo in
                    try await TestRepository.with { other in
                        let own = try await BackupRunner.runFull(try .test(first, repo))
                        // As a repository written before source.json existed.
                        try FileManager.default.removeItem(atPath: "\(repo.path)/\(RepositorySource.fileName)")
                        let refused = try await FTBackupBinary.run(["backup", "--db", try Self.dsn(second), "--repo", repo.path])
                        #expect(refused.status == 64, "\(refused.stderr)")
                        #expect(refused.stderr.contains("database \(first.name)"), "\(refused.stderr)")
                        #expect(!FileManager.default.fileExists(atPath: "\(repo.path)/\(RepositorySource.fileName)"))
                        _ = try await BackupRunner.runFull(try .test(first, repo))
                        let adopted = try #require(try RepositorySource.read(repo.repository.storage))
                        #expect(adopted.source.database == first.name)
                        #expect(adopted.recordedBy.contains("adopted"))

                        // Two databases' backups and no source.json: no reader guesses.
                        try FileManager.default.removeItem(atPath: "\(repo.path)/\(RepositorySource.fileName)")
                        try await Task.sleep(for: .seconds(1.1))  // labels are per second: another label than the last full's
                        let foreign = try await BackupRunner.runFull(try .test(second, other))
                        try Self.plant(backup: foreign.label, from: other, into: repo)
                        let restore = try await FTBackupBinary.run(["restore", "--repo", repo.path, "--dry-run", "--target", "\(try TestServer.dsn) dbname=unused"])
                        #expect(restore.status == 64, "\(restore.stderr)")
                        #expect(restore.stderr.contains("more than one database"), "\(restore.stderr)")
                        let write = try await FTBackupBinary.run(["backup", "--db", try Self.dsn(first), "--repo", repo.path])
                        #expect(write.status == 64, "\(write.stderr)")
                        #expect(try repo.repository.entries().map(\.label).contains(own.label))
                    }
                }
            }
        }
    }
}
