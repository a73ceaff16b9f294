import Foundation
import Testing
@testable import FTBackupKit

/// Adversarial review of binary COPY full backups (issue 14): settings of the target database that
/// change how the restore's COPY reads values must not change what is loaded.
@Suite struct AdversarialCopyFormatTests {
    /// Backs `source` up (binary where eligible), restores it into a fresh database prepared by
    /// `prepareTarget` (run on an admin session with the target's quoted name) and compares every
    /// table row by row.
    static func backupAndRestore(_ source: TestDatabase, prepareTarget: String) async throws {
        let s = try await source.connect()
        defer { s.close() }
        try await TestRepository.with { repo in
            _ = try await BackupRunner.runFull(try .test(source, repo))
            try await TestServer.withDatabase(seeded: false) { target in
                let admin = try await TestServer.admin()
                defer { admin.close() }
                try await admin.execute(prepareTarget.replacingOccurrences(of: "TARGET", with: "\"\(target.name)\""))
                _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                let t = try await target.connect()
                defer { t.close() }
                #expect(TableFingerprint.differences(source: try await TableFingerprint.compute(s), restored: try await TableFingerprint.compute(t)) == [])
            }
        }
    }

    /// xml CONTENT values (fragments, not documents) travel in a binary file; the target database's
    /// `xmloption = document` (an operator's default, or the source's own setting on a restore into
    /// a database that has it) made `xml_recv` reject them and the restore fail.
    @Test func xmlFragmentsRestoreIntoADatabaseWhoseXmlOptionIsDocument() async throws {
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute("""
                CREATE TABLE public.fragments (id int PRIMARY KEY, x xml);
                INSERT INTO public.fragments VALUES (1, XMLPARSE(CONTENT 'plain text <b>bold</b> tail')),
                                                    (2, XMLPARSE(DOCUMENT '<doc>é</doc>')), (3, XMLPARSE(CONTENT '')), (4, NULL)
                """)
            try await Self.backupAndRestore(source, prepareTarget: "ALTER DATABASE TARGET SET xmloption = document")
        }
    }

    /// A table that falls back to text (it has an enum column) with a text[] column holding NULL
    /// elements and the string 'NULL': the target database's `array_nulls = off` made the restore's
    /// text COPY read every NULL element as the four-letter string, silently.
    @Test func nullArrayElementsInATextFileSurviveATargetWithArrayNullsOff() async throws {
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute("""
                CREATE TYPE public.mood AS ENUM ('sad', 'ok');
                CREATE TABLE public.tagged (id int PRIMARY KEY, m public.mood, tags text[], ns int[]);
                INSERT INTO public.tagged VALUES (1, 'ok', ARRAY[NULL, 'NULL', 'x'], ARRAY[1, NULL]), (2, NULL, '{NULL}', '{NULL,NULL}'),
                                                 (3, 'sad', '{}', NULL)
                """)
            try await Self.backupAndRestore(source, prepareTarget: "ALTER DATABASE TARGET SET array_nulls = off")
        }
    }
}
