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

    /// Replay sends changed values as text: NULL array elements and xml fragments inserted and updated
    /// after the full come back exact into a target whose database defaults are `array_nulls = off` and
    /// `xmloption = document` (the replay session pins both, as the COPY sessions do).
    @Test func replayedNullArrayElementsAndXmlFragmentsSurviveTheTargetsDefaults() async throws {
        try await ArchivedDatabase.with(prepare: """
            CREATE SCHEMA rx;
            CREATE TABLE rx.t (id int PRIMARY KEY, tags text[], ns int[], x xml);
            INSERT INTO rx.t VALUES (1, ARRAY['a'], ARRAY[1], XMLPARSE(CONTENT 'one'));
            """) { a in
            _ = try await a.full()
            try await a.session.execute("""
                INSERT INTO rx.t VALUES (2, ARRAY[NULL, 'NULL', 'x'], ARRAY[1, NULL], XMLPARSE(CONTENT 'plain <b>bold</b> tail')),
                                        (3, '{NULL}', '{NULL,NULL}', XMLPARSE(CONTENT ''));
                UPDATE rx.t SET tags = ARRAY['NULL', NULL], ns = ARRAY[NULL, 2]::int[], x = XMLPARSE(CONTENT 'a <i/> b') WHERE id = 1;
                """)
            let (at, expected) = try await a.instant()
            _ = try await a.incremental()
            try await TestServer.withDatabase(seeded: false) { target in
                let admin = try await TestServer.admin()
                defer { admin.close() }
                try await admin.execute("ALTER DATABASE \"\(target.name)\" SET array_nulls = off; ALTER DATABASE \"\(target.name)\" SET xmloption = document")
                _ = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: a.repo.path,
                                                                    showProgress: false), at: at)
                let t = try await target.connect()
                defer { t.close() }
                #expect(TableFingerprint.differences(source: expected, restored: try await TableFingerprint.compute(t)) == [])
                let nulls = try await t.query("SELECT count(*) AS n FROM rx.t, unnest(tags) e WHERE e IS NULL").first!.int64("n")
                #expect(nulls == 3)
            }
        }
    }
}
