import Foundation
import Testing
@testable import FTBackupKit

/// Issue 10 item 7: every role the backup's script names is found before the target is touched.
@Suite struct RestoreRolesTests {
    /// A role named only in a column grant and one named only in default privileges, dropped before the
    /// restore: refused naming both, nothing created in the target; once they exist, the restore is exact.
    /// A role named only by a policy is needed even with --no-owner.
    @Test func rolesOfColumnGrantsDefaultPrivilegesAndPoliciesMissingOnTheTargetAreRefusedBeforeAnythingIsRestored() async throws {
        let suffix = UUID().uuidString.prefix(8).lowercased()
        let columnRole = "i7_column_\(suffix)", defaultRole = "I7 Default \(suffix)", policyRole = "i7_policy_\(suffix)"
        let admin = try await TestServer.admin()
        defer { admin.close() }
        func createRoles() async throws {
            for role in [columnRole, defaultRole, policyRole] { try await admin.execute("CREATE ROLE \(try admin.escapeIdentifier(role)) NOLOGIN") }
        }
        func dropRoles() async throws {
            for role in [columnRole, defaultRole, policyRole] { try await admin.execute("DROP ROLE IF EXISTS \(try admin.escapeIdentifier(role))") }
        }
        try await createRoles()
        do {
            try await TestServer.withDatabase(seeded: false) { source in
                let s = try await source.connect()
                defer { s.close() }
                let column = try s.escapeIdentifier(columnRole), defaults = try s.escapeIdentifier(defaultRole), policy = try s.escapeIdentifier(policyRole)
                try await s.execute("""
                    CREATE SCHEMA app;
                    CREATE TABLE app.t (id int PRIMARY KEY, secret text);
                    INSERT INTO app.t SELECT g, md5(g::text) FROM generate_series(1, 100) g;
                    GRANT SELECT (id) ON app.t TO \(column);
                    CREATE TABLE app.p (id int PRIMARY KEY);
                    ALTER TABLE app.p ENABLE ROW LEVEL SECURITY;
                    CREATE POLICY readers ON app.p FOR SELECT TO \(policy) USING (true);
                    ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO \(defaults);
                    """)
                try await TestRepository.with { repo in
                    let manifest = try await BackupRunner.runFull(try .test(source, repo))
                    // The roles disappear from the cluster (as on another server that lacks them).
                    try await s.execute("""
                        REVOKE SELECT (id) ON app.t FROM \(column);
                        ALTER DEFAULT PRIVILEGES IN SCHEMA app REVOKE SELECT ON TABLES FROM \(defaults);
                        DROP POLICY readers ON app.p
                        """)
                    try await dropRoles()
                    try await TestServer.withDatabase(seeded: false) { target in
                        let t = try await target.connect()
                        defer { t.close() }
                        var options = RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false)
                        let error = await #expect(throws: FTBackupError.self) { _ = try await RestoreRunner.run(options) }
                        #expect(error?.status == .usage)
                        for role in [columnRole, defaultRole, policyRole] { #expect(error?.message.contains(role) == true, "\(String(describing: error))") }
                        #expect(try await t.query("SELECT count(*) AS n FROM pg_namespace WHERE nspname = 'app'").first!.requiredInt("n") == 0)
                        // --no-owner leaves out grants and default privileges, not the policy.
                        options.noOwner = true
                        let withoutOwners = await #expect(throws: FTBackupError.self) { _ = try await RestoreRunner.run(options) }
                        #expect(withoutOwners?.message.contains(policyRole) == true, "\(String(describing: withoutOwners))")
                        #expect(withoutOwners?.message.contains(columnRole) == false)
                        #expect(try await t.query("SELECT count(*) AS n FROM pg_namespace WHERE nspname = 'app'").first!.requiredInt("n") == 0)
                        // With the roles back, the same restore is exact.
                        try await createRoles()
                        options.noOwner = false
                        _ = try await RestoreRunner.run(options)
                        #expect(TableFingerprint.differences(source: try await TableFingerprint.compute(s), restored: try await TableFingerprint.compute(t)) == [])
                        let grants = try await t.query("""
                            SELECT (SELECT count(*) FROM information_schema.column_privileges WHERE grantee = $1) AS columns,
                                   (SELECT count(*) FROM pg_default_acl) AS defaults, (SELECT count(*) FROM pg_policy) AS policies
                            """, [columnRole]).first!
                        #expect(try grants.requiredInt("columns") == 1 && grants.requiredInt("defaults") == 1 && grants.requiredInt("policies") == 1)
                        _ = manifest
                    }
                }
            }
        } catch {
            try? await dropRoles()
            throw error
        }
        try await dropRoles()
    }
}
