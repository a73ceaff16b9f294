import Foundation
import Testing
@testable import FTBackupKit

/// adv10: a full backup of a SQL_ASCII database restored into a database of another encoding.
@Suite struct EncodingRestoreTests {
    /// Every row of `t`: id and the hex of its value's bytes as stored (`convert_to` the database's own
    /// encoding converts nothing; a SQL_ASCII value never reaches the UTF8 session as text).
    static func storedBytes(_ session: DatabaseSession) async throws -> [String] {
        try await session.query("SELECT id || ':' || encode(convert_to(v, current_setting('server_encoding')), 'hex') AS r FROM public.t ORDER BY id").rows.map { try $0.requiredString("r") }
    }

    /// `COPY … ENCODING 'SQL_ASCII'` into a UTF8 database stored bytes that are not UTF-8 (0xE9) without
    /// a word: the restore exited 0 and every later conversion of that value failed. Now a SQL_ASCII
    /// backup whose bytes are valid in the target loads them exactly; one holding a byte that is not
    /// fails the data phase (exit 65) naming it, and nothing invalid is stored; a SQL_ASCII target still
    /// gets every byte as it was.
    @Test func aSQLASCIIBackupNeverStoresInvalidBytesInAUTF8Target() async throws {
        try await TestServer.withSQLASCIIDatabase { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute("""
                CREATE TABLE public.t (id int PRIMARY KEY, v text);
                INSERT INTO public.t VALUES (1, 'plain'), (2, convert_from('\\xc3a9'::bytea, 'SQL_ASCII'))
                """)
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                try await TestServer.withDatabase(seeded: false) { target in
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(try await t.query("SELECT current_setting('server_encoding') AS e").first!.requiredString("e") == "UTF8")
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    #expect(try await Self.storedBytes(t) == (try await Self.storedBytes(s)))
                    #expect(try await t.query("SELECT v FROM public.t WHERE id = 2").first!.requiredString("v") == "é")
                }
            }
            try await s.execute("INSERT INTO public.t VALUES (3, convert_from('\\xe9'::bytea, 'SQL_ASCII'))")
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                try await TestServer.withDatabase(seeded: false) { target in
                    let error = await #expect(throws: FTBackupError.self) {
                        _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    }
                    #expect(error?.status == .dataError, "\(String(describing: error))")
                    #expect("\(String(describing: error))".contains("invalid byte sequence for encoding \"UTF8\": 0xe9"), "\(String(describing: error))")
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(try await t.query("SELECT count(*) AS n FROM public.t").first!.requiredInt("n") == 0)
                }
                try await TestServer.withSQLASCIIDatabase { target in
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(try await Self.storedBytes(t) == (try await Self.storedBytes(s)))
                    #expect(try await Self.storedBytes(t).last == "3:e9")
                }
            }
        }
    }
}
