import Foundation
import Testing
@testable import FTBackupKit

/// SplitMix64: a generator whose whole run is given by its seed, so a failing run can be replayed
/// (`FTBACKUP_CHAIN_SEED`).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The whole database at one instant: every table's ordered row hash and every sequence's state.
struct ChainFingerprint: Sendable {
    var tables: [TableFingerprint]
    var sequences: [String]

    static func take(_ session: DatabaseSession) async throws -> ChainFingerprint {
        ChainFingerprint(tables: try await TableFingerprint.compute(session), sequences: try await chainSequenceStates(session))
    }

    func differences(_ restored: ChainFingerprint) -> [String] {
        var problems = TableFingerprint.differences(source: tables, restored: restored.tables)
        func byName(_ states: [String]) -> [String: String] {
            Dictionary(uniqueKeysWithValues: states.map { state in
                let parts = state.split(separator: "=", maxSplits: 1).map(String.init)
                return (parts[0], parts.count > 1 ? parts[1] : "")
            })
        }
        let source = byName(sequences), other = byName(restored.sequences)
        for name in Set(source.keys).union(other.keys).sorted() where source[name] != other[name] {
            problems.append("sequence \(name): \(source[name] ?? "missing") in source, \(other[name] ?? "missing") restored")
        }
        return problems
    }
}

/// Every sequence outside ftbackup's own schema (never restored): value and whether it was called.
func chainSequenceStates(_ session: DatabaseSession) async throws -> [String] {
    try await session.query("""
        SELECT format('%s.%s', schemaname, sequencename) || '=' || coalesce(last_value::text, 'not called') AS s
        FROM pg_sequences WHERE schemaname <> 'ftbackup' ORDER BY 1
        """).rows.map { try $0.requiredString("s") }
}

/// The tables the randomized workload writes besides the seeded ones and `workloadSchemaSQL`'s.
let chainSchemaSQL = """
    CREATE SCHEMA chain;
    CREATE TABLE chain.kv (id int PRIMARY KEY, v varchar(200), n int);
    CREATE TABLE chain.kv_child (id int PRIMARY KEY, kv_id int REFERENCES chain.kv (id) ON UPDATE CASCADE ON DELETE CASCADE, note text);
    INSERT INTO chain.kv SELECT g, 'kv ' || g, g FROM generate_series(1, 40) g;
    INSERT INTO chain.kv_child SELECT g, g, 'child of ' || g FROM generate_series(1, 40) g;
    -- A free-standing sequence (no owner) two tables draw on: one through its DEFAULT, one by nextval() in the INSERT.
    CREATE SEQUENCE chain.free_seq;
    CREATE TABLE chain.drawn (id bigint PRIMARY KEY DEFAULT nextval('chain.free_seq'), note text);
    CREATE TABLE chain.drawn_too (id bigint PRIMARY KEY DEFAULT nextval('chain.free_seq'), k int);
    INSERT INTO chain.drawn (note) SELECT 'seed ' || g FROM generate_series(1, 5) g;
    CREATE TABLE chain.scratch (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
    INSERT INTO chain.scratch (v) SELECT 'seed ' || g FROM generate_series(1, 5) g;
    """

/// The randomized workload: what exists now (so every statement it writes is valid) and the SQL of one step.
struct ChainWorkload {
    var random: SeededGenerator
    var kvIDs: [Int] = Array(1...40)
    var childIDs: [Int] = Array(1...40)
    var nextID = 1000
    var addedColumns: [String] = []
    var createdTables: [String] = []
    var nIsBigint = false
    var vIsText = false
    var round = 200

    init(seed: UInt64) { random = SeededGenerator(state: seed) }

    mutating func pick<T>(_ values: [T]) -> T { values[Int.random(in: 0..<values.count, using: &random)] }
    mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &random) < percent }
    mutating func fresh() -> Int { nextID += 1; return nextID }

    /// One transaction of 1–3 operations; the names say what it did (for the log). About one step in
    /// seven runs DDL (one command, among the others): enough for several in a run, few enough that
    /// most instants lie where a full covers them.
    mutating func step() -> (sql: String, names: [String]) {
        var sql: [String] = [], names: [String] = []
        let count = Int.random(in: 1...3, using: &random)
        let ddlAt = chance(14) ? Int.random(in: 0..<count, using: &random) : -1
        for index in 0..<count {
            let (statement, name) = index == ddlAt ? ddl() : dml()
            sql.append(statement)
            names.append(name)
        }
        return ("BEGIN;\n" + sql.joined(separator: ";\n") + ";\nCOMMIT", names)
    }

    mutating func dml() -> (String, String) {
        switch Int.random(in: 0..<11, using: &random) {
        case 0:
            let ids = (0..<Int.random(in: 1...4, using: &random)).map { _ in fresh() }
            kvIDs += ids
            return ("INSERT INTO chain.kv (id, v, n) VALUES " + ids.map { "(\($0), 'new \($0)', \($0 % 97))" }.joined(separator: ", "), "insert kv")
        case 1:
            guard !kvIDs.isEmpty else { return dml() }
            return ("UPDATE chain.kv SET v = v || '+', n = n + 1 WHERE id = \(pick(kvIDs))", "update kv")
        case 2:
            // A key-changing update; ON UPDATE CASCADE carries it into kv_child (decoded as its own change).
            guard !kvIDs.isEmpty else { return dml() }
            let old = pick(kvIDs), new = fresh()
            kvIDs = kvIDs.map { $0 == old ? new : $0 }
            return ("UPDATE chain.kv SET id = \(new) WHERE id = \(old)", "key change kv")
        case 3:
            guard kvIDs.count > 5 else { return dml() }
            let victim = pick(kvIDs)
            kvIDs.removeAll { $0 == victim }
            return ("DELETE FROM chain.kv WHERE id = \(victim)", "delete kv (cascades)")
        case 4:
            guard !kvIDs.isEmpty else { return dml() }
            let id = fresh()
            childIDs.append(id)
            return ("INSERT INTO chain.kv_child VALUES (\(id), \(pick(kvIDs)), 'child \(id)')", "insert kv_child")
        case 5:
            // Partitioned: this year, years back, and the DEFAULT partition (a clock-skewed future row).
            let years = pick([0, 1, 3, 8, -4])
            return ("INSERT INTO audit.events (action, \"timestamp\") SELECT 'chain ' || g, localtimestamp - interval '\(years) years' - g * interval '1 minute' FROM generate_series(1, \(Int.random(in: 1...3, using: &random))) g", "insert audit.events")
        case 6:
            // Moves a row across partitions: its key (id, "timestamp") changes.
            return ("UPDATE audit.events SET \"timestamp\" = \"timestamp\" - interval '1 year' WHERE id = (SELECT id FROM audit.events ORDER BY id LIMIT 1 OFFSET \(Int.random(in: 0...200, using: &random)))", "move audit.events row")
        case 7:
            return ("DELETE FROM audit.events WHERE id IN (SELECT id FROM audit.events ORDER BY id LIMIT 2 OFFSET \(Int.random(in: 0...200, using: &random)))", "delete audit.events")
        case 8:
            // The free-standing sequence, through the DEFAULT and by an explicit nextval(). Rows it fed are never
            // deleted: a value drawn after the newest heartbeat is only seen in the rows (README).
            return (chance(50) ? "INSERT INTO chain.drawn (note) VALUES ('drawn'), ('drawn')"
                               : "INSERT INTO chain.drawn_too (id, k) VALUES (nextval('chain.free_seq'), \(Int.random(in: 0...9, using: &random)))",
                    "nextval free_seq")
        case 9:
            let restart = chance(50)
            return ("TRUNCATE chain.scratch\(restart ? " RESTART IDENTITY" : ""); INSERT INTO chain.scratch (v) VALUES ('after truncate'), ('and one more')",
                    "truncate\(restart ? " restart identity" : "")")
        default:
            round += 1
            return (Self.sharedWorkload(round: round), "shared workload")
        }
    }

    mutating func ddl() -> (String, String) {
        switch Int.random(in: 0..<6, using: &random) {
        case 0:
            let column = "c\(fresh())"
            addedColumns.append(column)
            return ("ALTER TABLE chain.kv ADD COLUMN \(column) int DEFAULT \(Int.random(in: 1...9, using: &random))", "add column")
        case 1:
            guard !addedColumns.isEmpty else { return ddl() }
            let column = pick(addedColumns)
            addedColumns.removeAll { $0 == column }
            return ("ALTER TABLE chain.kv DROP COLUMN \(column)", "drop column")
        case 2:
            vIsText.toggle()
            return (vIsText ? "ALTER TABLE chain.kv ALTER COLUMN v TYPE text USING v || '*'" : "ALTER TABLE chain.kv ALTER COLUMN v TYPE varchar(200)",
                    "column type change")
        case 3:
            if nIsBigint { return ddl() }
            nIsBigint = true
            return ("ALTER TABLE chain.kv ALTER COLUMN n TYPE bigint", "column type change")
        case 4:
            let table = "chain.t\(fresh())"
            createdTables.append(table)
            return ("CREATE TABLE \(table) (id int PRIMARY KEY, note text); INSERT INTO \(table) SELECT g, 'row ' || g FROM generate_series(1, 3) g", "create table")
        default:
            guard !createdTables.isEmpty else { return ddl() }
            let table = pick(createdTables)
            createdTables.removeAll { $0 == table }
            return ("DROP TABLE \(table)", "drop table")
        }
    }

    /// Tool schemas, users and the shared shapes of `workloadSchemaSQL`, without the transaction
    /// control of `writeWorkload` (the step is one transaction).
    static func sharedWorkload(round: Int) -> String {
        """
        INSERT INTO sprint_15_value_proposition.tool_data (data, status) VALUES ('{"round": \(round)}', 'draft');
        UPDATE users.accounts SET full_name = 'round \(round) ' || left(full_name, 20) WHERE id IN (SELECT id FROM users.accounts ORDER BY id LIMIT 3 OFFSET \(round % 50));
        UPDATE public.big_docs SET note = 'round \(round)' WHERE id = 1;
        INSERT INTO public.no_key VALUES (\(round), 'kept'), (\(round), 'kept');
        DELETE FROM public.no_key WHERE a = \(round - 2) AND b = 'kept';
        INSERT INTO public.counted (note) VALUES ('round \(round)');
        INSERT INTO sprint_15_value_proposition.hypothesis_votes (hypothesis_id, vote)
            SELECT id, 1 FROM sprint_15_value_proposition.hypotheses ORDER BY id LIMIT 2 OFFSET \(round % 30);
        UPDATE sprint_24_fit_abc_analysis.tool_data SET status = ' In_Progress ', version = version + 1
            WHERE id = (SELECT id FROM sprint_24_fit_abc_analysis.tool_data ORDER BY id LIMIT 1 OFFSET \(round % 20))
        """
    }
}

/// One recorded instant: when (as PostgreSQL printed it, microseconds, UTC) and what the database held.
struct ChainInstant {
    var index: Int
    var at: String
    var after: String
    var fingerprint: ChainFingerprint
}

extension ChangeArchivalTests {
    @Suite struct WholeChainTests {
        /// Issue 9's acceptance: a seeded random workload with DDL sprinkled in, across two fulls and several
        /// incrementals (the CLI's own hourly pass, which takes a new full after DDL); ten random recorded
        /// instants restored with `restore --at` into fresh databases: each equal to its fingerprint, or
        /// refused up front (exit 64, target untouched) with a reason. `FTBACKUP_CHAIN_SEED` replays a run.
        @Test func randomInstantsAcrossTheWholeChainRestoreExactlyOrAreRefusedUpFront() async throws {
            let seed = ProcessInfo.processInfo.environment["FTBACKUP_CHAIN_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 1...999_999)
            print("whole-chain: seed \(seed) (replay with FTBACKUP_CHAIN_SEED=\(seed))")
            try await ArchivedDatabase.with(prepare: workloadSchemaSQL + ";\n" + chainSchemaSQL) { a in
                let (summary, problems) = try await WholeChainRun(archived: a, seed: seed).run()
                print(summary)
                #expect(problems.isEmpty, "seed \(seed):\n\(problems.joined(separator: "\n"))")
            }
        }
    }
}

/// The run behind the whole-chain test: workload, archival, then the restores and their verdicts.
struct WholeChainRun {
    let archived: ArchivedDatabase
    let seed: UInt64
    var steps = 30
    var restores = 10

    var conninfo: String { get throws { "\(try TestServer.dsn) dbname=\(archived.db.name)" } }

    func ftbackup(_ arguments: [String]) async throws -> FTBackupBinary.Outcome {
        try await FTBackupBinary.run(arguments + ["--repo", archived.repo.path])
    }

    func pass(_ type: String, log: inout [String]) async throws {
        let outcome = try await ftbackup(["backup", "--type", type, "--db", try conninfo])
        guard outcome.status == 0 else {
            throw FTBackupError(.failure, "backup --type \(type) failed (\(outcome.status)): \(outcome.stderr)")
        }
        let tookFull = outcome.stdout.contains("new full backup:")
        log.append("  backup --type \(type)\(tookFull ? " (took a new full after DDL)" : "")")
    }

    /// The database's clock after the commit, between two sleeps so no other commit shares the instant.
    func instant(index: Int, after: String) async throws -> ChainInstant {
        let s = archived.session
        let fingerprint = try await ChainFingerprint.take(s)
        try await Task.sleep(for: .milliseconds(3))
        let at = try await s.query("""
            SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t
            """).first!.requiredString("t")
        try await Task.sleep(for: .milliseconds(3))
        return ChainInstant(index: index, at: at, after: after, fingerprint: fingerprint)
    }

    func run() async throws -> (String, [String]) {
        var workload = ChainWorkload(seed: seed)
        var random = SeededGenerator(state: seed ^ 0xA5A5_A5A5)
        var log: [String] = []
        var instants: [ChainInstant] = []
        try await pass("full", log: &log)
        let secondFull = Int.random(in: steps / 3...(2 * steps) / 3, using: &random)
        for index in 0..<steps {
            let (sql, names) = workload.step()
            try await archived.session.execute(sql)
            log.append("step \(index): \(names.joined(separator: ", "))")
            instants.append(try await instant(index: index, after: names.joined(separator: ", ")))
            if index == secondFull { try await pass("full", log: &log) }
            else if Int.random(in: 0..<4, using: &random) == 0 { try await pass("incr", log: &log) }
        }
        try await pass("incr", log: &log)

        var chosen: [ChainInstant] = []
        var pool = instants
        for _ in 0..<min(restores, pool.count) { chosen.append(pool.remove(at: Int.random(in: 0..<pool.count, using: &random))) }
        chosen.sort { $0.index < $1.index }
        var exact: [Int] = [], refused: [String] = [], problems: [String] = []
        for instant in chosen {
            let verdict = try await restore(instant)
            switch verdict {
            case .exact: exact.append(instant.index)
            case .refused(let reason): refused.append("  step \(instant.index) (\(instant.at)): \(reason)")
            case .wrong(let problem): problems.append("step \(instant.index) (\(instant.at), after \(instant.after)): \(problem)")
            }
        }
        let summary = (["whole-chain: seed \(seed): \(chosen.count) instants restored: \(exact.count) exact, \(refused.count) refused, \(problems.count) wrong",
                        "exact: steps \(exact.map(String.init).joined(separator: ", "))", "refused:"]
                       + refused + ["workload:"] + log).joined(separator: "\n")
        return (summary, problems)
    }

    enum Verdict { case exact, refused(String), wrong(String) }

    /// `restore --at` into a fresh empty database, then the verdict: equal, refused up front, or wrong.
    func restore(_ instant: ChainInstant) async throws -> Verdict {
        try await TestServer.withDatabase(seeded: false) { target in
            let outcome = try await ftbackup(["restore", "--at", instant.at, "--target", "\(try TestServer.dsn) dbname=\(target.name)"])
            let t = try await target.connect()
            defer { t.close() }
            let reason = outcome.stderr.split(separator: "\n").filter { $0.hasPrefix("ftbackup: error:") }.joined(separator: " ")
            if outcome.status == 0 {
                let differences = instant.fingerprint.differences(try await ChainFingerprint.take(t))
                return differences.isEmpty ? .exact : .wrong("exit 0 but different: \(differences.prefix(8).joined(separator: "; "))")
            }
            let touched = try await t.query("""
                SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE \(CatalogSQL.userSchemaFilter) AND c.relkind <> 'i'
                """).first!.requiredInt("n") + (try await t.query("""
                SELECT count(*) AS n FROM pg_namespace n WHERE \(CatalogSQL.userSchemaFilter) AND n.nspname <> 'public'
                """).first!.requiredInt("n"))
            if outcome.status == 64 && touched == 0 && !reason.isEmpty { return .refused(reason) }
            return .wrong("exit \(outcome.status), target \(touched == 0 ? "untouched" : "touched (\(touched) objects)"): \(outcome.stderr.suffix(1200))")
        }
    }
}

extension ChangeArchivalTests.WholeChainTests {
    /// Found by the whole-chain test: TRUNCATE … RESTART IDENTITY after a heartbeat restarts the table's
    /// sequences; restore --at a time after it must not put them back to the older heartbeat's values.
    @Test func truncateRestartIdentityAfterAHeartbeatRestartsTheSequence() async throws {
        try await ArchivedDatabase.with(prepare: chainSchemaSQL) { a in
            _ = try await a.full()
            try await a.session.execute("INSERT INTO chain.scratch (v) SELECT 'more' FROM generate_series(1, 10)")
            _ = try await a.incremental()  // its heartbeat records chain.scratch_id_seq at 15
            try await a.session.execute("TRUNCATE chain.scratch RESTART IDENTITY; INSERT INTO chain.scratch (v) VALUES ('a'), ('b')")
            let expected = try await ChainFingerprint.take(a.session)
            let (at, _) = try await a.instant()
            _ = try await a.incremental()
            let restored = try await a.restore(at: at) { try await ChainFingerprint.take($0) }
            #expect(expected.differences(restored) == [])
        }
    }
}
