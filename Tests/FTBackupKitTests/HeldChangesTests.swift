import Testing
@testable import FTBackupKit

/// Replay's set-based apply: how held-back changes form runs and are split into statements.
@Suite struct HeldChangesTests {
    /// Powers of two, largest first, summing to the count: a shape needs at most seven statements.
    @Test func rowsAreSentInPowerOfTwoChunks() {
        #expect(HeldChanges.chunks(1, parameters: 3) == [1])
        #expect(HeldChanges.chunks(64, parameters: 3) == [64])
        #expect(HeldChanges.chunks(63, parameters: 3) == [32, 16, 8, 4, 2, 1])
        #expect(HeldChanges.chunks(9, parameters: 3) == [8, 1])
    }

    /// A statement never passes PostgreSQL's 65,535 parameters, however wide the table.
    @Test func wideTablesStayUnderTheParameterLimit() {
        #expect(HeldChanges.chunks(64, parameters: 1600) == [32, 32])
        #expect(HeldChanges.chunks(64, parameters: 1600).allSatisfy { $0 * 1600 <= 65_535 })
    }

    /// A table's run takes INSERTs, UPDATEs and DELETEs of distinct keys (an INSERT's is in its row), each kind and
    /// set of columns apart, and is closed (handed back to be sent) by a key it already holds; other tables' runs
    /// are left alone.
    @Test func aRunIsClosedByARepeatedKey() {
        var held = HeldChanges()
        func source(_ commit: UInt64, _ change: UInt64) -> ReplaySource { ReplaySource(commitLSN: commit, changeLSN: change) }
        let none = held.closing(7, unlessItAccepts: .update, [1], key: ["1"])
        #expect(none == nil)
        var full = held.append(7, .update, [1], values: ["a", "1"], key: ["1"], keyColumns: [0], source: source(100, 90))
        full = full || held.append(8, .insert, [], values: ["x"], key: nil, keyColumns: [0], source: source(100, 91))
        for (kind, shape, key) in [(HeldChanges.Kind.insert, [Int](), "2"), (.delete, [], "3"), (.update, [2], "4"), (.update, [1], "5")] {
            let closed = held.closing(7, unlessItAccepts: kind, shape, key: kind == .insert ? nil : [key], row: [key])
            #expect(closed == nil)
            full = full || held.append(7, kind, shape, values: [key], key: kind == .insert ? nil : [key], keyColumns: [0], source: source(200, 190))
        }
        // the same key again, an INSERT's: the run goes first, so the row changes twice in order
        let repeated = held.closing(7, unlessItAccepts: .delete, [], key: ["2"])
        #expect(repeated?.inserts == [["2"]] && repeated?.deletes == [["3"]] && repeated?.count == 5)
        #expect(repeated?.updates.map(\.setColumns) == [[1], [2]] && repeated?.updates.map(\.rows) == [[["a", "1"], ["5"]], [["4"]]])
        #expect(repeated?.first.commitLSN == 100 && repeated?.lastCommitLSN == 200 && repeated?.lastChangeLSN == 190)
        #expect(!full)
        // a run of INSERTs alone learns their keys only when a DELETE or UPDATE comes
        let notYet = held.closing(8, unlessItAccepts: .insert, [], key: nil, row: ["x"])
        #expect(notYet == nil)
        _ = held.append(8, .insert, [], values: ["x"], key: nil, keyColumns: [0], source: source(300, 290))
        let deleteOfAnInsertedKey = held.closing(8, unlessItAccepts: .delete, [], key: ["x"])
        #expect(deleteOfAnInsertedKey?.inserts == [["x"], ["x"]])
        _ = held.append(8, .delete, [], values: ["y"], key: ["y"], keyColumns: [0], source: source(300, 290))
        let insertOfADeletedKey = held.closing(8, unlessItAccepts: .insert, [], key: nil, row: ["y"])
        #expect(insertOfADeletedKey?.deletes == [["y"]])
        #expect(held.isEmpty && held.heldBytes == 0)
    }

    /// INSERTs without a key (a table without one, or NULL in it) share a run only with INSERTs.
    @Test func unkeyedInsertsShareARunOnlyWithInserts() {
        var held = HeldChanges()
        _ = held.append(3, .insert, [], values: ["a"], key: nil, source: ReplaySource())
        let another = held.closing(3, unlessItAccepts: .insert, [], key: nil, row: ["a"])
        #expect(another == nil)
        _ = held.append(3, .insert, [], values: ["a"], key: nil, source: ReplaySource())
        let delete = held.closing(3, unlessItAccepts: .delete, [], key: ["a"])
        #expect(delete?.inserts == [["a"], ["a"]])
        _ = held.append(4, .delete, [], values: ["k"], key: ["k"], keyColumns: [0], source: ReplaySource())
        let nullKey = held.closing(4, unlessItAccepts: .insert, [], key: nil, row: [nil])
        #expect(nullKey?.deletes == [["k"]])
    }

    /// A run is full at 64 changes; a flush takes every run in the order they began and leaves nothing held.
    @Test func fullRunsAndFlushes() {
        var held = HeldChanges()
        var full: [Bool] = []
        for n in 1...64 { full.append(held.append(5, n % 2 == 0 ? .delete : .insert, [], values: ["\(n)"], key: ["\(n)"], keyColumns: [0], source: ReplaySource())) }
        #expect(full == Array(repeating: false, count: 63) + [true])
        _ = held.take(5)
        _ = held.append(9, .insert, [], values: ["a"], key: nil, source: ReplaySource())
        _ = held.append(3, .insert, [], values: ["b"], key: nil, source: ReplaySource())
        let all = held.takeAll()
        #expect(all.map(\.relid) == [9, 3])
        #expect(held.isEmpty && held.heldBytes == 0)
    }

    /// The statements: typed VALUES joined on the key, ONLY the table itself.
    @Test func statementsForEachKind() {
        #expect(HeldChanges.insertSQL(table: "s.t", columns: ["a", "b"], rows: 2)
                == "INSERT INTO s.t (a, b) OVERRIDING SYSTEM VALUE VALUES ($1, $2), ($3, $4)")
        #expect(HeldChanges.updateSQL(table: "s.t", set: [("\"d\"", "pg_catalog.jsonb")], keys: [("id", "pg_catalog.int4")], rows: 2)
                == "UPDATE ONLY s.t t SET \"d\" = v.s0 FROM (VALUES ($1::pg_catalog.jsonb, $2::pg_catalog.int4), ($3::pg_catalog.jsonb, $4::pg_catalog.int4)) v (s0, k0) WHERE t.id = v.k0")
        #expect(HeldChanges.deleteSQL(table: "s.t", keys: [("a", "x.y"), ("b", "pg_catalog.bpchar")], rows: 1)
                == "DELETE FROM ONLY s.t t USING (VALUES ($1::x.y, $2::pg_catalog.bpchar)) v (k0, k1) WHERE t.a = v.k0 AND t.b = v.k1")
    }
}
