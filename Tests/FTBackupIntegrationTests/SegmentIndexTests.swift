import Foundation
import Testing
@testable import FTBackupKit

/// Issue 14: a one-tool `restore --at` reads only the segments that name the tool (their index says so).
extension ChangeArchivalTests.PointInTimeTests {
    static let tool = "sprint_24_fit_abc_analysis"
    static let otherTool = "sprint_15_value_proposition"

    /// Changes of the tool (updates, inserts, deletes and a TRUNCATE), then only another tool's, then the tool's again.
    func writeToolRounds(_ a: ArchivedDatabase) async throws {
        try await a.session.execute("""
            UPDATE \(Self.tool).tool_data SET status = 'first', version = version + 1 WHERE id IN (SELECT id FROM \(Self.tool).tool_data ORDER BY id LIMIT 3);
            INSERT INTO \(Self.tool).tool_data (data, status) VALUES ('{"n": 1}', 'new');
            TRUNCATE \(Self.tool).assessment_actions;
            """)
        _ = try await a.incremental()
        try await a.session.execute("""
            INSERT INTO \(Self.otherTool).tool_data (data, status) VALUES ('{"other": 1}', 'draft'), ('{"other": 2}', 'draft');
            UPDATE \(Self.otherTool).tool_data SET status = 'touched' WHERE id = (SELECT id FROM \(Self.otherTool).tool_data ORDER BY id LIMIT 1);
            UPDATE users.accounts SET full_name = 'other tool round' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1);
            """)
        _ = try await a.incremental()
        try await a.session.execute("""
            DELETE FROM \(Self.tool).team_assessments WHERE id = (SELECT id FROM \(Self.tool).team_assessments ORDER BY id LIMIT 1);
            UPDATE \(Self.tool).tool_data SET data = '{"second": true}' WHERE id = (SELECT id FROM \(Self.tool).tool_data ORDER BY id LIMIT 1 OFFSET 5);
            """)
    }

    /// The segment holding only another tool's changes is never opened by a one-tool restore --at: with
    /// its data file damaged, the one-tool restore still gives the tool exactly as it was at TIME
    /// (ordered hashes, TRUNCATE included), while a whole-database restore --at stops on the damage.
    @Test func oneToolRestoreAtSkipsSegmentsWithoutTheToolAndIsExact() async throws {
        try await ArchivedDatabase.with { a in
            _ = try await a.full()
            try await writeToolRounds(a)
            let (at, expected) = try await a.instant()
            _ = try await a.incremental()  // its heartbeat is the first after TIME
            let segments = try ChangeSegmentManifest.all(a.repo.repository.storage)
            try #require(segments.count == 3)
            let (first, other, last) = (segments[0], segments[1], segments[2])

            // The index names what each segment changed, with row counts.
            let firstIndex = try #require(first.index)
            let toolData = try #require(firstIndex.relations.first { $0.schema == Self.tool && $0.name == "tool_data" })
            #expect(toolData.updates == 3 && toolData.inserts == 1 && toolData.deletes == 0 && toolData.described)
            #expect(firstIndex.relations.first { $0.schema == Self.tool && $0.name == "assessment_actions" }?.truncates == 1)
            let otherIndex = try #require(other.index)
            #expect(!otherIndex.names(anyOf: [Self.tool]), "\(otherIndex)")
            #expect(otherIndex.relations.first { $0.schema == Self.otherTool && $0.name == "tool_data" }.map { [$0.inserts, $0.updates] } == [2, 1])
            #expect(otherIndex.inserts(into: ChangeArchivalNames.schema, ChangeArchivalNames.heartbeat) == 1)
            #expect(last.index?.names(anyOf: [Self.tool]) == true)

            // Damage the other tool's segment: a one-tool restore never opens it.
            let path = "\(a.repo.path)/\(ChangeSegmentManifest.folder)/\(other.file.path)"
            var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            for offset in stride(from: bytes.count / 2, to: min(bytes.count, bytes.count / 2 + 16), by: 1) { bytes[offset] ^= 0xFF }
            try bytes.write(to: URL(fileURLWithPath: path))

            let plan = try await PointInTimeRestore.run(RestoreOptions(target: a.db.connectionString, repositoryPath: a.repo.path, schemas: [Self.tool],
                                                                       dryRun: true, showProgress: false), at: at)
            #expect(plan.plan.segmentsSkipped == [other.label], "\(String(describing: plan.plan.segmentsSkipped))")
            let restored = try await a.restore(at: at, schemas: [Self.tool])
            let toolExpected = expected.filter { $0.schema == Self.tool }
            #expect(!toolExpected.isEmpty)
            #expect(TableFingerprint.differences(source: toolExpected, restored: restored) == [])

            // The whole database reads every segment, so it stops on the damaged one.
            try await TestServer.withDatabase(seeded: false) { target in
                let error = await #expect(throws: (any Error).self) {
                    _ = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: a.repo.path,
                                                                        showProgress: false), at: at)
                }
                #expect("\(String(describing: error))".contains(other.label) || "\(String(describing: error))".lowercased().contains("sha-256")
                        || "\(String(describing: error))".lowercased().contains("damaged"), "\(String(describing: error))")
            }
        }
    }

    /// DDL on the tool recorded in a segment that changes none of its rows (the refusal comes from the
    /// manifests, whatever is skipped) still refuses a one-tool restore to a time past it.
    @Test func ddlOnTheToolInASegmentNamingNoneOfItsRowsStillRefusesTheOneToolRestore() async throws {
        try await ArchivedDatabase.with { a in
            let first = try await a.full()
            try await a.session.execute("UPDATE \(Self.tool).tool_data SET status = 'before ddl' WHERE id = (SELECT id FROM \(Self.tool).tool_data ORDER BY id LIMIT 1)")
            _ = try await a.incremental()
            try await a.session.execute("CREATE INDEX tool_data_status_idx ON \(Self.tool).tool_data (status)")
            let (afterDDL, _) = try await a.instant()
            _ = try await a.incremental()
            let segment = try #require(try ChangeSegmentManifest.all(a.repo.repository.storage).last)
            #expect(segment.ddl?.isEmpty == false)
            #expect(segment.index?.names(anyOf: [Self.tool]) == false, "\(String(describing: segment.index))")
            let error = await #expect(throws: FTBackupError.self) {
                _ = try await PointInTimeRestore.run(RestoreOptions(target: a.db.connectionString, repositoryPath: a.repo.path, schemas: [Self.tool],
                                                                    dryRun: true, showProgress: false), at: afterDDL)
            }
            #expect(error?.status == .usage)
            #expect(error?.message.contains(first.label) == true, "\(String(describing: error))")
        }
    }
}

extension ChangeArchivalTests.PointInTimeTests {
    /// Sequences come from heartbeats: a one-tool restore --at that skips the segments holding the
    /// newest heartbeat before TIME still sets the tool's sequences from it (applied from the index),
    /// exactly and without a warning, as a restore reading every segment does.
    @Test func oneToolRestoreAtTakesSequencesFromTheHeartbeatsOfSkippedSegments() async throws {
        try await ArchivedDatabase.with(prepare: "CREATE SEQUENCE \(Self.tool).ticket_numbers") { a in
            _ = try await a.full()
            try await a.session.execute("SELECT nextval('\(Self.tool).ticket_numbers') FROM generate_series(1, 5)")
            _ = try await a.incremental()
            try await a.session.execute("UPDATE \(Self.otherTool).tool_data SET status = 'other' WHERE id = (SELECT id FROM \(Self.otherTool).tool_data ORDER BY id LIMIT 1)")
            _ = try await a.incremental()
            let (at, expected) = try await a.instant()
            try await a.session.execute("UPDATE \(Self.tool).tool_data SET status = 'after' WHERE id = (SELECT id FROM \(Self.tool).tool_data ORDER BY id LIMIT 1)")
            _ = try await a.incremental()
            let segments = try ChangeSegmentManifest.all(a.repo.repository.storage)
            try #require(segments.count == 3)
            #expect(segments[1].index?.lastHeartbeat != nil)

            try await TestServer.withDatabase { target in
                let t = try await target.connect()
                defer { t.close() }
                try await t.execute("DROP SCHEMA \(Self.tool) CASCADE")
                let report = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: a.repo.path,
                                                                             schemas: [Self.tool], showProgress: false), at: at)
                #expect(report.plan.segmentsSkipped == segments.prefix(2).map(\.label), "\(String(describing: report.plan.segmentsSkipped))")
                #expect(report.sequenceWarnings == [], "\(report.sequenceWarnings)")
                let row = try #require(try await t.query("SELECT last_value, is_called FROM \(Self.tool).ticket_numbers").first)
                #expect(try row.int64("last_value") == 5 && (try row.bool("is_called")) == true)
                let restored = try await TableFingerprint.compute(t, schemas: [Self.tool])
                #expect(TableFingerprint.differences(source: expected.filter { $0.schema == Self.tool }, restored: restored) == [])
            }
        }
    }
}

extension ChangeArchivalTests.PointInTimeTests {
    /// A follower's stream describes each relation once: its later segments still carry an index (names
    /// come from earlier segments of the stream), a one-tool restore --at skips the segments without the
    /// tool, and the tool comes back exactly as it was at TIME.
    @Test func followerSegmentsCarryIndexesAndOneToolRestoreAtIsExact() async throws {
        try await ArchivedDatabase.with { a in
            let policyFile = try sealingEverySecondPolicyFile()
            defer { try? FileManager.default.removeItem(atPath: policyFile) }
            _ = try await a.full()
            let (follower, _, _) = try FTBackupBinary.start(["follow", "--db", "\(try TestServer.dsn) dbname=\(a.db.name)", "--repo", a.repo.path,
                                                             "--policy", policyFile])
            defer { if follower.isRunning { kill(follower.processIdentifier, SIGKILL) } }
            var instants: [(Date, [TableFingerprint])] = []
            // Each update sealed before the next commits: the tool's and the other tool's changes in segments of their own.
            for round in 1...3 {
                try await a.session.execute("UPDATE \(Self.tool).tool_data SET version = version + 1 WHERE id = (SELECT id FROM \(Self.tool).tool_data ORDER BY id LIMIT 1 OFFSET \(round))")
                try await a.waitUntilSealed(after: try await a.clock(), by: follower, "round \(round)'s update of \(Self.tool)")
                try await a.session.execute("UPDATE \(Self.otherTool).tool_data SET status = 'r\(round)' WHERE id = (SELECT id FROM \(Self.otherTool).tool_data ORDER BY id LIMIT 1)")
                try await a.waitUntilSealed(after: try await a.clock(), by: follower, "round \(round)'s update of \(Self.otherTool)")
                instants.append(try await a.instant())
            }
            // A heartbeat after the last instant is sealed.
            try await a.waitUntilSealed(after: try await a.clock(), by: follower, "the last instant")
            kill(follower.processIdentifier, SIGTERM)
            await FTBackupBinary.waitForExit(follower)
            #expect(follower.terminationStatus == 0)

            let segments = try ChangeSegmentManifest.all(a.repo.repository.storage)
            #expect(segments.count >= 4)
            #expect(segments.allSatisfy { $0.index != nil }, "\(segments.map { "\($0.label): \($0.index == nil ? "no index" : "indexed")" })")
            // The stream describes a relation once; each segment carries the descriptions the stream gave so far.
            #expect(!segments.contains { $0.index?.relations.contains { $0.schema == Self.tool && $0.changes > 0 && !$0.described } == true })
            var skipped = 0
            for (at, expected) in instants {
                let plan = try await PointInTimeRestore.run(RestoreOptions(target: a.db.connectionString, repositoryPath: a.repo.path, schemas: [Self.tool],
                                                                           dryRun: true, showProgress: false), at: at)
                skipped += plan.plan.segmentsSkipped?.count ?? 0
                let restored = try await a.restore(at: at, schemas: [Self.tool])
                #expect(TableFingerprint.differences(source: expected.filter { $0.schema == Self.tool }, restored: restored) == [],
                        "at \(Timestamps.iso8601UTC(at))")
            }
            #expect(skipped > 0)
        }
    }
}
