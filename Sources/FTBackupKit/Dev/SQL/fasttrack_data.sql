-- =====================================================================
-- Fast Track demo/test database: data generator
--
-- Runs right after fasttrack_schema.sql, as ONE multi-statement string
-- (PQexec), i.e. inside one implicit transaction.  Size comes from
--     SET ftbackup.seed_scale = N;     (defaults to 1 when unset)
-- Growth is linear, ~4.9 MB per scale unit.  Measured pg_database_size
-- (PG 15, incl. ~12 MB for the empty schema; 2 cores, `ftbackup dev seed`
-- wall time): scale 1 ~25 MiB (1.9 s), scale 2 ~31 MiB (2.2 s),
-- scale 20 ~122 MiB (11 s), scale 200 ~987 MiB (62 s).
--
-- Production's shapes come last, after the data (fasttrack_schema.sql
-- lists them): future-dated audit events (clock skew), orphaned audit_log
-- entries, audit_log -> tool_data FKs (sprint_15/24, ON DELETE CASCADE),
-- featured canvases and share links from shared schemas into tool_data,
-- the unlogged session cache, application triggers (BEFORE INSERT OR
-- UPDATE rewriting status/updated_at; AFTER INSERT writing audit_log) and
-- the materialized view organizations.tool_usage_summary.
--
-- Determinism: setseed(0.42) + set-based INSERT ... SELECT in a fixed order.
-- Primary keys are md5-derived UUIDs, so cross references (dream -> know
-- thyself, audit entity ids) are computed, not looked up.  Timestamps are
-- relative to now() and spread uniformly over the last 9 years.
--
-- Helpers live in schema ftbackup_seed, dropped again at the end (a plain
-- schema rather than pg_temp, so no pg_temp_N namespace is left behind).
-- =====================================================================

CREATE SCHEMA ftbackup_seed;

SELECT setseed(0.42);
SELECT set_config('synchronize_seqscans', 'off', true);  -- keep scan order stable
SELECT set_config('work_mem', '64MB', true);
SELECT set_config('client_min_messages', 'warning', true);  -- quiet DROP ... CASCADE

-- ---------------------------------------------------------------------
-- Parameters
-- ---------------------------------------------------------------------
CREATE FUNCTION ftbackup_seed.ft_scale() RETURNS int LANGUAGE sql STABLE AS $$
  SELECT greatest(1, coalesce(nullif(current_setting('ftbackup.seed_scale', true), '')::int, 1))
$$;
CREATE FUNCTION ftbackup_seed.ft_n_orgs() RETURNS int LANGUAGE sql STABLE AS $$
  SELECT ceil(20 * sqrt(ftbackup_seed.ft_scale()))::int          -- 20, 90, 283 ...
$$;
CREATE FUNCTION ftbackup_seed.ft_n_users() RETURNS int LANGUAGE sql STABLE AS $$
  SELECT 300 * ftbackup_seed.ft_scale()
$$;

-- ---------------------------------------------------------------------
-- Deterministic ids and hashing
-- ---------------------------------------------------------------------
CREATE FUNCTION ftbackup_seed.ft_uuid(kind text, n bigint) RETURNS uuid
  LANGUAGE sql IMMUTABLE AS $$ SELECT md5(kind || ':' || n)::uuid $$;
CREATE FUNCTION ftbackup_seed.ft_hash(t text) RETURNS bigint
  LANGUAGE sql IMMUTABLE AS $$ SELECT ('x' || substr(md5(t), 1, 15))::bit(60)::bigint $$;

-- user k belongs to org 1 + (k-1) % n_orgs; every 33rd user has no org
CREATE FUNCTION ftbackup_seed.ft_user_org(k int) RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN k % 33 = 0 THEN NULL
              ELSE ftbackup_seed.ft_uuid('org', 1 + (k - 1) % ftbackup_seed.ft_n_orgs()) END
$$;
-- owner (user index) of row n of tool t: pseudo-random but computable
CREATE FUNCTION ftbackup_seed.ft_user_for(t int, n int) RETURNS int LANGUAGE sql STABLE AS $$
  SELECT (1 + ftbackup_seed.ft_hash('td:' || t || ':' || n) % ftbackup_seed.ft_n_users())::int
$$;

-- ---------------------------------------------------------------------
-- Text generators (pools deliberately contain tabs, newlines, CR,
-- backslashes, quotes, accents, CJK and emoji)
-- ---------------------------------------------------------------------
CREATE FUNCTION ftbackup_seed.ft_pick(a text[]) RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT a[1 + floor(random() * cardinality(a))::int]
$$;

CREATE FUNCTION ftbackup_seed.ft_sentence() RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT ftbackup_seed.ft_pick(ARRAY[
      'We want to', 'Our team will', 'I intend to', 'The customer needs to',
      'By next year we', 'Leadership should', 'Honestly, we need to',
      'Nous voulons', 'Wir möchten', 'Queremos', '私たちは', 'Il faut',
      E'Note:\t we must', 'My "big bet" is to', 'It''s time to',
      'Our crew 🚀 will', 'The C:\\ drive says we', E'Draft —\nwe will'])
    || ' ' ||
    ftbackup_seed.ft_pick(ARRAY[
      'reduce onboarding time', 'double recurring revenue', 'build trust with early adopters',
      'hire a head of sales', 'ship the MVP', 'fix churn in the SMB segment',
      'améliorer la qualité du service', 'die Kundenzufriedenheit steigern',
      '顧客満足度を高める', 'grow the community ❤️', 'cut costs by 15%',
      'talk to 50 customers', 'rewrite the "value" story', 'own the Zürich market',
      E'align on\tpriorities', 'say no more often', 'find product/market fit',
      'automate invoicing (finally)', 'open an office in São Paulo', 'learn from failure 😅'])
    || ' ' ||
    ftbackup_seed.ft_pick(ARRAY[
      'by Q3.', 'before the next board meeting.', 'without burning out the team.',
      'this year — no excuses.', 'in 2 sprints.', 'à tout prix.', 'für alle Kunden.',
      'ね。', 'ASAP!', 'and measure it weekly.', E'next month.\nThen review.',
      E'this quarter.\r\n(Windows note)', 'with a 50\\50 split.', 'as the "north star".',
      'if budget allows.', '✅', 'because it''s overdue.', '…', 'step by step.'])
$$;

-- text column value: NULL with p_null, '' with ~p_empty, else a sentence
CREATE FUNCTION ftbackup_seed.ft_text(p_null float8, p_empty float8) RETURNS text
  LANGUAGE sql VOLATILE AS $$
  SELECT CASE WHEN random() < p_null THEN NULL
              WHEN random() < p_empty THEN ''
              ELSE ftbackup_seed.ft_sentence() END
$$;

-- text[] tags: NULL, '{}', NULL elements, commas, quotes, braces, backslash
-- (plpgsql on purpose: an inlined SQL function would turn the uncorrelated
-- sub-select into a once-per-query InitPlan, giving every row the same tags)
CREATE FUNCTION ftbackup_seed.ft_tags() RETURNS text[] LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RETURN CASE WHEN random() < 0.10 THEN NULL
              WHEN random() < 0.12 THEN '{}'::text[]
              ELSE ARRAY(SELECT CASE WHEN random() < 0.04 THEN NULL ELSE ftbackup_seed.ft_pick(ARRAY[
                     'growth', 'hiring', 'q3', 'q4,2025', 'priority: high', 'say "hi"',
                     'it''s fine', 'ümlaut', '日本', '🔥', '{braces}', 'back\slash',
                     'with space', 'NULL', '', 'customer-facing', 'okr'] ) END
                   FROM generate_series(1, 1 + floor(random() * 4)::int)) END;
END
$$;

-- generic JSONB payload for a tool (keys: tool-specific field names)
CREATE FUNCTION ftbackup_seed.ft_data(slug text, keys text[]) RETURNS jsonb
  LANGUAGE sql VOLATILE AS $$
  SELECT jsonb_build_object(
    'tool', slug,
    'schema_version', 3,
    'step', 1 + floor(random() * 6)::int,
    keys[1], ftbackup_seed.ft_sentence(),
    keys[2], CASE WHEN random() < 0.05 THEN '' ELSE ftbackup_seed.ft_sentence() || ' ' || ftbackup_seed.ft_sentence() END,
    keys[3], jsonb_build_array(ftbackup_seed.ft_sentence(), ftbackup_seed.ft_sentence(), ftbackup_seed.ft_sentence()),
    'scores', jsonb_build_object(
        'clarity',    round((random() * 10)::numeric, 1),
        'confidence', floor(random() * 101)::int,
        'ratio',      random()),
    'locale', ftbackup_seed.ft_pick(ARRAY['en', 'en-GB', 'de-DE', 'fr-FR', 'ja-JP', 'pt-BR']),
    'notes',  CASE WHEN random() < 0.3 THEN NULL ELSE ftbackup_seed.ft_text(0.0, 0.1) END,
    'shared', random() < 0.5)
$$;

-- big JSONB document (~kb kilobytes, hard to compress) -> TOASTed out of line
CREATE FUNCTION ftbackup_seed.ft_big_json(kb int, tag text) RETURNS jsonb
  LANGUAGE sql VOLATILE AS $$
  SELECT jsonb_build_object(
    'tool', tag,
    'kind', 'journal_export',
    'entries', jsonb_agg(jsonb_build_object(
        'i', i,
        'at', '2017-03-01 09:00:00'::timestamp + i * interval '97 minutes',
        'mood', ftbackup_seed.ft_pick(ARRAY['calm', 'stressed', 'curious', 'müde', '嬉しい', '🙂']),
        'text', ftbackup_seed.ft_sentence(),
        'digest', encode(sha256((tag || ':' || i)::bytea), 'base64')) ORDER BY i))
  FROM generate_series(1, greatest(1, kb * 1024 / 215)) i
$$;

-- ---------------------------------------------------------------------
-- Tool catalog: number, slug, relative popularity, JSON field names
-- ---------------------------------------------------------------------
CREATE TABLE ftbackup_seed.ft_tools (t int PRIMARY KEY, slug text, weight float8, keys text[]);
INSERT INTO ftbackup_seed.ft_tools VALUES
  ( 0, 'woop',                  1.0, '{wish,outcome,obstacle,plan}'),
  ( 1, 'know_thyself',          1.0, '{strengths,blind_spots,core_motivators}'),
  ( 2, 'dream',                 1.0, '{ten_year_vision,legacy,milestones}'),
  ( 3, 'purpose',               1.0, '{why_we_exist,who_we_serve,proof_points}'),
  ( 4, 'core_values',           1.0, '{value_statement,behaviours,examples}'),
  ( 5, 'vision_statement',      1.0, '{vision,time_horizon_story,success_signals}'),
  ( 6, 'mission',               1.0, '{mission,target_audience,commitments}'),
  ( 7, 'swot_analysis',         1.0, '{strengths,weaknesses,opportunities}'),
  ( 8, 'stakeholder_map',       1.0, '{key_stakeholder,influence_notes,stakeholders}'),
  ( 9, 'customer_persona',      1.0, '{persona_name,goals,frustrations}'),
  (10, 'problem_statement',     1.0, '{problem,root_cause,evidence}'),
  (11, 'market_sizing',         1.0, '{tam_rationale,sam_rationale,assumptions}'),
  (12, 'competitor_analysis',   1.0, '{main_competitor,differentiation,competitors}'),
  (13, 'business_model_canvas', 1.0, '{value_proposition,revenue_streams,key_partners}'),
  (14, 'customer_journey',      1.0, '{persona,moment_of_truth,touchpoints}'),
  (15, 'value_proposition',     1.0, '{products_services,pain_relievers,gain_creators}'),
  (16, 'pricing_strategy',      1.0, '{pricing_model,anchor_rationale,tiers}'),
  (17, 'go_to_market',          1.0, '{beachhead_market,channel_strategy,launch_steps}'),
  (18, 'okr_setting',           1.0, '{objective,key_result_notes,key_results}'),
  (19, 'experiment_design',     1.0, '{hypothesis,metric,steps}'),
  (20, 'pitch_deck',            1.0, '{hook,ask,slides}'),
  (21, 'growth_loops',          1.0, '{loop_name,trigger,stages}'),
  (22, 'unit_economics',        1.0, '{cac_notes,ltv_notes,assumptions}'),
  (23, 'hiring_plan',           1.0, '{next_key_hire,rationale,roles}'),
  (24, 'fit_abc_analysis',      1.0, '{team_name,summary,focus_areas}'),
  (25, 'culture_code',          1.0, '{culture_statement,rituals,principles}'),
  (26, 'feedback_culture',      1.0, '{feedback_norms,last_retro_notes,agreements}'),
  (27, 'decision_making',       1.0, '{decision,options_considered,criteria}'),
  (28, 'energy_management',     1.0, '{energy_drainers,energy_boosters,habits}'),
  (29, 'digital_heart',         1.0, '{heart_statement,reflection,commitments}');
-- earlier sprints are used more: weight 1.5 (sprint 00) .. ~0.53 (sprint 29)
UPDATE ftbackup_seed.ft_tools SET weight = 1.5 - t / 30.0;

-- rows of tool t at the current scale (24..68 per tool at scale 1)
CREATE FUNCTION ftbackup_seed.ft_count_w(w float8) RETURNS int LANGUAGE sql STABLE AS $$
  SELECT ceil(45 * ftbackup_seed.ft_scale() * w)::int
$$;
CREATE FUNCTION ftbackup_seed.ft_count(tt int) RETURNS int LANGUAGE sql STABLE AS $$
  SELECT ftbackup_seed.ft_count_w(weight) FROM ftbackup_seed.ft_tools WHERE t = tt
$$;
CREATE FUNCTION ftbackup_seed.ft_schema(tt int) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT format('sprint_%s_%s', lpad(t::text, 2, '0'), slug) FROM ftbackup_seed.ft_tools WHERE t = tt
$$;

-- Common skeleton of tool_data rows: ids, owner, status and a consistent
-- timeline  created_at <= submitted_at <= completed_at <= updated_at <= now
CREATE FUNCTION ftbackup_seed.ft_rows(tt int)
RETURNS TABLE (n int, id uuid, user_k int, user_id uuid, org_id uuid, status text,
               version int, created_at timestamp, updated_at timestamp,
               submitted_at timestamp, completed_at timestamp)
LANGUAGE sql VOLATILE AS $$
  SELECT n, ftbackup_seed.ft_uuid('td:' || tt, n), uk, ftbackup_seed.ft_uuid('user', uk),
         ftbackup_seed.ft_user_org(uk), st, ver, c, u,
         CASE WHEN st IN ('submitted', 'completed') THEN c + (u - c) * least(a, b) END,
         CASE WHEN st = 'completed' THEN c + (u - c) * greatest(a, b) END
  FROM (
    SELECT n, uk, st, ver, c, a, b,
           c + least(random() ^ 2 * interval '150 days', localtimestamp - c) AS u
    FROM (
      SELECT n, ftbackup_seed.ft_user_for(tt, n) AS uk,
             localtimestamp - random() * interval '3287 days' AS c,   -- 9 years
             CASE WHEN r < 0.15 THEN 'draft' WHEN r < 0.35 THEN 'in_progress'
                  WHEN r < 0.45 THEN 'submitted' ELSE 'completed' END AS st,
             1 + floor(random() * random() * 6)::int AS ver,
             random() AS a, random() AS b
      FROM (SELECT n, random() AS r FROM generate_series(1, ftbackup_seed.ft_count(tt)) n) s0
    ) s1
  ) s2
$$;

-- =====================================================================
-- Organizations and users
-- =====================================================================
INSERT INTO organizations.companies (id, name, slug, industry, size, created_at, settings)
SELECT ftbackup_seed.ft_uuid('org', i),
       base || ' ' || ftbackup_seed.ft_pick(ARRAY['GmbH', 'Ltd', 'Inc.', 'SA', 'AG', 'Labs', '株式会社', 'Co-op']),
       'org-' || lpad(i::text, 4, '0') || '-' || lower(regexp_replace(base, '[^A-Za-z]+', '-', 'g')),
       CASE WHEN i % 10 = 3 THEN NULL WHEN i % 10 = 7 THEN ''
            ELSE ftbackup_seed.ft_pick(ARRAY['Software', 'Healthcare', 'Retail', 'Manufacturing',
                                       'Éducation', 'Finance & Insurance', 'Non-profit']) END,
       ftbackup_seed.ft_pick(ARRAY['1-10', '11-50', '51-200', '201-1000', '1000+']),
       localtimestamp - random() * interval '3400 days',
       jsonb_build_object(
         'sso', random() < 0.4,
         'locale', ftbackup_seed.ft_pick(ARRAY['en-US', 'de-DE', 'fr-FR', 'ja-JP']),
         'seats', 5 + floor(random() * 500)::int,
         'theme', jsonb_build_object('primary', '#' || substr(md5(i::text), 1, 6), 'dark', random() < 0.5),
         'features', '["woop", "dream", "fit_abc"]'::jsonb,
         'welcome_message', ftbackup_seed.ft_text(0.3, 0.1))
FROM (SELECT i, (ARRAY['Nordlicht', 'Acme', 'Blue Harbor', 'Müller & Söhne', 'Café Lumière',
                       'O''Brien "Bros"', 'Sakura さくら', 'Fjord', 'Tabby\Cats', 'Zeta 🚀',
                       'Northwind', 'Bright Path', 'Åsgard Analytics', 'Kōbō', 'Green Leaf',
                       'Helix', 'Quantum Pie', 'Olá Mundo', 'Red Kite', 'Summit'])[1 + (i - 1) % 20] AS base
      FROM generate_series(1, ftbackup_seed.ft_n_orgs()) i) o;

INSERT INTO users.accounts (id, email, password_hash, full_name, role, organization_id,
                            created_at, updated_at, last_login_at, last_seen_at)
SELECT ftbackup_seed.ft_uuid('user', k),
       lower(regexp_replace(fn, '[^A-Za-z]', '', 'g')) || '.' ||
         lower(regexp_replace(ln, '[^A-Za-z]', '', 'g')) || k || '@' ||
         ftbackup_seed.ft_pick(ARRAY['example.com', 'example.org', 'example.de', 'example.co.jp']),
       '$2b$12$' || substr(translate(encode(sha256(('pw' || k)::bytea), 'base64')
                                  || encode(sha256(('salt' || k)::bytea), 'base64'), '+=', './'), 1, 53),
       CASE WHEN k % 37 = 0 THEN NULL WHEN k % 41 = 0 THEN '' ELSE fn || ' ' || ln END,
       CASE WHEN k % 20 = 1 THEN 'admin' WHEN k % 7 = 0 THEN 'coach' ELSE 'user' END,
       ftbackup_seed.ft_user_org(k),
       c, c + random() * (localtimestamp - c),
       CASE WHEN random() < 0.08 THEN NULL ELSE c + random() * (localtimestamp - c) END,
       CASE WHEN random() < 0.10 THEN NULL ELSE now() - random() * interval '400 days' END
FROM (SELECT k,
             ftbackup_seed.ft_pick(ARRAY['Anna', 'José', 'Zoë', 'Björn', 'Søren', 'Mei', 'Hiroshi', 'Noah',
                                   'Fatima', 'Łukasz', 'Chloé', 'Oğuz', 'Liam', 'Priya', 'Sean', 'Ana']) AS fn,
             ftbackup_seed.ft_pick(ARRAY['Müller', 'O''Connor', 'García', 'Ødegård', 'Yamada 山田', 'Smith',
                                   'Nguyễn', 'Dubois', 'Kowalski', 'Rossi', 'Schmidt', 'Patel']) AS ln,
             localtimestamp - random() * interval '3287 days' AS c
      FROM generate_series(1, ftbackup_seed.ft_n_users()) k) u;

-- profiles for ~90% of users; avatar_thumbnail = PNG header (has 0x00
-- bytes) + pseudo-random bytes; some NULL, some empty bytea
INSERT INTO users.profiles (user_id, avatar_url, timezone, language, preferences, avatar_thumbnail)
SELECT ftbackup_seed.ft_uuid('user', k),
       CASE WHEN k % 9 = 0 THEN NULL WHEN k % 13 = 0 THEN ''
            ELSE 'https://cdn.example.com/avatars/' || md5('avatar' || k) || '.png' END,
       ftbackup_seed.ft_pick(ARRAY['Europe/Berlin', 'Europe/Paris', 'America/New_York', 'Asia/Tokyo',
                             'America/Sao_Paulo', 'UTC', 'Asia/Kolkata']),
       ftbackup_seed.ft_pick(ARRAY['en', 'de', 'fr', 'ja', 'pt-BR', 'es']),
       jsonb_build_object('theme', ftbackup_seed.ft_pick(ARRAY['light', 'dark', 'system']),
                          'notifications', jsonb_build_object('email', random() < 0.7, 'digest', 'weekly'),
                          'signature', ftbackup_seed.ft_text(0.5, 0.2)),
       CASE WHEN k % 3 = 0 THEN NULL
            WHEN k % 50 = 1 THEN ''::bytea
            ELSE '\x89504e470d0a1a0a0000000d49484452'::bytea ||
                 (SELECT decode(string_agg(md5(k || ':' || i), ''), 'hex')
                  FROM generate_series(1, 2 + (k % 12)) i) END
FROM generate_series(1, ftbackup_seed.ft_n_users()) k
WHERE k % 10 <> 5;

-- 3-6 teams per organization, members drawn from the org's users
INSERT INTO organizations.teams (id, organization_id, name, lead_user_id, members)
SELECT ftbackup_seed.ft_uuid('team:' || o, j),
       ftbackup_seed.ft_uuid('org', o),
       CASE WHEN j = 6 THEN NULL
            ELSE ftbackup_seed.ft_pick(ARRAY['Product', 'Sales & Marketing', 'Engineering', 'Führungsteam',
                                       'Équipe Support', 'チームA', 'Ops "Night Shift"', 'R&D']) || ' ' || j END,
       CASE WHEN j = 5 THEN NULL ELSE ftbackup_seed.ft_uuid('user', o) END,
       (SELECT coalesce(jsonb_agg(DISTINCT m), '[]'::jsonb)
        FROM (SELECT ftbackup_seed.ft_uuid('user', o + ftbackup_seed.ft_n_orgs() * floor(random() * per_org)::int) AS m
              FROM generate_series(1, 2 + (o * j) % 8)) mm)
FROM (SELECT o, ftbackup_seed.ft_n_users() / ftbackup_seed.ft_n_orgs() AS per_org
      FROM generate_series(1, ftbackup_seed.ft_n_orgs()) o) x,
     LATERAL generate_series(1, 3 + (o % 4)) j;

-- 1-4 tool permissions per user, granted by an admin (user 1, 21, 41, ...)
INSERT INTO tool_access.permissions (id, user_id, tool_slug, access_level, granted_at, expires_at, granted_by)
SELECT ftbackup_seed.ft_uuid('perm:' || k, j),
       ftbackup_seed.ft_uuid('user', k),
       (SELECT slug FROM ftbackup_seed.ft_tools WHERE t = (k * 7 + j * 11) % 30),
       ftbackup_seed.ft_pick(ARRAY['view', 'edit', 'edit', 'admin']),
       gt.g, CASE WHEN random() < 0.2 THEN gt.g + interval '1 year' END,
       CASE WHEN random() < 0.1 THEN NULL
            ELSE ftbackup_seed.ft_uuid('user', 1 + 20 * floor(random() * (ftbackup_seed.ft_n_users() / 20))::int) END
FROM generate_series(1, ftbackup_seed.ft_n_users()) k,
     LATERAL generate_series(1, 1 + k % 4) j,
     LATERAL (SELECT localtimestamp - random() * interval '3287 days' AS g, j AS _j) gt;  -- refs j: per row

-- progress: ~20% of (user, tool) pairs
INSERT INTO tool_access.progress (user_id, tool_slug, status, progress_percentage, last_accessed_at, completed_at)
SELECT ftbackup_seed.ft_uuid('user', k), slug,
       CASE WHEN p = 0 THEN 'not_started' WHEN p = 100 THEN 'completed' ELSE 'in_progress' END,
       p, CASE WHEN p = 0 THEN NULL ELSE la END,
       CASE WHEN p = 100 THEN la END
FROM (SELECT k, tt.slug, random() AS r,
             (ARRAY[0, 10, 25, 40, 60, 80, 100, 100, 100])[1 + floor(random() * 9)::int] AS p,
             localtimestamp - random() * interval '3287 days' AS la
      FROM generate_series(1, ftbackup_seed.ft_n_users()) k
      CROSS JOIN (SELECT slug FROM ftbackup_seed.ft_tools ORDER BY t) tt) x
WHERE r < 0.2;

-- =====================================================================
-- Tool data: special tools (explicit), then the generic ones (loop)
-- =====================================================================

-- Sprint 00 WOOP: plain text columns; rows 1-3 carry hand-made edge values
INSERT INTO sprint_00_woop.tool_data (id, user_id, organization_id, wish, outcome, obstacle, plan,
                                      status, created_at, updated_at)
SELECT r.id, r.user_id, r.org_id,
       CASE r.n WHEN 1 THEN E'Tab\there, newline\nthere, CR\r\nand a backslash \\ plus ''single'' and "double" quotes'
                WHEN 2 THEN '' WHEN 3 THEN NULL
                ELSE ftbackup_seed.ft_sentence() END,
       CASE r.n WHEN 1 THEN 'Résumé naïve café — Grüße aus Zürich, 日本語のテキスト, emoji 🎉👩‍💻🇩🇪'
                WHEN 2 THEN NULL WHEN 3 THEN ''
                ELSE ftbackup_seed.ft_text(0.03, 0.05) END,
       CASE WHEN r.n <= 3 THEN E'\\N is not NULL; neither is the string NULL' ELSE ftbackup_seed.ft_text(0.08, 0.08) END,
       CASE WHEN r.status = 'draft' THEN ftbackup_seed.ft_text(0.4, 0.2)
            ELSE ftbackup_seed.ft_sentence() || E'\n- ' || ftbackup_seed.ft_sentence() || E'\n- ' || ftbackup_seed.ft_sentence() END,
       r.status, r.created_at, r.updated_at
FROM ftbackup_seed.ft_rows(0) r;

-- Sprint 01 Know Thyself: tags; rows 2.. carry 50-200 kB JSON documents
INSERT INTO sprint_01_know_thyself.tool_data (id, user_id, organization_id, data, status, version,
                                              created_at, updated_at, submitted_at, completed_at, tags)
SELECT r.id, r.user_id, r.org_id,
       CASE WHEN r.n BETWEEN 2 AND 2 + ftbackup_seed.ft_scale() / 20
            THEN ftbackup_seed.ft_big_json(50 + floor(random() * 150)::int, 'know_thyself:' || r.n)
            ELSE ftbackup_seed.ft_data('know_thyself', (SELECT keys FROM ftbackup_seed.ft_tools WHERE t = 1))
                 || jsonb_build_object('mbti', ftbackup_seed.ft_pick(ARRAY['INTJ', 'ENFP', 'ISTJ', 'ENTP']),
                                       'top_values', ftbackup_seed.ft_tags()) END,
       r.status, r.version, r.created_at, r.updated_at, r.submitted_at, r.completed_at,
       CASE r.n WHEN 1 THEN ARRAY['a,b', 'say "hi"', NULL, 'back\slash', '', 'NULL', '{x}', '日本語', '🙂']
                WHEN 2 THEN '{}'::text[] WHEN 3 THEN NULL
                ELSE ftbackup_seed.ft_tags() END
FROM ftbackup_seed.ft_rows(1) r;

-- Sprint 02 Dream: ~7/8 of rows point at the same-numbered Know Thyself row
-- (same owner); the rest have no source
INSERT INTO sprint_02_dream.tool_data (id, user_id, organization_id, data, status, version,
                                       created_at, updated_at, submitted_at, completed_at,
                                       source_know_thyself_id, company_dream, personal_alignment, tags)
SELECT r.id,
       CASE WHEN linked THEN ftbackup_seed.ft_uuid('user', ftbackup_seed.ft_user_for(1, r.n)) ELSE r.user_id END,
       CASE WHEN linked THEN ftbackup_seed.ft_user_org(ftbackup_seed.ft_user_for(1, r.n)) ELSE r.org_id END,
       ftbackup_seed.ft_data('dream', (SELECT keys FROM ftbackup_seed.ft_tools WHERE t = 2)),
       r.status, r.version, r.created_at, r.updated_at, r.submitted_at, r.completed_at,
       CASE WHEN linked THEN ftbackup_seed.ft_uuid('td:1', r.n) END,
       ftbackup_seed.ft_text(0.05, 0.05),
       CASE WHEN random() < 0.1 THEN NULL ELSE jsonb_build_object(
         'alignment_score', round((random() * 100)::numeric, 2),
         'shared_values', jsonb_build_array(ftbackup_seed.ft_pick(ARRAY['courage', 'Ehrlichkeit', 'curiosité', '誠実'])),
         'tensions', ftbackup_seed.ft_text(0.2, 0.1)) END,
       ftbackup_seed.ft_tags()
FROM (SELECT *, (n % 8 <> 0) AS linked FROM ftbackup_seed.ft_rows(2)) r;

-- Sprint 15 Value Proposition (+ customer_segment for the expression index)
INSERT INTO sprint_15_value_proposition.tool_data (id, user_id, organization_id, data, status, version,
                                                   created_at, updated_at, submitted_at, completed_at, tags)
SELECT r.id, r.user_id, r.org_id,
       ftbackup_seed.ft_data('value_proposition', (SELECT keys FROM ftbackup_seed.ft_tools WHERE t = 15))
         || jsonb_build_object('customer_segment', ftbackup_seed.ft_pick(ARRAY[
              'SMB founders', 'Enterprise HR', 'Freelancers', 'Öffentliche Verwaltung',
              'Healthcare', 'EdTech', 'Retail', 'Agences créatives'])),
       r.status, r.version, r.created_at, r.updated_at, r.submitted_at, r.completed_at,
       ftbackup_seed.ft_tags()
FROM ftbackup_seed.ft_rows(15) r;

-- Sprint 22 Unit Economics: unbounded numeric with many digits
INSERT INTO sprint_22_unit_economics.tool_data (id, user_id, organization_id, data, status, version,
                                                created_at, updated_at, submitted_at, completed_at, ltv_estimate)
SELECT r.id, r.user_id, r.org_id,
       ftbackup_seed.ft_data('unit_economics', (SELECT keys FROM ftbackup_seed.ft_tools WHERE t = 22)),
       r.status, r.version, r.created_at, r.updated_at, r.submitted_at, r.completed_at,
       CASE r.n WHEN 1 THEN 123456789012345678901234567890.123456789012345678901234567890
                WHEN 2 THEN -0.000000000000000000000000000001
                WHEN 3 THEN 0
                ELSE CASE WHEN random() < 0.1 THEN NULL
                          WHEN random() < 0.3 THEN (floor(random() * 1e15)::bigint::text || lpad(floor(random() * 1e15)::bigint::text, 15, '0')
                                                    || '.' || lpad(floor(random() * 1e15)::bigint::text, 15, '0'))::numeric
                          ELSE round((random() * 250000)::numeric, 4) END END
FROM ftbackup_seed.ft_rows(22) r;

-- Sprint 24 FIT & ABC: numeric(12,2) team score
INSERT INTO sprint_24_fit_abc_analysis.tool_data (id, user_id, organization_id, data, status, version,
                                                  created_at, updated_at, submitted_at, completed_at, team_fit_score)
SELECT r.id, r.user_id, r.org_id,
       ftbackup_seed.ft_data('fit_abc_analysis', (SELECT keys FROM ftbackup_seed.ft_tools WHERE t = 24)),
       r.status, r.version, r.created_at, r.updated_at, r.submitted_at, r.completed_at,
       CASE r.n WHEN 1 THEN 9999999999.99 WHEN 2 THEN -0.01
                ELSE CASE WHEN random() < 0.1 THEN NULL ELSE round((random() * 100)::numeric, 2) END END
FROM ftbackup_seed.ft_rows(24) r;

-- Sprint 29 Digital Heart: row 1 holds a >1 MB document, rows 2.. 50-200 kB
INSERT INTO sprint_29_digital_heart.tool_data (id, user_id, organization_id, data, status, version,
                                               created_at, updated_at, submitted_at, completed_at, tags)
SELECT r.id, r.user_id, r.org_id,
       CASE WHEN r.n = 1 THEN ftbackup_seed.ft_big_json(2600, 'digital_heart:1')
            WHEN r.n BETWEEN 2 AND 2 + ftbackup_seed.ft_scale() / 20
            THEN ftbackup_seed.ft_big_json(50 + floor(random() * 150)::int, 'digital_heart:' || r.n)
            ELSE ftbackup_seed.ft_data('digital_heart', (SELECT keys FROM ftbackup_seed.ft_tools WHERE t = 29)) END,
       r.status, r.version, r.created_at, r.updated_at, r.submitted_at, r.completed_at,
       ftbackup_seed.ft_tags()
FROM ftbackup_seed.ft_rows(29) r;

-- All other tools: standard layout, generic payload
DO $$
DECLARE
  tool record;
BEGIN
  FOR tool IN SELECT * FROM ftbackup_seed.ft_tools WHERE t NOT IN (0, 1, 2, 15, 22, 24, 29) ORDER BY t LOOP
    EXECUTE format($q$
      INSERT INTO %I.tool_data (id, user_id, organization_id, data, status, version,
                                created_at, updated_at, submitted_at, completed_at)
      SELECT r.id, r.user_id, r.org_id, ftbackup_seed.ft_data(%L, %L::text[]),
             r.status, r.version, r.created_at, r.updated_at, r.submitted_at, r.completed_at
      FROM ftbackup_seed.ft_rows(%s) r$q$,
      ftbackup_seed.ft_schema(tool.t), tool.slug, tool.keys, tool.t);
  END LOOP;
END
$$;

-- =====================================================================
-- Tool-specific child tables
-- =====================================================================

-- 2-6 hypotheses per value proposition canvas
INSERT INTO sprint_15_value_proposition.hypotheses (id, tool_data_id, hypothesis_text, category,
                                                    priority, tested, test_results)
SELECT md5(td.id::text || ':h' || j)::uuid, td.id,
       CASE WHEN j = 1 AND random() < 0.05 THEN '' ELSE 'If we ' || lower(ftbackup_seed.ft_sentence()) END,
       ftbackup_seed.ft_pick(ARRAY['gain', 'pain', 'jobs']),
       CASE WHEN random() < 0.1 THEN NULL ELSE 1 + floor(random() * 5)::int END,
       tested,
       CASE WHEN tested THEN jsonb_build_object(
              'method', ftbackup_seed.ft_pick(ARRAY['interview', 'landing page', 'A/B test', 'Umfrage']),
              'sample_size', 5 + floor(random() * 200)::int,
              'validated', random() < 0.5,
              'learning', ftbackup_seed.ft_text(0.1, 0.1)) END
FROM sprint_15_value_proposition.tool_data td,
     LATERAL generate_series(1, 2 + get_byte(uuid_send(td.id), 0) % 5) j,
     LATERAL (SELECT random() < 0.4 AS tested, j AS _j) x;  -- refs j: per row

-- votes on ~60% of hypotheses, 1-6 each; the identity id (GENERATED ALWAYS)
-- follows the ORDER BY, so it is deterministic too
INSERT INTO sprint_15_value_proposition.hypothesis_votes (hypothesis_id, voter_id, vote, voted_at)
SELECT h.id,
       ftbackup_seed.ft_uuid('user', 1 + (ftbackup_seed.ft_hash(h.id::text || ':v' || j) % ftbackup_seed.ft_n_users())::int),
       CASE WHEN random() < 0.05 THEN NULL ELSE (ARRAY[-1, 1, 1, 2])[1 + floor(random() * 4)::int] END::smallint,
       td.created_at::timestamptz + random() * (td.updated_at - td.created_at)
FROM sprint_15_value_proposition.hypotheses h
JOIN sprint_15_value_proposition.tool_data td ON td.id = h.tool_data_id,
     LATERAL generate_series(1, 1 + get_byte(uuid_send(h.id), 0) % 6) j
WHERE get_byte(uuid_send(h.id), 1) % 5 < 3
ORDER BY h.id, j;

-- 3-8 assessed team members per FIT & ABC analysis
INSERT INTO sprint_24_fit_abc_analysis.team_assessments (id, tool_data_id, team_member_name, role,
    fit_energy, fit_skill, fit_values, fit_impact, abc_rating, notes, action_items)
SELECT md5(td.id::text || ':m' || j)::uuid, td.id,
       ftbackup_seed.ft_pick(ARRAY['José Álvarez', 'Zoë O''Connor', '山田 太郎', 'Björn Ødegård', 'Priya Patel',
                             'Chloé "CC" Dubois', 'Sam Smith', 'Łucja Nowak', 'Ahmed Al-Farsi']),
       ftbackup_seed.ft_pick(ARRAY['CTO', 'Head of Sales', 'Engineer', 'Designer', 'Customer Success',
                             'Geschäftsführerin', 'Product Owner']),
       1 + floor(random() * 10)::int, 1 + floor(random() * 10)::int,
       1 + floor(random() * 10)::int, 1 + floor(random() * 10)::int,
       CASE WHEN random() < 0.05 THEN NULL ELSE ftbackup_seed.ft_pick(ARRAY['A', 'B', 'C']) END,
       ftbackup_seed.ft_text(0.2, 0.1),
       CASE WHEN random() < 0.2 THEN '[]'::jsonb
            ELSE jsonb_build_array(jsonb_build_object('todo', ftbackup_seed.ft_sentence(), 'done', random() < 0.5,
                                                      'due', (localtimestamp + random() * interval '60 days')::date)) END
FROM sprint_24_fit_abc_analysis.tool_data td,
     LATERAL generate_series(1, 3 + get_byte(uuid_send(td.id), 0) % 6) j;

-- 1-3 follow-up actions for half of the assessed members (two-column FK)
INSERT INTO sprint_24_fit_abc_analysis.assessment_actions (id, tool_data_id, assessment_id, action, due_on, done)
SELECT md5(ta.id::text || ':act' || j)::uuid, ta.tool_data_id, ta.id,
       CASE WHEN j = 1 AND random() < 0.05 THEN '' ELSE ftbackup_seed.ft_sentence() END,
       CASE WHEN random() < 0.2 THEN NULL ELSE (td.created_at + random() * interval '90 days')::date END,
       random() < 0.5
FROM sprint_24_fit_abc_analysis.team_assessments ta
JOIN sprint_24_fit_abc_analysis.tool_data td ON td.id = ta.tool_data_id,
     LATERAL generate_series(1, 1 + get_byte(uuid_send(ta.id), 0) % 3) j
WHERE get_byte(uuid_send(ta.id), 1) % 2 = 0
ORDER BY ta.id, j;

-- Digital Heart attachments for ~25% of rows: binary (incompressible,
-- contains 0x00) or text (compressible), some empty
INSERT INTO sprint_29_digital_heart.attachments (tool_data_id, file_name, mime_type, content, sha256, uploaded_at)
SELECT td.id, f.file_name, f.mime_type, f.content, sha256(f.content),
       td.created_at::timestamptz + random() * (td.updated_at - td.created_at)
FROM sprint_29_digital_heart.tool_data td,
     LATERAL generate_series(1, 1 + get_byte(uuid_send(td.id), 0) % 2) j,
     LATERAL (SELECT CASE WHEN kind < 0.5 THEN 'photo_' || j || '.jpg'
                          WHEN kind < 0.9 THEN 'Reflexión ' || j || ' — notes.txt'
                          ELSE 'empty.bin' END AS file_name,
                     CASE WHEN kind < 0.5 THEN 'image/jpeg' WHEN kind < 0.9 THEN 'text/plain; charset=utf-8'
                          ELSE 'application/octet-stream' END AS mime_type,
                     CASE WHEN kind < 0.5 THEN '\xffd8ffe000104a46494600010100'::bytea ||
                               (SELECT decode(string_agg(md5(td.id::text || j || i), ''), 'hex')
                                FROM generate_series(1, 40 + floor(random() * 200)::int) i)
                          WHEN kind < 0.9 THEN convert_to(repeat(ftbackup_seed.ft_sentence() || E'\n', 20 + floor(random() * 80)::int), 'UTF8')
                          ELSE ''::bytea END AS content
              FROM (SELECT random() AS kind) k) f
WHERE random() < 0.25;

-- =====================================================================
-- Audit trails
-- =====================================================================

-- Per tool: 1-4 entries per tool_data row (create, complete, updates)
DO $$
DECLARE
  tool record;
  s text;
  completed_expr text;
BEGIN
  FOR tool IN SELECT * FROM ftbackup_seed.ft_tools ORDER BY t LOOP
    s := ftbackup_seed.ft_schema(tool.t);
    completed_expr := CASE WHEN tool.t = 0
                           THEN $e$CASE WHEN td.status = 'completed' THEN td.updated_at END$e$
                           ELSE 'td.completed_at' END;
    EXECUTE format($q$
      INSERT INTO %1$I.audit_log (id, tool_data_id, user_id, action, changes, "timestamp")
      SELECT md5(td.id::text || ':a' || g)::uuid, td.id,
             CASE WHEN g > 2 AND random() < 0.2 THEN NULL ELSE td.user_id END,
             CASE WHEN g = 1 THEN 'create' WHEN g = 2 AND cmp IS NOT NULL THEN 'complete'
                  ELSE ftbackup_seed.ft_pick(ARRAY['update', 'update', 'autosave', 'submit', 'share']) END,
             CASE WHEN g = 1 THEN jsonb_build_object('status', 'draft', 'version', 1)
                  WHEN g = 2 AND cmp IS NOT NULL THEN '{"status": ["submitted", "completed"]}'::jsonb
                  ELSE jsonb_build_object('field', ftbackup_seed.ft_pick(%2$L::text[]),
                                          'old', ftbackup_seed.ft_text(0.2, 0.1),
                                          'new', ftbackup_seed.ft_sentence()) END,
             CASE WHEN g = 1 THEN td.created_at
                  WHEN g = 2 AND cmp IS NOT NULL THEN cmp
                  ELSE td.created_at + random() * (td.updated_at - td.created_at) END
      FROM %1$I.tool_data td,
           LATERAL (SELECT %3$s AS cmp) c,
           LATERAL generate_series(1, 1 + get_byte(uuid_send(td.id), 0) %% 4) g$q$,
      s, tool.keys, completed_expr);
  END LOOP;
END
$$;

-- Global audit events: uniform over 9 years
INSERT INTO audit.events (id, user_id, organization_id, tool_slug, action, entity_type, entity_id,
                          changes, ip_address, user_agent, "timestamp")
SELECT ftbackup_seed.ft_uuid('ev', e), ftbackup_seed.ft_uuid('user', uk), ftbackup_seed.ft_user_org(uk),
       CASE WHEN kind < 0.2 THEN NULL ELSE slug END,
       CASE WHEN kind < 0.15 THEN ftbackup_seed.ft_pick(ARRAY['auth.login', 'auth.login', 'auth.logout', 'auth.password_reset'])
            WHEN kind < 0.2 THEN 'user.profile_update'
            ELSE ftbackup_seed.ft_pick(ARRAY['tool_data.create', 'tool_data.update', 'tool_data.update',
                                       'tool_data.submit', 'tool_data.complete', 'tool_data.export']) END,
       CASE WHEN kind < 0.2 THEN 'user' ELSE 'tool_data' END,
       CASE WHEN kind < 0.2 THEN ftbackup_seed.ft_uuid('user', uk)
            ELSE ftbackup_seed.ft_uuid('td:' || tt, 1 + floor(random() * ftbackup_seed.ft_count_w(tl.weight))::int) END,
       CASE WHEN random() < 0.1 THEN NULL
            ELSE jsonb_build_object('summary', ftbackup_seed.ft_text(0.1, 0.05),
                                    'request_id', md5('req' || e), 'duration_ms', floor(random() * 900)::int) END,
       CASE WHEN random() < 0.05 THEN NULL
            WHEN random() < 0.6 THEN ('10.' || (e % 250) || '.' || floor(random() * 255)::int || '.' || (1 + floor(random() * 254)::int))::inet
            WHEN random() < 0.7 THEN ('2001:db8:' || to_hex(e % 65535) || '::' || to_hex(floor(random() * 65535)::int))::inet
            WHEN random() < 0.95 THEN (floor(random() * 223 + 1)::int || '.' || floor(random() * 255)::int || '.'
                                       || floor(random() * 255)::int || '.' || floor(random() * 255)::int)::inet
            ELSE '192.168.0.17/24'::inet END,
       CASE WHEN random() < 0.05 THEN NULL WHEN random() < 0.03 THEN ''
            ELSE ftbackup_seed.ft_pick(ARRAY[
              'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
              'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
              'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148',
              'FastTrack-iOS/3.2.1 (iPad; iPadOS 17.4; de_DE)', 'curl/8.5.0', 'python-requests/2.31.0',
              E'Weird"Agent\\1.0 ''quoted''']) END,
       localtimestamp - random() * interval '3287 days'
FROM (SELECT e, 1 + floor(random() * ftbackup_seed.ft_n_users())::int AS uk,
             floor(random() * 30)::int AS tt, random() AS kind
      FROM generate_series(1, 1500 * ftbackup_seed.ft_scale()) e) ev
JOIN ftbackup_seed.ft_tools tl ON tl.t = ev.tt;

-- Clock skew: ~200 per scale unit dated 1-5 years in the future; those
-- past next year land in audit.events_default.  (No NULL "timestamp" rows:
-- it is part of the primary key, see fasttrack_schema.sql.)
INSERT INTO audit.events (id, user_id, organization_id, tool_slug, action, entity_type, entity_id,
                          changes, ip_address, user_agent, "timestamp")
SELECT ftbackup_seed.ft_uuid('ev-future', e), ftbackup_seed.ft_uuid('user', uk), ftbackup_seed.ft_user_org(uk),
       NULL, 'auth.login', 'user', ftbackup_seed.ft_uuid('user', uk),
       jsonb_build_object('clock_skew', true, 'request_id', md5('req-future' || e)),
       ('10.99.' || (e % 250) || '.' || (1 + e % 254))::inet,
       'FastTrack-Android/2.9.0 (clock set wrong)',
       localtimestamp + interval '1 year' + random() * interval '4 years'
FROM (SELECT e, 1 + floor(random() * ftbackup_seed.ft_n_users())::int AS uk
      FROM generate_series(1, 200 * ftbackup_seed.ft_scale()) e) ev;

-- =====================================================================
-- Production's shapes (after the data; see fasttrack_schema.sql)
-- =====================================================================

-- Audit rows whose tool_data was deleted long ago: a few per tool
DO $$
DECLARE
  tool record;
BEGIN
  FOR tool IN SELECT * FROM ftbackup_seed.ft_tools ORDER BY t LOOP
    EXECUTE format($q$
      INSERT INTO %I.audit_log (id, tool_data_id, user_id, action, changes, "timestamp")
      SELECT ftbackup_seed.ft_uuid('orphan:' || %s, g), ftbackup_seed.ft_uuid('td-deleted:' || %s, g),
             ftbackup_seed.ft_uuid('user', ftbackup_seed.ft_user_for(%s, -g)), 'delete',
             '{"reason": "user request"}'::jsonb, localtimestamp - random() * interval '3287 days'
      FROM generate_series(1, 1 + ftbackup_seed.ft_count(%s) / 20) g$q$,
      ftbackup_seed.ft_schema(tool.t), tool.t, tool.t, tool.t, tool.t);
  END LOOP;
END
$$;

-- sprint_15 and sprint_24: audit_log.tool_data_id references tool_data and
-- cascades; entries of deleted tool data keep their row with a NULL id
DO $$
DECLARE
  s text;
BEGIN
  FOREACH s IN ARRAY ARRAY['sprint_15_value_proposition', 'sprint_24_fit_abc_analysis'] LOOP
    EXECUTE format($q$UPDATE %1$I.audit_log a SET tool_data_id = NULL
                      WHERE NOT EXISTS (SELECT 1 FROM %1$I.tool_data td WHERE td.id = a.tool_data_id)$q$, s);
    EXECUTE format($q$ALTER TABLE %1$I.audit_log ADD CONSTRAINT audit_log_tool_data_id_fkey
                      FOREIGN KEY (tool_data_id) REFERENCES %1$I.tool_data(id) ON DELETE CASCADE$q$, s);
    EXECUTE format('CREATE INDEX %I ON %I.audit_log(tool_data_id)', 'idx_' || s || '_audit_log_tool_data', s);
  END LOOP;
END
$$;

-- Five featured canvases: old completed value propositions (completed and
-- last updated more than 2 years ago), so archiving must leave exactly these
INSERT INTO organizations.featured_canvases (organization_id, tool_data_id, featured_at)
SELECT organization_id, id, completed_at::timestamptz + interval '7 days'
FROM sprint_15_value_proposition.tool_data
WHERE status = 'completed' AND organization_id IS NOT NULL
  AND completed_at < localtimestamp - interval '2 years 60 days'
  AND updated_at < localtimestamp - interval '2 years 60 days'
ORDER BY id
LIMIT 5;

-- Share links on ~1/4 of FIT & ABC analyses, old and new
INSERT INTO tool_access.shared_links (id, tool_data_id, token, created_at, expires_at)
SELECT md5(td.id::text || ':link' || j)::uuid, td.id,
       encode(sha256((td.id::text || ':token' || j)::bytea), 'hex'),
       td.updated_at::timestamptz + j * interval '3 days',
       CASE WHEN random() < 0.5 THEN NULL ELSE td.updated_at::timestamptz + interval '90 days' END
FROM sprint_24_fit_abc_analysis.tool_data td,
     LATERAL generate_series(1, 1 + get_byte(uuid_send(td.id), 1) % 2) j
WHERE get_byte(uuid_send(td.id), 2) % 4 = 0
ORDER BY td.id, j;

-- Unlogged session cache: one session for every 5th user
INSERT INTO users.sessions_cache (session_id, user_id, data, expires_at)
SELECT encode(sha256(('session:' || k)::bytea), 'base64'), ftbackup_seed.ft_uuid('user', k),
       jsonb_build_object('csrf', md5('csrf' || k), 'locale', ftbackup_seed.ft_pick(ARRAY['en', 'de', 'ja'])),
       now() + (k % 48) * interval '1 hour'
FROM generate_series(1, ftbackup_seed.ft_n_users()) k
WHERE k % 5 = 0;

-- Application triggers, created after the data so it stays deterministic.
-- BEFORE INSERT OR UPDATE on four tools' tool_data: tidy the status, stamp
-- updated_at on every update.  One function per schema, as a schema is the
-- unit of restore.
DO $$
DECLARE
  s text;
BEGIN
  FOREACH s IN ARRAY ARRAY['sprint_02_dream', 'sprint_15_value_proposition',
                           'sprint_24_fit_abc_analysis', 'sprint_29_digital_heart'] LOOP
    EXECUTE format($f$
      CREATE FUNCTION %I.tool_data_before_write() RETURNS trigger LANGUAGE plpgsql AS $b$
      BEGIN
        NEW.status := lower(btrim(NEW.status));
        IF TG_OP = 'UPDATE' THEN
          NEW.updated_at := localtimestamp;
        END IF;
        RETURN NEW;
      END
      $b$
    $f$, s);
    EXECUTE format('CREATE TRIGGER tool_data_before_write BEFORE INSERT OR UPDATE ON %1$I.tool_data
                    FOR EACH ROW EXECUTE FUNCTION %1$I.tool_data_before_write()', s);
  END LOOP;
END
$$;

-- AFTER INSERT on Value Proposition: every new canvas gets a 'created' entry
CREATE FUNCTION sprint_15_value_proposition.tool_data_log_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO sprint_15_value_proposition.audit_log (tool_data_id, user_id, action, changes)
  VALUES (NEW.id, NEW.user_id, 'created', jsonb_build_object('status', NEW.status, 'version', NEW.version));
  RETURN NULL;
END
$$;
CREATE TRIGGER tool_data_log_created AFTER INSERT ON sprint_15_value_proposition.tool_data
  FOR EACH ROW EXECUTE FUNCTION sprint_15_value_proposition.tool_data_log_created();

-- Reporting: tool usage per organization, tool and status (populated).
-- Every branch names its columns: an unnamed one would not survive a
-- dump and reload unchanged (it comes back named after its cast).
CREATE MATERIALIZED VIEW organizations.tool_usage_summary AS
  SELECT organization_id, tool, status, count(*) AS canvases, max(updated_at) AS last_updated_at
  FROM (SELECT organization_id, 'woop'::text AS tool, status, updated_at FROM sprint_00_woop.tool_data
        UNION ALL
        SELECT organization_id, 'value_proposition'::text AS tool, status, updated_at FROM sprint_15_value_proposition.tool_data
        UNION ALL
        SELECT organization_id, 'fit_abc_analysis'::text AS tool, status, updated_at FROM sprint_24_fit_abc_analysis.tool_data) t
  GROUP BY organization_id, tool, status
  WITH DATA;
CREATE UNIQUE INDEX idx_organizations_tool_usage_summary
  ON organizations.tool_usage_summary (organization_id, tool, status);

-- =====================================================================
-- Clean up helpers, refresh statistics
-- =====================================================================
DROP SCHEMA ftbackup_seed CASCADE;

ANALYZE;
