import Foundation
import Testing
@testable import FTBackupKit

/// Row counts of every user table (partitioned parents left out; their partitions count).
func totalRows(_ session: DatabaseSession) async throws -> Int64 {
    try await TableFingerprint.compute(session).reduce(0) { $0 + $1.rows }
}

@Suite struct ArchiveClosureTests {
    /// Two-level and three-level cascades (multi-column and self-referencing keys, an identity
    /// GENERATED ALWAYS, a stored generated column), audit_log cascading from tool_data, a blocking
    /// reference from another schema, a cascading one from another schema, and application triggers
    /// that add and rewrite rows: archive then unarchive of every archive leaves every table of
    /// every schema identical, nothing is lost on the way, and the blocking reference is reported.
    @Test func archiveThenUnarchiveIsExactOnProductionShapes() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await LifecycleShapes.add(session)
            let original = try await TableFingerprint.compute(session)
            let rowsBefore = try await totalRows(session)
            let featured = try await session.query("SELECT tool_data_id::text AS id FROM organizations.fx_featured ORDER BY 1")
                .rows.map { try $0.requiredString("id") }
            try await TestRepository.with { repo in
                let schemas = ["sprint_15_value_proposition", "sprint_24_fit_abc_analysis", "sprint_29_digital_heart"]
                var options = ArchiveOptions(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy(),
                                             schemas: schemas, batchSize: 4, dryRun: true)
                let dry = try await ToolDataArchiver.run(options)
                let vp = try #require(dry.schemas.first { $0.schema == "sprint_15_value_proposition" })
                for table in ["sprint_15_value_proposition.hypotheses", "sprint_15_value_proposition.fx_votes",
                              "sprint_15_value_proposition.fx Vote Notes", "sprint_15_value_proposition.audit_log"] {
                    #expect(vp.closure.contains { $0.hasPrefix(table + " via") }, "\(table) not in \(vp.closure)")
                }
                // Blocked by the fixture's reference, or first by the seed's featured_canvases pointing at the same canvases.
                #expect(Set(featured).isSubset(of: Set(vp.blocked.flatMap(\.ids))), "\(vp.blocked)")
                #expect(vp.blocked.allSatisfy { $0.reference.hasPrefix("organizations.") && $0.reference.hasSuffix("ON DELETE NO ACTION") })
                #expect(vp.silencedTriggers.contains { $0.contains("fx_on_delete") })
                let fit = try #require(dry.schemas.first { $0.schema == "sprint_24_fit_abc_analysis" })
                #expect(fit.closure.contains { $0.hasPrefix("tool_access.fx_shares via") })
                // Independent of the archiver: votes two keys away that go with the eligible canvases.
                let votes = try await session.query("""
                    SELECT count(*) AS n FROM sprint_15_value_proposition.fx_votes v
                    JOIN sprint_15_value_proposition.hypotheses h ON h.id = v.hypothesis_id
                    JOIN sprint_15_value_proposition.tool_data t ON t.id = h.tool_data_id
                    WHERE t.status = 'completed' AND t.completed_at < now() - interval '2 years'
                      AND t.id NOT IN (SELECT tool_data_id FROM organizations.fx_featured)
                    """).first!.int64("n")
                #expect(votes > 0)

                options.dryRun = false
                let run = try await ToolDataArchiver.run(options)
                for (d, r) in zip(dry.schemas, run.schemas) {
                    #expect(d.rows == r.rows && d.dependantRows == r.dependantRows && d.bytes == r.bytes, "\(d.schema)")
                }
                #expect(run.rows > 20)
                // Exactly the rows the report names left the database: no trigger added any, no cascade took more.
                #expect(rowsBefore - (try await totalRows(session)) == run.rows + run.schemas.reduce(0) { $0 + $1.dependantRows })
                #expect(try await session.query("""
                    SELECT count(*) AS n FROM sprint_15_value_proposition.tool_data WHERE id::text = ANY($1::text[])
                    """, [PostgresArray.text(featured)]).first!.int64("n") == Int64(featured.count))
                let leftVotes = try await session.query("""
                    SELECT count(*) AS n FROM sprint_15_value_proposition.fx_votes v
                    WHERE NOT EXISTS (SELECT 1 FROM sprint_15_value_proposition.hypotheses h WHERE h.id = v.hypothesis_id)
                    """).first!.int64("n")
                #expect(leftVotes == 0)

                let store = ArchiveStore(storage: repo.repository.storage)
                let archives = try store.all()
                #expect(archives.allSatisfy { $0.manifest?.status == .committed && $0.manifest?.formatVersion == 2 })
                for (name, _) in archives {
                    _ = try await Unarchiver.run(database: db.connectionString, repositoryPath: repo.path, archive: name, ids: [])
                }
                #expect(TableFingerprint.differences(source: original, restored: try await TableFingerprint.compute(session)) == [])
            }
        }
    }

    /// Unarchive of chosen ids brings back exactly their rows (a row shared by two ids comes back with the first).
    @Test func unarchiveOfOneIdBringsBackItsWholeClosureAndNothingElse() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await LifecycleShapes.add(session)
            let original = try await TableFingerprint.compute(session)
            try await TestRepository.with { repo in
                _ = try await ToolDataArchiver.run(ArchiveOptions(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy(),
                                                                  schemas: ["sprint_15_value_proposition"]))
                let (name, manifest) = try #require(try ArchiveStore(storage: repo.repository.storage).all().first)
                let withVotes = try #require(manifest?.ids.first)
                let one = try await Unarchiver.run(database: db.connectionString, repositoryPath: repo.path, archive: name, ids: [withVotes])
                #expect(one.rows["tool_data"] == 1)
                let rest = try await Unarchiver.run(database: db.connectionString, repositoryPath: repo.path, archive: name, ids: [])
                #expect(rest.status == .restored)
                #expect(TableFingerprint.differences(source: original, restored: try await TableFingerprint.compute(session)) == [])
            }
        }
    }

    /// Legal hold reaches tool_data through the row's user as well as its organization.
    @Test func legalHoldThroughTheUserKeepsToolData() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            let row = try await session.query("""
                SELECT t.id::text AS id, a.organization_id::text AS org FROM sprint_03_purpose.tool_data t JOIN users.accounts a ON a.id = t.user_id
                WHERE t.status = 'completed' AND t.completed_at < now() - interval '2 years' AND a.organization_id IS NOT NULL ORDER BY t.id LIMIT 1
                """).first!
            let id = try row.requiredString("id"), org = try row.requiredString("org")
            try await session.execute("UPDATE sprint_03_purpose.tool_data SET organization_id = NULL WHERE id = '\(id)'")
            try await TestRepository.with { repo in
                let report = try await ToolDataArchiver.run(ArchiveOptions(database: db.connectionString, repositoryPath: repo.path,
                                                                           policy: try testPolicy { $0.legalHoldOrganizations = [org] },
                                                                           schemas: ["sprint_03_purpose"]))
                #expect(report.rows > 0)
                #expect(try await session.query("SELECT count(*) AS n FROM sprint_03_purpose.tool_data WHERE id = $1::uuid", [id]).first!.int64("n") == 1)
            }
        }
    }

    /// A failpoint widens the batch's selection to rows that are not eligible: the guarded DELETE
    /// removes fewer rows than were archived, the batch is rolled back and the run exits 70.
    @Test func aWidenedArchiveSelectionIsRolledBackByTheGuardedDelete() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await LifecycleShapes.add(session)
            let original = try await TableFingerprint.compute(session)
            try await TestRepository.with { repo in
                let outcome = try await FTBackupBinary.run(["lifecycle", "archive", "--schema", "sprint_15_value_proposition", "--batch", "50",
                                                      "--db", "\(try TestServer.dsn) dbname=\(db.name)", "--repo", repo.path],
                                                     environment: ["FTBACKUP_FAILPOINT": "archive.widen-selection"])
                #expect(outcome.status == 70, "\(outcome.stderr)")
                #expect(TableFingerprint.differences(source: original, restored: try await TableFingerprint.compute(session)) == [])
                #expect(try ArchiveStore(storage: repo.repository.storage).all().isEmpty)
            }
        }
    }

    /// A role that may not silence triggers is refused (exit 77) rather than fire them; granted
    /// SET on session_replication_role, the same role puts the rows back exactly.
    @Test func unarchiveWithoutThePrivilegeToSilenceTriggersIsRefused() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await LifecycleShapes.add(session)
            let role = "ft_lifecycle_\(UUID().uuidString.prefix(8).lowercased())"
            try await session.execute("""
                CREATE ROLE \(role) LOGIN BYPASSRLS PASSWORD 'pw-\(role)';
                GRANT USAGE ON SCHEMA sprint_15_value_proposition, users, organizations, audit TO \(role);
                GRANT SELECT, INSERT, DELETE, UPDATE ON ALL TABLES IN SCHEMA sprint_15_value_proposition, users, organizations, audit TO \(role);
                """)
            defer { Task { try? await TestServer.admin().execute("DROP OWNED BY \(role) CASCADE; DROP ROLE IF EXISTS \(role)") } }
            let original = try await TableFingerprint.compute(session)
            try await TestRepository.with { repo in
                _ = try await ToolDataArchiver.run(ArchiveOptions(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy(),
                                                                  schemas: ["sprint_15_value_proposition"]))
                let archived = try await TableFingerprint.compute(session)
                let (name, _) = try #require(try ArchiveStore(storage: repo.repository.storage).all().first)
                let limited = "\(try TestServer.dsn) dbname=\(db.name) user=\(role) password=pw-\(role)"
                let refused = try await FTBackupBinary.run(["lifecycle", "unarchive", "--archive", name, "--db", limited, "--repo", repo.path])
                #expect(refused.status == 77, "\(refused.stderr)")
                #expect(refused.stderr.contains("session_replication_role"), "\(refused.stderr)")
                #expect(!refused.stderr.contains("pw-"), "a password reached an error message")
                #expect(TableFingerprint.differences(source: archived, restored: try await TableFingerprint.compute(session)) == [])

                try await session.execute("GRANT SET ON PARAMETER session_replication_role TO \(role)")
                for (archive, _) in try ArchiveStore(storage: repo.repository.storage).all() {
                    let granted = try await FTBackupBinary.run(["lifecycle", "unarchive", "--archive", archive, "--db", limited, "--repo", repo.path])
                    #expect(granted.status == 0, "\(granted.stderr)")
                }
                #expect(TableFingerprint.differences(source: original, restored: try await TableFingerprint.compute(session)) == [])
            }
            try await session.execute("REVOKE SET ON PARAMETER session_replication_role FROM \(role)")
        }
    }
}
