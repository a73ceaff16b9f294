import Foundation
import Testing
@testable import FTBackupKit

/// Lifecycle sessions write and read COPY text whose `regclass` values print relative to the session's
/// search_path; an archive taken by a role whose search_path names the tool schema must still unarchive
/// exactly from a session that does not.
@Suite struct LifecycleSearchPathTests {
    @Test func archiveUnderAToolSearchPathUnarchivesExactlyUnderTheDefaultOne() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute("""
                CREATE TABLE sprint_02_dream.sources (
                  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                  tool_data_id uuid NOT NULL REFERENCES sprint_02_dream.tool_data(id) ON DELETE CASCADE,
                  origin regclass NOT NULL);
                INSERT INTO sprint_02_dream.sources (tool_data_id, origin)
                  SELECT id, 'sprint_02_dream.tool_data'::regclass FROM sprint_02_dream.tool_data;
                """)
            let original = try await toolSchemaFingerprints(session)
            try await TestRepository.with { repo in
                // The archive's connection has the tool schema first on its search_path, as a role's setting would.
                let toolPath = try ConnectionString(db.connectionString.raw + " options='-c search_path=sprint_02_dream,public'")
                let options = ArchiveOptions(database: toolPath, repositoryPath: repo.path, policy: try testPolicy(),
                                             schemas: ["sprint_02_dream"], batchSize: 1000, dryRun: false)
                let run = try await ToolDataArchiver.run(options)
                #expect(run.rows > 0)
                #expect(run.schemas.first?.dependantRows ?? 0 >= run.rows)
                let store = ArchiveStore(storage: repo.repository.storage)
                for (name, _) in try store.all() {
                    _ = try await Unarchiver.run(database: db.connectionString, repositoryPath: repo.path, archive: name, ids: [])
                }
                let restored = try await toolSchemaFingerprints(session)
                #expect(TableFingerprint.differences(source: original, restored: restored) == [])
            }
        }
    }
}
