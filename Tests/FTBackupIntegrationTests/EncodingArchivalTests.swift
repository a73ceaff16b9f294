import Foundation
import Testing
@testable import FTBackupKit

/// Issue 9, item 9: change archival in a database whose encoding is not UTF-8. A byte that is not
/// valid UTF-8 in a SQL_ASCII database is archived and replayed as it is, and archival goes on.
extension TestServer {
    /// Like `withDatabase`, but an empty SQL_ASCII database (C collation), as old installations have.
    static func withSQLASCIIDatabase<T>(_ body: (TestDatabase) async throws -> T) async throws -> T {
        try await withDatabase(seeded: false, options: "TEMPLATE template0 ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'", body)
    }
}

extension ChangeArchivalTests.PointInTimeTests {
    /// Every row of `t` as id and the hex of its text's exact bytes, as the database stores them
    /// (`textsend` gives them in the session's client_encoding, and sessions speak UTF8 now).
    static func rawRows(_ session: DatabaseSession) async throws -> [String] {
        try await session.query(
            "SELECT id || ':' || coalesce(encode(convert_to(v, current_setting('server_encoding')), 'hex'), 'null') AS r FROM t ORDER BY id"
        ).rows.map { try $0.requiredString("r") }
    }

    /// A non-UTF-8 byte inserted and updated after the full: the incremental archives it (it failed
    /// with "invalid byte sequence for encoding UTF8" when decoding forced UTF8, for good), the segment
    /// records the encoding, and restore --at into another SQL_ASCII database gives the same bytes.
    @Test func aNonUTF8ByteInASQLASCIIDatabaseIsArchivedAndRestoredByteForByte() async throws {
        try await TestServer.withSQLASCIIDatabase { db in
            let session = try await db.connect("writer")
            defer { session.close() }
            try await session.execute("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'plain'), (3, 'to update')")
            try await TestRepository.with { repo in
                _ = try await ChangeArchivalSetup.setup(db.connectionString, dryRun: false, fixReplicaIdentity: true)
                do {
                _ = try await BackupRunner.runFull(try .test(db, repo))
                try await session.execute("""
                    INSERT INTO t VALUES (2, 'a' || convert_from('\\xff'::bytea, 'SQL_ASCII') || 'b' || chr(233));
                    UPDATE t SET v = convert_from('\\xfe80'::bytea, 'SQL_ASCII') WHERE id = 3;
                    UPDATE t SET v = v || '!' WHERE id = 2
                    """)
                let source = try await Self.rawRows(session)
                #expect(source.contains("2:61ff62e921"))
                let at = try await session.query("SELECT extract(epoch FROM clock_timestamp()) AS t").first!.epochDate("t")!
                let report = try await ChangeArchiver.runIncremental(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy())
                #expect(report.segment?.encoding == "SQL_ASCII")
                // The next pass goes on from there.
                #expect(try await ChangeArchiver.runIncremental(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy()).segment != nil)
                try await TestServer.withSQLASCIIDatabase { target in
                    _ = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path,
                                                                        showProgress: false), at: at)
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(try await Self.rawRows(t) == source)
                }
                } catch {
                    _ = try? await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false)
                    throw error
                }
                _ = try await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false)
            }
        }
    }

    /// A pass that cannot read the slot (here: its publication is gone, so every decoding fails) leaves
    /// the slot where it was; `info` reports the chain as broken with the server's reason until a pass
    /// seals a segment again.
    @Test func aChainThatCannotAdvanceIsReportedBroken() async throws {
        try await ArchivedDatabase.with(prepare: "CREATE TABLE stall_t (id int PRIMARY KEY)") { a in
            _ = try await a.full()
            let repository = Repository.local(a.repo.path)
            #expect(try await ChangeArchiveStatus.read(repository, database: a.db.connectionString).broken == nil)
            try await a.session.execute("DROP PUBLICATION \(ChangeArchivalNames.publication); INSERT INTO stall_t VALUES (1)")
            for _ in 1...2 { await #expect(throws: (any Error).self) { try await a.incremental() } }
            let status = try await ChangeArchiveStatus.read(repository, database: a.db.connectionString)
            #expect(status.broken?.contains("cannot advance: 2 archival pass(es)") == true)
            #expect(status.broken?.contains("publication") == true)
            try await a.session.execute("CREATE PUBLICATION \(ChangeArchivalNames.publication) FOR ALL TABLES")
        }
    }
}
