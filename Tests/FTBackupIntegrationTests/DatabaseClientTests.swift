import Foundation
import Testing
@testable import FTBackupKit

@Suite struct DatabaseClientTests {
    @Test func parametersAndTypedResults() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let session = try await db.connect()
            defer { session.close() }
            let row = try await session.query(
                "SELECT $1::int + 1 AS n, $2::text AS s, $3::text IS NULL AS missing, $4::bigint AS big, $5::timestamptz AS at",
                [41, "tab\there 'quoted' \\ é", String?.none, Int64(9_000_000_000), "2026-11-20T14:32:00+01:00"]).first!
            #expect(try row.requiredInt("n") == 42)
            #expect(try row.string("s") == "tab\there 'quoted' \\ é")
            #expect(try row.bool("missing") == true)
            #expect(try row.int64("big") == 9_000_000_000)
            #expect(try row.string("at")?.hasPrefix("2026-11-20 13:32:00") == true)
            #expect(throws: PostgresError.self) { _ = try row.int("s") }
        }
    }

    /// libpq's conventions apply unchanged: the password comes from PGPASSFILE (make test's pgpass),
    /// the application name defaults to ftbackup, and a URI works like key=value.
    @Test func libpqConventionsWorkUnchanged() async throws {
        #expect(ProcessInfo.processInfo.environment["PGPASSFILE"] != nil)
        #expect(try TestServer.dsn.contains("password") == false)
        try await TestServer.withDatabase(seeded: false) { db in
            let session = try await db.connect()
            defer { session.close() }
            #expect(try await session.query("SELECT current_setting('application_name') AS a").first!.string("a") == "ftbackup")
            let keyValue = try ConnectionString(try TestServer.dsn)
            let host = keyValue.option("host")!, port = keyValue.option("port")!
            let uri = try await DatabaseSession.connect(try ConnectionString("postgresql://postgres@\(host):\(port)/\(db.name)?application_name=custom&sslmode=disable"))
            defer { uri.close() }
            let row = try await uri.query("SELECT current_database() AS d, current_setting('application_name') AS a").first!
            #expect(try row.string("d") == db.name)
            #expect(try row.string("a") == "custom")
        }
    }

    @Test func serverErrorsCarrySQLStateAndRenderAsOneLine() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let session = try await db.connect()
            defer { session.close() }
            let error = await #expect(throws: PostgresError.self) { try await session.query("SELECT * FROM no_such_table") }
            #expect(error?.sqlState == "42P01")
            #expect(error?.message.contains("no_such_table") == true)
            #expect(error?.description.contains("\n") == false)
            let withDetail = await #expect(throws: PostgresError.self) {
                try await session.execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (1)")
            }
            #expect(withDetail?.sqlState == "23505")
            #expect(withDetail?.detail?.contains("(id)=(1)") == true)
        }
    }

    @Test func transactionRollsBackWhenBodyThrows() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute("CREATE TABLE t (id int)")
            struct Boom: Error {}
            await #expect(throws: Boom.self) {
                try await session.withConnection { connection in
                    try connection.transaction {
                        try connection.execute("INSERT INTO t VALUES (1)")
                        throw Boom()
                    }
                }
            }
            try await session.withConnection { connection in
                try connection.transaction { try connection.execute("INSERT INTO t VALUES (2)") }
            }
            let rows = try await session.query("SELECT array_agg(id) AS ids FROM t")
            #expect(try rows.first?.string("ids") == "{2}")
        }
    }

    @Test func importedSnapshotSeesExactlyTheExportedInstant() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let exporter = try await db.connect("exporter"), writer = try await db.connect("writer"),
                importer = try await db.connect("importer")
            defer { [exporter, writer, importer].forEach { $0.close() } }
            try await writer.execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
            try await exporter.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            let snapshot = try await exporter.query("SELECT pg_export_snapshot() AS id").first!.requiredString("id")
            try await writer.execute("INSERT INTO t VALUES (2)")
            try await importer.withConnection { try $0.beginTransaction(importingSnapshot: snapshot) }
            #expect(try await importer.query("SELECT count(*) AS n FROM t").first!.requiredInt("n") == 1)
            #expect(try await writer.query("SELECT count(*) AS n FROM t").first!.requiredInt("n") == 2)
        }
    }

    @Test func identifiersAndLiteralsAreEscapedByLibpq() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let session = try await db.connect()
            defer { session.close() }
            let schema = "We.Ird \"Schema\"", table = "Mixed Case.table; DROP"
            #expect(try session.escapeIdentifier(schema) == "\"We.Ird \"\"Schema\"\"\"")
            let name = try session.qualifiedName(schema, table)
            let value = try session.escapeLiteral("it's a \\ test")
            try await session.execute("CREATE SCHEMA \(try session.escapeIdentifier(schema)); CREATE TABLE \(name) (v text)")
            try await session.execute("INSERT INTO \(name) VALUES (\(value))")
            let row = try await session.query("SELECT v FROM \(name)").first!
            #expect(try row.string("v") == "it's a \\ test")
        }
    }

    /// Every table of the seeded Fast Track database, out through COPY and zstd into a file and back
    /// in through COPY into an emptied copy, compared by per-table ordered row hashes.
    @Test func copyOutCopyInRoundTripOfEveryTableMatches() async throws {
        try await TestServer.withDatabase { source in
            try await TestServer.withDatabase { target in
                let from = try await source.connect("source"), to = try await target.connect("target")
                defer { from.close(); to.close() }
                let tables = try await from.query("""
                    SELECT n.nspname AS schema, c.relname AS name,
                           (SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
                            WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped AND attgenerated = '') AS columns
                    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
                    """)
                #expect(tables.count >= 60)
                let names = try tables.rows.map { try from.qualifiedName(try $0.requiredString("schema"), try $0.requiredString("name")) }
                // Partitioned parents too: a foreign key on one (audit.events → users.accounts) blocks truncating its target alone.
                let parents = try await from.query("""
                    SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE c.relkind = 'p' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                    """).rows.map { try from.qualifiedName(try $0.requiredString("schema"), try $0.requiredString("name")) }
                try await to.execute("SET session_replication_role = replica; TRUNCATE \((names + parents).joined(separator: ", "))")
                let folder = NSTemporaryDirectory() + "ftbackup-roundtrip-\(UUID().uuidString)"
                defer { try? FileManager.default.removeItem(atPath: folder) }
                let storage = LocalStorage(root: folder)
                var copiedBytes: Int64 = 0
                for (row, name) in zip(tables.rows, names) {
                    let columns = try row.requiredString("columns")
                    let file = "\(name.filter { $0.isLetter || $0.isNumber || $0 == "." }).zst"
                    let sent = try await from.withConnection { connection -> CopyOutcome in
                        let writer = try storage.openWrite(file)
                        var compressor = try ZstdCompressor(level: 3)
                        let outcome = try connection.copyOut("COPY \(name) (\(columns)) TO STDOUT") { chunk in
                            try compressor.process(chunk) { try writer.write($0) }
                        }
                        try compressor.finish { try writer.write($0) }
                        try writer.commit()
                        return outcome
                    }
                    let received = try await to.withConnection { connection -> CopyOutcome in
                        let reader = try storage.openRead(file)
                        defer { reader.close() }
                        var decompressor = try ZstdDecompressor()
                        return try connection.copyIn("COPY \(name) (\(columns)) FROM STDIN") { write in
                            var buffer = [UInt8](repeating: 0, count: 100_003)
                            while true {
                                let count = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
                                if count == 0 { break }
                                try buffer.withUnsafeBytes { try decompressor.process(UnsafeRawBufferPointer(rebasing: $0[0..<count]), emit: write) }
                            }
                            try decompressor.finish(emit: write)
                        }
                    }
                    #expect(received.rows == sent.rows, "\(name)")
                    #expect(received.bytes == sent.bytes, "\(name)")
                    copiedBytes += sent.bytes
                }
                #expect(copiedBytes > 1_000_000)
                let expected = try await TableFingerprint.compute(from)
                let actual = try await TableFingerprint.compute(to)
                #expect(expected.count == tables.count)
                #expect(expected.contains { $0.rows > 1000 })
                #expect(TableFingerprint.differences(source: expected, restored: actual) == [])
            }
        }
    }

    /// A sink that fails (a full disk, say) is the error the caller sees, not the cancel it caused.
    @Test func failingCopyOutSinkSurfacesItsOwnErrorAndTheConnectionStaysUsable() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let session = try await db.connect()
            defer { session.close() }
            struct DiskFull: Error {}
            await #expect(throws: DiskFull.self) {
                try await session.withConnection { connection in
                    try connection.copyOut("COPY (SELECT g, repeat('x', 100) FROM generate_series(1, 500000) g) TO STDOUT", chunkSize: 4096) { _ in
                        throw DiskFull()
                    }
                }
            }
            #expect(try await session.query("SELECT 1 AS one").first!.requiredInt("one") == 1)
        }
    }

    @Test func abortedCopyInLeavesNothingAndConnectionStaysUsable() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute("CREATE TABLE t (id int, v text)")
            struct SourceFailed: Error {}
            await #expect(throws: SourceFailed.self) {
                try await session.withConnection { connection in
                    try connection.copyIn("COPY t FROM STDIN") { write in
                        try Array("1\ta\n2\tb\n".utf8).withUnsafeBytes { try write($0) }
                        throw SourceFailed()
                    }
                }
            }
            #expect(try await session.query("SELECT count(*) AS n FROM t").first!.requiredInt("n") == 0)
            let bad = await #expect(throws: PostgresError.self) {
                try await session.withConnection { connection in
                    try connection.copyIn("COPY t FROM STDIN") { write in try Array("x\ty\n".utf8).withUnsafeBytes { try write($0) } }
                }
            }
            #expect(bad?.sqlState == "22P02")
        }
    }

    @Test func connectionKilledMidCopyIsAClearError() async throws {
        try await TestServer.withDatabase { db in
            let copier = try await db.connect("copier"), killer = try await db.connect("killer")
            defer { copier.close(); killer.close() }
            let pid = copier.backendPID
            let error = await #expect(throws: PostgresError.self) {
                try await copier.withConnection { connection in
                    var chunks = 0
                    try connection.copyOut("COPY (SELECT g, repeat('x', 500) FROM generate_series(1, 2000000) g) TO STDOUT", chunkSize: 65_536) { _ in
                        chunks += 1
                        if chunks == 2 {
                            // Terminate our own backend from a second connection, synchronously.
                            let other = try PGConnection.connect(try TestServer.connectionString(database: db.name))
                            try other.query("SELECT pg_terminate_backend($1)", [Int(pid)])
                        }
                    }
                }
            }
            #expect(error?.connectionLost == true || error?.sqlState == "57P01")
            #expect(error?.exitStatus == .unavailable)
        }
    }

    /// Four sessions sleep at once; a fifth sees all four active together, which only happens when
    /// each session's blocking call runs on a thread of its own (the cooperative pool has two here).
    /// Four sessions block on one advisory lock the observer holds: all four are seen waiting at once only
    /// if each runs its blocking libpq call on a thread of its own (no timing involved: it waits until they are,
    /// and fails after a minute if they never are).
    @Test func sessionsRunInParallelOnThreadsOfTheirOwn() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let sessions = try await (0..<4).asyncMap { try await db.connect("parallel-\($0)") }
            let observer = try await db.connect("observer")
            defer { (sessions + [observer]).forEach { $0.close() } }
            try await observer.execute("SELECT pg_advisory_lock(4242)")
            async let waits: Void = withThrowingTaskGroup(of: Void.self) { group in
                for session in sessions { group.addTask { try await session.execute("SELECT pg_advisory_lock_shared(4242) /* ftbackup-parallel */") } }
                try await group.waitForAll()
            }
            var maxWaiting = 0
            let deadline = Date().addingTimeInterval(600)
            while maxWaiting < 4 && Date() < deadline {
                let waiting = try await observer.query("""
                    SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%ftbackup-parallel%' AND pid <> pg_backend_pid()
                    """).first!.requiredInt("n")
                maxWaiting = max(maxWaiting, waiting)
                if maxWaiting < 4 { try await Task.sleep(for: .milliseconds(50)) }
            }
            try await observer.execute("SELECT pg_advisory_unlock(4242)")
            try await waits
            #expect(maxWaiting == 4)
        }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
