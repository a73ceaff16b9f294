import Foundation
@testable import FTBackupKit

/// Shapes a production Fast Track database grows that retention must be exact on, added to a test
/// database on top of the seeded template (whatever shapes the template already has): audit.events
/// partitioned by year with a DEFAULT partition holding future-dated rows; a chain of cascading
/// foreign keys three tables deep (multi-column and self-referencing ones among them) with an
/// identity GENERATED ALWAYS and a stored generated column; a foreign key from another schema that
/// blocks and one that cascades; audit_log cascading from tool_data; application triggers that add
/// and rewrite rows.
enum LifecycleShapes {
    static let partitionedAuditSQL = #"""
    DO $$
    DECLARE y int;
    BEGIN
      IF (SELECT relkind FROM pg_class WHERE oid = 'audit.events'::regclass) <> 'p' THEN
        ALTER TABLE audit.events RENAME TO events_flat;
        CREATE TABLE audit.events (LIKE audit.events_flat INCLUDING DEFAULTS) PARTITION BY RANGE ("timestamp");
        ALTER TABLE audit.events ADD PRIMARY KEY (id, "timestamp");
        FOR y IN extract(year FROM now())::int - 10 .. extract(year FROM now())::int + 1 LOOP
          EXECUTE format('CREATE TABLE audit.%I PARTITION OF audit.events FOR VALUES FROM (%L) TO (%L)',
                         'events_' || y, make_date(y, 1, 1), make_date(y + 1, 1, 1));
        END LOOP;
        CREATE TABLE audit.events_default PARTITION OF audit.events DEFAULT;
        INSERT INTO audit.events SELECT * FROM audit.events_flat WHERE "timestamp" IS NOT NULL;
        DROP TABLE audit.events_flat;
      END IF;
      -- Clock-skewed rows from the future (DEFAULT partition) and rows older than every partition.
      INSERT INTO audit.events (id, action, "timestamp")
        SELECT gen_random_uuid(), 'skewed', localtimestamp + interval '2 years' + g * interval '5 days' FROM generate_series(1, 120) g;
      INSERT INTO audit.events (id, action, "timestamp")
        SELECT gen_random_uuid(), 'ancient', timestamp '2003-01-01' + g * interval '1 day' FROM generate_series(1, 40) g;
    END $$;
    """#

    static let closureSQL = #"""
    CREATE TABLE sprint_15_value_proposition.fx_votes (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      hypothesis_id uuid NOT NULL REFERENCES sprint_15_value_proposition.hypotheses(id) ON DELETE CASCADE,
      parent_vote bigint REFERENCES sprint_15_value_proposition.fx_votes(id) ON DELETE CASCADE,
      weight int NOT NULL,
      weighted int GENERATED ALWAYS AS (weight * 2) STORED,
      UNIQUE (id, hypothesis_id));
    INSERT INTO sprint_15_value_proposition.fx_votes (hypothesis_id, weight)
      SELECT h.id, g FROM sprint_15_value_proposition.hypotheses h, generate_series(1, 2) g;
    UPDATE sprint_15_value_proposition.fx_votes v SET parent_vote = v.id - 1
      WHERE v.id % 2 = 0 AND EXISTS (SELECT 1 FROM sprint_15_value_proposition.fx_votes p WHERE p.id = v.id - 1 AND p.hypothesis_id = v.hypothesis_id);
    CREATE TABLE sprint_15_value_proposition."fx Vote Notes" (
      vote_id bigint, hypothesis_id uuid, note text,
      FOREIGN KEY (vote_id, hypothesis_id) REFERENCES sprint_15_value_proposition.fx_votes(id, hypothesis_id) ON DELETE CASCADE);
    INSERT INTO sprint_15_value_proposition."fx Vote Notes"
      SELECT id, hypothesis_id, E'note\twith tab ' || id FROM sprint_15_value_proposition.fx_votes WHERE id % 3 = 0;
    UPDATE sprint_15_value_proposition.audit_log a SET tool_data_id = NULL
      WHERE tool_data_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM sprint_15_value_proposition.tool_data t WHERE t.id = a.tool_data_id);
    ALTER TABLE sprint_15_value_proposition.audit_log ADD CONSTRAINT fx_audit_tool_data
      FOREIGN KEY (tool_data_id) REFERENCES sprint_15_value_proposition.tool_data(id) ON DELETE CASCADE;
    -- Another schema: one reference that blocks (NO ACTION) and one that cascades.
    CREATE TABLE organizations.fx_featured (id serial PRIMARY KEY,
      tool_data_id uuid NOT NULL REFERENCES sprint_15_value_proposition.tool_data(id));
    INSERT INTO organizations.fx_featured (tool_data_id)
      SELECT id FROM sprint_15_value_proposition.tool_data
      WHERE status = 'completed' AND completed_at < now() - interval '2 years' ORDER BY id LIMIT 3;
    CREATE TABLE tool_access.fx_shares (token text PRIMARY KEY,
      tool_data_id uuid NOT NULL REFERENCES sprint_24_fit_abc_analysis.tool_data(id) ON DELETE CASCADE);
    INSERT INTO tool_access.fx_shares
      SELECT md5(id::text), id FROM sprint_24_fit_abc_analysis.tool_data WHERE status = 'completed' ORDER BY id LIMIT 40;
    -- Application triggers: one adds an audit row per insert, one rewrites a column.
    CREATE FUNCTION sprint_15_value_proposition.fx_audit_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO sprint_15_value_proposition.audit_log (tool_data_id, action, "timestamp") VALUES (NEW.id, 'created', now());
      RETURN NEW;
    END $$;
    CREATE TRIGGER fx_audit_insert AFTER INSERT ON sprint_15_value_proposition.tool_data
      FOR EACH ROW EXECUTE FUNCTION sprint_15_value_proposition.fx_audit_insert();
    CREATE FUNCTION sprint_24_fit_abc_analysis.fx_touch() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
    CREATE TRIGGER fx_touch BEFORE INSERT OR UPDATE ON sprint_24_fit_abc_analysis.tool_data
      FOR EACH ROW EXECUTE FUNCTION sprint_24_fit_abc_analysis.fx_touch();
    CREATE FUNCTION sprint_15_value_proposition.fx_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO audit.events (id, action, "timestamp") VALUES (gen_random_uuid(), 'deleted hypothesis', localtimestamp);
      RETURN OLD;
    END $$;
    CREATE TRIGGER fx_on_delete AFTER DELETE ON sprint_15_value_proposition.hypotheses
      FOR EACH ROW EXECUTE FUNCTION sprint_15_value_proposition.fx_on_delete();
    """#

    static func add(_ session: DatabaseSession) async throws {
        try await session.execute(partitionedAuditSQL)
        try await session.execute(closureSQL)
    }
}
