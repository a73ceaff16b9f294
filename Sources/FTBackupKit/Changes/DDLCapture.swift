import Foundation

/// DDL in the change stream. Logical decoding carries no DDL, so `setup` installs an event trigger
/// (`ddl_command_end` and `sql_drop`) whose function inserts one row per command into
/// `ftbackup.ddl_log`. That table is in the FOR ALL TABLES publication, so each row is decoded at the
/// exact LSN of the transaction that ran the DDL: the hourly pass sees it and takes a new full, and
/// `restore --at` refuses a time that would replay across it (see `DDLRefusal`). ftbackup's own
/// schema and temporary objects are not recorded.
///
/// The triggers are `ENABLE ALWAYS`, so they fire with `session_replication_role = replica` too
/// (migration and bulk-load scripts set it). A DROP records the objects it names and one cascaded
/// object for each other schema a CASCADE reaches. A command whose old location is not known afterwards (`SET SCHEMA`,
/// GRANT/REVOKE and default privileges) is recorded without a schema: it blocks every restore.
public enum DDLCapture {
    public static let table = "ddl_log"
    public static let trigger = "ftbackup_ddl"
    public static let function = "record_ddl"

    /// The trigger function's body (setup replaces an older one with it).
    static func functionBody(_ session: DatabaseSession) throws -> String {
        let schema = try session.escapeIdentifier(ChangeArchivalNames.schema)
        let log = "\(schema).\(try session.escapeIdentifier(table))"
        let own = try session.escapeLiteral(ChangeArchivalNames.schema)
        return """
            DECLARE r record; moved boolean; seen text[] := '{}';
            BEGIN
                IF TG_EVENT = 'sql_drop' THEN
                    -- The objects the command named, then one cascaded object for each further schema a
                    -- CASCADE reached (and cascaded schemas): every schema the drop changed is named.
                    FOR r IN SELECT * FROM pg_event_trigger_dropped_objects() WITH ORDINALITY AS d
                             WHERE NOT d.is_temporary AND coalesce(d.schema_name, '') <> 'pg_toast'
                             ORDER BY d.original DESC, d.ordinality LOOP
                        CONTINUE WHEN coalesce(r.schema_name, '') = \(own) OR (r.object_type = 'schema' AND r.object_identity = \(own));
                        CONTINUE WHEN NOT r.original AND ((r.schema_name IS NULL AND r.object_type <> 'schema') OR r.schema_name = ANY(seen));
                        seen := seen || r.schema_name;
                        INSERT INTO \(log) (command_tag, object_type, object_identity, schema_name, statement)
                        VALUES (TG_TAG, r.object_type, r.object_identity, r.schema_name, current_query());
                    END LOOP;
                ELSE
                    -- SET SCHEMA: only the new schema is known here, so the row names none (it blocks every restore).
                    moved := TG_TAG LIKE 'ALTER %' AND current_query() ~* 'set\\s+schema';
                    FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
                        CONTINUE WHEN NOT moved AND (coalesce(r.schema_name, '') = \(own) OR coalesce(r.schema_name, '') LIKE 'pg\\_temp%'
                                   OR (r.object_type = 'schema' AND r.object_identity = \(own)));
                        INSERT INTO \(log) (command_tag, object_type, object_identity, schema_name, statement)
                        VALUES (r.command_tag, r.object_type, r.object_identity, CASE WHEN moved THEN NULL ELSE r.schema_name END, current_query());
                    END LOOP;
                END IF;
            END
            """
    }

    /// The statements `setup` runs (idempotent; they bring an older installation up to date). The
    /// function is SECURITY DEFINER, owned by the superuser running setup, because it runs as whoever
    /// issues the DDL (the application's role), who has no right to write into `ftbackup`; its
    /// search_path is pinned.
    static func installSQL(_ session: DatabaseSession, existing: [String]) throws -> String {
        let schema = try session.escapeIdentifier(ChangeArchivalNames.schema)
        let log = "\(schema).\(try session.escapeIdentifier(table))"
        let fn = "\(schema).\(try session.escapeIdentifier(function))"
        var sql = """
            CREATE TABLE IF NOT EXISTS \(log) (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                at timestamptz NOT NULL DEFAULT clock_timestamp(),
                command_tag text NOT NULL,
                object_type text,
                object_identity text,
                schema_name text,
                statement text
            );
            CREATE OR REPLACE FUNCTION \(fn)() RETURNS event_trigger LANGUAGE plpgsql
                SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS \(try session.escapeLiteral(try functionBody(session)));
            REVOKE ALL ON FUNCTION \(fn)() FROM PUBLIC
            """
        for (name, event) in zip(triggers, ["ddl_command_end", "sql_drop"]) {
            let quoted = try session.escapeIdentifier(name)
            if !existing.contains(name) {
                sql += ";\nCREATE EVENT TRIGGER \(quoted) ON \(event) EXECUTE FUNCTION \(fn)()"
            }
            sql += ";\nALTER EVENT TRIGGER \(quoted) ENABLE ALWAYS"
        }
        return sql
    }

    /// The names of the event triggers `setup` creates (one per event).
    public static var triggers: [String] { [trigger, trigger + "_drop"] }

    /// The event triggers of ours that exist in the session's database.
    static func existingTriggers(_ session: DatabaseSession) async throws -> [String] {
        try await session.query("SELECT evtname::text AS name FROM pg_event_trigger WHERE evtname = ANY($1::text[]) ORDER BY 1",
                                [PostgresArray.text(triggers)]).rows.map { try $0.requiredString("name") }
    }

    /// Whether the installation is complete and current: both triggers, firing always (replica
    /// sessions too), calling a function with this version's body.
    static func isCurrent(_ session: DatabaseSession) async throws -> Bool {
        let enabled = try await session.query("""
            SELECT count(*) AS n FROM pg_event_trigger WHERE evtname = ANY($1::text[]) AND evtenabled = 'A'
            """, [PostgresArray.text(triggers)]).first!.requiredInt("n")
        let body = try await session.query("""
            SELECT p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname = $2
            """, [ChangeArchivalNames.schema, function]).first?.string("prosrc")
        let current = try functionBody(session)
        return enabled == triggers.count && body == current
    }
}
