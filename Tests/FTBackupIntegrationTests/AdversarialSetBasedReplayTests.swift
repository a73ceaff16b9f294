import Foundation
import Testing
@testable import FTBackupKit

/// adv22: a unique index and an exclusion constraint over STORED generated columns. The generated columns are not
/// published (pgoutput leaves them out), so an UPDATE of the column they are computed from sets no indexed column
/// as replay sees it, yet it moves a unique (or excluded) value. Held in a run, such an UPDATE is sent after the
/// run's INSERTs and in whatever order the join visits rows, so a value freed by it and taken by a later INSERT
/// or UPDATE collides.
let generatedUniqueSchemaSQL = """
    CREATE SCHEMA gu;
    CREATE TABLE gu.accounts (id int PRIMARY KEY, email text NOT NULL, note text,
                              email_key text GENERATED ALWAYS AS (lower(email)) STORED UNIQUE);
    INSERT INTO gu.accounts (id, email, note) SELECT g, 'E' || g, 'n' FROM generate_series(1, 10) g;
    CREATE TABLE gu.slots (id int PRIMARY KEY, starts int NOT NULL, note text,
                           span int4range GENERATED ALWAYS AS (int4range(starts, starts + 10)) STORED,
                           EXCLUDE USING gist (span WITH &&));
    INSERT INTO gu.slots (id, starts, note) SELECT g, g * 100, 'n' FROM generate_series(1, 10) g;
    """

extension ChangeArchivalTests.PointInTimeTests {
    /// adv22: a unique value (computed into a generated column) freed by one source transaction's UPDATE and taken
    /// by a later transaction's INSERT or UPDATE replays exactly, with tiny groups and the standard ones.
    @Test func uniqueValuesOfGeneratedColumnsMovedAcrossTransactionsReplayExactly() async throws {
        try await ArchivedDatabase.with(prepare: generatedUniqueSchemaSQL) { a in
            _ = try await a.full()
            var instants: [(Date, [TableFingerprint])] = []
            let steps = [
                // freed by an UPDATE, taken by a later INSERT (the run sends INSERTs before UPDATEs)
                "UPDATE gu.accounts SET email = 'moved1' WHERE id = 1",
                "INSERT INTO gu.accounts (id, email) VALUES (100, 'e1')",
                "UPDATE gu.slots SET starts = 5000 WHERE id = 1",
                "INSERT INTO gu.slots (id, starts) VALUES (100, 105)",
                // freed by an UPDATE, taken by a later UPDATE of another row (one statement, rows in table order)
                "UPDATE gu.accounts SET email = 'moved9' WHERE id = 9",
                "UPDATE gu.accounts SET email = 'e9' WHERE id = 5",
                "UPDATE gu.slots SET starts = 6000 WHERE id = 9",
                "UPDATE gu.slots SET starts = 903 WHERE id = 5",
            ]
            for sql in steps { instants.append(try await a.step(sql, schemas: ["gu"])) }
            _ = try await a.incremental()
            let (at, expected) = instants[steps.count - 1]
            let restored = try await a.restoreSchemas(["gu"], at: at, grouping: tinyGrouping)
            #expect(TableFingerprint.differences(source: expected, restored: restored) == [], "tiny groups")
            let standard = try await a.restoreSchemas(["gu"], at: at)
            #expect(TableFingerprint.differences(source: expected, restored: standard) == [], "standard grouping")
        }
    }
}
