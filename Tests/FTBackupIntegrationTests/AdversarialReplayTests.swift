import Foundation
import Testing
@testable import FTBackupKit

/// Tables that stress replay's batching and row matching: odd identifiers (quotes, spaces, unicode, a
/// 63-byte name), awkward values (bytea with NUL bytes, arrays with quotes and NULLs, jsonb with odd
/// keys, NaN), an identity ALWAYS column beside a generated one, a dropped column, a list-partitioned
/// table with a DEFAULT partition, exact duplicate rows without a key, values of more than 1 MB, a
/// deferrable unique key shifted in one statement, a TRUNCATE … CASCADE over a foreign key, and
/// application triggers `ENABLE ALWAYS` and `ENABLE REPLICA` that write audit rows.
let adversarialReplaySchemaSQL = """
    CREATE SCHEMA adv;
    CREATE TABLE adv."we ""ird"" tâble" ("col ""q"" x" int PRIMARY KEY, "Spaced Col" text, "ünï" jsonb, b bytea, arr text[], n numeric);
    CREATE TABLE adv.t23456789012345678901234567890123456789012345678901234567890123 (id int PRIMARY KEY, v text);
    CREATE TABLE adv.ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text, len int GENERATED ALWAYS AS (length(v)) STORED);
    CREATE TABLE adv.dropped (id int PRIMARY KEY, gone text, v text);
    ALTER TABLE adv.dropped DROP COLUMN gone;
    CREATE TABLE adv.parts (id int NOT NULL, k text NOT NULL, v text, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
    CREATE TABLE adv.parts_a PARTITION OF adv.parts FOR VALUES IN ('a');
    CREATE TABLE adv.parts_default PARTITION OF adv.parts DEFAULT;
    INSERT INTO adv.parts SELECT g, CASE WHEN g % 2 = 0 THEN 'a' ELSE 'z' END, 'p' FROM generate_series(1, 10) g;
    CREATE TABLE adv.dups (a int, b text);
    INSERT INTO adv.dups VALUES (1, 'x'), (1, 'x'), (1, 'x'), (2, NULL), (2, NULL);
    CREATE TABLE adv.big (id int PRIMARY KEY, small text, big text, blob bytea);
    CREATE TABLE adv.uniq (id int PRIMARY KEY, k int UNIQUE DEFERRABLE INITIALLY IMMEDIATE);
    INSERT INTO adv.uniq SELECT g, g FROM generate_series(1, 10) g;
    CREATE TABLE adv.parent (id int PRIMARY KEY);
    CREATE TABLE adv.child (id int PRIMARY KEY, p int REFERENCES adv.parent);
    INSERT INTO adv.parent SELECT generate_series(1, 5);
    INSERT INTO adv.child SELECT g, g FROM generate_series(1, 5) g;
    CREATE TABLE adv.audit (id bigserial PRIMARY KEY, what text NOT NULL);
    CREATE FUNCTION adv.audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO adv.audit (what) VALUES (TG_NAME || ' ' || TG_OP || ' ' || TG_TABLE_NAME); RETURN NULL; END $$;
    CREATE TRIGGER always_audit AFTER INSERT OR UPDATE OR DELETE ON adv.big FOR EACH ROW EXECUTE FUNCTION adv.audit_row();
    ALTER TABLE adv.big ENABLE ALWAYS TRIGGER always_audit;
    CREATE TRIGGER replica_audit AFTER INSERT OR UPDATE ON adv.ident FOR EACH ROW EXECUTE FUNCTION adv.audit_row();
    ALTER TABLE adv.ident ENABLE REPLICA TRIGGER replica_audit;
    CREATE TRIGGER origin_audit AFTER INSERT OR DELETE ON adv.dups FOR EACH ROW EXECUTE FUNCTION adv.audit_row();
    """

extension ArchivedDatabase {
    /// Restores as at `at` with the given batching into a fresh database; the fingerprints of `schemas`.
    func restoreSchemas(_ schemas: [String], at: Date, grouping: ReplayGrouping = .standard) async throws -> [TableFingerprint] {
        try await TestServer.withDatabase(seeded: false) { target in
            _ = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false),
                                                 at: at, grouping: grouping)
            let t = try await target.connect()
            defer { t.close() }
            return try await TableFingerprint.compute(t, schemas: schemas)
        }
    }

    /// Runs `sql` and returns the instant just after it, with the fingerprints of `schemas`.
    func step(_ sql: String, schemas: [String]) async throws -> (Date, [TableFingerprint]) {
        try await session.execute(sql)
        let prints = try await TableFingerprint.compute(session, schemas: schemas)
        try await Task.sleep(for: .milliseconds(20))
        let at = try await session.query("SELECT extract(epoch FROM clock_timestamp()) AS t").first!.epochDate("t")!
        try await Task.sleep(for: .milliseconds(20))
        return (at, prints)
    }
}

extension ChangeArchivalTests.PointInTimeTests {
    /// Issue 14 (adversarial): every awkward shape of row and table replays exactly through 64-row
    /// INSERT batches and pipelined groups, and no application trigger fires (the audit table holds
    /// exactly the source's rows), stopped at several points.
    @Test func awkwardRowsAndTablesReplayExactlyWithoutFiringTriggers() async throws {
        try await ArchivedDatabase.with(prepare: adversarialReplaySchemaSQL) { a in
            _ = try await a.full()
            var instants: [(String, (Date, [TableFingerprint]))] = []
            instants.append(("odd values", try await a.step("""
                BEGIN;
                INSERT INTO adv."we ""ird"" tâble" SELECT g, CASE WHEN g % 5 = 0 THEN NULL ELSE 'sp ''q'' "dq" \\ ' || g END,
                    jsonb_build_object('', g, 'a"b', jsonb_build_array(NULL, 'ü'), 'ключ', '\\u00e9'),
                    CASE WHEN g % 7 = 0 THEN NULL ELSE decode('00ff' || lpad(to_hex(g), 4, '0') || '005c', 'hex') END,
                    ARRAY['a,b', '"q"', NULL, '{x}', ''], CASE WHEN g % 11 = 0 THEN 'NaN'::numeric ELSE g * 1.10 END
                FROM generate_series(1, 70) g;
                INSERT INTO adv.t23456789012345678901234567890123456789012345678901234567890123 SELECT g, 'v' FROM generate_series(1, 65) g;
                INSERT INTO adv.ident (v) SELECT 'id ' || g FROM generate_series(1, 70) g;
                INSERT INTO adv.dropped SELECT g, 'd' || g FROM generate_series(1, 70) g;
                INSERT INTO adv.parts SELECT g, CASE WHEN g % 3 = 0 THEN 'a' ELSE 'k' || g % 4 END, 'n' FROM generate_series(11, 90) g;
                COMMIT;
                """, schemas: ["adv"])))
            instants.append(("big values and no-key rows", try await a.step("""
                BEGIN;
                INSERT INTO adv.big SELECT g, 's', (SELECT string_agg(md5(g::text || x::text), '') FROM generate_series(1, 40000) x),
                    (SELECT string_agg(decode(md5(x::text || g::text), 'hex'), ''::bytea) FROM generate_series(1, 70000) x) FROM generate_series(1, 3) g;
                INSERT INTO adv.big SELECT g, 'small', NULL, NULL FROM generate_series(4, 80) g;
                UPDATE adv.big SET small = 'changed' WHERE id = 1;
                UPDATE adv.big SET big = big || 'tail' WHERE id = 2;
                DELETE FROM adv.dups WHERE ctid = (SELECT ctid FROM adv.dups WHERE a = 1 LIMIT 1);
                UPDATE adv.dups SET b = 'y' WHERE ctid = (SELECT ctid FROM adv.dups WHERE a = 2 LIMIT 1);
                INSERT INTO adv.dups VALUES (2, NULL);
                COMMIT;
                """, schemas: ["adv"])))
            instants.append(("shifts, moves and cascades", try await a.step("""
                BEGIN;
                UPDATE adv.uniq SET k = k + 1;
                UPDATE adv.parts SET k = 'a' WHERE id = 1;
                UPDATE adv.parts SET k = 'elsewhere' WHERE id = 2;
                UPDATE adv.ident SET v = 'changed' WHERE id = 3;
                UPDATE adv."we ""ird"" tâble" SET "ünï" = '{"x": {"": null}}', arr = '{}' WHERE "col ""q"" x" = 4;
                TRUNCATE adv.parent CASCADE;
                INSERT INTO adv.parent VALUES (9);
                INSERT INTO adv.child VALUES (9, 9);
                COMMIT;
                """, schemas: ["adv"])))
            _ = try await a.incremental()
            let audit = try await a.session.query("SELECT count(*) AS n FROM adv.audit").first!.int("n") ?? 0
            #expect(audit > 0, "the source's triggers wrote audit rows")
            for (name, (at, expected)) in instants {
                let restored = try await a.restoreSchemas(["adv"], at: at, grouping: tinyGrouping)
                #expect(TableFingerprint.differences(source: expected, restored: restored) == [], "\(name)")
            }
            let (at, expected) = instants[2].1
            let restored = try await a.restoreSchemas(["adv"], at: at)
            #expect(TableFingerprint.differences(source: expected, restored: restored) == [], "standard grouping")
        }
    }

    /// Issue 14 (adversarial): a segment manifest whose index was damaged so that it no longer names
    /// the tool (while the manifest's own list of described relations still does) must not make a
    /// one-tool restore --at skip the segment: the tool comes back exactly as at TIME.
    @Test func aSegmentIndexThatContradictsItsManifestDoesNotSkipTheSegment() async throws {
        try await ArchivedDatabase.with { a in
            _ = try await a.full()
            try await writeToolRounds(a)
            let (at, expected) = try await a.instant()
            _ = try await a.incremental()
            let segments = try ChangeSegmentManifest.all(a.repo.repository.storage)
            try #require(segments.count == 3)
            let first = segments[0]
            #expect(first.relations.contains { $0.hasPrefix("\(Self.tool).") })
            // Damage the first segment's index: the tool's entries vanish from it.
            let path = "\(a.repo.path)/\(ChangeSegmentManifest.manifestPath(first.label))"
            var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            var index = try #require(json["index"] as? [String: Any])
            let relations = try #require(index["relations"] as? [[String: Any]])
            index["relations"] = relations.filter { ($0["schema"] as? String) != Self.tool }
            json["index"] = index
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
            try #require(try ChangeSegmentManifest.all(a.repo.repository.storage)[0].index?.names(anyOf: [Self.tool]) == false)

            let restored = try await a.restore(at: at, schemas: [Self.tool])
            #expect(TableFingerprint.differences(source: expected.filter { $0.schema == Self.tool }, restored: restored) == [])
        }
    }

    /// Issue 14 (adversarial): a follower keeps streaming while a new full backup is taken, so the
    /// segments after that full change the tool without describing it (the stream described it once,
    /// before the full). A whole-database restore --at and a one-tool restore --at from that full
    /// both give the state at TIME exactly, instead of failing on a change without its description
    /// (whole database) or silently passing over the tool's changes (one tool, segments skipped).
    /// `describeOnce`: the follower as versions before this one (each relation described once in its
    /// stream, failpoint follow.describe-once): the restore reads the description from a segment before
    /// the full. Otherwise every segment carries the descriptions the stream gave so far.
    @Test(arguments: [true, false])
    func aFullTakenWhileTheFollowerStreamsRestoresExactlyAsAtT(describeOnce: Bool) async throws {
        try await ArchivedDatabase.with { a in
            let policyFile = try sealingEverySecondPolicyFile()
            defer { try? FileManager.default.removeItem(atPath: policyFile) }
            _ = try await a.full()
            let (follower, _, _) = try FTBackupBinary.start(["follow", "--db", "\(try TestServer.dsn) dbname=\(a.db.name)", "--repo", a.repo.path,
                                                             "--policy", policyFile],
                                                            environment: describeOnce ? ["FTBACKUP_FAILPOINT": "follow.describe-once"] : [:])
            // Waits (the follower lags on a loaded machine) until `count` sealed segments change `schema`.
            func sealed(_ count: Int, changing schema: String) async throws {
                let done = try await Eventually.holds(every: .milliseconds(500), while: { follower.isRunning }) {
                    let segments = try ChangeSegmentManifest.all(a.repo.repository.storage)
                    return segments.filter({ $0.index?.relations.contains { $0.schema == schema && $0.changes > 0 } == true }).count >= count
                }
                if !done { Issue.record("the follower did not seal \(count) segment(s) changing \(schema)") }
            }
            // Described in the stream, and sealed, before the second full.
            try await a.session.execute("UPDATE \(Self.tool).tool_data SET version = version + 1 WHERE id = (SELECT id FROM \(Self.tool).tool_data ORDER BY id LIMIT 1)")
            try await a.session.execute("UPDATE users.accounts SET full_name = 'before' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1)")
            try await sealed(1, changing: Self.tool)
            _ = try await a.full()
            try await a.session.execute("UPDATE \(Self.otherTool).tool_data SET status = 'other' WHERE id = (SELECT id FROM \(Self.otherTool).tool_data ORDER BY id LIMIT 1)")
            try await sealed(1, changing: Self.otherTool)
            try await a.session.execute("""
                UPDATE \(Self.tool).tool_data SET status = 'after the full', version = version + 1 WHERE id = (SELECT id FROM \(Self.tool).tool_data ORDER BY id LIMIT 1 OFFSET 2);
                UPDATE users.accounts SET full_name = 'after' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1);
                """)
            try await sealed(2, changing: Self.tool)
            let (at, expected) = try await a.instant()
            try await a.waitUntilSealed(after: at, by: follower, "TIME")  // a heartbeat after TIME is sealed
            kill(follower.processIdentifier, SIGTERM)
            await FTBackupBinary.waitForExit(follower)
            #expect(follower.terminationStatus == 0)
            let segments = try ChangeSegmentManifest.all(a.repo.repository.storage)
            let undescribed = segments.contains { $0.index?.relations.contains { $0.schema == Self.tool && $0.changes > 0 && !$0.described } == true }
            // The old follower leaves the tool's later change undescribed only while the server's walsender keeps its
            // relation cache: an invalidation (the full's catalog reads, autovacuum) makes pgoutput describe it again.
            // Then the describers path is not reached here (`SegmentSelectionTests` covers it without a server).
            if describeOnce && !undescribed { print("note: the server described the tool again; the describers path was not reached this run") }
            if !describeOnce { #expect(!undescribed, "the new follower describes every relation it changes in each segment") }

            let plan = try await PointInTimeRestore.run(RestoreOptions(target: a.db.connectionString, repositoryPath: a.repo.path, schemas: [Self.tool],
                                                                       dryRun: true, showProgress: false), at: at).plan
            // Asserted where the stream's behaviour is known: a follower that describes every segment needs no describers,
            // an old one that left the tool undescribed needs them; an old one the walsender re-described may go either way.
            if !describeOnce { #expect(plan.describers?.isEmpty != false, "every segment carries its descriptions") }
            if describeOnce && undescribed { #expect(plan.describers?.isEmpty == false, "a segment before the second full is read for its descriptions") }
            #expect(plan.segmentsSkipped?.isEmpty == false, "the other tool's segment is still skipped")
            let tool = try await a.restore(at: at, schemas: [Self.tool])
            #expect(TableFingerprint.differences(source: expected.filter { $0.schema == Self.tool }, restored: tool) == [], "one tool")
            let whole = try await a.restore(at: at)
            #expect(TableFingerprint.differences(source: expected, restored: whole) == [], "whole database")
        }
    }
}
