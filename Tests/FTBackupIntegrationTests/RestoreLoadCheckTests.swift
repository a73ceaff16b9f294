import Foundation
import Testing
@testable import FTBackupKit

extension BackupRestoreTests {
    /// A table whose file holds other than the rows its manifest records fails the restore (65) and is
    /// not left loaded: the row count is checked before its COPY commits, so the table stays empty.
    @Test func aTableWhoseRowCountContradictsTheManifestIsRolledBackNotLeftLoaded() async throws {
        try await TestServer.withDatabase { source in
            try await TestRepository.with { repo in
                let manifest = try await BackupRunner.runFull(try .test(source, repo))
                // The manifest claims one row more than a table's file holds (the file itself is whole: its SHA-256 matches).
                let path = "\(repo.path)/backups/\(manifest.label)/manifest.json"
                var text = try String(contentsOfFile: path, encoding: .utf8)
                let table = try #require(manifest.tables.filter {
                    $0.rows > 0 && $0.extensionFilter == nil && text.components(separatedBy: "\"rows\" : \($0.rows),").count == 2
                }.max { $0.rows < $1.rows })
                let recorded = "\"rows\" : \(table.rows),"
                text = text.replacingOccurrences(of: recorded, with: "\"rows\" : \(table.rows + 1),")
                try text.write(toFile: path, atomically: true, encoding: .utf8)
                try await TestServer.withDatabase(seeded: false) { target in
                    let error = await #expect(throws: FTBackupError.self) {
                        _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, jobs: 1, showProgress: false))
                    }
                    #expect(error?.status == .dataError, "\(String(describing: error))")
                    #expect(error?.message.contains("loaded \(table.rows) rows but the backup recorded \(table.rows + 1)") == true, "\(String(describing: error))")
                    let t = try await target.connect()
                    defer { t.close() }
                    let name = try t.qualifiedName(table.schema, table.name)
                    let left = try await t.query("SELECT count(*) AS n FROM \(name)").first!.requiredInt("n")
                    #expect(left == 0, "\(table.schema).\(table.name) kept \(left) rows of a load that failed its check")
                }
            }
        }
    }
}
