import Foundation
import Testing
@testable import FTBackupKit

@Suite struct CheckTests {
    @Test func findsSharedAndAllThirtyToolSchemas() async throws {
        try await TestServer.withDatabase { db in
            let report = try await Checker.run(database: db.connectionString, repositoryPath: NSTemporaryDirectory() + "ft-check-\(UUID())")
            #expect(report.missingSharedSchemas.isEmpty)
            #expect(report.toolSchemaCount == 30)
            #expect(report.walLevel == "logical")
            #expect(report.logicalDecodingReady)
            #expect(report.serverVersionNumber >= 150000)
            #expect(report.schemas.first { $0.name == "sprint_15_value_proposition" }?.tables ?? 0 >= 3)
            #expect(report.repository?.writable == true)
            #expect(report.repository?.exists == false)
            let json = try JSONOutput.encode(report)
            #expect(json.contains("\"walLevel\" : \"logical\""))
        }
    }

    @Test func wrongPasswordIsAPermissionErrorWithoutThePassword() async throws {
        let error = await #expect(throws: FTBackupError.self) {
            _ = try await Checker.run(database: try ConnectionString("\(try TestServer.dsn) password=not-the-password"), repositoryPath: nil)
        }
        #expect(error?.status == .permission)
        #expect(error?.description.contains("password authentication failed") == true)
        #expect(error?.description.contains("not-the-password") == false)
    }

    @Test func unknownDatabaseIsUnavailable() async throws {
        let error = await #expect(throws: FTBackupError.self) {
            _ = try await Checker.run(database: try TestServer.connectionString(database: "no_such_db"), repositoryPath: nil)
        }
        #expect(error?.status == .unavailable)
        #expect(error?.description.contains("no_such_db") == true)
    }

    @Test func unreachableServerIsUnavailable() async throws {
        let error = await #expect(throws: FTBackupError.self) {
            _ = try await Checker.run(database: try ConnectionString("host=127.0.0.1 port=1 connect_timeout=3"), repositoryPath: nil)
        }
        #expect(error?.status == .unavailable)
        #expect(error?.description.contains("port=1") == true)
    }

    @Test func unwritableRepositoryIsReported() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let report = try await Checker.run(database: db.connectionString, repositoryPath: "/proc/ftbackup-repo")
            #expect(report.repository?.writable == false)
            #expect(report.repository?.problem != nil)
        }
    }
}
