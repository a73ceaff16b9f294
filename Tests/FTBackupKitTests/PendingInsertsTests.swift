import Testing
@testable import FTBackupKit

/// Multi-row INSERTs of replay: how held-back rows are split into statements.
@Suite struct PendingInsertsTests {
    /// Powers of two, largest first, summing to the count: a table needs at most seven statements.
    @Test func rowsAreSentInPowerOfTwoChunks() {
        #expect(PendingInserts.chunks(1, columns: 3) == [1])
        #expect(PendingInserts.chunks(64, columns: 3) == [64])
        #expect(PendingInserts.chunks(63, columns: 3) == [32, 16, 8, 4, 2, 1])
        #expect(PendingInserts.chunks(9, columns: 3) == [8, 1])
    }

    /// A statement never passes PostgreSQL's 65,535 parameters, however wide the table.
    @Test func wideTablesStayUnderTheParameterLimit() {
        #expect(PendingInserts.chunks(64, columns: 1600) == [32, 32])
        #expect(PendingInserts.chunks(64, columns: 1600).allSatisfy { $0 * 1600 <= 65_535 })
    }

    /// Held-back rows come out in order, with their LSN range, and leave nothing behind.
    @Test func takeReturnsTheRowsInOrderAndEmpties() {
        var pending = PendingInserts()
        pending.append(7, ["1", nil], at: 10)
        pending.append(7, ["2", "b"], at: 20)
        let taken = pending.take()
        #expect(taken?.relid == 7 && taken?.first == 10 && taken?.last == 20)
        #expect(taken?.rows == [["1", nil], ["2", "b"]])
        #expect(pending.isEmpty && pending.take() == nil)
        #expect(PendingInserts.sql(table: "s.t", columns: ["a", "b"], rows: 2)
                == "INSERT INTO s.t (a, b) OVERRIDING SYSTEM VALUE VALUES ($1, $2), ($3, $4)")
    }
}
