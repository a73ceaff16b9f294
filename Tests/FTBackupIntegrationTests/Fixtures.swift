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
    \#(triggersSQL)
    """#

    /// A cascading foreign key, row-level security (forced), a BEFORE trigger that rewrites a column and an
    /// AFTER trigger enabled ALWAYS (fires even under session_replication_role = replica). Neither trigger
    /// is idempotent: a restore that fired one would add a second '!' or a second log row.
    static let triggersSQL = #"""
    CREATE TABLE public.parents (id int PRIMARY KEY, name text);
    CREATE TABLE public.children (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES public.parents(id) ON DELETE CASCADE,
                                  tenant text, note text);
    CREATE TABLE public.children_log (n bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, child_id int, note text);
    CREATE FUNCTION public.children_exclaim() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN NEW.note := NEW.note || '!'; RETURN NEW; END $$;
    CREATE TRIGGER children_exclaim BEFORE INSERT OR UPDATE ON public.children FOR EACH ROW EXECUTE FUNCTION public.children_exclaim();
    CREATE FUNCTION public.children_logged() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO public.children_log (child_id, note) VALUES (NEW.id, NEW.note); RETURN NULL; END $$;
    CREATE TRIGGER children_logged AFTER INSERT ON public.children FOR EACH ROW EXECUTE FUNCTION public.children_logged();
    ALTER TABLE public.children ENABLE ALWAYS TRIGGER children_logged;
    ALTER TABLE public.children ENABLE ROW LEVEL SECURITY;
    ALTER TABLE public.children FORCE ROW LEVEL SECURITY;
    CREATE POLICY tenant_only ON public.children USING (tenant = current_setting('app.tenant', true));
    INSERT INTO public.parents SELECT g, 'parent ' || g FROM generate_series(1, 20) g;
    INSERT INTO public.children SELECT g, 1 + g % 20, 't' || g % 3, 'child ' || g FROM generate_series(1, 200) g;
    DELETE FROM public.parents WHERE id = 7;
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
