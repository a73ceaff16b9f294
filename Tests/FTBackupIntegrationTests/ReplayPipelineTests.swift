import Foundation
import Testing
@testable import FTBackupKit

/// Tables for the pipelined replay tests: a jsonb document with a TOASTed column its updates leave
/// alone, a partitioned table, a table without a key (REPLICA IDENTITY FULL after setup), and one a
/// test tampers with.
let replayPipelineSchemaSQL = """
    CREATE SCHEMA rp;
    CREATE TABLE rp.docs (id int PRIMARY KEY, doc jsonb NOT NULL, body text NOT NULL);
    INSERT INTO rp.docs SELECT g, jsonb_build_object('n', 0), (SELECT string_agg(md5(g::text || x::text), '') FROM generate_series(1, 100) x)
    FROM generate_series(1, 20) g;
    CREATE TABLE rp.events (id bigint NOT NULL, day int NOT NULL, v text, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
    CREATE TABLE rp.events_a PARTITION OF rp.events FOR VALUES FROM (0) TO (10);
    CREATE TABLE rp.events_b PARTITION OF rp.events FOR VALUES FROM (10) TO (20);
    INSERT INTO rp.events SELECT g, g % 20, 'event ' || g FROM generate_series(1, 40) g;
    CREATE TABLE rp.nokey (a int, b text);
    INSERT INTO rp.nokey SELECT g % 3, 'row' FROM generate_series(1, 9) g;
    CREATE TABLE rp.victim (id int PRIMARY KEY, v text);
    INSERT INTO rp.victim SELECT g, 'v' FROM generate_series(1, 10) g;
    """

/// Small batches, so that group commits and pipeline syncs fall inside the few transactions a test runs.
let tinyGrouping = ReplayGrouping(transactions: 3, bytes: 1 << 20, syncStatements: 4, syncBytes: 4096)

/// The `n`th of a run of small mixed source transactions: a jsonb update leaving the TOASTed body
/// unchanged, an insert into the partitioned table, a delete, a row of the keyless table changed.
func mixedTransaction(_ n: Int) -> String {
    """
    BEGIN;
    UPDATE rp.docs SET doc = jsonb_set(doc, '{n}', to_jsonb(\(n))) WHERE id = \(n % 20 + 1);
    INSERT INTO rp.events VALUES (\(1000 + n), \(n % 20), 'new \(n)');
    DELETE FROM rp.events WHERE id = \(n) AND day = \(n % 20);
    UPDATE rp.nokey SET b = b || '\(n)' WHERE ctid = (SELECT ctid FROM rp.nokey WHERE a = \(n % 3) LIMIT 1);
    COMMIT;
    """
}

extension ArchivedDatabase {
    /// Restores as at `at` with the given batching into a fresh database; the `rp` schema's fingerprints.
    func restoreRP(at: Date, grouping: ReplayGrouping) async throws -> [TableFingerprint] {
        try await TestServer.withDatabase(seeded: false) { target in
            _ = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false),
                                                 at: at, grouping: grouping)
            let t = try await target.connect()
            defer { t.close() }
            return try await TableFingerprint.compute(t, schemas: ["rp"])
        }
    }

    /// Runs `sql` as one source transaction and returns the instant just after it, with `rp`'s fingerprints.
    func step(_ sql: String) async throws -> (Date, [TableFingerprint]) {
        try await session.execute(sql)
        let prints = try await TableFingerprint.compute(session, schemas: ["rp"])
        try await Task.sleep(for: .milliseconds(20))
        let at = try await session.query("SELECT extract(epoch FROM clock_timestamp()) AS t").first!.epochDate("t")!
        try await Task.sleep(for: .milliseconds(20))
        return (at, prints)
    }

    /// The plan of `restore --at` (nothing restored): its last replayed commit's LSN and exact time.
    func lastCommit(before at: Date) async throws -> (lsn: String, time: Date) {
        let options = RestoreOptions(target: try TestServer.connectionString(database: db.name), repositoryPath: repo.path, dryRun: true, showProgress: false)
        let plan = try await PointInTimeRestore.run(options, at: at).plan
        return (try #require(plan.lastCommitLSN), try #require(plan.lastCommitTime))
    }
}

extension ChangeArchivalTests.PointInTimeTests {
    /// Issue 14: a target transaction (group of source transactions) that begins in one segment and is
    /// still open when replay stops in the next: the state at T, exactly, in both segments.
    @Test func replayStoppedInsideAGroupSpanningTwoSegmentsIsExact() async throws {
        try await ArchivedDatabase.with(prepare: replayPipelineSchemaSQL) { a in
            _ = try await a.full()
            var instants: [(Date, [TableFingerprint])] = []
            for n in 1...5 { instants.append(try await a.step(mixedTransaction(n))) }
            _ = try await a.incremental()
            for n in 6...10 { instants.append(try await a.step(mixedTransaction(n))) }
            _ = try await a.incremental()
            // Groups of 3: transactions 4–6 are one target transaction across the two segments.
            for index in [4, 6, 9] {  // after transactions 5, 7 and 10
                let restored = try await a.restoreRP(at: instants[index].0, grouping: tinyGrouping)
                #expect(TableFingerprint.differences(source: instants[index].1, restored: restored) == [], "after transaction \(index + 1)")
            }
            // One group for the whole stretch, stopped in the second segment.
            let restored = try await a.restoreRP(at: instants[6].0, grouping: ReplayGrouping(transactions: 100, syncStatements: 3))
            #expect(TableFingerprint.differences(source: instants[6].1, restored: restored) == [])
        }
    }

    /// Issue 14: T equal to a commit's exact time includes that commit, and one microsecond before it
    /// does not, with T on a group commit boundary and inside a group.
    @Test func replayStopsExactlyAtTheCommitAtT() async throws {
        try await ArchivedDatabase.with(prepare: replayPipelineSchemaSQL) { a in
            _ = try await a.full()
            var instants: [(Date, [TableFingerprint])] = []
            for n in 1...8 { instants.append(try await a.step(mixedTransaction(n))) }
            _ = try await a.incremental()
            for index in [5, 6] {  // transaction 6 ends a group of 3; transaction 7 is inside one
                let commit = try await a.lastCommit(before: instants[index].0).time
                let atCommit = try await a.restoreRP(at: commit, grouping: tinyGrouping)
                #expect(TableFingerprint.differences(source: instants[index].1, restored: atCommit) == [], "at transaction \(index + 1)'s commit")
                let before = commit.addingTimeInterval(-0.000_001)
                let justBefore = try await a.restoreRP(at: before, grouping: tinyGrouping)
                #expect(TableFingerprint.differences(source: instants[index - 1].1, restored: justBefore) == [], "just before transaction \(index + 1)'s commit")
            }
        }
    }

    /// Issue 14: replay stopped just after a TRUNCATE (alone, with CASCADE of the partitioned parent, and
    /// followed by inserts in its own transaction), pipelined behind the changes before it.
    @Test func replayStoppedJustAfterATruncateIsExact() async throws {
        try await ArchivedDatabase.with(prepare: replayPipelineSchemaSQL) { a in
            _ = try await a.full()
            _ = try await a.step(mixedTransaction(1))
            let afterTruncate = try await a.step("BEGIN; INSERT INTO rp.nokey VALUES (7, 'x'); TRUNCATE rp.nokey; COMMIT;")
            let afterParentTruncate = try await a.step("""
                BEGIN; UPDATE rp.events SET v = 'changed' WHERE id = 5; TRUNCATE rp.events;
                INSERT INTO rp.events VALUES (5, 5, 'after'), (15, 15, 'after'); UPDATE rp.events SET v = 'again' WHERE id = 15; COMMIT;
                """)
            let later = try await a.step(mixedTransaction(2))
            _ = try await a.incremental()
            for (name, instant) in [("after the TRUNCATE", afterTruncate), ("after the parent's TRUNCATE", afterParentTruncate), ("later", later)] {
                let restored = try await a.restoreRP(at: instant.0, grouping: tinyGrouping)
                #expect(TableFingerprint.differences(source: instant.1, restored: restored) == [], "\(name)")
            }
        }
    }

    /// Issue 14: key-changing updates (a chain A→B→C within one transaction, a key swap through a free
    /// key, a row moved across partitions) pipelined, and replay stopped right after them.
    @Test func replayStoppedAfterAKeyChangingUpdateIsExact() async throws {
        try await ArchivedDatabase.with(prepare: replayPipelineSchemaSQL) { a in
            _ = try await a.full()
            let chain = try await a.step("""
                BEGIN; UPDATE rp.victim SET id = 100 WHERE id = 2; UPDATE rp.victim SET id = 2 WHERE id = 1;
                UPDATE rp.victim SET id = 1 WHERE id = 100; UPDATE rp.docs SET id = id + 100, doc = '{"moved": true}' WHERE id = 3; COMMIT;
                """)
            let moved = try await a.step("UPDATE rp.events SET day = 15, v = 'moved' WHERE id = 7")
            let later = try await a.step(mixedTransaction(3))
            _ = try await a.incremental()
            for (name, instant) in [("after the key chain", chain), ("after the partition move", moved), ("later", later)] {
                let restored = try await a.restoreRP(at: instant.0, grouping: tinyGrouping)
                #expect(TableFingerprint.differences(source: instant.1, restored: restored) == [], "\(name)")
            }
        }
    }

    /// Issue 14: a change that fails in the middle of a pipeline sync group (an UPDATE that touches no row,
    /// one row of a multi-row INSERT the target rejects) stops replay naming its source transaction and change, as a data
    /// error (exit 65), and the target holds exactly the groups committed before it, as the message says.
    @Test(arguments: ["no row", "rejected"])
    func aFailingChangeInAPipelinedGroupNamesItsSourceTransaction(_ failure: String) async throws {
        try await ArchivedDatabase.with(prepare: replayPipelineSchemaSQL) { a in
            let full = try await a.full()
            var instants: [(Date, [TableFingerprint])] = []
            for n in 1...4 { instants.append(try await a.step(mixedTransaction(n))) }
            instants.append(try await a.step("""
                BEGIN; UPDATE rp.docs SET doc = '{"five": 1}' WHERE id = 1; UPDATE rp.victim SET v = 'five' WHERE id = 5;
                INSERT INTO rp.victim SELECT g, 'five' FROM generate_series(46, 54) g; UPDATE rp.docs SET doc = '{"five": 2}' WHERE id = 2; COMMIT;
                """))
            for n in 6...7 { instants.append(try await a.step(mixedTransaction(n))) }
            _ = try await a.incremental()
            let committed = try await a.lastCommit(before: instants[2].0)   // groups of 3: transactions 1–3 commit
            let failing = try await a.lastCommit(before: instants[4].0)
            let end = instants[6].0
            try await TestServer.withDatabase(seeded: false) { target in
                let options = RestoreOptions(target: target.connectionString, repositoryPath: a.repo.path, label: full.label, showProgress: false)
                _ = try await RestoreRunner.run(options)
                let t = try await target.connect()
                defer { t.close() }
                // The target disagrees with the archive about rp.victim: the fifth transaction's change there fails.
                try await t.execute(failure == "no row" ? "DELETE FROM rp.victim WHERE id = 5" : "INSERT INTO rp.victim VALUES (50, 'already here')")
                let repository = try Repository.open(a.repo.path)
                let (plan, segments) = try await PointInTimeRestore.makePlan(repository, options: options, at: end)
                let error = await #expect(throws: (any Error).self) {
                    _ = try await PointInTimeRestore.replay(segments, storage: repository.storage, options: options,
                                                            from: LSN.parse(plan.consistentPoint) ?? 0, until: end, schemas: plan.restore.schemas,
                                                            ignoring: [], grouping: tinyGrouping)
                }
                let text = "\(error.map { "\($0)" } ?? "")"
                #expect(text.contains("rp.victim") && text.contains("committed at LSN \(failing.lsn)"), "\(text)")
                #expect(text.contains("up to LSN \(committed.lsn) and none after"), "\(text)")
                if failure == "no row" {
                    #expect((error as? FTBackupError)?.status == .dataError, "\(text)")
                    #expect(text.contains("UPDATE on rp.victim") && text.contains("touched 0 rows"), "\(text)")
                } else {
                    #expect((error as? PostgresError)?.sqlState == "23505", "\(text)")
                    #expect((error as? PostgresError)?.exitStatus == .dataError, "\(text)")
                    #expect(text.contains("one of 9 INSERTs into rp.victim"), "\(text)")  // sent as one statement of 8 rows and one of 1
                }
                // Exactly transactions 1–3, but for the row this test changed by hand.
                let restored = try await TableFingerprint.compute(t, schemas: ["rp"]).filter { $0.table != "victim" }
                #expect(TableFingerprint.differences(source: instants[2].1.filter { $0.table != "victim" }, restored: restored) == [])
            }
        }
    }

    /// Issue 14: one source transaction much larger than a pipeline group replays through the CLI with
    /// peak RSS under 150 MB (GNU time), and exactly.
    @Test func oneLargeTransactionReplaysInBoundedMemory() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/time") else {
            Issue.record("GNU time (/usr/bin/time) is needed to measure peak RSS"); return
        }
        try await ArchivedDatabase.with(prepare: replayPipelineSchemaSQL + "CREATE TABLE rp.big (id bigint PRIMARY KEY, v int, t text);") { a in
            _ = try await a.full()
            let (at, expected) = try await a.step("""
                BEGIN; INSERT INTO rp.big SELECT g, g, 'row ' || g FROM generate_series(1, 200000) g;
                UPDATE rp.big SET v = -v WHERE id % 3 = 0; DELETE FROM rp.big WHERE id % 7 = 0; COMMIT;
                """)
            _ = try await a.incremental()
            try await TestServer.withDatabase(seeded: false) { target in
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/time")
                process.arguments = ["-f", "%M", try FTBackupBinary.path, "restore", "--at", Timestamps.iso8601UTC(at), "--target",
                                     "\(try TestServer.dsn) dbname=\(target.name)", "--repo", a.repo.path, "--output", "json"]
                let err = Pipe()
                process.standardOutput = FileHandle.nullDevice
                process.standardError = err
                try process.run()
                let stderr = await FTBackupBinary.text(of: err)
                await FTBackupBinary.waitForExit(process)
                #expect(process.terminationStatus == 0, "\(stderr)")
                let peakKiB = Int(stderr.split(separator: "\n").last.map(String.init) ?? "") ?? .max
                #expect(peakKiB < 150 * 1024, "peak RSS \(peakKiB) KiB")
                let t = try await target.connect()
                defer { t.close() }
                #expect(TableFingerprint.differences(source: expected, restored: try await TableFingerprint.compute(t, schemas: ["rp"])) == [])
            }
        }
    }
}
