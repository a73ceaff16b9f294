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

CREATE TABLE audit.events (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID REFERENCES users.accounts(id),
  organization_id UUID,
  tool_slug VARCHAR(100),
  action VARCHAR(100),
  entity_type VARCHAR(100),
  entity_id UUID,
  changes JSONB,
  ip_address INET,
  user_agent TEXT,
  timestamp TIMESTAMP DEFAULT NOW()
);

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
  action_items JSONB
);
CREATE INDEX idx_sprint_24_fit_abc_analysis_team_assessments_tool_data
  ON sprint_24_fit_abc_analysis.team_assessments(tool_data_id);

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
