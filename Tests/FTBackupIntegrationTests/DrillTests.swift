import Foundation
import Testing
@testable import FTBackupKit

/// Issue 11's acceptance: restore drills (`ftbackup drill`) and the scheduler tick (`ftbackup run`).
/// Serialized: drills create and remove `ftbackup_drill_*` databases on the one test server (the tests that
/// compare the server's whole set also hold ``ServerWideResource/drillScratchDatabases`` exclusively).
@Suite(.serialized) struct DrillTests {
    static func scratchDatabases() async throws -> Set<String> {
        let admin = try await TestServer.admin()
        defer { admin.close() }
        return Set(try await admin.query("SELECT datname AS name FROM pg_database WHERE datname LIKE 'ftbackup\\_drill\\_%'")
            .rows.map { try $0.requiredString("name") })
    }

    static func policyFile(_ edit: (String) -> String) throws -> String {
        let file = NSTemporaryDirectory() + "drill-policy-\(UUID()).yaml"
        try edit(PolicyLoader.builtInDefault).write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    @Test func drillAfterWritesPassesAndItsRowCountsMatchTheSourceAtTheRestoredPoint() async throws {
        try await ServerWideResource.drillScratchDatabases.exclusive { try await ArchivedDatabase.with(prepare: workloadSchemaSQL) { a in
            _ = try await a.full()
            for round in 1...6 { try await writeWorkload(a.session, round: round) }
            _ = try await a.incremental()
            // The restored point is the newest archived commit (the pass's heartbeat): the source as it is now.
            let source = try await TableFingerprint.compute(a.session)
            let before = try await Self.scratchDatabases()
            let record = try await DrillRunner.run(DrillOptions(source: a.db.connectionString, repositoryPath: a.repo.path, policy: try testPolicy()))
            #expect(record.passed, "\(record.reasons)")
            #expect(record.method == "point-in-time")
            #expect(record.transactionsReplayed >= 6)
            let restored = Dictionary(uniqueKeysWithValues: record.tables.map { ("\($0.schema).\($0.table)", $0.rows) })
            #expect(record.tables.count == source.count)
            for table in source {
                #expect(restored["\(table.schema).\(table.table)"] == table.rows, "\(table.schema).\(table.table)")
            }
            #expect(record.tables.allSatisfy { $0.ok })
            #expect(record.checks.contains { $0.kind == "policy" } && record.checks.allSatisfy { $0.ok }, "\(record.checks.filter { !$0.ok })")
            #expect(record.rto.met && record.rpo.met)
            // Kept atomically in the repository, 0600, listed by drill list; the scratch database is gone.
            let path = "\(a.repo.path)/\(DrillRecord.path(record.label))"
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            #expect(mode == 0o600)
            #expect(try DrillRecord.all(a.repo.repository).map(\.label) == [record.label])
            #expect(try await Self.scratchDatabases() == before)
        } }
    }

    @Test func drillWithOneSecondRPOAndNoFollowerExitsObjectiveMissedNamingRPO() async throws {
        try await ArchivedDatabase.with { a in
            _ = try await a.full()
            try await writeWorkloadLight(a.session)
            _ = try await a.incremental()
            // Without a follower the newest restorable point only ages: more than a second by the time the drill starts.
            try await Task.sleep(for: .milliseconds(1500))
            let policy = try Self.policyFile { $0.replacingOccurrences(of: "rpo: 1h", with: "rpo: 1s") }
            defer { try? FileManager.default.removeItem(atPath: policy) }
            let outcome = try await FTBackupBinary.run(["drill", "--db", a.db.connectionString.raw, "--repo", a.repo.path, "--policy", policy])
            #expect(outcome.status == ExitStatus.drillFailed.rawValue, "\(outcome.stderr)")
            #expect(outcome.stdout.contains("RPO missed"), "\(outcome.stdout)")
            let record = try #require(try DrillRecord.all(a.repo.repository).last)
            #expect(!record.passed && !record.rpo.met)
            #expect(record.reasons.count == 1 && record.reasons[0].hasPrefix("RPO missed"), "\(record.reasons)")
        }
    }

    @Test func repositoryWithOneFlippedByteFailsTheDrillAtVerificationAndCreatesNothing() async throws {
        try await ServerWideResource.drillScratchDatabases.exclusive { try await ArchivedDatabase.with { a in
            let full = try await a.full()
            let table = try #require(full.tables.max { $0.file.storedBytes < $1.file.storedBytes })
            let file = "\(a.repo.path)/\(a.repo.repository.backupFolder(full.label))/\(table.file.path)"
            var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
            bytes[bytes.count / 2] ^= 0x01
            try bytes.write(to: URL(fileURLWithPath: file))
            let before = try await Self.scratchDatabases()
            let outcome = try await FTBackupBinary.run(["drill", "--db", a.db.connectionString.raw, "--repo", a.repo.path])
            #expect(outcome.status == ExitStatus.dataError.rawValue, "\(outcome.stderr)")
            #expect(outcome.stderr.contains("verification"), "\(outcome.stderr)")
            #expect(try await Self.scratchDatabases() == before)
            #expect(try DrillRecord.all(a.repo.repository).isEmpty)
        } }
    }

    @Test func drillKilledInTheMiddleLeavesAScratchDatabaseThatTheNextDrillRemoves() async throws {
        try await ServerWideResource.drillScratchDatabases.exclusive { try await ArchivedDatabase.with { a in
            _ = try await a.full()
            try await writeWorkloadLight(a.session)
            _ = try await a.incremental()
            let before = try await Self.scratchDatabases()
            let killed = try await FTBackupBinary.run(["drill", "--db", a.db.connectionString.raw, "--repo", a.repo.path],
                                                environment: ["FTBACKUP_FAILPOINT": "drill.after-restore"])
            #expect(killed.status == -SIGKILL, "\(killed.stderr)")
            let leftovers = try await Self.scratchDatabases().subtracting(before)
            #expect(leftovers.count == 1)
            let leftover = try #require(leftovers.first)
            // The killed process's connections go away with it; wait until the server has noticed.
            let admin = try await TestServer.admin()
            defer { admin.close() }
            let deadline = Date().addingTimeInterval(600)
            while Date() < deadline {
                let busy = try await admin.query("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1", [leftover]).first!.int64("n")
                if busy == 0 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let record = try await DrillRunner.run(DrillOptions(source: a.db.connectionString, repositoryPath: a.repo.path, policy: try testPolicy()))
            #expect(record.leftoversRemoved == [leftover])
            #expect(record.passed, "\(record.reasons)")
            #expect(try await Self.scratchDatabases() == before)
        } }
    }

    @Test func runTakesAFullThenNothingThenAnIncrementalThenTheDueDrillAndDryRunChangesNothing() async throws {
        try await ArchivedDatabase.with { a in
            let t0 = Date()
            // The drill window opens three hours from now: the first ticks are outside it.
            var utc = Calendar(identifier: .gregorian)
            utc.timeZone = .gmt
            let open = utc.dateComponents([.hour, .minute], from: t0.addingTimeInterval(3 * 3600))
            let close = utc.dateComponents([.hour, .minute], from: t0.addingTimeInterval(4 * 3600))
            let window = String(format: "%02d:%02d-%02d:%02d", open.hour!, open.minute!, close.hour!, close.minute!)
            let policy = try PolicyLoader.parse(PolicyLoader.builtInDefault.replacingOccurrences(of: "window: \"02:00-05:00\"", with: "window: \"\(window)\""),
                                                source: "(test)")
            #expect(policy.scheduling.windowText == window)
            func tick(_ at: Date, dryRun: Bool = false) async throws -> [ScheduledJob: JobOutcome] {
                let report = try await SchedulerTick.run(SchedulerTick.Options(database: a.db.connectionString, repositoryPath: a.repo.path,
                                                                               policy: policy, dryRun: dryRun, now: at))
                #expect(report.lockedOut == nil)
                #expect(!report.failed, "\(report.jobs.filter { $0.status == .failed }.map(\.logLine))")
                return Dictionary(uniqueKeysWithValues: report.jobs.map { ($0.job, $0) })
            }
            func contents() throws -> [String] {
                try FileManager.default.subpathsOfDirectory(atPath: a.repo.path).filter { !$0.hasPrefix("locks") }.sorted()
            }

            // --dry-run on a fresh repository: the full is due, nothing is written.
            try FileManager.default.createDirectory(atPath: a.repo.path, withIntermediateDirectories: true)
            let planned = try await tick(t0, dryRun: true)
            #expect(planned[.full]?.status == .due)
            #expect(try contents().isEmpty)

            let first = try await tick(t0)
            #expect(first[.full]?.status == .ran)
            #expect(first[.incremental]?.status == .skipped)
            #expect(first[.drill]?.status == .skipped)
            #expect(try a.repo.repository.entries().filter { $0.manifest?.type == .full }.count == 1)

            let again = try await tick(t0)
            #expect(again.values.allSatisfy { $0.status == .skipped }, "\(again.values.map(\.logLine))")

            try await writeWorkloadLight(a.session)
            let segmentsBefore = try ChangeSegmentManifest.all(a.repo.repository.storage).count
            let later = try await tick(t0.addingTimeInterval(61 * 60))
            #expect(later[.incremental]?.status == .ran)
            #expect(later[.full]?.status == .skipped && later[.drill]?.status == .skipped)
            #expect(try ChangeSegmentManifest.all(a.repo.repository.storage).count == segmentsBefore + 1)

            // In the window: the drill is due (and the lifecycle round, done this month already for this test).
            let inWindow = t0.addingTimeInterval(3.5 * 3600)
            var state = try SchedulerState.read(a.repo.repository)
            state.jobs[ScheduledJob.lifecycle.rawValue] = SchedulerState.JobState(lastSuccessAt: t0, lastAttemptAt: t0, lastFailure: nil)
            try state.write(a.repo.repository)
            let stateBytes = try Data(contentsOf: URL(fileURLWithPath: "\(a.repo.path)/\(SchedulerState.path)"))
            let before = try contents()
            let dry = try await tick(inWindow, dryRun: true)
            #expect(dry[.drill]?.status == .due)
            #expect(try contents() == before)
            #expect(try Data(contentsOf: URL(fileURLWithPath: "\(a.repo.path)/\(SchedulerState.path)")) == stateBytes)
            #expect(try DrillRecord.all(a.repo.repository).isEmpty)

            let drilled = try await tick(inWindow)
            #expect(drilled[.drill]?.status == .ran, "\(drilled[.drill]?.logLine ?? "")")
            #expect(try DrillRecord.all(a.repo.repository).count == 1)
        }
    }
}

/// A few committed changes for the drill and scheduler tests.
func writeWorkloadLight(_ s: DatabaseSession) async throws {
    try await s.execute("""
        INSERT INTO sprint_15_value_proposition.tool_data (data, status) VALUES ('{"drill": 1}', 'draft');
        UPDATE users.accounts SET full_name = 'drill ' || left(full_name, 20) WHERE id IN (SELECT id FROM users.accounts ORDER BY id LIMIT 2);
        DELETE FROM audit.events WHERE id IN (SELECT id FROM audit.events ORDER BY id LIMIT 2);
        """)
}
