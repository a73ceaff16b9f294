import Foundation
import Testing
@testable import FTBackupKit

/// Issue 14: full backups' data files in COPY BINARY where every column type is built in and
/// portable, text for the rest, decided per table in the snapshot and recorded in the manifest.
@Suite struct BinaryCopyTests {
    /// Every awkward built-in value, in one table that must travel in binary.
    static let builtInsSQL = #"""
        CREATE TABLE public.built_ins (
            id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            n numeric, f float8, r real, ts timestamp, tstz timestamptz, d date, t text, vc varchar(20), c char(3),
            b bytea, ia int[], ta text[], na numeric[], j jsonb, js json, iv interval, bits bit(8), vb varbit,
            tv tsvector, tq tsquery, x xml, u uuid, ip inet, net cidr, mac macaddr, p point, bx box,
            o oid, ch "char", nm name, ir int4range, tr tstzrange, imr int4multirange, bo boolean, ti time, ttz timetz,
            doubled int GENERATED ALWAYS AS (id * 2) STORED);
        INSERT INTO public.built_ins (n, f, r, ts, tstz, d, t, vc, c, b, ia, ta, na, j, js, iv, bits, vb, tv, tq, x, u, ip, net, mac, p, bx,
                                      o, ch, nm, ir, tr, imr, bo, ti, ttz) VALUES
            ('NaN', 'NaN', '-Infinity', 'infinity', '-infinity', '-infinity', '', '', 'a', '\x00006100'::bytea,
             '{1,NULL,3}', '{"",NULL,"x y"}', '{NaN,Infinity,-Infinity,1.50}', '{"a": [1, null, "é"], "b": {}}', '{"k" : 1}',
             '1 year 2 mons -3 days 04:05:06.789', B'10100101', B'1', 'a fat:1A cat', 'fat & !rat', '<a>é</a>',
             'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '(1.5,-2)', '(1,1),(0,0)',
             4294967295, 'z', 'a name', '[1,10)', '[2024-01-01 00:00+00,infinity)', '{[1,3), [5,7)}', true, '24:00:00', '23:59:59.999999+14'),
            ('Infinity', 'Infinity', 'NaN', '-infinity', 'infinity', 'infinity', NULL, NULL, NULL, ''::bytea,
             '{}', '{NULL}', NULL, 'null', '[]', '-178000000 years', B'00000000', B'', '', 'a', '<!-- c -->', NULL, '::1', '::/0', NULL,
             NULL, NULL, 0, NULL, '', 'empty', NULL, '{}', false, NULL, NULL),
            ('-Infinity', '-Infinity', '1e-45', '2000-02-29 12:34:56.123456', '1999-12-31 23:59:59.999999+05:30', '4713-01-01 BC',
             E'tab\there\nnewline \\ backslash', 'ő€', 'xyz', '\xff'::bytea, '{{1,2},{3,4}}', '{"{}","\""}', '{0.000000000001}',
             '{"deep": {"n": 1.0e100}}', '"s"', '0', B'11111111', B'010101', '''quoted'':1,2', 'x <-> y', 'plain', '00000000-0000-0000-0000-000000000000',
             '2001:db8::1', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', '(0,0)', '(0,0),(0,0)', 16384, E'\\001', 'name', 'empty', '(,)',
             '{}', NULL, '00:00', '00:00+00');
        INSERT INTO public.built_ins (n, t) SELECT g / 7.0, repeat('x', g % 50) FROM generate_series(1, 3000) g;
        """#

    /// Types that keep a table in text: the database's own types (recursively through arrays,
    /// domains, composites and ranges), oid-valued reg* types, money.
    static let textOnlySQL = #"""
        CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
        CREATE TYPE public.pair AS (a int, m public.mood);
        CREATE DOMAIN public.positive AS int CHECK (VALUE > 0);
        CREATE TYPE public.floatrange AS RANGE (subtype = float8);
        CREATE TABLE public.enum_array (id int PRIMARY KEY, moods public.mood[]);
        INSERT INTO public.enum_array VALUES (1, '{sad,NULL,happy}'), (2, '{}'), (3, NULL);
        CREATE TABLE public.composite (id int PRIMARY KEY, p public.pair, ps public.pair[]);
        INSERT INTO public.composite VALUES (1, '(1,ok)', ARRAY['(2,sad)'::public.pair, NULL]), (2, NULL, '{}'), (3, '(,)', NULL);
        CREATE TABLE public.domained (id int PRIMARY KEY, v public.positive, vs public.positive[]);
        INSERT INTO public.domained VALUES (1, 5, '{1,2}'), (2, NULL, NULL);
        CREATE TABLE public.user_range (id int PRIMARY KEY, r public.floatrange);
        INSERT INTO public.user_range VALUES (1, '[1.5,2.5)'), (2, 'empty'), (3, '(,3]');
        CREATE TABLE public.regs (id int PRIMARY KEY, rc regclass, rt regtype, rcs regclass[]);
        INSERT INTO public.regs VALUES (1, 'public.enum_array', 'public.mood', '{public.composite,public.regs}'), (2, 'pg_class', 'int4', NULL);
        CREATE TABLE public.cash (id int PRIMARY KEY, m money);
        INSERT INTO public.cash VALUES (1, '12.34'), (2, '-0.01'), (3, NULL);
        """#

    @Test func builtInTablesTravelInBinaryOthersInTextAndAllRestoreExactly() async throws {
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute(Self.builtInsSQL)
            try await s.execute(Self.textOnlySQL)
            // An extension's type (its oid differs from database to database) keeps its table in text.
            let available = Set(try await s.query("SELECT name FROM pg_available_extensions WHERE name IN ('citext', 'hstore', 'ltree')")
                .rows.map { try $0.requiredString("name") })
            var textTables: Set<String> = ["enum_array", "composite", "domained", "user_range", "regs", "cash"]
            if available.contains("citext") {
                try await s.execute("""
                    CREATE EXTENSION citext SCHEMA public;
                    CREATE TABLE public.ext_typed (id int PRIMARY KEY, v public.citext, vs public.citext[]);
                    INSERT INTO public.ext_typed VALUES (1, 'MiXeD', '{a,NULL,B}'), (2, '', NULL)
                    """)
                textTables.insert("ext_typed")
            }
            try await TestRepository.with { repo in
                let manifest = try await BackupRunner.runFull(try .test(source, repo))
                let formats = Dictionary(uniqueKeysWithValues: manifest.tables.map { ($0.name, $0.format) })
                #expect(formats["built_ins"] == .binary)
                for name in textTables { #expect(formats[name] == .text, "\(name)") }
                #expect(manifest.copyFormat == "binary")
                #expect(manifest.tables.first { $0.name == "built_ins" }?.file.path.hasSuffix(".bin.zst") == true)
                // Written to the manifest file as "format": "binary" / "text".
                let json = String(decoding: try repo.repository.storage.readAll(repo.repository.manifestPath(manifest.label)), as: UTF8.self)
                #expect(json.contains("\"format\" : \"binary\"") || json.contains("\"format\":\"binary\""), "\(json.prefix(400))")

                let verified = try await BackupVerifier.verify(repo.repository, label: nil, jobs: 2)
                #expect(verified.allSatisfy { $0.ok }, "\(verified.map(\.badFiles))")
                try await TestServer.withDatabase(seeded: false) { target in
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    let t = try await target.connect()
                    defer { t.close() }
                    let expected = try await TableFingerprint.compute(s)
                    #expect(expected.count == manifest.tables.count)
                    #expect(TableFingerprint.differences(source: expected, restored: try await TableFingerprint.compute(t)) == [])
                    // The identity continues where the source's did (sequence restored), the generated column recomputed.
                    let next = try await t.query("INSERT INTO public.built_ins (t) VALUES ('new') RETURNING id, doubled").first!
                    let sourceNext = try await s.query("SELECT max(id) + 1 AS id FROM public.built_ins").first!
                    #expect(try next.requiredInt("id") == sourceNext.requiredInt("id") && next.requiredInt("doubled") == next.requiredInt("id") * 2)
                }
            }
        }
    }

    /// Backups written before the format was recorded (no `format`, `copyFormat: "text"`) still restore.
    @Test func aManifestWithoutFormatsRestoresAsText() async throws {
        try await TestServer.withDatabase { source in
            let s = try await source.connect()
            defer { s.close() }
            try await TestRepository.with { repo in
                var options = try BackupOptions.test(source, repo)
                options.allowBinaryCopy = false
                let manifest = try await BackupRunner.runFull(options)
                #expect(manifest.tables.allSatisfy { $0.format == .text } && manifest.copyFormat == "text")
                // Rewrite the manifest the way older versions wrote it: no "format" key at all.
                let path = repo.repository.manifestPath(manifest.label)
                var object = try JSONSerialization.jsonObject(with: Data(try repo.repository.storage.readAll(path))) as! [String: Any]
                object["tables"] = (object["tables"] as! [[String: Any]]).map { table in
                    var table = table
                    table.removeValue(forKey: "format")
                    return table
                }
                let old = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                #expect(!String(decoding: old, as: UTF8.self).contains("\"format\""))
                try repo.repository.storage.writeAll(path, Array(old))
                #expect(try repo.repository.backup(label: manifest.label).tables.allSatisfy { $0.format == nil && $0.copyFormat == .text })
                try await TestServer.withDatabase(seeded: false) { target in
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(TableFingerprint.differences(source: try await TableFingerprint.compute(s), restored: try await TableFingerprint.compute(t)) == [])
                }
            }
        }
    }

    /// Binary COPY is promised only into the backup's own major version: another is refused (exit
    /// 64, one line, target untouched) unless --allow-version-change; a text backup is never refused.
    @Test func aBinaryBackupIsRefusedIntoAnotherMajorVersionUnlessAllowed() async throws {
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute("CREATE TABLE public.a (id int PRIMARY KEY, at timestamptz); INSERT INTO public.a SELECT g, now() FROM generate_series(1, 100) g")
            try await TestRepository.with { repo in
                let manifest = try await BackupRunner.runFull(try .test(source, repo))
                #expect(manifest.hasBinaryData)
                // Fake a backup taken on PostgreSQL 14.
                var faked = manifest
                faked.source.serverVersionNumber = 140011
                faked.source.serverVersion = "14.11"
                try repo.repository.storage.writeAll(repo.repository.manifestPath(manifest.label), try faked.encoded())
                try await TestServer.withDatabase(seeded: false) { target in
                    let refused = try await FTBackupBinary.run(["restore", "--repo", repo.path, "--target", target.connectionString.raw])
                    #expect(refused.status == 64, "\(refused.stdout)\(refused.stderr)")
                    let lines = refused.stderr.split(separator: "\n").filter { $0.hasPrefix("ftbackup: error") }
                    #expect(lines.count == 1 && lines[0].contains("PostgreSQL 14") && lines[0].contains("PostgreSQL 15"), "\(refused.stderr)")
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(try await t.query("SELECT count(*) AS n FROM pg_class WHERE relname = 'a'").first!.requiredInt("n") == 0)
                    let allowed = try await FTBackupBinary.run(["restore", "--repo", repo.path, "--target", target.connectionString.raw, "--allow-version-change"])
                    #expect(allowed.status == 0, "\(allowed.stderr)")
                    #expect(TableFingerprint.differences(source: try await TableFingerprint.compute(s), restored: try await TableFingerprint.compute(t)) == [])
                }
            }
            try await TestRepository.with { repo in
                var options = try BackupOptions.test(source, repo)
                options.allowBinaryCopy = false
                var faked = try await BackupRunner.runFull(options)
                faked.source.serverVersionNumber = 140011
                try repo.repository.storage.writeAll(repo.repository.manifestPath(faked.label), try faked.encoded())
                try await TestServer.withDatabase(seeded: false) { target in
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                }
            }
        }
    }

    /// Writes a table's data file again with `raw` as its decompressed contents, and its manifest entry to match: the
    /// digest and sizes are right, only the stream itself is wrong.
    static func rewrite(table index: Int, of manifest: inout BackupManifest, with raw: [UInt8], in repository: Repository) throws {
        let storage = repository.storage, folder = repository.backupFolder(manifest.label)
        let file = manifest.tables[index].file
        let writer = try CompressedFileWriter(storage: storage, path: "\(folder)/\(file.path)", compression: manifest.compression)
        try raw.withUnsafeBytes { try writer.write($0) }
        var stored = try writer.finish()
        stored.path = file.path
        manifest.tables[index].file = stored
        try storage.writeAll(repository.manifestPath(manifest.label), try manifest.encoded())
    }

    /// A binary data file whose digest matches the manifest but whose COPY stream is cut (no end
    /// marker) or miscounted is named by verify (exit 65), as is one cut after it was written.
    @Test(arguments: ["end-marker", "extra-row", "cut"])
    func aDamagedBinaryFileIsNamedByVerify(damage: String) async throws {
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute("CREATE TABLE public.a (id int PRIMARY KEY, u uuid, t text); INSERT INTO public.a SELECT g, gen_random_uuid(), g::text FROM generate_series(1, 5000) g")
            try await TestRepository.with { repo in
                var manifest = try await BackupRunner.runFull(try .test(source, repo))
                let index = manifest.tables.firstIndex { $0.name == "a" }!
                #expect(manifest.tables[index].format == .binary)
                let storage = repo.repository.storage, folder = repo.repository.backupFolder(manifest.label)
                let file = manifest.tables[index].file
                let shown = "\(repo.path)/\(folder)/\(file.path)"
                if damage == "cut" {
                    var bytes = try storage.readAll("\(folder)/\(file.path)")
                    bytes.removeLast(bytes.count / 3)
                    try Data(bytes).write(to: URL(fileURLWithPath: shown))
                } else {
                    var raw: [UInt8] = []
                    try StoredFileReader.read(storage, folder: folder, file: file) { raw.append(contentsOf: $0) }
                    #expect(Array(raw.suffix(2)) == [0xFF, 0xFF])
                    raw.removeLast(2)
                    if damage == "extra-row" { raw += [0, 3, 0, 0, 0, 4, 0, 0, 0, 9, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] }
                    try Self.rewrite(table: index, of: &manifest, with: raw, in: repo.repository)
                }
                let outcome = try await FTBackupBinary.run(["verify", "--repo", repo.path])
                #expect(outcome.status == 65, "\(outcome.stdout)\(outcome.stderr)")
                #expect(outcome.stdout.contains(shown) || outcome.stderr.contains(shown), "\(outcome.stdout)\(outcome.stderr)")
                let why = damage == "end-marker" ? "without its end marker" : damage == "extra-row" ? "5001 rows, the manifest records 5000" : "truncated"
                #expect((outcome.stdout + outcome.stderr).contains(why), "\(outcome.stdout)\(outcome.stderr)")
            }
        }
    }

    /// The same for a text data file: its digest matches the manifest, but it holds a binary COPY stream (a restore
    /// would parse it as text), one row more than recorded, or a row cut in the middle. Verify names each (exit 65),
    /// and an untouched text backup verifies clean.
    @Test(arguments: ["binary", "extra-row", "cut-row"])
    func aDamagedTextFileIsNamedByVerify(damage: String) async throws {
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute("""
                CREATE TABLE public.a (id int PRIMARY KEY, u uuid, t text);
                INSERT INTO public.a SELECT g, gen_random_uuid(), 'line ' || g || E'\\n and a newline inside' FROM generate_series(1, 5000) g
                """)
            try await TestRepository.with { repo in
                let storage = repo.repository.storage
                func decompressed(_ manifest: BackupManifest) throws -> [UInt8] {
                    let file = manifest.tables.first { $0.name == "a" }!.file
                    var raw: [UInt8] = []
                    try StoredFileReader.read(storage, folder: repo.repository.backupFolder(manifest.label), file: file) { raw.append(contentsOf: $0) }
                    return raw
                }
                let binary = try decompressed(try await BackupRunner.runFull(try .test(source, repo)))
                try await Task.sleep(for: .milliseconds(1100))  // the next label is a second later
                var options = try BackupOptions.test(source, repo)
                options.allowBinaryCopy = false
                var manifest = try await BackupRunner.runFull(options)
                let clean = try await FTBackupBinary.run(["verify", "--repo", repo.path])
                #expect(clean.status == 0, "\(clean.stdout)\(clean.stderr)")
                let index = manifest.tables.firstIndex { $0.name == "a" }!
                #expect(manifest.tables[index].format == .text)
                #expect(manifest.tables[index].rows == 5000)
                let folder = repo.repository.backupFolder(manifest.label)
                var raw = try decompressed(manifest)
                #expect(raw.filter { $0 == 0x0A }.count == 5000, "a newline inside a value is not escaped: the check would be wrong")
                switch damage {
                case "binary": raw = binary
                case "extra-row": raw += Array("5001\t\\N\tone more\n".utf8)
                default: raw.removeLast(5)
                }
                let file = manifest.tables[index].file
                try Self.rewrite(table: index, of: &manifest, with: raw, in: repo.repository)
                let outcome = try await FTBackupBinary.run(["verify", "--repo", repo.path])
                #expect(outcome.status == 65, "\(outcome.stdout)\(outcome.stderr)")
                #expect((outcome.stdout + outcome.stderr).contains("\(repo.path)/\(folder)/\(file.path)"), "\(outcome.stdout)\(outcome.stderr)")
                let why = damage == "binary" ? "binary COPY data in a file the manifest records as text"
                    : damage == "extra-row" ? "5001 rows, the manifest records 5000" : "ends in the middle of a row"
                #expect((outcome.stdout + outcome.stderr).contains(why), "\(outcome.stdout)\(outcome.stderr)")
            }
        }
    }

    /// Binary text values travel in UTF8 and the server converts them into the target's encoding: a
    /// UTF8 backup restores exactly into a LATIN1 database, and a value LATIN1 cannot hold fails the
    /// data phase (exit 65, one line) rather than load altered.
    static func rowsAsText(_ session: DatabaseSession) async throws -> [String] {
        try await session.execute("SET TimeZone = 'UTC'")
        return try await session.query("SELECT t::text AS r FROM public.t ORDER BY id").rows.map { try $0.requiredString("r") }
    }

    @Test func aBinaryBackupConvertsIntoATargetOfAnotherEncodingOrRefuses() async throws {
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute("""
                CREATE TABLE public.t (id int PRIMARY KEY, v text, j jsonb, a text[], at timestamptz);
                INSERT INTO public.t VALUES (1, 'élève', '{"é": "ü"}', '{ñ,NULL}', now()), (2, '', NULL, '{}', NULL)
                """)
            try await TestRepository.with { repo in
                let manifest = try await BackupRunner.runFull(try .test(source, repo))
                #expect(manifest.tables.allSatisfy { $0.format == .binary })
                try await TestServer.withDatabase(seeded: false, options: ObjectKindsTests.latin1) { target in
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(try await t.query("SELECT current_setting('server_encoding') AS e").first!.requiredString("e") == "LATIN1")
                    // Hashes are taken over each database's own bytes: compare the rows as the UTF8 sessions read them.
                    #expect(try await Self.rowsAsText(t) == (try await Self.rowsAsText(s)))
                    #expect(try await t.query("SELECT encode(convert_to(v, 'LATIN1'), 'hex') AS h FROM public.t WHERE id = 1").first!.requiredString("h") == "e96c e87665".replacingOccurrences(of: " ", with: ""))
                }
            }
            try await s.execute("INSERT INTO public.t VALUES (3, '€ not in LATIN1', NULL, NULL, NULL)")
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                try await TestServer.withDatabase(seeded: false, options: ObjectKindsTests.latin1) { target in
                    let outcome = try await FTBackupBinary.run(["restore", "--repo", repo.path, "--target", target.connectionString.raw])
                    #expect(outcome.status == 65, "\(outcome.stderr)")
                    #expect(outcome.stderr.contains("has no equivalent in encoding \"LATIN1\""), "\(outcome.stderr)")
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(try await t.query("SELECT count(*) AS n FROM public.t").first!.requiredInt("n") == 0)
                }
            }
        }
    }
}
