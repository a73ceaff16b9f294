import Foundation
import Testing
@testable import FTBackupKit

/// How large objects change after a full (adv10, defect #0): none of these reaches pgoutput.
enum LargeObjectChange: String, CaseIterable, Sendable {
    case create, write, unlink

    var sql: String {
        switch self {
        case .create: "INSERT INTO public.docs VALUES (2, lo_from_bytea(0, 'created after the full'))"
        case .write: "SELECT lo_put((SELECT blob FROM public.docs WHERE id = 1), 0, '\\x4348414e474544'::bytea)"
        case .unlink: "SELECT lo_unlink((SELECT blob FROM public.docs WHERE id = 1))"
        }
    }
}

extension ChangeArchivalTests.PointInTimeTests {
    /// Every large object with its contents, in oid order (what a restore must reproduce).
    static func largeObjects(_ session: DatabaseSession) async throws -> [String] {
        try await session.query("""
            SELECT m.oid::text || '=' || encode(lo_get(m.oid), 'hex') AS lo FROM pg_largeobject_metadata m ORDER BY m.oid
            """).rows.map { try $0.requiredString("lo") }
    }

    /// Large objects created, written or unlinked after a full were silently restored as they were in
    /// the full by restore --at. Now a time after the change (and before a newer full) is refused before
    /// the target is touched, naming large objects; a time before the change restores exactly, large
    /// objects included; the next incremental takes a new full, and a time after it restores exactly.
    @Test(arguments: LargeObjectChange.allCases)
    func largeObjectChangesAfterTheFullAreRefusedByRestoreAtNeverRestoredWrong(change: LargeObjectChange) async throws {
        try await ArchivedDatabase.with(prepare: "CREATE TABLE public.docs (id int PRIMARY KEY, blob oid); INSERT INTO public.docs VALUES (1, lo_from_bytea(0, 'before the full'))") { a in
            let first = try await a.full()
            try await a.session.execute("UPDATE public.docs SET id = id WHERE id = 1")
            let before = try await a.instant()
            let objectsBefore = try await Self.largeObjects(a.session)
            _ = try await a.incremental()
            try await a.session.execute(change.sql)
            try await a.session.execute("UPDATE users.accounts SET full_name = 'after lo' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1)")
            let (afterChange, _) = try await a.instant()

            let outcome = try await FTBackupBinary.run(["backup", "--type", "incr", "--db", "\(try TestServer.dsn) dbname=\(a.db.name)", "--repo", a.repo.path])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect(outcome.stderr.contains("large objects changed"), "\(outcome.stderr)")
            #expect(outcome.stdout.contains("new full backup:"), "\(outcome.stdout)")
            let fulls = try a.repo.repository.entries().compactMap(\.manifest).filter { $0.type == .full }
            let second = try #require(fulls.last)
            #expect(fulls.count == 2 && second.label != first.label)

            try await TestServer.withDatabase(seeded: false) { target in
                let error = await #expect(throws: FTBackupError.self) {
                    _ = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: a.repo.path,
                                                                        showProgress: false), at: afterChange)
                }
                #expect(error?.status == .usage)
                #expect(error?.message.contains("large objects changed") == true, "\(String(describing: error))")
                #expect(error?.message.contains(first.label) == true)
                #expect(error?.hint?.contains(second.label) == true, "\(String(describing: error?.hint))")
                let t = try await target.connect()
                defer { t.close() }
                #expect(try await t.query("SELECT count(*) AS n FROM pg_namespace WHERE nspname = 'users'").first!.requiredInt("n") == 0)
                #expect(try await Self.largeObjects(t) == [])
            }

            // Before the change: exact, large objects included.
            try await TestServer.withDatabase(seeded: false) { target in
                _ = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: a.repo.path,
                                                                    showProgress: false), at: before.0)
                let t = try await target.connect()
                defer { t.close() }
                #expect(TableFingerprint.differences(source: before.1, restored: try await TableFingerprint.compute(t)) == [])
                #expect(try await Self.largeObjects(t) == objectsBefore)
            }
            // After the new full: exact, large objects included.
            try await a.session.execute("UPDATE users.accounts SET full_name = 'after new full' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1)")
            let after = try await a.instant()
            let objectsAfter = try await Self.largeObjects(a.session)
            _ = try await a.incremental()
            try await TestServer.withDatabase(seeded: false) { target in
                _ = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: a.repo.path,
                                                                    showProgress: false), at: after.0)
                let t = try await target.connect()
                defer { t.close() }
                #expect(TableFingerprint.differences(source: after.1, restored: try await TableFingerprint.compute(t)) == [])
                #expect(try await Self.largeObjects(t) == objectsAfter)
            }
        }
    }
}
