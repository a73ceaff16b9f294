import Foundation
import Testing
@testable import FTBackupKit

/// Sessions connected ahead of the restore step that uses them (`SessionsAhead`): what they hand out must be what
/// connecting on time would have given, whatever happened to them while they waited.
@Suite struct SessionsAheadTests {
    /// The setup of every session ahead ran, and each is handed out once.
    @Test func sessionsAheadAreSetUpAndHandedOutOnce() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let ahead = SessionsAhead(2, target: db.connectionString, name: "test-ahead", setup: "SET work_mem = '7MB'")
            ahead.start()
            let first = try await ahead.take(), second = try await ahead.take()
            defer { first.close(); second.close() }
            #expect(first.backendPID != second.backendPID)
            for session in [first, second] {
                #expect(try await session.query("SELECT current_setting('work_mem') AS m").first!.string("m") == "7MB")
            }
            // A third is connected then, set up the same.
            let third = try await ahead.take()
            defer { third.close() }
            #expect(![first.backendPID, second.backendPID].contains(third.backendPID))
            #expect(try await third.query("SELECT current_setting('work_mem') AS m").first!.string("m") == "7MB")
        }
    }

    /// A session the server ended while it waited (idle_session_timeout, pg_terminate_backend) is replaced, not
    /// handed out dead.
    @Test func aSessionEndedWhileWaitingIsReplaced() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let admin = try await db.connect("admin")
            defer { admin.close() }
            let ahead = SessionsAhead(1, target: db.connectionString, name: "test-ahead", setup: "SET work_mem = '7MB'")
            ahead.start()
            // Wait until it is connected and set up, then end it from outside.
            var waiting: Int32 = 0
            #expect(try await Eventually.holds {
                let row = try await admin.query("""
                    SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
                      AND backend_type = 'client backend' AND query LIKE 'SET work_mem%'
                    """).first
                waiting = Int32(try row?.int("pid") ?? 0)
                return waiting != 0
            })
            #expect(try await admin.query("SELECT pg_terminate_backend($1::int) AS t", [Int(waiting)]).first!.bool("t") == true)
            #expect(try await Eventually.holds {
                try await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1::int", [Int(waiting)]).first!.int("n") == 0
            })
            let session = try await ahead.take()
            defer { session.close() }
            #expect(session.backendPID != waiting)
            #expect(try await session.query("SELECT current_setting('work_mem') AS m").first!.string("m") == "7MB")
        }
    }

    /// A connection ahead that fails (a wrong database) fails `take()` with the error connecting on time gives.
    @Test func aFailedConnectionAheadFailsTakeWithTheSameError() async throws {
        let wrong = try TestServer.connectionString(database: "no_such_database_\(UInt32.random(in: 0...UInt32.max))")
        let ahead = SessionsAhead(1, target: wrong, name: "test-ahead", setup: "")
        ahead.start()
        let aheadError = await #expect(throws: (any Error).self) { _ = try await ahead.take() }
        let onTime = await #expect(throws: (any Error).self) { _ = try await DatabaseSession.connect(wrong) }
        #expect(aheadError.map { "\($0)" } == onTime.map { "\($0)" })
        #expect(aheadError.map { "\($0)" }?.contains("no_such_database_") == true)
    }

    /// Sessions never taken end with `close()`: none is left on the server.
    @Test func sessionsNeverTakenAreClosed() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let admin = try await db.connect("admin")
            defer { admin.close() }
            let ahead = SessionsAhead(2, target: db.connectionString, name: "test-ahead", setup: "SET work_mem = '7MB'")
            ahead.start()
            let count = { try await admin.query("""
                SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
                  AND backend_type = 'client backend'
                """).first!.int("n") ?? -1 }
            #expect(try await Eventually.holds { try await count() == 2 })
            let taken = try await ahead.take()
            defer { taken.close() }
            ahead.close()
            #expect(try await Eventually.holds { try await count() == 1 })
            #expect(try await taken.query("SELECT 1 AS one").first!.int("one") == 1)
        }
    }
}
