import Foundation
import Testing
@testable import FTBackupKit

extension ArchivedDatabase {
    /// Restores the database as at `at` into a fresh database, then hands it to `inspect`.
    func restore<T>(at: Date, inspect: (DatabaseSession) async throws -> T) async throws -> T {
        try await TestServer.withDatabase(seeded: false) { target in
            _ = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path,
                                                                showProgress: false), at: at)
            let t = try await target.connect()
            defer { t.close() }
            return try await inspect(t)
        }
    }
}

/// `last_value` and `is_called` of each named sequence, in order.
func sequenceStates(_ session: DatabaseSession, _ names: [String]) async throws -> [String] {
    var states: [String] = []
    for name in names {
        let row = try await session.query("SELECT last_value::text AS v, is_called::text AS c FROM \(name)").first!
        states.append("\(name)=\(try row.requiredString("v")),\(try row.requiredString("c"))")
    }
    return states
}

/// A sequence no column owns drawn on by two tables, one behind a partitioned table, a descending and a
/// cycling one: after restore --at, each is where the source's was.
let sequenceSchemaSQL = """
    CREATE SCHEMA rs;
    CREATE SEQUENCE rs.gseq;
    CREATE TABLE rs.g (id bigint PRIMARY KEY DEFAULT nextval('rs.gseq'), v text);
    CREATE SEQUENCE rs.dseq INCREMENT -1;
    CREATE TABLE rs.d (id int PRIMARY KEY DEFAULT nextval('rs.dseq'), v text);
    ALTER SEQUENCE rs.dseq OWNED BY rs.d.id;
    CREATE SEQUENCE rs.cseq MAXVALUE 5 CYCLE;
    CREATE TABLE rs.c (id int PRIMARY KEY DEFAULT nextval('rs.cseq'), v text);
    ALTER SEQUENCE rs.cseq OWNED BY rs.c.id;
    CREATE TABLE rs.g2 (id int PRIMARY KEY DEFAULT nextval('rs.gseq'));
    CREATE SEQUENCE rs.pseq;
    CREATE TABLE rs.p (id bigint DEFAULT nextval('rs.pseq'), k int) PARTITION BY LIST (k);
    CREATE TABLE rs.p1 PARTITION OF rs.p FOR VALUES IN (1);
    CREATE TABLE rs.p2 (id bigint, k int);
    ALTER TABLE rs.p ATTACH PARTITION rs.p2 FOR VALUES IN (2);
    INSERT INTO rs.g (v) SELECT 'before the full' FROM generate_series(1, 5);
    """

/// One row of `every_type` whose columns are all the same but for the ones given.
func everyTypeTwin(_ n: Int, num: String, f8: String, iv: String, note: String) -> String {
    """
    (\(n), false, 'ab   ', 'v', 'x', 2, -1, \(num), 2.5, 'NaN', '\(f8)', 0, '2026-01-03', '00:00', '00:00+00',
     '2026-01-02 03:04:05', '2026-01-02 03:04:05+00', '\(iv)', 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
     '::1', '::/0', '08:00:2b:01:02:04', '08:00:2b:01:02:03:04:06', '\\x', '[]', '{}', '{}', '{}', '{}', 'sad',
     ROW(NULL, ''), 'empty', 'empty', B'0000', B'', '', 'cat', '(0,0)', '((1,1),(0,0))', '[(0,0),(1,1)]',
     '[(0,0),(1,1)]', '((0,0),(1,1))', '<(1,1),1.5>', '<a/>', 1, '0/0', '\(note)')
    """
}

/// Every built-in type family in one table without a key (setup makes it REPLICA IDENTITY FULL), with
/// twins that are equal but not identical (0 and -0, 1.0 and 1.00, '1 day' and '24 hours'): the one the
/// source changed comes second, so the first match by equality alone is the wrong one.
let everyTypeSchemaSQL = """
    CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
    CREATE TYPE public.pair AS (a int, b text);
    CREATE DOMAIN public.positive AS int CHECK (VALUE > 0);
    CREATE TABLE public.every_type (
        n int, b bool, c5 char(5), vc varchar(10), t text, i2 int2, i8 int8, num numeric, num3 numeric(10,3),
        f4 float4, f8 float8, m money, d date, tm time, tmtz timetz, ts timestamp(3), tstz timestamptz, iv interval,
        u uuid, ip inet, cid cidr, mac macaddr, mac8 macaddr8, by bytea, j json, jb jsonb, arr int[], tarr text[],
        jarr json[], e public.mood, comp public.pair, rng int4range, tsr tstzrange, bt bit(4), vb varbit(8),
        tsv tsvector, tq tsquery, p point, bx box, ls lseg, pa path, pg polygon, ci circle, x xml, dom public.positive,
        lsn pg_lsn, note text);
    INSERT INTO public.every_type VALUES
        (1, true, 'ab', 'v', 'tab\there', 1, 9000000000, 1.0, 2.5, 1.5, 0, 12.34, '2026-01-02', '10:11:12.5', '10:11:12+02',
         '2026-01-02 03:04:05.678', '2026-01-02 03:04:05.678+01', '1 day', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
         '10.0.0.1', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05', '\\x00ff', '{"b": 1,  "a": [1, 2]}',
         '{"b": 1, "a": [1, 2]}', '{1,NULL,3}', '{"x y",z}', ARRAY['{"k": 1}']::json[], 'ok', ROW(1, 'p q'), '[1,5)',
         '[2026-01-01 00:00+00,2026-02-01 00:00+00)', B'1010', B'101', 'a fat cat', 'fat & cat', '(1.5,2)',
         '((0,0),(1,1))', '[(0,0),(1,2)]', '((0,0),(1,1),(2,0))', '((0,0),(1,1),(2,0))', '<(0,0),1.5>', '<a>x</a>', 7,
         '0/16B3748', 'one'),
        \(everyTypeTwin(2, num: "1.0", f8: "0", iv: "1 day", note: "twin")),
        \(everyTypeTwin(2, num: "1.00", f8: "-0", iv: "24 hours", note: "twin")),
        \(everyTypeTwin(3, num: "1.0", f8: "0", iv: "1 day", note: "twin")),
        \(everyTypeTwin(3, num: "1.00", f8: "0", iv: "1 day", note: "twin")),
        (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'nulls');
    """

/// A classic inheritance parent (INHERITS, not partitioning) with and without a key, each with a child
/// holding a row just like the parent's.
let inheritanceSchemaSQL = """
    CREATE TABLE public.parent_nokey (a int, b text);
    CREATE TABLE public.child_nokey (c int) INHERITS (public.parent_nokey);
    CREATE TABLE public.parent_keyed (id int PRIMARY KEY, v text);
    CREATE TABLE public.child_keyed () INHERITS (public.parent_keyed);
    INSERT INTO public.parent_nokey VALUES (1, 'p'), (2, 'p');
    INSERT INTO public.child_nokey VALUES (1, 'p', 9), (2, 'p', 9);
    INSERT INTO public.parent_keyed VALUES (1, 'p'), (2, 'p');
    INSERT INTO public.child_keyed VALUES (1, 'p'), (2, 'p');
    """

/// Identity columns GENERATED ALWAYS (not the key, without a key, and the key itself) beside stored generated columns.
let identitySchemaSQL = """
    CREATE TABLE public.ident_nonkey (id int PRIMARY KEY, seq_no bigint GENERATED ALWAYS AS IDENTITY, v text,
                                      twice int GENERATED ALWAYS AS (length(v) * 2) STORED);
    CREATE TABLE public.ident_full (seq_no int GENERATED ALWAYS AS IDENTITY, v text, len int GENERATED ALWAYS AS (length(v)) STORED);
    CREATE TABLE public.ident_pk (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
    INSERT INTO public.ident_nonkey (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd');
    INSERT INTO public.ident_full (v) VALUES ('a'), ('b'), ('c');
    INSERT INTO public.ident_pk (v) VALUES ('a'), ('b');
    """

extension ChangeArchivalTests.PointInTimeTests {
    /// Issue 9, item 5: an unowned sequence, a descending and a cycling one come back where the source's
    /// were, both before the next heartbeat (floor from the columns) and after it (the heartbeat's values).
    @Test func everySequenceComesBackAsAtTheSource() async throws {
        try await ArchivedDatabase.with(prepare: sequenceSchemaSQL) { a in
            _ = try await a.full()
            try await a.session.execute("""
                INSERT INTO rs.g (v) SELECT 'after' FROM generate_series(1, 5);
                INSERT INTO rs.g2 DEFAULT VALUES;
                INSERT INTO rs.p (k) VALUES (1), (2), (2);
                INSERT INTO rs.d (v) SELECT 'after' FROM generate_series(1, 5);
                INSERT INTO rs.c (v) SELECT 'first lap' FROM generate_series(1, 5);
                DELETE FROM rs.c WHERE id <= 3;
                INSERT INTO rs.c (v) SELECT 'second lap' FROM generate_series(1, 2);
                """)
            let beforeHeartbeat = try await a.instant()
            let firstStates = try await sequenceStates(a.session, ["rs.gseq", "rs.dseq", "rs.pseq"])
            #expect(firstStates == ["rs.gseq=11,true", "rs.dseq=-5,true", "rs.pseq=3,true"])
            _ = try await a.incremental()
            try await a.session.execute("INSERT INTO rs.g (v) SELECT 'after the heartbeat' FROM generate_series(1, 2)")
            let afterHeartbeat = try await a.instant()
            let secondStates = try await sequenceStates(a.session, ["rs.gseq", "rs.dseq", "rs.cseq"])
            #expect(secondStates == ["rs.gseq=13,true", "rs.dseq=-5,true", "rs.cseq=2,true"])
            _ = try await a.incremental()

            // Before any heartbeat after the full, the columns drawing from a sequence say where it got to
            // (a cycling sequence has nothing to go by then: not checked).
            try await a.restore(at: beforeHeartbeat.0) { t in
                let restored = try await TableFingerprint.compute(t)
                #expect(TableFingerprint.differences(source: beforeHeartbeat.1, restored: restored) == [])
                let restoredStates = try await sequenceStates(t, ["rs.gseq", "rs.dseq", "rs.pseq"])
                #expect(restoredStates == firstStates)
                try await t.execute("INSERT INTO rs.g (v) VALUES ('next'); INSERT INTO rs.g2 DEFAULT VALUES; INSERT INTO rs.d (v) VALUES ('next')")
            }
            try await a.restore(at: afterHeartbeat.0) { t in
                let restored = try await TableFingerprint.compute(t)
                #expect(TableFingerprint.differences(source: afterHeartbeat.1, restored: restored) == [])
                let restoredStates = try await sequenceStates(t, ["rs.gseq", "rs.dseq", "rs.cseq"])
                #expect(restoredStates == secondStates)
                try await t.execute("INSERT INTO rs.g (v) VALUES ('next'); INSERT INTO rs.d (v) VALUES ('next'); INSERT INTO rs.c (v) VALUES ('next')")
            }
        }
    }

    /// Issue 9, item 6: UPDATE and DELETE on a REPLICA IDENTITY FULL table find the exact row for every
    /// built-in type family, among rows that are equal but not identical.
    @Test func replicaIdentityFullRowsAreMatchedExactlyForEveryTypeFamily() async throws {
        try await ArchivedDatabase.with(prepare: everyTypeSchemaSQL) { a in
            #expect(try await a.session.query("SELECT relreplident::text AS r FROM pg_class WHERE oid = 'public.every_type'::regclass").first?.string("r") == "f")
            _ = try await a.full()
            try await a.session.execute("""
                UPDATE public.every_type SET note = 'updated ' || n WHERE n IN (1, 4);
                UPDATE public.every_type SET b = NOT b, c5 = 'cd', ip = '10.0.0.2' WHERE n = 1;
                UPDATE public.every_type SET note = 'the -0 twin' WHERE n = 2 AND f8::text = '-0';
                UPDATE public.every_type SET iv = '2 days' WHERE n = 2 AND note = 'twin';
                """)
            let middle = try await a.instant()
            try await a.session.execute("""
                DELETE FROM public.every_type WHERE n = 3 AND num::text = '1.00';
                UPDATE public.every_type SET note = 'last' WHERE n = 4;
                DELETE FROM public.every_type WHERE n = 1;
                """)
            let end = try await a.instant()
            _ = try await a.incremental()
            for (at, expected) in [middle, end] {
                try await a.restore(at: at) { t in
                    let restored = try await TableFingerprint.compute(t)
                    #expect(TableFingerprint.differences(source: expected, restored: restored) == [],
                            "at \(Timestamps.iso8601UTC(at))")
                }
            }
        }
    }

    /// Issue 9, item 6: UPDATE and DELETE on an inheritance parent reach only the parent's rows.
    @Test func replayOnAnInheritanceParentLeavesItsChildrenAlone() async throws {
        try await ArchivedDatabase.with(prepare: inheritanceSchemaSQL) { a in
            _ = try await a.full()
            try await a.session.execute("""
                UPDATE ONLY public.parent_nokey SET b = 'q' WHERE a = 1;
                DELETE FROM ONLY public.parent_nokey WHERE a = 2;
                UPDATE ONLY public.parent_keyed SET v = 'q' WHERE id = 1;
                DELETE FROM ONLY public.parent_keyed WHERE id = 2;
                UPDATE public.child_nokey SET c = 10 WHERE a = 1;
                """)
            let (at, expected) = try await a.instant()
            _ = try await a.incremental()
            let restored = try await a.restore(at: at)
            #expect(TableFingerprint.differences(source: expected, restored: restored) == [])
        }
    }

    /// Issue 9, item 6: a GENERATED ALWAYS identity column is never SET to a value, yet ends as at the
    /// source whether an UPDATE left it alone or set it to DEFAULT; stored generated columns follow.
    @Test func generatedAlwaysIdentityAndGeneratedColumnsReplayExactly() async throws {
        try await ArchivedDatabase.with(prepare: identitySchemaSQL) { a in
            _ = try await a.full()
            try await a.session.execute("""
                UPDATE public.ident_nonkey SET v = 'aa' WHERE id = 1;
                UPDATE public.ident_nonkey SET seq_no = DEFAULT WHERE id = 2;
                UPDATE public.ident_nonkey SET seq_no = DEFAULT, v = 'cc' WHERE id = 3;
                UPDATE public.ident_nonkey SET id = 40 WHERE id = 4;
                UPDATE public.ident_full SET v = 'aa' WHERE v = 'a';
                UPDATE public.ident_full SET seq_no = DEFAULT WHERE v = 'b';
                UPDATE public.ident_full SET seq_no = DEFAULT, v = 'cc' WHERE v = 'c';
                UPDATE public.ident_pk SET id = DEFAULT WHERE id = 1;
                UPDATE public.ident_pk SET v = 'bb' WHERE id = 2;
                INSERT INTO public.ident_nonkey (id, v) VALUES (5, 'e');
                """)
            let (at, expected) = try await a.instant()
            let names = try await a.session.query("""
                SELECT pg_get_serial_sequence(t, 'seq_no') AS s FROM unnest(ARRAY['public.ident_nonkey', 'public.ident_full']) t
                UNION ALL SELECT pg_get_serial_sequence('public.ident_pk', 'id')
                """).rows.map { try $0.requiredString("s") }
            let states = try await sequenceStates(a.session, names)
            _ = try await a.incremental()
            try await a.restore(at: at) { t in
                let restored = try await TableFingerprint.compute(t)
                #expect(TableFingerprint.differences(source: expected, restored: restored) == [])
                let restoredStates = try await sequenceStates(t, names)
                #expect(restoredStates == states)
            }
        }
    }
}
