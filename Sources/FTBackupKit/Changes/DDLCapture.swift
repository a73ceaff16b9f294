import Foundation

/// DDL in the change stream. Logical decoding carries no DDL, so `setup` installs an event trigger
/// (`ddl_command_end` and `sql_drop`) whose function inserts one row per command into
/// `ftbackup.ddl_log`. That table is in the FOR ALL TABLES publication, so each row is decoded at the
/// exact LSN of the transaction that ran the DDL: the hourly pass sees it and takes a new full, and
/// `restore --at` refuses a time that would replay across it (see `DDLRefusal`). ftbackup's own
/// schema and temporary objects are not recorded.
public enum DDLCapture {
    public static let table = "ddl_log"
    public static let trigger = "ftbackup_ddl"
    public static let function = "record_ddl"

    /// The statements `setup` runs (idempotent). The function is SECURITY DEFINER, owned by the
    /// superuser running setup, because it runs as whoever issues the DDL (the application's role),
    /// who has no right to write into `ftbackup`; its search_path is pinned.
    static func installSQL(_ session: DatabaseSession, triggerExists: Bool) throws -> String {
        let schema = try session.escapeIdentifier(ChangeArchivalNames.schema)
        let log = "\(schema).\(try session.escapeIdentifier(table))"
        let fn = "\(schema).\(try session.escapeIdentifier(function))"
        let own = try session.escapeLiteral(ChangeArchivalNames.schema)
        let body = """
            DECLARE r record;
            BEGIN
                IF TG_EVENT = 'sql_drop' THEN
                    FOR r IN SELECT * FROM pg_event_trigger_dropped_objects() WHERE original AND NOT is_temporary LOOP
                        CONTINUE WHEN coalesce(r.schema_name, '') = \(own) OR (r.object_type = 'schema' AND r.object_identity = \(own));
                        INSERT INTO \(log) (command_tag, object_type, object_identity, schema_name, statement)
                        VALUES (TG_TAG, r.object_type, r.object_identity, r.schema_name, current_query());
                    END LOOP;
                ELSE
                    FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
                        CONTINUE WHEN coalesce(r.schema_name, '') = \(own) OR coalesce(r.schema_name, '') LIKE 'pg\\_temp%'
                                   OR (r.object_type = 'schema' AND r.object_identity = \(own));
                        INSERT INTO \(log) (command_tag, object_type, object_identity, schema_name, statement)
                        VALUES (r.command_tag, r.object_type, r.object_identity, r.schema_name, current_query());
                    END LOOP;
                END IF;
            END
            """
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
                SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS \(try session.escapeLiteral(body));
            REVOKE ALL ON FUNCTION \(fn)() FROM PUBLIC
            """
        if !triggerExists {
            let trigger = try session.escapeIdentifier(Self.trigger)
            let dropTrigger = try session.escapeIdentifier(Self.trigger + "_drop")
            sql += """
                ;
                CREATE EVENT TRIGGER \(trigger) ON ddl_command_end EXECUTE FUNCTION \(fn)();
                CREATE EVENT TRIGGER \(dropTrigger) ON sql_drop EXECUTE FUNCTION \(fn)()
                """
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
}

/// One DDL command as `ftbackup.ddl_log` recorded it, with the commit that carried it.
public struct RecordedDDL: Codable, Sendable, Equatable {
    public var commandTag: String
    public var objectType: String?
    public var objectIdentity: String?
    public var schema: String?
    public var statement: String?
    /// The commit LSN and time of the transaction that ran it: replay from a full whose consistent
    /// point is at or before this LSN, up to a time at or after this time, would cross it.
    public var commitLSN: String
    public var commitTime: Date

    /// "ALTER TABLE public.t (table)".
    public var description: String {
        "\(commandTag) \(objectIdentity ?? "?")\(objectType.map { " (\($0))" } ?? "")"
    }

    /// Whether a restore of `schemas` (empty: the whole database) is affected: a whole-database
    /// restore by any DDL; a `--schema` restore only by DDL on an object in, or being, a chosen schema.
    func affects(schemas: [String]) -> Bool {
        guard !schemas.isEmpty else { return true }
        if let schema, schemas.contains(schema) { return true }
        return objectType == "schema" && objectIdentity.map { schemas.contains($0) || schemas.contains(unquoted($0)) } == true
    }

    private func unquoted(_ name: String) -> String {
        name.hasPrefix("\"") && name.hasSuffix("\"") && name.count >= 2
            ? String(name.dropFirst().dropLast()).replacingOccurrences(of: "\"\"", with: "\"") : name
    }

    /// Reads a decoded `ddl_log` row (values by column name; commit filled in later).
    static func fromRow(_ relation: RelationDescription, _ values: [TupleValue]) -> RecordedDDL? {
        func value(_ name: String) -> String? {
            guard let index = relation.columns.firstIndex(where: { $0.name == name }), index < values.count,
                  case .text(let text) = values[index] else { return nil }
            return text
        }
        guard let tag = value("command_tag") else { return nil }
        return RecordedDDL(commandTag: tag, objectType: value("object_type"), objectIdentity: value("object_identity"),
                           schema: value("schema_name"), statement: value("statement").map { String($0.prefix(500)) },
                           commitLSN: "0/0", commitTime: Date(timeIntervalSince1970: 0))
    }
}
