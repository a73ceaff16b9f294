import Foundation
import Testing
@testable import FTBackupKit

/// Tables for the set-based replay tests: unique values freed and taken again across transactions, an
/// expression unique index, an exclusion constraint, padded and odd-typed keys and values (read back through
/// each column's type), a keyless table, and a key deleted, inserted and updated again.
let setBasedReplaySchemaSQL = """
    CREATE SCHEMA sb;
    CREATE TYPE sb."Mood" AS ENUM ('sad', 'ok', 'happy');
    CREATE DOMAIN sb.short AS varchar(4) CHECK (VALUE <> 'bad');
    CREATE TABLE sb.users (id int PRIMARY KEY, email text UNIQUE, name text);
    INSERT INTO sb.users SELECT g, 'e' || g, 'n' || g FROM generate_series(1, 40) g;
    CREATE TABLE sb.lowered (id int PRIMARY KEY, email text NOT NULL, note text);
    CREATE UNIQUE INDEX lowered_email ON sb.lowered (lower(email));
    INSERT INTO sb.lowered SELECT g, 'M' || g, 'x' FROM generate_series(1, 20) g;
    CREATE TABLE sb.slots (id int PRIMARY KEY, during tstzrange NOT NULL, label text, EXCLUDE USING gist (during WITH &&));
    INSERT INTO sb.slots SELECT g, tstzrange('2026-01-01'::timestamptz + g * interval '1 hour', '2026-01-01'::timestamptz + (g + 1) * interval '1 hour'), 's'
    FROM generate_series(1, 20) g;
    CREATE TABLE sb.typed (k char(4) PRIMARY KEY, c char(5), vc varchar(3), b bit(3), n numeric(6,2), arr char(2)[],
                           d sb.short, m sb."Mood", "Odd ""Col"" x" int, j jsonb);
    INSERT INTO sb.typed SELECT 'k' || g, 'c', 'v', B'101', g, ARRAY['a', NULL], 'd', 'ok', g, '{}' FROM generate_series(1, 30) g;
    CREATE TABLE sb.nokey (a int, b text);
    INSERT INTO sb.nokey SELECT g % 4, 'r' FROM generate_series(1, 12) g;
    """

extension ChangeArchivalTests.PointInTimeTests {
    /// Issue 14: replay holds a table's changes of distinct keys across source transactions and sends them as
    /// DELETEs, then INSERTs, then UPDATEs per set of columns. The end state at every instant is exact: a unique
    /// value freed by a DELETE or an UPDATE and taken by a later INSERT, unique values moved between rows (an UPDATE
    /// of a uniquely indexed column is never held), an
    /// expression unique index and an exclusion constraint, values read back through char(n), varchar(n),
    /// bit(n), numeric(p,s), domain, enum and array types, a keyless table, and one key deleted, inserted and
    /// updated again. With tiny groups and the standard ones.
    @Test func heldChangesReplayExactlyAcrossTransactions() async throws {
        try await ArchivedDatabase.with(prepare: setBasedReplaySchemaSQL) { a in
            _ = try await a.full()
            var instants: [(String, (Date, [TableFingerprint]))] = []
            var steps: [String] = []
            for n in 1...6 {
                steps.append("""
                    BEGIN;
                    DELETE FROM sb.users WHERE id = \(n);
                    INSERT INTO sb.users VALUES (\(100 + n), 'e\(n)', 'took a freed email');
                    UPDATE sb.users SET name = 'renamed \(n)' WHERE id = \(20 + n);
                    UPDATE sb.typed SET c = 'c\(n)', vc = 'v\(n)', b = B'01\(n % 2)', n = \(n).25, arr = ARRAY['x\(n)', NULL, 'y '],
                        d = 'd\(n)', m = 'happy', "Odd ""Col"" x" = -\(n) WHERE k = 'k\(n)';
                    UPDATE sb.typed SET j = '{"n": \(n)}' WHERE k = 'k\(n + 10)';
                    DELETE FROM sb.typed WHERE k = 'k\(n + 20)';
                    INSERT INTO sb.typed (k, c, vc) VALUES ('n\(n)', 'pad', 'ab ');
                    INSERT INTO sb.nokey VALUES (\(n % 4), 'new');
                    DELETE FROM sb.nokey WHERE ctid = (SELECT ctid FROM sb.nokey WHERE a = \(n % 4) LIMIT 1);
                    UPDATE sb.slots SET label = 'l\(n)' WHERE id = \(n);
                    COMMIT;
                    """)
            }
            // unique values moved between rows: each UPDATE must see the one before it
            steps.append("BEGIN; UPDATE sb.users SET email = 'spare' WHERE id = 30; UPDATE sb.users SET email = 'e30' WHERE id = 31; COMMIT;")
            steps.append("BEGIN; UPDATE sb.users SET email = 'e31' WHERE id = 32; UPDATE sb.users SET email = 'e32' WHERE id = 30; COMMIT;")
            steps.append("BEGIN; UPDATE sb.lowered SET email = 'tmp' WHERE id = 1; UPDATE sb.lowered SET email = 'm1' WHERE id = 2; COMMIT;")
            steps.append("BEGIN; UPDATE sb.lowered SET email = 'M2' WHERE id = 1; COMMIT;")
            steps.append("""
                BEGIN; UPDATE sb.slots SET during = tstzrange('2030-01-01', '2030-01-02') WHERE id = 1;
                UPDATE sb.slots SET during = tstzrange('2026-01-01 01:00+00', '2026-01-01 02:00+00') WHERE id = 2; COMMIT;
                """)
            // a unique value an UPDATE gives up and a later INSERT takes (the INSERT would go first in a run)
            steps.append("""
                BEGIN; UPDATE sb.users SET email = 'freed' WHERE id = 35; INSERT INTO sb.users VALUES (200, 'e35', 'took an updated-away email');
                UPDATE sb.lowered SET email = 'zz' WHERE id = 3; INSERT INTO sb.lowered VALUES (50, 'm3', 'took it'); COMMIT;
                """)
            // one key deleted, inserted and updated again, each in its own transaction
            steps.append("DELETE FROM sb.typed WHERE k = 'k30'")
            steps.append("INSERT INTO sb.typed (k, c) VALUES ('k30', 'again')")
            steps.append("UPDATE sb.typed SET vc = 'upd' WHERE k = 'k30'")
            steps.append("DELETE FROM sb.typed WHERE k = 'k30'")
            for (n, sql) in steps.enumerated() { instants.append(("step \(n + 1)", try await a.step(sql, schemas: ["sb"]))) }
            _ = try await a.incremental()
            for index in [2, 5, 7, 9, 10, 11, steps.count - 2, steps.count - 1] {
                let (name, (at, expected)) = instants[index]
                let restored = try await a.restoreSchemas(["sb"], at: at, grouping: tinyGrouping)
                #expect(TableFingerprint.differences(source: expected, restored: restored) == [], "\(name), tiny groups")
            }
            let (at, expected) = instants[steps.count - 1].1
            let restored = try await a.restoreSchemas(["sb"], at: at)
            #expect(TableFingerprint.differences(source: expected, restored: restored) == [], "standard grouping")
        }
    }
}
