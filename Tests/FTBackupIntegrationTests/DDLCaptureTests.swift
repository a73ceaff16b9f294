import Foundation
import Testing
@testable import FTBackupKit

/// The three DDL shapes issue 9 (item 2) found lost by restore --at.
enum DDLCase: String, CaseIterable, Sendable {
    case dropTable, addColumnWithDefault, changeColumnType

    var sql: String {
        switch self {
        case .dropTable: "DROP TABLE public.ddl_victim"
        case .addColumnWithDefault: "ALTER TABLE public.ddl_victim ADD COLUMN extra int DEFAULT 7"
        case .changeColumnType: "ALTER TABLE public.ddl_victim ALTER COLUMN n TYPE text USING 'n=' || n; UPDATE public.ddl_victim SET n = n || '!' WHERE id = 1"
        }
    }
    var tag: String { self == .dropTable ? "DROP TABLE" : "ALTER TABLE" }
}

extension ChangeArchivalTests.PointInTimeTests {
    /// DDL after a full: the hourly pass takes a new full; restore --at a time past the DDL but before
    /// that full is refused before the target is touched; times before the DDL and after the new full
    /// restore exactly.
    @Test(arguments: DDLCase.allCases)
    func ddlAfterTheFullTakesANewFullAndIsNeverReplayedSilently(ddl: DDLCase) async throws {
        try await ArchivedDatabase.with(prepare: "CREATE TABLE public.ddl_victim (id int PRIMARY KEY, n int); INSERT INTO public.ddl_victim SELECT g, g * 10 FROM generate_series(1, 5) g") { a in
            let first = try await a.full()
            try await a.session.execute("UPDATE public.ddl_victim SET n = n + 1 WHERE id = 2")
            let before = try await a.instant()
            try await a.session.execute(ddl.sql)
            let (afterDDL, _) = try await a.instant()

            let outcome = try await FTBackupBinary.run(["backup", "--type", "incr", "--db", "\(try TestServer.dsn) dbname=\(a.db.name)", "--repo", a.repo.path])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect(outcome.stderr.contains("schema change"), "\(outcome.stderr)")
            #expect(outcome.stdout.contains("new full backup:"), "\(outcome.stdout)")
            let segment = try #require(try ChangeSegmentManifest.all(a.repo.repository.storage).last)
            #expect(segment.ddl?.contains { $0.commandTag == ddl.tag && $0.objectIdentity == "public.ddl_victim" } == true, "\(String(describing: segment.ddl))")
            let fulls = try a.repo.repository.entries().compactMap(\.manifest).filter { $0.type == .full }
            #expect(fulls.count == 2)
            let second = try #require(fulls.last)
            #expect(try ChangeArchiver.needsNewFull(repositoryPath: a.repo.path) == false)

            try await a.session.execute("UPDATE users.accounts SET full_name = 'after ddl' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1)")
            let after = try await a.instant()
            _ = try await a.incremental()

            // Past the DDL, before the new full: refused up front, naming the DDL and the full that works.
            try await TestServer.withDatabase(seeded: false) { target in
                let error = await #expect(throws: FTBackupError.self) {
                    _ = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: a.repo.path,
                                                                        showProgress: false), at: afterDDL)
                }
                #expect(error?.status == .usage)
                #expect(error?.message.contains("\(ddl.tag) public.ddl_victim") == true, "\(String(describing: error))")
                #expect(error?.message.contains(first.label) == true)
                #expect(error?.hint?.contains(second.label) == true, "\(String(describing: error?.hint))")
                let t = try await target.connect()
                defer { t.close() }
                #expect(try await t.query("SELECT count(*) AS n FROM pg_namespace WHERE nspname = 'users'").first!.requiredInt("n") == 0)
            }
            // A --schema restore of a schema the DDL did not touch is not blocked (planned only).
            let plan = try await PointInTimeRestore.run(RestoreOptions(target: a.db.connectionString, repositoryPath: a.repo.path, schemas: ["users"],
                                                                       dryRun: true, showProgress: false), at: afterDDL)
            #expect(plan.plan.full == first.label)

            let restoredBefore = try await a.restore(at: before.0)
            #expect(TableFingerprint.differences(source: before.1, restored: restoredBefore) == [])
            let restoredAfter = try await a.restore(at: after.0)
            #expect(TableFingerprint.differences(source: after.1, restored: restoredAfter) == [])
        }
    }
}

extension ChangeArchivalTests.PointInTimeTests {
    /// Issue 9 follow-up: `info` lists the recorded DDL (time, command tag, object) and the times a
    /// whole-database restore --at cannot reach because of it, in text and JSON.
    @Test func infoListsRecordedDDLAndTheTimesRestoreAtCannotReach() async throws {
        try await ArchivedDatabase.with(prepare: "CREATE TABLE public.ddl_victim (id int PRIMARY KEY, n int)") { a in
            _ = try await a.full()
            try await a.session.execute("ALTER TABLE public.ddl_victim ADD COLUMN extra int DEFAULT 7")
            _ = try await a.incremental()
            let conninfo = "\(try TestServer.dsn) dbname=\(a.db.name)"
            let pending = try await FTBackupBinary.run(["info", "--repo", a.repo.path, "--db", conninfo])
            #expect(pending.status == 0, "\(pending.stderr)")
            let line = try #require(pending.stdout.split(separator: "\n").first { $0.contains("ALTER TABLE public.ddl_victim (table)") }, "\(pending.stdout)")
            #expect(line.contains("until a new full backup is taken"), "\(line)")

            let second = try await a.full()
            let json = try await FTBackupBinary.run(["info", "--repo", a.repo.path, "--db", conninfo, "--output", "json"])
            #expect(json.status == 0, "\(json.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            let ddl = try #require(((object?["changeArchive"] as? [String: Any])?["ddl"] as? [[String: Any]])?.first, "\(json.stdout)")
            #expect(ddl["commandTag"] as? String == "ALTER TABLE")
            #expect(ddl["objectIdentity"] as? String == "public.ddl_victim")
            #expect(ddl["nextFull"] as? String == second.label)
            #expect((ddl["unreachableUntil"] as? String).flatMap(Timestamps.parseISO8601).map { abs($0.timeIntervalSince(second.snapshot.time)) < 0.001 } == true,
                    "\(ddl)")
            #expect(ddl["commitTime"] != nil)
            let text = try await FTBackupBinary.run(["info", "--repo", a.repo.path, "--db", conninfo])
            #expect(text.stdout.contains("recorded DDL:   1 command(s)"), "\(text.stdout)")
            #expect(text.stdout.contains("(before backup \(second.label)'s consistent time)"), "\(text.stdout)")
        }
    }
}
