import Testing
@testable import FTBackupKit

@Suite struct DumpRolesTests {
    /// Every place pg_dump's script names a role, and none of the places that only look like one.
    @Test func findsEveryRoleTheScriptNamesAndNothingElse() {
        let script = #"""
            -- Name: t; Type: TABLE; Schema: app; Owner: commented_owner
            CREATE TABLE app.t (id integer, "to" text);
            ALTER TABLE app.t OWNER TO table_owner;
            CREATE FUNCTION app.f() RETURNS text LANGUAGE sql AS $_$ SELECT 'ALTER TABLE x OWNER TO in_body' $_$;
            ALTER FUNCTION app.f() OWNER TO "Func Owner";
            COMMENT ON TABLE app.t IS 'GRANT SELECT ON x TO in_comment_literal; it''s OWNER TO quoted_too';
            /* GRANT ALL ON y TO in_block_comment /* nested */ */
            GRANT SELECT(id),UPDATE("to") ON TABLE app.t TO column_reader, "Mixed ""Case"" Role" WITH GRANT OPTION;
            REVOKE ALL ON SCHEMA public FROM PUBLIC;
            REVOKE SELECT ON TABLE app.t FROM revoked_one CASCADE;
            SET SESSION AUTHORIZATION grantor_role;
            GRANT USAGE ON SEQUENCE app.s TO PUBLIC;
            RESET SESSION AUTHORIZATION;
            ALTER DEFAULT PRIVILEGES FOR ROLE default_owner IN SCHEMA app GRANT SELECT ON TABLES TO default_reader;
            ALTER DEFAULT PRIVILEGES FOR ROLE default_owner REVOKE ALL ON FUNCTIONS FROM PUBLIC;
            ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT EXECUTE ON FUNCTIONS TO Upper_Folded;
            COPY app.t (id, "to") FROM stdin;
            1	GRANT SELECT ON x TO in_copy_data;
            \.
            CREATE POLICY "to" ON app.t AS RESTRICTIVE FOR SELECT TO policy_role, "Policy Two" USING ((current_user = 'TO fake'::name));
            CREATE POLICY p2 ON app.t USING (true) WITH CHECK (true);
            CREATE USER MAPPING FOR mapped_user SERVER s OPTIONS ("user" 'nobody');
            CREATE USER MAPPING FOR public SERVER s;
            ALTER LARGE OBJECT 16400 OWNER TO lo_owner;
            """#
        let roles = DumpRoles.parse(script)
        #expect(roles.ownership == ["table_owner", "Func Owner", "column_reader", "Mixed \"Case\" Role", "revoked_one", "grantor_role",
                                    "default_owner", "default_reader", "upper_folded", "lo_owner"])
        #expect(roles.always == ["policy_role", "Policy Two", "mapped_user"])
        #expect(roles.needed(noOwner: true) == roles.always)
    }

    @Test func dollarQuotesAndParametersAreToldApart() {
        let statements = SQLScriptTokens.statements("SELECT $1 + $2; CREATE FUNCTION f() AS $$ a; b $$; ALTER TABLE t OWNER TO o")
        #expect(statements.count == 3)
        #expect(DumpRoles.parse("SELECT $1; ALTER TABLE t OWNER TO o").ownership == ["o"])
    }
}
