import Foundation
import Testing
@testable import FTBackupKit

/// Issue 10's acceptance: the object zoo survives a full backup and restore, and `restore --at` after
/// changes to every table, exactly (schema text and per-table ordered hashes).
@Suite struct ZooTests {
    @Test func zooFixtureNamesEveryPendingObjectWithItsItem() throws {
        let sections = try ZooFixture.sections()
        let pending = Set(sections.compactMap(\.pending))
        #expect(pending == Set(ZooPending.allCases))
        #expect(sections.contains { $0.isChange && $0.pending == nil })
    }

    /// Full backup → restore into a fresh database: `pg_dump --schema-only` of both identical (textual,
    /// only pg_dump's random \restrict key lines dropped), every table's ordered hash, sequences, which
    /// materialized views are populated, and database-level settings the same.
    @Test func fullBackupAndRestoreOfTheZooIsExact() async throws {
        try await TestServer.withDatabase { source in
            let session = try await source.connect()
            defer { session.close() }
            try await ZooFixture.build(session)
            try await TestRepository.with { repo in
                let manifest = try await BackupRunner.runFull(try .test(source, repo))
                #expect(manifest.tables.contains { $0.schema == "zoo" && $0.name == "kitchen_sink" })
                try await TestServer.withDatabase(seeded: false) { target in
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path,
                                                                   jobs: 2, showProgress: false))
                    let restored = try await target.connect()
                    defer { restored.close() }
                    let version = session.serverVersionNumber
                    let expectedDDL = try Fixtures.schemaDDL(source.connectionString, serverVersion: version)
                    let actualDDL = try Fixtures.schemaDDL(target.connectionString, serverVersion: version)
                    #expect(ZooTests.lineDiff(expectedDDL, actualDDL) == [])
                    let expected = try await TableFingerprint.compute(session)
                    #expect(expected.contains { $0.schema == "zoo" && $0.table == "kitchen_sink" && $0.rows == 4 })
                    #expect(TableFingerprint.differences(source: expected, restored: try await TableFingerprint.compute(restored)) == [])
                    #expect(try await Fixtures.sequenceStates(restored) == Fixtures.sequenceStates(session))
                    #expect(try await ZooTests.populatedViews(restored) == ZooTests.populatedViews(session))
                    #expect(try await ZooFixture.databaseSettings(restored) == ZooFixture.databaseSettings(session))
                    let largeObjects = try await ZooTests.largeObjects(session)
                    #expect(largeObjects.count == 1)
                    #expect(try await ZooTests.largeObjects(restored) == largeObjects)
                }
            }
        }
    }

    /// Lines only in one of two texts, marked `-` (source) or `+` (restored), for a readable failure.
    static func lineDiff(_ source: String, _ restored: String) -> [String] {
        let a = source.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let b = restored.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if a == b { return [] }
        let diff = b.difference(from: a)
        return diff.map { change in
            switch change {
            case .remove(let offset, let line, _): "- \(offset): \(line)"
            case .insert(let offset, let line, _): "+ \(offset): \(line)"
            }
        }
    }

    /// Every large object: oid, owner and a hash of its content.
    static func largeObjects(_ session: DatabaseSession) async throws -> [String] {
        try await session.query("""
            SELECT m.oid::text || ' ' || pg_get_userbyid(m.lomowner) || ' ' || md5(lo_get(m.oid)) AS lo
            FROM pg_largeobject_metadata m ORDER BY m.oid
            """).rows.map { try $0.requiredString("lo") }
    }

    static func populatedViews(_ session: DatabaseSession) async throws -> [String] {
        try await session.query("""
            SELECT n.nspname || '.' || c.relname || '=' || c.relispopulated AS v FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'm' ORDER BY 1
            """).rows.map { try $0.requiredString("v") }
    }
}

extension ChangeArchivalTests {
    /// The zoo through `setup`, a full backup, changes to every table, an incremental pass and `restore --at`.
    @Suite struct ZooPointInTimeTests {
        @Test func restoreAtOfTheZooAfterChangesToEveryTableIsExact() async throws {
            try await TestServer.withDatabase { db in
                let session = try await db.connect("writer")
                defer { session.close() }
                try await ZooFixture.build(session)
                try await TestRepository.with { repo in
                    let archived = ArchivedDatabase(db: db, repo: repo, session: session)
                    _ = try await ChangeArchivalSetup.setup(db.connectionString, dryRun: false, fixReplicaIdentity: true)
                    do {
                        let before = try await TableFingerprint.compute(session)
                        _ = try await archived.full()
                        let unloggedAtFull = try await archived.unloggedFingerprints()
                        #expect(unloggedAtFull.contains { $0.schema == "zoo" && $0.table == "unlogged_cache" })
                        try await ZooFixture.change(session)
                        let (at, expected) = try await archived.instant()
                        // Every zoo table changed (a table the changes miss proves nothing).
                        let zooBefore = Dictionary(uniqueKeysWithValues: before.filter { $0.schema.hasPrefix("zoo") || $0.schema.hasPrefix("Zoo") }
                            .map { ("\($0.schema).\($0.table)", $0.hash) })
                        let unchanged = expected.filter { zooBefore["\($0.schema).\($0.table)"] == $0.hash }.map { "\($0.schema).\($0.table)" }
                        #expect(unchanged.isEmpty, "zoo tables the changes left alone: \(unchanged)")
                        let pass = try await archived.incremental()
                        #expect(pass.segment?.transactions ?? 0 > 0)
                        let restored = try await archived.restore(at: at)
                        #expect(TableFingerprint.differences(source: expected.replacing(unloggedAtFull), restored: restored) == [])
                    } catch {
                        _ = try? await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false)
                        throw error
                    }
                    _ = try await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false)
                }
            }
        }
    }
}
