-- An extension as slow to create as app.extension_sleep (seconds) says, for ftbackup's tests (installed by scripts/scratch-pg.sh).
\echo Use "CREATE EXTENSION ftbackup_test_slow" to load this file. \quit
CREATE FUNCTION slow_extension_marker() RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT 1';
SELECT pg_catalog.pg_sleep(coalesce(nullif(pg_catalog.current_setting('app.extension_sleep', true), ''), '0')::float8);
