import Foundation
@testable import FTBackupKit

/// Objects beyond the Fast Track design that a faithful backup and restore must handle.
enum Fixtures {
    static let fidelitySQL = #"""
    CREATE TYPE public.mood AS ENUM ('happy', 'sad', 'it''s complicated');
    CREATE TABLE public.events_by_month (id bigint, at timestamptz NOT NULL, note text) PARTITION BY RANGE (at);
    CREATE TABLE public.events_2025 PARTITION OF public.events_by_month FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    CREATE TABLE public.events_2026 PARTITION OF public.events_by_month FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
    INSERT INTO public.events_by_month SELECT g, timestamptz '2025-06-01' + g * interval '1 hour', 'n' || g FROM generate_series(1, 8000) g;
    CREATE TABLE public.no_primary_key (a int, b text);
    INSERT INTO public.no_primary_key VALUES (1, 'x'), (1, 'x'), (2, NULL), (NULL, '');
    CREATE UNLOGGED TABLE public.scratch_unlogged (id int PRIMARY KEY, v text);
    INSERT INTO public.scratch_unlogged SELECT g, md5(g::text) FROM generate_series(1, 500) g;
    CREATE SCHEMA "Odd.Schema Name";
    CREATE TABLE "Odd.Schema Name"."Mixed Table.Name" ("Id" int PRIMARY KEY, "Some Value" text, feeling public.mood);
    INSERT INTO "Odd.Schema Name"."Mixed Table.Name" VALUES (1, E'tab\there\nnewline \\ back', 'it''s complicated'), (2, NULL, 'happy');
    CREATE TABLE public.big_json (id int PRIMARY KEY, doc jsonb);
    INSERT INTO public.big_json SELECT 1, jsonb_build_object('blob', (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 40000) g));
    CREATE TABLE public.computed (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, price numeric(12,2), qty int,
                                  total numeric GENERATED ALWAYS AS (price * qty) STORED);
    INSERT INTO public.computed (price, qty) SELECT g * 1.25, g FROM generate_series(1, 300) g;
    CREATE TABLE public.empty_one (id int PRIMARY KEY);
    CREATE TABLE "Odd.Schema Name".empty_two (x text);
    CREATE SEQUENCE public.never_called START 42;
    CREATE SEQUENCE public.far_ahead;
    SELECT setval('public.far_ahead', 1000000);
    CREATE TABLE public.small_ids (id int DEFAULT nextval('public.far_ahead')::int);
    INSERT INTO public.small_ids VALUES (1), (2);
    CREATE MATERIALIZED VIEW public.completed_per_tool AS
        SELECT 'sprint_15' AS tool, count(*) AS n FROM sprint_15_value_proposition.tool_data WHERE status = 'completed';
    """#

    static func addFidelityObjects(_ session: DatabaseSession) async throws {
        try await session.execute(fidelitySQL)
    }

    /// Every sequence's state, for comparing source and restore.
    static func sequenceStates(_ session: DatabaseSession) async throws -> [String] {
        try await session.query("""
            SELECT schemaname || '.' || sequencename || '=' || coalesce(last_value::text, 'null') AS s
            FROM pg_sequences ORDER BY 1
            """).rows.map { try $0.requiredString("s") }
    }

    /// `pg_dump --schema-only` text without its random \restrict keys, for comparing DDL.
    static func schemaDDL(_ database: ConnectionString, serverVersion: Int) throws -> String {
        let pgDump = try PostgresTools.path(of: "pg_dump", serverVersionNumber: serverVersion)
        let child = database.forChildProcess()
        var output: [UInt8] = []
        try PostgresTools.run(pgDump, ["--schema-only", "--no-password", "--dbname=\(child.conninfo)"],
                              environment: child.environment) { output.append(contentsOf: $0) }
        return String(decoding: output, as: UTF8.self).split(separator: "\n")
            .filter { !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }.joined(separator: "\n")
    }
}

/// A private repository folder for one test, removed afterwards.
struct TestRepository {
    let path: String
    var repository: Repository { .local(path) }

    static func with<T>(_ body: (TestRepository) async throws -> T) async throws -> T {
        let folder = NSTemporaryDirectory() + "ftbackup-test-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        return try await body(TestRepository(path: folder + "/repo"))
    }
}

extension BackupOptions {
    static func test(_ db: TestDatabase, _ repo: TestRepository, jobs: Int = 2) throws -> BackupOptions {
        BackupOptions(database: db.connectionString, repositoryPath: repo.path,
                      policy: try PolicyLoader.parse(PolicyLoader.builtInDefault, source: "(test)"), jobs: jobs, showProgress: false)
    }
}
