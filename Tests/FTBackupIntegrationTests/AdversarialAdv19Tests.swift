import Foundation
import Testing
@testable import FTBackupKit

/// adv19: the anchor table's grants, text data files under verify, and `FTBACKUP_SLOT_WAIT`, attacked.
@Suite struct AdversarialAdv19Tests {
    /// The README says to grant the anchor table "to the roles ftbackup runs as only". A pruning role so granted (not
    /// the table's owner) anchored its records until the owner's next run (a drill, an archive, a prune as the owner)
    /// revoked that grant as "writes by others" (a revoke at every open, tried for a table made before the revoke at
    /// creation existed): from then on every record the pruning role wrote was unanchored, and the compliance report
    /// called each one an `evidence` finding. Grants are now taken only when ftbackup creates the table.
    @Test func aNonOwnerRoleGrantedTheAnchorTableAsTheReadmeSaysKeepsAnchoringAfterTheOwnersNextRun() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            let role = "adv19_pruner_\(UInt32.random(in: 0...UInt32.max))"
            let anchors = "ftbackup.\(RecordChainAnchor.table)"
            try await session.execute("""
                CREATE ROLE \(role) LOGIN PASSWORD 'adv19-secret';
                GRANT USAGE ON SCHEMA audit, users TO \(role);
                GRANT SELECT, DELETE ON ALL TABLES IN SCHEMA audit TO \(role);
                GRANT SELECT ON ALL TABLES IN SCHEMA users TO \(role);
                DO $$DECLARE s text; BEGIN FOR s IN SELECT nspname FROM pg_namespace WHERE nspname LIKE 'sprint\\_%' LOOP
                  EXECUTE format('GRANT USAGE ON SCHEMA %I TO \(role); GRANT SELECT, DELETE ON ALL TABLES IN SCHEMA %I TO \(role)', s, s);
                END LOOP; END$$
                """)
            defer { Task { try? await TestServer.admin().execute("DROP OWNED BY \(role) CASCADE; DROP ROLE IF EXISTS \(role)") } }
            try await TestRepository.with { repo in
                let owner = ["lifecycle", "prune-audit", "--db", db.connectionString.raw, "--repo", repo.path]
                let pruner = ["lifecycle", "prune-audit", "--db", "\(try TestServer.dsn) dbname=\(db.name) user=\(role) password=adv19-secret", "--repo", repo.path]
                let first = try await FTBackupBinary.run(owner)
                #expect(first.status == 0, "\(first.stderr)")
                try await session.execute("GRANT USAGE ON SCHEMA ftbackup TO \(role); GRANT SELECT, INSERT, UPDATE ON \(anchors) TO \(role)")
                let granted = try await FTBackupBinary.run(pruner)
                #expect(granted.status == 0, "\(granted.stderr)")
                #expect(!granted.stderr.contains("not anchored"), "the grant did not take: the test proves nothing: \(granted.stderr)")
                let ownerAgain = try await FTBackupBinary.run(owner)
                #expect(ownerAgain.status == 0, "\(ownerAgain.stderr)")
                let after = try await FTBackupBinary.run(pruner)
                #expect(after.status == 0, "\(after.stderr)")
                #expect(!after.stderr.contains("not anchored"), "\(after.stderr)")
                let report = try await FTBackupBinary.run(["report", "--db", db.connectionString.raw, "--repo", repo.path])
                #expect(!(report.stdout + report.stderr).contains("is not anchored in the database"), "\(report.stdout)")
            }
        }
    }

    /// A text data file whose digest matches the manifest but that holds another table's rows (as many of them, in
    /// COPY text, ending in a newline) passed verify: only newlines were counted. The binary scanner names the same
    /// mix-up by its field count; a restore fails on it ("missing data for column" / "extra data after last
    /// expected column"). A zero-column table's rows must be empty lines. The zoo of odd values (newlines, CR,
    /// backslashes, tabs in text, json, arrays, composites, hstore, citext) still verifies clean.
    @Test func aTextFileHoldingAnotherTablesRowsIsNamedByVerify() async throws {
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute(#"""
                CREATE EXTENSION IF NOT EXISTS hstore;
                CREATE TYPE public.pair AS (x text, y int[]);
                CREATE TABLE public.two (id int PRIMARY KEY, t text);
                CREATE TABLE public.three (id int PRIMARY KEY, t text, u text);
                CREATE TABLE public.nocols ();
                CREATE TABLE public.odd (t text, j json, a text[], p public.pair, h hstore);
                INSERT INTO public.two SELECT g, E'a\tb\n' || g FROM generate_series(1, 50) g;
                INSERT INTO public.three SELECT g, E'c\\d', E'\r\t' FROM generate_series(1, 50) g;
                INSERT INTO public.nocols SELECT FROM generate_series(1, 50);
                INSERT INTO public.odd VALUES (E'x\ty\r\n\\', E'{"k": "v\\n\\tw",\n "l": 1}', ARRAY[E'a\tb', E'c\nd', NULL],
                    ROW(E'p\tq', ARRAY[1, NULL]), E'"k\t"=>"v\n"'), (NULL, NULL, NULL, NULL, NULL), ('', '""', '{}', ROW('', '{}'), '')
                """#)
            try await TestRepository.with { repo in
                let storage = repo.repository.storage
                var options = try BackupOptions.test(source, repo)
                options.allowBinaryCopy = false
                var manifest = try await BackupRunner.runFull(options)
                let clean = try await FTBackupBinary.run(["verify", "--repo", repo.path])
                #expect(clean.status == 0, "\(clean.stdout)\(clean.stderr)")
                func decompressed(_ name: String) throws -> [UInt8] {
                    let file = manifest.tables.first { $0.name == name }!.file
                    var raw: [UInt8] = []
                    try StoredFileReader.read(storage, folder: repo.repository.backupFolder(manifest.label), file: file) { raw.append(contentsOf: $0) }
                    return raw
                }
                let three = try decompressed("three"), two = try decompressed("two")
                for (victim, raw) in [("two", three), ("nocols", two)] {
                    let index = manifest.tables.firstIndex { $0.name == victim }!
                    let original = try decompressed(victim)
                    #expect(manifest.tables[index].format == .text && manifest.tables[index].rows == 50)
                    try BinaryCopyTests.rewrite(table: index, of: &manifest, with: raw, in: repo.repository)
                    let outcome = try await FTBackupBinary.run(["verify", "--repo", repo.path])
                    #expect(outcome.status == 65, "\(victim) holding another table's rows: \(outcome.stdout)\(outcome.stderr)")
                    #expect((outcome.stdout + outcome.stderr).contains(manifest.tables[index].file.path), "\(outcome.stdout)\(outcome.stderr)")
                    try BinaryCopyTests.rewrite(table: index, of: &manifest, with: original, in: repo.repository)
                }
                let again = try await FTBackupBinary.run(["verify", "--repo", repo.path])
                #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
            }
        }
    }

    /// `FTBACKUP_SLOT_WAIT=inf` (or `1e309`, or any value whose nanoseconds overflow) crashed `setup` and every full
    /// backup of an archived database with SIGILL ("Double value cannot be converted to _Int128"), as did
    /// `--slot-wait inf`; an absurdly large finite value waits for ever. A bad value must neither crash nor be
    /// unbounded: the environment's falls back to the default, the option's is refused (64).
    @Test func anInfiniteOrHugeSlotWaitNeitherCrashesNorWaitsForEver() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let conninfo = "\(try TestServer.dsn) dbname=\(db.name)"
            // A value that is not a usable number of seconds is refused in one line (78), never a crash nor a silent
            // default; the full backup of an archived database reads it too.
            for value in ["inf", "1e309", "1e30", "nan", "-inf", "600s", "abc", "0"] {
                let setup = try await FTBackupBinary.run(["setup", "--db", conninfo], environment: ["FTBACKUP_SLOT_WAIT": value])
                #expect(setup.status == 78, "FTBACKUP_SLOT_WAIT=\(value): exit \(setup.status): \(setup.stderr)")
                #expect(setup.stderr.hasPrefix("ftbackup: error: FTBACKUP_SLOT_WAIT is \(value):"), "FTBACKUP_SLOT_WAIT=\(value): \(setup.stderr)")
                #expect(!setup.stderr.contains("Fatal error"), "FTBACKUP_SLOT_WAIT=\(value): \(setup.stderr)")
            }
            let ready = try await FTBackupBinary.run(["setup", "--db", conninfo], environment: ["FTBACKUP_SLOT_WAIT": ""])
            #expect(ready.status == 0, "an empty FTBACKUP_SLOT_WAIT is unset: \(ready.stderr)")
            try await TestRepository.with { repo in
                let full = try await FTBackupBinary.run(["backup", "--type", "full", "--db", conninfo, "--repo", repo.path],
                                                        environment: ["FTBACKUP_SLOT_WAIT": "1e30"])
                #expect(full.status == 78, "exit \(full.status): \(full.stderr)")
                #expect(full.stderr.contains("FTBACKUP_SLOT_WAIT is 1e30"), "\(full.stderr)")
            }
            _ = try await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false)
            for value in ["inf", "1e30", "nan"] {
                let setup = try await FTBackupBinary.run(["setup", "--db", conninfo, "--slot-wait", value])
                #expect(setup.status == 64, "--slot-wait \(value): exit \(setup.status): \(setup.stderr)")
                #expect(!setup.stderr.contains("Fatal error"), "--slot-wait \(value): \(setup.stderr)")
            }
            _ = try? await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false)
        }
    }
}
