import Foundation
import Testing
@testable import FTBackupKit

/// adv10 #2: pg_restore's listing does not quote names, and a schema with a space in it was split on
/// that space, so its tables' keys and indexes were not recognised: each was logged as "not in the
/// backup's schema dump (it was invalid at the source)" and left to post-data; and a comment on an
/// index or key whose name needs quotes (`"n idx"`) was lost (its tag is quoted in the listing).
@Suite struct SpacedNamesRestoreTests {
    @Test func indexesOfASchemaWithSpacesAreBuiltWithTheirTableWithoutAFalseWarning() async throws {
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute(#"""
                CREATE SCHEMA "we""ird sch ëma";
                CREATE TABLE "we""ird sch ëma"."tåble ""x""" (id int PRIMARY KEY, v text UNIQUE, n int);
                CREATE INDEX "n idx" ON "we""ird sch ëma"."tåble ""x""" (n) WHERE n > 0;
                COMMENT ON INDEX "we""ird sch ëma"."n idx" IS 'kept';
                COMMENT ON CONSTRAINT "tåble ""x""_pkey" ON "we""ird sch ëma"."tåble ""x""" IS 'key kept';
                INSERT INTO "we""ird sch ëma"."tåble ""x""" SELECT g, 'v' || g, g % 7 FROM generate_series(1, 50) g
                """#)
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                try await TestServer.withDatabase(seeded: false) { target in
                    let log = RecordingLog()
                    var options = RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false)
                    options.logger = log.logger
                    _ = try await RestoreRunner.run(options)
                    let warnings = log.events.filter { $0.message.contains("not in the backup's schema dump") }
                    #expect(warnings.isEmpty, "\(warnings)")
                    let t = try await target.connect()
                    defer { t.close() }
                    let definitions = #"""
                        SELECT string_agg(indexrelid::regclass::text || ' ' || pg_get_indexdef(indexrelid) || ' ' || coalesce(obj_description(indexrelid, 'pg_class'), '')
                                          || ' ' || coalesce((SELECT obj_description(c.oid, 'pg_constraint') FROM pg_constraint c WHERE c.conindid = indexrelid), ''), '; ' ORDER BY 1) AS d
                        FROM pg_index WHERE indrelid = '"we""ird sch ëma"."tåble ""x"""'::regclass
                        """#
                    let restored = try await t.query(definitions).first!.requiredString("d")
                    #expect(restored == (try await s.query(definitions).first!.requiredString("d")))
                    #expect(restored.contains("kept") && restored.contains("key kept"))
                    #expect(TableFingerprint.differences(source: try await TableFingerprint.compute(s), restored: try await TableFingerprint.compute(t)) == [])
                }
            }
        }
    }
}
