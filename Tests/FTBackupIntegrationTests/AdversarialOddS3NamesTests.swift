import Foundation
import Testing
@testable import FTBackupKit

/// An S3 repository under a prefix with a space, `+`, `%`, `=`, unicode and a trailing slash, holding more
/// objects in one folder than one listing page (1,000): a backup of 1,050 tables (odd names among them),
/// synced to a second such repository, restored from the copy row for row; `repo cleanup` removes a 1,200-object
/// unfinished backup whole.
@Suite struct AdversarialOddS3NamesTests {
    static let tablesSQL = """
        CREATE SCHEMA "odd schema +%=/ü";
        DO $$ BEGIN
          FOR i IN 1..1050 LOOP
            EXECUTE format('CREATE TABLE %I.%I (id int PRIMARY KEY, v text)', 'odd schema +%=/ü', 'täble ' || i || ' +%=/');
            EXECUTE format('INSERT INTO %I.%I SELECT g, md5(g::text || %L) FROM generate_series(1, 3) g', 'odd schema +%=/ü', 'täble ' || i || ' +%=/', i);
          END LOOP;
        END $$;
        """

    @Test func aRepositoryUnderAnOddPrefixWithMoreThanAPageOfObjectsSyncsAndRestoresExactly() async throws {
        try await TestServer.withDatabase { db in
            try await S3TestStore.with { store in
                let session = try await db.connect()
                defer { session.close() }
                try await session.execute(Self.tablesSQL)
                let before = try await TableFingerprint.compute(session)
                let first = "s3://\(store.bucket)/odd prefix+a%b=c/ünï/"
                let second = "s3://\(store.bucket)/second copy+%=é/"
                func run(_ arguments: [String]) async throws -> FTBackupBinary.Outcome {
                    try await FTBackupBinary.run(arguments, environment: store.environment)
                }
                let backup = try await run(["backup", "--type", "full", "--repo", first, "--db", db.connectionString.raw])
                #expect(backup.status == 0, "\(backup.stderr)")
                let keys = try store.keys()
                #expect(keys.filter { $0.hasPrefix("odd prefix+a%b=c/ünï/backups/") && $0.contains("/data/") }.count > 1000)

                let sync = try await run(["sync", "--repo", first, "--to", second])
                #expect(sync.status == 0, "\(sync.stderr)")
                let all = try store.keys()
                let firstKeys = Set(all.filter { $0.hasPrefix("odd prefix+a%b=c/ünï/") && !$0.contains("/locks/") }.map { $0.dropFirst("odd prefix+a%b=c/ünï/".count) })
                let secondKeys = Set(all.filter { $0.hasPrefix("second copy+%=é/") && !$0.contains("/locks/") }.map { $0.dropFirst("second copy+%=é/".count) })
                #expect(firstKeys.subtracting(["schedule/state.json"]) == secondKeys.subtracting(["schedule/state.json"]))
                let again = try await run(["sync", "--repo", first, "--to", second])
                #expect(again.status == 0 && again.stdout.contains("copied 0 files"), "\(again.stdout)\(again.stderr)")
                let verify = try await run(["verify", "--repo", second])
                #expect(verify.status == 0 && verify.stdout.contains("all good"), "\(verify.stdout)\(verify.stderr)")
                try await TestServer.withDatabase(seeded: false) { target in
                    let restore = try await run(["restore", "--repo", second, "--target", target.connectionString.raw])
                    #expect(restore.status == 0, "\(restore.stderr)")
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(TableFingerprint.differences(source: before, restored: try await TableFingerprint.compute(t)) == [])
                }

                // An unfinished backup of 1,200 objects (more than a page) goes whole; the complete one stays.
                let storage = S3Storage(location: try S3Location(first), client: try store.client)
                for n in 1...1200 { try storage.writeAll("backups/20200101T000000Z-F/data/\(n).copy.zst", [1]) }
                let dry = try await run(["repo", "cleanup", "--repo", first, "--dry-run", "--output", "json"])
                #expect(dry.status == 0 && dry.stdout.contains("20200101T000000Z-F"), "\(dry.stdout)\(dry.stderr)")
                let cleanup = try await run(["repo", "cleanup", "--repo", first])
                #expect(cleanup.status == 0, "\(cleanup.stderr)")
                #expect(try store.keys().filter { $0.contains("20200101T000000Z-F") }.isEmpty)
                let after = Set(try store.keys().filter { $0.hasPrefix("odd prefix+a%b=c/ünï/") && !$0.contains("/locks/") }.map { $0.dropFirst("odd prefix+a%b=c/ünï/".count) })
                #expect(after == firstKeys)
            }
        }
    }
}
