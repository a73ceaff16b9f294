-- =====================================================================
-- Fast Track demo/test database: schema (DDL only)
--
-- Follows docs "Database Schema Design" (shared schemas + one schema per
-- tool, sprint_NN_slug).  Runs as ONE multi-statement string (PQexec) on
-- PostgreSQL 15, into an empty database, as a superuser.
--
-- Extras beyond the reference design (to exercise backup fidelity):
--   users.accounts.last_seen_at                      timestamptz
--   users.profiles.avatar_thumbnail                  bytea
--   tags text[] on sprint_01/02/15/29 tool_data      text[]
--   sprint_22_unit_economics.tool_data.ltv_estimate  numeric (unbounded)
--   sprint_24_fit_abc_analysis.tool_data.team_fit_score numeric(12,2)
--   sprint_29_digital_heart.attachments              table (identity + bytea)
--   audit.events                                     PARTITION BY RANGE ("timestamp"):
--                                                    one partition per year, DEFAULT,
--                                                    PRIMARY KEY (id, "timestamp")
--   sprint_15_value_proposition.hypothesis_votes     2 FKs from tool_data, identity
--                                                    GENERATED ALWAYS, ON DELETE CASCADE
--   sprint_24_fit_abc_analysis.team_assessments.fit_total  STORED generated column
--   sprint_24_fit_abc_analysis.assessment_actions    two-column FK, ON DELETE CASCADE
--   organizations.featured_canvases                  cross-schema FK into a tool_data (NO ACTION)
--   tool_access.shared_links                         cross-schema FK into a tool_data (CASCADE)
--   users.sessions_cache                             UNLOGGED table
-- Created by fasttrack_data.sql after the data is in (so the data stays
-- deterministic): the audit_log -> tool_data FKs of sprint_15/sprint_24
-- (ON DELETE CASCADE), application triggers, the materialized view
-- organizations.tool_usage_summary.
-- =====================================================================

-- No extensions needed: gen_random_uuid() is core since PostgreSQL 13.

-- ---------------------------------------------------------------------
-- users
-- ---------------------------------------------------------------------
CREATE SCHEMA users;

CREATE TABLE users.accounts (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  email VARCHAR(255) UNIQUE NOT NULL,
  password_hash VARCHAR(255),
  full_name VARCHAR(255),
  role VARCHAR(50) DEFAULT 'user',
  organization_id UUID,
  created_at TIMESTAMP DEFAULT NOW(),
  updated_at TIMESTAMP DEFAULT NOW(),
  last_login_at TIMESTAMP,
  last_seen_at TIMESTAMPTZ                        -- extra: timestamptz
);

CREATE TABLE users.profiles (
  user_id UUID PRIMARY KEY REFERENCES users.accounts(id),
  avatar_url TEXT,
  timezone VARCHAR(50),
  language VARCHAR(10) DEFAULT 'en',
  preferences JSONB DEFAULT '{}'::jsonb,
  avatar_thumbnail BYTEA                          -- extra: small PNG bytes
);

-- ---------------------------------------------------------------------
-- organizations
-- ---------------------------------------------------------------------
CREATE SCHEMA organizations;

CREATE TABLE organizations.companies (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  name VARCHAR(255) NOT NULL,
  slug VARCHAR(100) UNIQUE,
  industry VARCHAR(100),
  size VARCHAR(50),
  created_at TIMESTAMP DEFAULT NOW(),
  settings JSONB DEFAULT '{}'::jsonb
);

CREATE TABLE organizations.teams (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  organization_id UUID REFERENCES organizations.companies(id),
  name VARCHAR(255),
  lead_user_id UUID REFERENCES users.accounts(id),
  members JSONB -- Array of user IDs
);

-- ---------------------------------------------------------------------
-- tool_access
-- ---------------------------------------------------------------------
CREATE SCHEMA tool_access;

CREATE TABLE tool_access.permissions (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID REFERENCES users.accounts(id),
  tool_slug VARCHAR(100),
  access_level VARCHAR(50), -- view, edit, admin
  granted_at TIMESTAMP DEFAULT NOW(),
  expires_at TIMESTAMP,
  granted_by UUID REFERENCES users.accounts(id)
);

CREATE TABLE tool_access.progress (
  user_id UUID REFERENCES users.accounts(id),
  tool_slug VARCHAR(100),
  status VARCHAR(50), -- not_started, in_progress, completed
  progress_percentage INTEGER DEFAULT 0,
  last_accessed_at TIMESTAMP,
  completed_at TIMESTAMP,
  PRIMARY KEY (user_id, tool_slug)
);

-- ---------------------------------------------------------------------
-- audit (global)
-- ---------------------------------------------------------------------
CREATE SCHEMA audit;

-- Partitioned by calendar year, as production's audit.events grew to be:
-- one partition per year from 9 years ago to next year (relative to the
-- year the database is seeded in, since the data is relative to now()),
-- plus a DEFAULT partition that catches rows dated past next year (client
-- clock skew).  A primary key on a partitioned table must contain the
-- partition key, hence PRIMARY KEY (id, "timestamp"); a primary key forbids
-- NULL, so "timestamp" is NOT NULL here (the reference design has it
-- nullable).  We chose the key over NULL-timestamp rows: without a primary
-- key (a mere unique index on (id, "timestamp") allows NULLs) the table has
-- no replica identity, and with the publication change archival needs,
-- every UPDATE/DELETE on it would fail unless it were REPLICA IDENTITY FULL.
CREATE TABLE audit.events (
  id UUID NOT NULL DEFAULT gen_random_uuid(),
  user_id UUID REFERENCES users.accounts(id),
  organization_id UUID,
  tool_slug VARCHAR(100),
  action VARCHAR(100),
  entity_type VARCHAR(100),
  entity_id UUID,
  changes JSONB,
  ip_address INET,
  user_agent TEXT,
  timestamp TIMESTAMP NOT NULL DEFAULT NOW(),
  PRIMARY KEY (id, "timestamp")
) PARTITION BY RANGE ("timestamp");

DO $$
DECLARE
  y int;
  this_year int := extract(year FROM localtimestamp)::int;
BEGIN
  FOR y IN this_year - 9 .. this_year + 1 LOOP
    EXECUTE format('CREATE TABLE audit.%I PARTITION OF audit.events FOR VALUES FROM (%L) TO (%L)',
                   'events_' || y, make_date(y, 1, 1)::timestamp, make_date(y + 1, 1, 1)::timestamp);
  END LOOP;
END
$$;
CREATE TABLE audit.events_default PARTITION OF audit.events DEFAULT;

-- partitioned indexes: each partition gets its own, attached to these
CREATE INDEX idx_audit_user ON audit.events(user_id, timestamp DESC);
CREATE INDEX idx_audit_org ON audit.events(organization_id, timestamp DESC);
CREATE INDEX idx_audit_tool ON audit.events(tool_slug, timestamp DESC);

-- =====================================================================
-- Tool schemas with non-standard tool_data (explicit DDL)
-- =====================================================================

-- Sprint 00: WOOP (own columns, no data/version/submitted_at/completed_at)
CREATE SCHEMA sprint_00_woop;

CREATE TABLE sprint_00_woop.tool_data (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID REFERENCES users.accounts(id),
  organization_id UUID REFERENCES organizations.companies(id),
  wish TEXT,
  outcome TEXT,
  obstacle TEXT,
  plan TEXT,
  status VARCHAR(50) DEFAULT 'draft',
  created_at TIMESTAMP DEFAULT NOW(),
  updated_at TIMESTAMP DEFAULT NOW()
);

-- Sprint 02: Dream (standard columns + link to Know Thyself, no FK by design)
CREATE SCHEMA sprint_02_dream;

CREATE TABLE sprint_02_dream.tool_data (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID REFERENCES users.accounts(id),
  organization_id UUID REFERENCES organizations.companies(id),
  data JSONB,
  status VARCHAR(50) DEFAULT 'draft',
  version INTEGER DEFAULT 1,
  created_at TIMESTAMP DEFAULT NOW(),
  updated_at TIMESTAMP DEFAULT NOW(),
  submitted_at TIMESTAMP,
  completed_at TIMESTAMP,
  -- application-level reference to sprint_01_know_thyself.tool_data(id)
  source_know_thyself_id UUID,
  company_dream TEXT,
  personal_alignment JSONB,
  tags TEXT[]                                     -- extra: text[]
);

-- Sprint 15: Value Proposition
CREATE SCHEMA sprint_15_value_proposition;

CREATE TABLE sprint_15_value_proposition.tool_data (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID REFERENCES users.accounts(id),
  organization_id UUID REFERENCES organizations.companies(id),
  data JSONB NOT NULL, -- Contains all VP canvas fields
  status VARCHAR(50) DEFAULT 'draft',
  version INTEGER DEFAULT 1,
  created_at TIMESTAMP DEFAULT NOW(),
  updated_at TIMESTAMP DEFAULT NOW(),
  submitted_at TIMESTAMP,
  completed_at TIMESTAMP,
  tags TEXT[]                                     -- extra: text[]
);

CREATE TABLE sprint_15_value_proposition.hypotheses (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  tool_data_id UUID REFERENCES sprint_15_value_proposition.tool_data(id),
  hypothesis_text TEXT NOT NULL,
  category VARCHAR(50), -- gain, pain, jobs
  priority INTEGER,
  tested BOOLEAN DEFAULT FALSE,
  test_results JSONB
);
CREATE INDEX idx_sprint_15_value_proposition_hypotheses_tool_data
  ON sprint_15_value_proposition.hypotheses(tool_data_id);

-- extra: votes on hypotheses, two foreign keys away from tool_data, with an
-- identity key GENERATED ALWAYS
CREATE TABLE sprint_15_value_proposition.hypothesis_votes (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  hypothesis_id UUID NOT NULL REFERENCES sprint_15_value_proposition.hypotheses(id) ON DELETE CASCADE,
  voter_id UUID,
  vote SMALLINT,
  voted_at TIMESTAMPTZ
);
CREATE INDEX idx_sprint_15_value_proposition_hypothesis_votes_hypothesis
  ON sprint_15_value_proposition.hypothesis_votes(hypothesis_id);

-- Sprint 24: FIT & ABC Analysis
CREATE SCHEMA sprint_24_fit_abc_analysis;

CREATE TABLE sprint_24_fit_abc_analysis.tool_data (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID REFERENCES users.accounts(id),
  organization_id UUID REFERENCES organizations.companies(id),
  data JSONB,
  status VARCHAR(50) DEFAULT 'draft',
  version INTEGER DEFAULT 1,
  created_at TIMESTAMP DEFAULT NOW(),
  updated_at TIMESTAMP DEFAULT NOW(),
  submitted_at TIMESTAMP,
  completed_at TIMESTAMP,
  team_fit_score NUMERIC(12,2)                    -- extra: numeric(12,2)
);

CREATE TABLE sprint_24_fit_abc_analysis.team_assessments (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  tool_data_id UUID REFERENCES sprint_24_fit_abc_analysis.tool_data(id),
  team_member_name VARCHAR(255),
  role VARCHAR(255),
  fit_energy INTEGER, -- 1-10
  fit_skill INTEGER,
  fit_values INTEGER,
  fit_impact INTEGER,
  abc_rating CHAR(1), -- A, B, or C
  notes TEXT,
  action_items JSONB,
  -- extra: stored generated column (never copied; recomputed on load)
  fit_total INTEGER GENERATED ALWAYS AS
    (coalesce(fit_energy, 0) + coalesce(fit_skill, 0) + coalesce(fit_values, 0) + coalesce(fit_impact, 0)) STORED,
  UNIQUE (tool_data_id, id)                       -- target of a two-column FK
);
CREATE INDEX idx_sprint_24_fit_abc_analysis_team_assessments_tool_data
  ON sprint_24_fit_abc_analysis.team_assessments(tool_data_id);

-- extra: follow-up actions per assessed member, a two-column FK that
-- cascades (same tool_data_id as the assessment it belongs to)
CREATE TABLE sprint_24_fit_abc_analysis.assessment_actions (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  tool_data_id UUID NOT NULL,
  assessment_id UUID NOT NULL,
  action TEXT NOT NULL,
  due_on DATE,
  done BOOLEAN NOT NULL DEFAULT FALSE,
  FOREIGN KEY (tool_data_id, assessment_id)
    REFERENCES sprint_24_fit_abc_analysis.team_assessments (tool_data_id, id) ON DELETE CASCADE
);
CREATE INDEX idx_sprint_24_fit_abc_analysis_assessment_actions_assessment
  ON sprint_24_fit_abc_analysis.assessment_actions(tool_data_id, assessment_id);

-- =====================================================================
-- The remaining 26 tools share the standard tool_data layout
-- =====================================================================
DO $$
DECLARE
  s text;
BEGIN
  FOREACH s IN ARRAY ARRAY[
    'sprint_01_know_thyself',      'sprint_03_purpose',
    'sprint_04_core_values',       'sprint_05_vision_statement',
    'sprint_06_mission',           'sprint_07_swot_analysis',
    'sprint_08_stakeholder_map',   'sprint_09_customer_persona',
    'sprint_10_problem_statement', 'sprint_11_market_sizing',
    'sprint_12_competitor_analysis','sprint_13_business_model_canvas',
    'sprint_14_customer_journey',  'sprint_16_pricing_strategy',
    'sprint_17_go_to_market',      'sprint_18_okr_setting',
    'sprint_19_experiment_design', 'sprint_20_pitch_deck',
    'sprint_21_growth_loops',      'sprint_22_unit_economics',
    'sprint_23_hiring_plan',       'sprint_25_culture_code',
    'sprint_26_feedback_culture',  'sprint_27_decision_making',
    'sprint_28_energy_management', 'sprint_29_digital_heart']
  LOOP
    EXECUTE format('CREATE SCHEMA %I', s);
    EXECUTE format($ddl$
      CREATE TABLE %I.tool_data (
        id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id UUID REFERENCES users.accounts(id),
        organization_id UUID REFERENCES organizations.companies(id),
        data JSONB,
        status VARCHAR(50) DEFAULT 'draft',
        version INTEGER DEFAULT 1,
        created_at TIMESTAMP DEFAULT NOW(),
        updated_at TIMESTAMP DEFAULT NOW(),
        submitted_at TIMESTAMP,
        completed_at TIMESTAMP
      )$ddl$, s);
  END LOOP;
END
$$;

-- Extra columns on some standard tools
ALTER TABLE sprint_01_know_thyself.tool_data  ADD COLUMN tags TEXT[];
ALTER TABLE sprint_29_digital_heart.tool_data ADD COLUMN tags TEXT[];
ALTER TABLE sprint_22_unit_economics.tool_data
  ADD COLUMN ltv_estimate NUMERIC;               -- unbounded precision

-- Digital Heart: uploaded files (identity key + binary payload)
CREATE TABLE sprint_29_digital_heart.attachments (
  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  tool_data_id UUID NOT NULL REFERENCES sprint_29_digital_heart.tool_data(id),
  file_name TEXT NOT NULL,
  mime_type VARCHAR(100),
  content BYTEA,
  sha256 BYTEA,
  uploaded_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_sprint_29_digital_heart_attachments_tool_data
  ON sprint_29_digital_heart.attachments(tool_data_id);

-- =====================================================================
-- All 30 tools: audit_log, standard indexes, row-level security
-- =====================================================================
DO $$
DECLARE
  s text;
BEGIN
  FOR s IN
    SELECT nspname FROM pg_namespace
    WHERE nspname ~ '^sprint_[0-9]{2}_' ORDER BY nspname
  LOOP
    -- per-tool audit trail
    EXECUTE format($ddl$
      CREATE TABLE %I.audit_log (
        id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
        tool_data_id UUID,
        user_id UUID,
        action VARCHAR(100),
        changes JSONB,
        "timestamp" TIMESTAMP DEFAULT NOW()
      )$ddl$, s);

    -- standard indexes
    EXECUTE format('CREATE INDEX %I ON %I.tool_data(user_id)',         'idx_' || s || '_user',    s);
    EXECUTE format('CREATE INDEX %I ON %I.tool_data(organization_id)', 'idx_' || s || '_org',     s);
    EXECUTE format('CREATE INDEX %I ON %I.tool_data(status)',          'idx_' || s || '_status',  s);
    EXECUTE format('CREATE INDEX %I ON %I.tool_data(updated_at DESC)', 'idx_' || s || '_updated', s);

    -- GIN on the JSONB payload where the tool has one
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = s AND table_name = 'tool_data'
                 AND column_name = 'data') THEN
      EXECUTE format('CREATE INDEX %I ON %I.tool_data USING GIN(data)', 'idx_' || s || '_data_gin', s);
    END IF;

    -- row-level security
    EXECUTE format('ALTER TABLE %I.tool_data ENABLE ROW LEVEL SECURITY', s);
    EXECUTE format($ddl$
      CREATE POLICY user_access ON %I.tool_data
        FOR ALL
        USING (user_id = current_setting('app.user_id')::UUID)$ddl$, s);
    EXECUTE format($ddl$
      CREATE POLICY org_admin_access ON %I.tool_data
        FOR ALL
        USING (
          organization_id IN (
            SELECT organization_id FROM users.accounts
            WHERE id = current_setting('app.user_id')::UUID
            AND role = 'admin'
          )
        )$ddl$, s);
  END LOOP;
END
$$;

-- Specific JSON path index (Value Proposition canvas: customer segment)
CREATE INDEX idx_sprint_15_value_proposition_customer_segment
  ON sprint_15_value_proposition.tool_data ((data->>'customer_segment'));

-- =====================================================================
-- Extras that reach into tool schemas from the shared ones
-- =====================================================================

-- Canvases an organization features on its home page: a plain (NO ACTION)
-- foreign key from another schema into a tool's tool_data.  The generator
-- points these at old completed canvases, which therefore cannot be
-- archived while featured.
CREATE TABLE organizations.featured_canvases (
  organization_id UUID NOT NULL REFERENCES organizations.companies(id),
  tool_data_id UUID NOT NULL REFERENCES sprint_15_value_proposition.tool_data(id),
  featured_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  PRIMARY KEY (organization_id, tool_data_id)
);

-- Public share links to FIT & ABC analyses: a cross-schema foreign key that
-- cascades (deleting the analysis deletes its links).
CREATE TABLE tool_access.shared_links (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  tool_data_id UUID NOT NULL REFERENCES sprint_24_fit_abc_analysis.tool_data(id) ON DELETE CASCADE,
  token TEXT NOT NULL UNIQUE,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  expires_at TIMESTAMPTZ
);
CREATE INDEX idx_tool_access_shared_links_tool_data ON tool_access.shared_links(tool_data_id);

-- Web session cache: UNLOGGED (not WAL-logged, emptied by crash recovery,
-- not carried by logical decoding)
CREATE UNLOGGED TABLE users.sessions_cache (
  session_id TEXT PRIMARY KEY,
  user_id UUID NOT NULL,
  data JSONB,
  expires_at TIMESTAMPTZ NOT NULL
);
