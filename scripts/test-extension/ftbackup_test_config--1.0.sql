-- An extension with a configuration table, for ftbackup's tests (installed by scripts/scratch-pg.sh).
\echo Use "CREATE EXTENSION ftbackup_test_config" to load this file. \quit
CREATE TABLE @extschema@.ext_settings (
    name text PRIMARY KEY,
    value text NOT NULL,
    is_default boolean NOT NULL DEFAULT false
);
INSERT INTO @extschema@.ext_settings VALUES ('colour', 'blue', true);
-- pg_dump (and ftbackup) back up the rows users added; the script puts the default ones back.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ext_settings', 'WHERE NOT is_default');
