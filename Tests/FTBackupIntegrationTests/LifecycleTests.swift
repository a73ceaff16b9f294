import Foundation
import Testing
@testable import FTBackupKit

/// Every table of every schema, fingerprinted: what "the original data" means in these tests (an
/// archive reaches other schemas through cascading foreign keys, and a trigger could write anywhere).
func toolSchemaFingerprints(_ session: DatabaseSession) async throws -> [TableFingerprint] {
    try await TableFingerprint.compute(session)
}

/// Independent of the archiver's SQL: completed rows past 2 years, minus rows that Dream rows which
/// stay (not completed, or not old) still reference, minus canvases another schema features (a
/// NO ACTION foreign key from organizations.featured_canvases blocks them).
func qualifyingRows(_ session: DatabaseSession, schema: String, ageColumn: String) async throws -> Int64 {
    let referenced = schema == "sprint_01_know_thyself"
        ? """
           AND id NOT IN (SELECT source_know_thyself_id FROM sprint_02_dream.tool_data WHERE source_know_thyself_id IS NOT NULL
                          AND NOT (status = 'completed' AND completed_at < now() - interval '2 years'))
          """ : ""
    let featured = schema == "sprint_15_value_proposition"
        ? " AND id NOT IN (SELECT tool_data_id FROM organizations.featured_canvases WHERE tool_data_id IS NOT NULL)" : ""
    return try await session.query("""
        SELECT count(*) AS n FROM \(schema).tool_data WHERE status = 'completed' AND \(ageColumn) < now() - interval '2 years'\(referenced)\(featured)
        """).first!.int64("n")
}

func testPolicy(_ edit: (inout Policy) -> Void = { _ in }) throws -> Policy {
    var policy = try PolicyLoader.parse(PolicyLoader.builtInDefault, source: "(test policy)")
    edit(&policy)
    return policy
}

@Suite struct LifecycleArchiveTests {
    @Test func dryRunMatchesIndependentCountsRealRunMatchesDryRunAndUnarchiveRestoresExactly() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            let original = try await toolSchemaFingerprints(session)
            let rowsBefore = try await totalRows(session)
            try await TestRepository.with { repo in
                let options = ArchiveOptions(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy(), batchSize: 7, dryRun: true)
                let dry = try await ToolDataArchiver.run(options)
                #expect(dry.schemas.count == 30)
                for summary in dry.schemas {
                    let expected = try await qualifyingRows(session, schema: summary.schema, ageColumn: summary.ageColumn)
                    #expect(summary.rows == expected, "\(summary.schema)")
                }
                #expect(dry.schemas.first { $0.schema == "sprint_00_woop" }?.ageColumn == "updated_at")
                #expect(dry.schemas.first { $0.schema == "sprint_01_know_thyself" }?.keptReferenced ?? 0 > 0)
                #expect(dry.schemas.first { $0.schema == "sprint_15_value_proposition" }?.dependantRows ?? 0 > 0)
                #expect(try repo.repository.storage.list("archive").isEmpty)

                var real = options
                real.dryRun = false
                let run = try await ToolDataArchiver.run(real)
                for (d, r) in zip(dry.schemas, run.schemas) {
                    #expect(d.rows == r.rows && d.dependantRows == r.dependantRows && d.bytes == r.bytes, "\(d.schema) \(d.bytes) \(r.bytes)")
                    #expect(d.oldest == r.oldest && d.newest == r.newest, "\(d.schema)")
                }
                #expect(run.rows > 300)
                for summary in run.schemas {
                    #expect(try await qualifyingRows(session, schema: summary.schema, ageColumn: summary.ageColumn) == 0)
                }
                let orphans = try await session.query("""
                    SELECT count(*) AS n FROM sprint_15_value_proposition.hypotheses h
                    WHERE NOT EXISTS (SELECT 1 FROM sprint_15_value_proposition.tool_data t WHERE t.id = h.tool_data_id)
                    """).first!.int64("n")
                #expect(orphans == 0)
                // Exactly what the report names left the database, in every schema (no trigger added a row).
                #expect(rowsBefore - (try await totalRows(session)) == run.rows + run.schemas.reduce(0) { $0 + $1.dependantRows })
                #expect(dry.schemas.first { $0.schema == "sprint_15_value_proposition" }?.blocked.isEmpty == false)

                let store = ArchiveStore(storage: repo.repository.storage)
                let archives = try store.all()
                #expect(archives.allSatisfy { $0.manifest?.status == .committed })
                for (name, manifest) in archives {
                    for table in manifest!.tables {
                        try StoredFileReader.read(store.storage, folder: store.folder(name), file: table.file)
                    }
                }
                #expect(try store.storage.exists("lifecycle/archive/\(run.run).json"))

                let second = try await ToolDataArchiver.run(real)
                #expect(second.rows == 0)

                for (name, _) in archives {
                    _ = try await Unarchiver.run(database: db.connectionString, repositoryPath: repo.path, archive: name, ids: [])
                }
                let restored = try await toolSchemaFingerprints(session)
                #expect(TableFingerprint.differences(source: original, restored: restored) == [])
                #expect(try store.all().allSatisfy { $0.manifest?.status == .restored })
            }
        }
    }

    @Test func unarchiveOfChosenIdsRefusesIdsThatExist() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                _ = try await ToolDataArchiver.run(ArchiveOptions(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy(),
                                                                  schemas: ["sprint_15_value_proposition"]))
                let store = ArchiveStore(storage: repo.repository.storage)
                let (name, manifest) = try store.all()[0]
                let id = manifest!.ids[0]
                let report = try await Unarchiver.run(database: db.connectionString, repositoryPath: repo.path, archive: name, ids: [id])
                #expect(report.rows["tool_data"] == 1)
                let session = try await db.connect()
                defer { session.close() }
                #expect(try await session.query("SELECT count(*) AS n FROM sprint_15_value_proposition.tool_data WHERE id = $1::uuid", [id]).first!.requiredInt("n") == 1)
                let again = await #expect(throws: FTBackupError.self) {
                    _ = try await Unarchiver.run(database: db.connectionString, repositoryPath: repo.path, archive: name, ids: [id])
                }
                #expect(again?.message.contains("already put back") == true)
                // A row re-created by the application under an archived id is refused too.
                let other = manifest!.ids[1]
                try await session.execute("INSERT INTO sprint_15_value_proposition.tool_data (id, data, status) VALUES ('\(other)', '{}', 'draft')")
                let clash = await #expect(throws: FTBackupError.self) {
                    _ = try await Unarchiver.run(database: db.connectionString, repositoryPath: repo.path, archive: name, ids: [other])
                }
                #expect(clash?.message.contains(other) == true)
            }
        }
    }

    @Test func legalHoldOrganizationsAreNeverArchived() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            let org = try await session.query("""
                SELECT organization_id::text AS o FROM sprint_03_purpose.tool_data
                WHERE status = 'completed' AND completed_at < now() - interval '2 years' AND organization_id IS NOT NULL
                GROUP BY 1 ORDER BY count(*) DESC LIMIT 1
                """).first!.requiredString("o")
            let before = try await session.query("SELECT count(*) AS n FROM sprint_03_purpose.tool_data WHERE organization_id = $1::uuid", [org]).first!.int64("n")
            try await TestRepository.with { repo in
                let report = try await ToolDataArchiver.run(ArchiveOptions(database: db.connectionString, repositoryPath: repo.path,
                                                                           policy: try testPolicy { $0.legalHoldOrganizations = [org] },
                                                                           schemas: ["sprint_03_purpose"]))
                #expect(report.rows > 0)
                let after = try await session.query("SELECT count(*) AS n FROM sprint_03_purpose.tool_data WHERE organization_id = $1::uuid", [org]).first!.int64("n")
                #expect(after == before)
            }
        }
    }

    @Test func policyNamingAnUnknownColumnOrSchemaIsAClearError() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                let badColumn = await #expect(throws: FTBackupError.self) {
                    _ = try await ToolDataArchiver.run(ArchiveOptions(database: db.connectionString, repositoryPath: repo.path,
                                                                      policy: try testPolicy { $0.archiveToolData.ageColumnOverrides = [:] }, dryRun: true))
                }
                #expect(badColumn?.status == .configuration)
                #expect(badColumn?.message.contains("sprint_00_woop") == true)
                #expect(badColumn?.message.contains("completed_at") == true)
                let badSchema = await #expect(throws: FTBackupError.self) {
                    _ = try await ToolDataArchiver.run(ArchiveOptions(database: db.connectionString, repositoryPath: repo.path,
                                                                      policy: try testPolicy { $0.archiveToolData.ageColumnOverrides["sprint_77_gone"] = "updated_at" }, dryRun: true))
                }
                #expect(badSchema?.message.contains("sprint_77_gone") == true)
                let unknown = await #expect(throws: FTBackupError.self) {
                    _ = try await ToolDataArchiver.run(ArchiveOptions(database: db.connectionString, repositoryPath: repo.path,
                                                                      policy: try testPolicy(), schemas: ["users"], dryRun: true))
                }
                #expect(unknown?.status == .usage)
            }
        }
    }

    /// SIGKILL between writing the archive and committing the delete, and between the commit and
    /// marking the manifest: the next run reconciles, and database ∪ archives equals the original.
    @Test(arguments: ["archive.after-write", "archive.after-commit"])
    func killedArchiverIsReconciledByTheNextRun(failpoint: String) async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            let original = try await toolSchemaFingerprints(session)
            try await TestRepository.with { repo in
                let conninfo = "\(try TestServer.dsn) dbname=\(db.name)"
                let killed = try await FTBackupBinary.run(["lifecycle", "archive", "--db", conninfo, "--repo", repo.path, "--schema", "sprint_15_value_proposition"],
                                                    environment: ["FTBACKUP_FAILPOINT": failpoint])
                #expect(killed.status == -SIGKILL, "\(killed.stderr)")
                let store = ArchiveStore(storage: repo.repository.storage)
                let pending = try store.all()
                #expect(pending.count == 1)
                #expect(pending.first?.manifest?.status == .pending)
                let stillThere = try await session.query("SELECT count(*) AS n FROM sprint_15_value_proposition.tool_data WHERE id::text = ANY($1::text[])",
                                                         [PostgresArray.text(pending[0].manifest!.ids)]).first!.int64("n")
                #expect(stillThere == (failpoint == "archive.after-write" ? Int64(pending[0].manifest!.ids.count) : 0))

                let next = try await ToolDataArchiver.run(ArchiveOptions(database: db.connectionString, repositoryPath: repo.path,
                                                                         policy: try testPolicy(), schemas: ["sprint_15_value_proposition"]))
                #expect(next.reconciled.count == 1)
                #expect(next.reconciled[0].action.hasPrefix(failpoint == "archive.after-write" ? "discarded" : "marked committed"))
                let archives = try store.all()
                #expect(archives.allSatisfy { $0.manifest?.status == .committed })
                let archivedIds = archives.flatMap { $0.manifest!.ids }
                #expect(Set(archivedIds).count == archivedIds.count)  // nothing archived twice

                for (name, _) in archives {
                    _ = try await Unarchiver.run(database: db.connectionString, repositoryPath: repo.path, archive: name, ids: [])
                }
                #expect(TableFingerprint.differences(source: original, restored: try await toolSchemaFingerprints(session)) == [])
            }
        }
    }
}

@Suite struct AuditPruneTests {
    @Test func rowExactlyAtTheCutoffIsKeptAndOneJustBeforeIsDeleted() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute("""
                INSERT INTO audit.events (id, action, "timestamp") VALUES
                  ('00000000-0000-0000-0000-00000000000a', 'at-cutoff', '2019-01-01 00:00:00'),
                  ('00000000-0000-0000-0000-00000000000b', 'just-before', '2018-12-31 23:59:59.999999');
                INSERT INTO sprint_05_vision_statement.audit_log (id, action, "timestamp") VALUES
                  ('00000000-0000-0000-0000-00000000000c', 'at-cutoff', '2019-01-01 00:00:00')
                """)
            try await TestRepository.with { repo in
                let report = try await AuditPruner.run(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy(),
                                                       dryRun: false, asOf: "2026-01-01 00:00:00")
                #expect(report.cutoff == "2019-01-01 00:00:00")
                let left = try await session.query("SELECT action FROM audit.events WHERE id::text LIKE '00000000-0000-0000-0000-00000000000_' ORDER BY 1")
                #expect(try left.rows.map { try $0.requiredString("action") } == ["at-cutoff"])
                #expect(try await session.query("SELECT count(*) AS n FROM sprint_05_vision_statement.audit_log WHERE action = 'at-cutoff'").first!.requiredInt("n") == 1)
                #expect(try await session.query("SELECT count(*) AS n FROM audit.events WHERE \"timestamp\" < '2019-01-01'").first!.requiredInt("n") == 0)
                #expect(report.tables.first { $0.table == "events" }?.newest == "2018-12-31 23:59:59.999999")
            }
        }
    }

    @Test func batchesAreBoundedEvidenceIsWrittenAndMatchesTheDryRun() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            let expected = try await session.query("""
                SELECT count(*) AS n, min("timestamp")::text AS oldest, max("timestamp")::text AS newest FROM audit.events
                WHERE "timestamp" < localtimestamp - interval '7 years'
                """).first!
            let old = try expected.int64("n")
            #expect(old > 100)
            try await TestRepository.with { repo in
                let dry = try await AuditPruner.run(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy(), batchSize: 40, dryRun: true)
                let run = try await AuditPruner.run(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy(), batchSize: 40, dryRun: false)
                let events = run.tables.first { $0.schema == "audit" }!
                #expect(events.rows == old)
                #expect(events.oldest == (try expected.string("oldest")))
                #expect(events.newest == (try expected.string("newest")))
                #expect(events.batches == events.partitions.filter { $0.method == .rows }.reduce(0) { $0 + Int(($1.rows + 39) / 40) })
                #expect(events.sha256?.count == 64)
                for (d, r) in zip(dry.tables, run.tables) {
                    #expect(d.rows == r.rows && d.oldest == r.oldest && d.newest == r.newest && d.batches == r.batches, "\(d.schema).\(d.table)")
                }
                #expect(run.tables.count == 31)
                let evidence = try repo.repository.storage.readAll("lifecycle/prune-audit/\(run.run).json")
                let object = try JSONSerialization.jsonObject(with: Data(evidence)) as? [String: Any]
                #expect(object?["cutoff"] as? String == run.cutoff)
                #expect((object?["tables"] as? [[String: Any]])?.count == 31)
                let second = try await AuditPruner.run(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy(), dryRun: false)
                #expect(second.rows == 0)
            }
        }
    }

    /// Killed after a batch has committed: the rows already deleted are in the evidence (marked incomplete).
    @Test func evidenceOfDeletedRowsSurvivesAKilledRun() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                let killed = try await FTBackupBinary.run(["lifecycle", "prune-audit", "--batch", "25", "--db", "\(try TestServer.dsn) dbname=\(db.name)",
                                                     "--repo", repo.path], environment: ["FTBACKUP_FAILPOINT": "prune.after-batch"])
                #expect(killed.status == -SIGKILL)
                let logs = try repo.repository.storage.list("lifecycle/prune-audit")
                try #require(logs.count == 1)
                let object = try JSONSerialization.jsonObject(with: Data(try repo.repository.storage.readAll(logs[0].path))) as? [String: Any]
                #expect(object?["complete"] as? Bool == false)
                let tables = object?["tables"] as? [[String: Any]]
                let leaves = tables?.last?["partitions"] as? [[String: Any]]
                #expect(leaves?.last?["method"] as? String == "rows")
                #expect(leaves?.last?["rows"] as? Int == 25)
                let session = try await db.connect()
                defer { session.close() }
                let table = "\(tables?.last?["schema"] as? String ?? "").\(tables?.last?["table"] as? String ?? "")"
                #expect(table == "audit.events")
            }
        }
    }

    @Test func legalHoldKeepsAnOrganizationsAuditRows() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            let org = try await session.query("""
                SELECT organization_id::text AS o FROM audit.events WHERE "timestamp" < localtimestamp - interval '7 years'
                  AND organization_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1
                """).first!.requiredString("o")
            let count = "SELECT count(*) AS n FROM audit.events WHERE organization_id = $1::uuid AND \"timestamp\" < localtimestamp - interval '7 years'"
            let before = try await session.query(count, [org]).first!.int64("n")
            #expect(before > 0)
            try await TestRepository.with { repo in
                let report = try await AuditPruner.run(database: db.connectionString, repositoryPath: repo.path,
                                                       policy: try testPolicy { $0.legalHoldOrganizations = [org] }, dryRun: false)
                #expect(report.rows > 0)
                #expect(try await session.query(count, [org]).first!.int64("n") == before)
            }
        }
    }
}
