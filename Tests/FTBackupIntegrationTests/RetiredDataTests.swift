import Foundation
import Testing
@testable import FTBackupKit

/// Audit rows older than `cutoff` in every audit table, and archived tool_data ids still present.
func retiredLeft(_ session: DatabaseSession, cutoff: String, archivedIds: [String: [String]]) async throws -> (audit: Int64, archived: Int64) {
    let census = try await auditCensus(session, cutoff: cutoff)
    var archived: Int64 = 0
    for (schema, ids) in archivedIds {
        archived += try await session.query("SELECT count(*) AS n FROM \(try session.escapeIdentifier(schema)).tool_data WHERE id::text = ANY($1::text[])",
                                            [PostgresArray.text(ids)]).first!.int64("n")
    }
    return (census.values.reduce(0) { $0 + $1.before }, archived)
}

/// Ids each committed archive still holds (not put back), per schema.
func archivedIds(_ repo: TestRepository) throws -> [String: [String]] {
    var ids: [String: [String]] = [:]
    for (_, manifest) in try ArchiveStore(storage: repo.repository.storage).all() {
        guard let manifest, manifest.status == .committed else { continue }
        ids[manifest.schema, default: []] += manifest.ids.filter { !manifest.restoredIds.contains($0) }
    }
    return ids
}

/// The restored database's fingerprints against the source's, leaving out the partitions prune
/// dropped from the source (the restored copies of them are empty, their rows removed again).
func retiredDifferences(source: [TableFingerprint], restored: [TableFingerprint]) -> [String] {
    let names = Set(source.map { "\($0.schema).\($0.table)" })
    return TableFingerprint.differences(source: source, restored: restored.filter { names.contains("\($0.schema).\($0.table)") || $0.rows > 0 })
}

@Suite struct RetiredDataTests {
    /// A full taken before a prune and an archive run: restoring it gives the database as the source
    /// is now (retired rows removed again, an id put back by unarchive kept), and `--keep-retired`
    /// brings everything back.
    @Test func restoreOfAFullTakenBeforePruneAndArchiveDoesNotBringRetiredRowsBack() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await LifecycleShapes.add(session)
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(db, repo))
                let pruned = try await AuditPruner.run(try pruneOptions(db, repo, asOf: try await databaseNow(session), batch: 500))
                #expect(pruned.rows > 0)
                // The application drops some dependants of old canvases after the backup: the backup holds
                // rows the archive will never see, and they must go with their canvas on restore.
                let dropped = try await session.query("""
                    DELETE FROM sprint_24_fit_abc_analysis.team_assessments WHERE tool_data_id IN (
                      SELECT t.id FROM sprint_24_fit_abc_analysis.tool_data t WHERE t.status = 'completed'
                        AND t.completed_at < now() - interval '2 years' AND EXISTS (SELECT 1 FROM sprint_24_fit_abc_analysis.team_assessments a WHERE a.tool_data_id = t.id)
                      ORDER BY t.id LIMIT 3)
                    """).affectedRows ?? 0
                #expect(dropped > 0)
                let archived = try await ToolDataArchiver.run(ArchiveOptions(database: db.connectionString, repositoryPath: repo.path, policy: try testPolicy()))
                #expect(archived.rows > 0)
                let (name, manifest) = try #require(try ArchiveStore(storage: repo.repository.storage).all().first { $0.manifest?.schema == "sprint_15_value_proposition" })
                _ = try await Unarchiver.run(database: db.connectionString, repositoryPath: repo.path, archive: name, ids: [manifest!.ids[0]])
                let source = try await TableFingerprint.compute(session)
                let ids = try archivedIds(repo)

                try await TestServer.withDatabase(seeded: false) { target in
                    let report = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    let retired = try #require(report.retired)
                    #expect(retired.pruneCutoff == pruned.cutoff)
                    #expect(retired.pruneRows == pruned.rows)
                    #expect(retired.archivedRows > archived.rows)  // tool_data and what went with it
                    let t = try await target.connect()
                    defer { t.close() }
                    let left = try await retiredLeft(t, cutoff: pruned.cutoff, archivedIds: ids)
                    #expect(left.audit == 0 && left.archived == 0)
                    let differences = retiredDifferences(source: source, restored: try await TableFingerprint.compute(t))
                    #expect(differences == [], "\(differences)")
                    #expect(try repo.repository.storage.exists("lifecycle/reapplied/\(retired.run).json"))
                }
                try await TestServer.withDatabase(seeded: false) { target in
                    var options = RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false)
                    options.keepRetired = true
                    let report = try await RestoreRunner.run(options)
                    #expect(report.retired == nil)
                    let t = try await target.connect()
                    defer { t.close() }
                    let left = try await retiredLeft(t, cutoff: pruned.cutoff, archivedIds: ids)
                    #expect(left.audit == pruned.rows)
                    #expect(left.archived == Int64(ids.values.reduce(0) { $0 + $1.count }))
                }
                // One tool schema restored on its own: only its retired rows go again.
                try await TestServer.withDatabase { target in
                    let t = try await target.connect()
                    defer { t.close() }
                    let schema = "sprint_24_fit_abc_analysis"
                    try await t.execute("DROP SCHEMA \(schema) CASCADE")
                    let report = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path,
                                                                            schemas: [schema], showProgress: false))
                    #expect(report.retired?.schemas == [schema])
                    let left = try await retiredLeft(t, cutoff: pruned.cutoff, archivedIds: ids.filter { $0.key == schema })
                    #expect(left.archived == 0)
                    #expect(try await t.query("SELECT count(*) AS n FROM \(schema).audit_log WHERE \"timestamp\" < $1::timestamp", [pruned.cutoff]).first!.int64("n") == 0)
                    let restored = try await TableFingerprint.compute(t, schemas: [schema])
                    #expect(TableFingerprint.differences(source: source.filter { $0.schema == schema }, restored: restored) == [])
                }
            }
        }
    }
}

extension ChangeArchivalTests.PointInTimeTests {
    /// restore --at a time before a prune and an archive run: the database as it was then, without
    /// what retention has removed since.
    @Test func restoreAtATimeBeforeRetentionRunsDoesNotBringRetiredRowsBack() async throws {
        try await ArchivedDatabase.with(prepare: workloadSchemaSQL + ";\n" + LifecycleShapes.closureSQL) { a in
            _ = try await a.full()
            try await writeWorkload(a.session, round: 1)
            let (at, _) = try await a.instant()
            let pruned = try await AuditPruner.run(try pruneOptions(a.db, a.repo, asOf: try await databaseNow(a.session), batch: 500))
            #expect(pruned.rows > 0)
            let archived = try await ToolDataArchiver.run(ArchiveOptions(database: a.db.connectionString, repositoryPath: a.repo.path, policy: try testPolicy()))
            #expect(archived.rows > 0)
            _ = try await a.incremental()
            let ids = try archivedIds(a.repo)
            try await TestServer.withDatabase(seeded: false) { target in
                let report = try await PointInTimeRestore.run(RestoreOptions(target: target.connectionString, repositoryPath: a.repo.path,
                                                                             showProgress: false), at: at)
                #expect(report.fullRestore?.retired?.pruneRows ?? 0 > 0)
                let t = try await target.connect()
                defer { t.close() }
                let left = try await retiredLeft(t, cutoff: pruned.cutoff, archivedIds: ids)
                #expect(left.audit == 0 && left.archived == 0)
            }
        }
    }
}

extension RetiredDataTests {
    /// SIGKILL after an unarchive committed, before its result was recorded: a restore of a full taken
    /// before the archive keeps the ids that came back (they are live in the source), and the next
    /// unarchive run settles them as put back without putting anything back twice.
    @Test func unarchiveKilledAfterCommitIsNeverForgottenByALaterRestore() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(db, repo))
                let schema = "sprint_15_value_proposition"
                let archived = try await ToolDataArchiver.run(ArchiveOptions(database: db.connectionString, repositoryPath: repo.path,
                                                                             policy: try testPolicy(), schemas: [schema]))
                #expect(archived.rows > 0)
                let store = ArchiveStore(storage: repo.repository.storage)
                let (name, manifest) = try #require(try store.all().first { $0.manifest?.schema == schema })
                let id = try #require(manifest?.ids.first)
                let conninfo = "\(try TestServer.dsn) dbname=\(db.name)"
                let killed = try await FTBackupBinary.run(["lifecycle", "unarchive", "--archive", name, "--id", id, "--db", conninfo, "--repo", repo.path],
                                                    environment: ["FTBACKUP_FAILPOINT": "unarchive.after-commit"])
                #expect(killed.status == -SIGKILL, "\(killed.stderr)")
                #expect(try await session.query("SELECT count(*) AS n FROM \(schema).tool_data WHERE id = $1::uuid", [id]).first!.int64("n") == 1)
                #expect(try store.read(name).unarchivingIds == [id])
                #expect(try store.read(name).restoredIds == [])
                let source = try await TableFingerprint.compute(session)

                try await TestServer.withDatabase(seeded: false) { target in
                    let report = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false))
                    #expect(report.retired?.unsettledUnarchives == [name])
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(try await t.query("SELECT count(*) AS n FROM \(schema).tool_data WHERE id = $1::uuid", [id]).first!.int64("n") == 1)
                    let differences = retiredDifferences(source: source, restored: try await TableFingerprint.compute(t))
                    #expect(differences == [], "\(differences)")
                }
                // The next unarchive settles the interrupted one first: the id counts as put back, not refused as existing.
                let other = try #require(manifest?.ids.dropFirst().first)
                let next = try await Unarchiver.run(database: db.connectionString, repositoryPath: repo.path, archive: name, ids: [other])
                #expect(next.ids == [other])
                let settled = try store.read(name)
                #expect(Set(settled.restoredIds) == [id, other])
                #expect(settled.unarchivingIds == [])
            }
        }
    }
}
