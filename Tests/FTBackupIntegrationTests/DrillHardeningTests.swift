import Foundation
import Testing
@testable import FTBackupKit

/// Adversarial review of issue 11 (branch adv11): what a hostile policy, a user's look-alike database or a
/// damaged scheduler state must not be able to do. In `DrillTests`' serialized suite: these create and drop
/// `ftbackup_drill_*`-looking databases on the one test server.
extension DrillTests {
    static func policy(checks: String) throws -> Policy {
        let base = PolicyLoader.builtInDefault
        let from = try #require(base.range(of: "  checks:\n"))
        let to = try #require(base.range(of: "schedule:\n  tick", range: from.upperBound..<base.endIndex))
        let text = String(base[..<from.lowerBound]) + "  checks:\n" + checks + String(base[to.lowerBound...])
        #expect(text != PolicyLoader.builtInDefault)
        return try PolicyLoader.parse(text, source: "(test)")
    }

    @Test func drillNeverDropsAUserDatabaseThatMerelyLooksLikeAScratchDatabase() async throws {
        try await ArchivedDatabase.with { a in
            _ = try await a.full()
            let admin = try await TestServer.admin()
            defer { admin.close() }
            let names = ["ftbackup_drill_20200101T000000Z", "ftbackup_drill_20200101T000000Z_2", "FTBACKUP_DRILL_20200101T000000Z", "ftbackup_drill_x"]
            var prints: [String: [TableFingerprint]] = [:]
            for name in names {
                let quoted = try admin.escapeIdentifier(name)
                try await admin.execute("DROP DATABASE IF EXISTS \(quoted) WITH (FORCE)")
                try await admin.execute("CREATE DATABASE \(quoted)")
                let user = try await DatabaseSession.connect(try DrillTarget.connectionString(try ConnectionString(try TestServer.dsn), database: name), name: "user")
                try await user.execute("CREATE TABLE ledger (id int PRIMARY KEY, note text); INSERT INTO ledger SELECT g, 'row ' || g FROM generate_series(1, 200) g")
                prints[name] = try await TableFingerprint.compute(user, schemas: ["public"])
                user.close()
            }
            defer { Task { for name in names { try? await admin.execute("DROP DATABASE IF EXISTS \(try admin.escapeIdentifier(name)) WITH (FORCE)") } } }
            let record = try await DrillRunner.run(DrillOptions(source: a.db.connectionString, repositoryPath: a.repo.path, policy: try testPolicy()))
            #expect(record.leftoversRemoved.isEmpty, "\(record.leftoversRemoved)")
            #expect(record.passed, "\(record.reasons)")
            for name in names {
                let user = try await DatabaseSession.connect(try DrillTarget.connectionString(try ConnectionString(try TestServer.dsn), database: name), name: "user")
                defer { user.close() }
                #expect(TableFingerprint.differences(source: prints[name]!, restored: try await TableFingerprint.compute(user, schemas: ["public"])) == [], "\(name)")
            }
            for name in names { try await admin.execute("DROP DATABASE IF EXISTS \(try admin.escapeIdentifier(name)) WITH (FORCE)") }
        }
    }

    @Test func policyChecksCannotWriteToTheRestoredDatabase() async throws {
        try await ArchivedDatabase.with(prepare: "CREATE TABLE public.drill_probe (id int PRIMARY KEY, note text); INSERT INTO public.drill_probe SELECT g, 'n' || g FROM generate_series(1, 50) g") { a in
            _ = try await a.full()
            try await writeWorkloadLight(a.session)
            _ = try await a.incremental()
            let source = try await TableFingerprint.compute(a.session, schemas: ["public"])
            let policy = try Self.policy(checks: """
                    - { name: read-only off, sql: "SELECT set_config('default_transaction_read_only', 'off', false)", expect: "off" }
                    - { name: delete, sql: "WITH d AS (DELETE FROM public.drill_probe RETURNING 1) SELECT count(*) > 0 FROM d", expect: t }
                    - { name: probe present, sql: "SELECT count(*) = 50 FROM public.drill_probe", expect: t }

                """)
            var options = DrillOptions(source: a.db.connectionString, repositoryPath: a.repo.path, policy: policy)
            options.keep = true
            let record = try await DrillRunner.run(options)
            let scratch = try #require(record.scratchDatabase)
            let kept = try DrillTarget.connectionString(a.db.connectionString, database: scratch)
            let admin = try await TestServer.admin()
            defer { admin.close() }
            let restored = try await DatabaseSession.connect(kept, name: "kept")
            let prints = try await TableFingerprint.compute(restored, schemas: ["public"])
            restored.close()
            try await admin.execute("DROP DATABASE IF EXISTS \(try admin.escapeIdentifier(scratch)) WITH (FORCE)")
            #expect(TableFingerprint.differences(source: source, restored: prints) == [])
            let delete = try #require(record.checks.first { $0.name == "delete" })
            #expect(!delete.ok && (delete.detail ?? "").contains("read-only"), "\(delete)")
            #expect(record.checks.first { $0.name == "probe present" }?.ok == true)
            #expect(!record.passed)
        }
    }

    @Test func policyCheckThatNeverReturnsIsStoppedByTheCheckTimeoutAndFailsTheDrill() async throws {
        try await ArchivedDatabase.with { a in
            _ = try await a.full()
            let policy = try Self.policy(checks: """
                    - { name: forever, sql: "SELECT pg_sleep(3600)::text", expect: "slept", timeout: 2s }
                    - { name: accounts present, sql: "SELECT count(*) > 0 FROM users.accounts", expect: t }

                """)
            let started = Date()
            let record = try await DrillRunner.run(DrillOptions(source: a.db.connectionString, repositoryPath: a.repo.path, policy: policy))
            #expect(Date().timeIntervalSince(started) < 600)
            let forever = try #require(record.checks.first { $0.name == "forever" })
            #expect(!forever.ok && (forever.detail ?? "").contains("statement timeout"), "\(forever)")
            #expect(record.checks.first { $0.name == "accounts present" }?.ok == true)
            #expect(!record.passed && record.reasons.contains { $0.contains("forever") })
        }
    }

    @Test func unreadableStateFileIsSetAsideAndTheTickStillTakesTheDueFull() async throws {
        try await ArchivedDatabase.with { a in
            // A window that does not contain now: only the backups and maintenance are due.
            var utc = Calendar(identifier: .gregorian)
            utc.timeZone = .gmt
            let open = utc.dateComponents([.hour, .minute], from: Date().addingTimeInterval(6 * 3600))
            let close = utc.dateComponents([.hour, .minute], from: Date().addingTimeInterval(7 * 3600))
            let window = String(format: "%02d:%02d-%02d:%02d", open.hour!, open.minute!, close.hour!, close.minute!)
            let policy = try PolicyLoader.parse(PolicyLoader.builtInDefault.replacingOccurrences(of: "window: \"02:00-05:00\"", with: "window: \"\(window)\""),
                                                source: "(test)")
            try FileManager.default.createDirectory(atPath: "\(a.repo.path)/schedule", withIntermediateDirectories: true)
            let damaged = Data("{\"jobs\": {\"full\": {\"lastSuccessAt\": \"2026-".utf8)
            try damaged.write(to: URL(fileURLWithPath: "\(a.repo.path)/\(SchedulerState.path)"))
            let report = try await SchedulerTick.run(SchedulerTick.Options(database: a.db.connectionString, repositoryPath: a.repo.path, policy: policy))
            #expect(!report.failed, "\(report.jobs.map(\.logLine))")
            #expect(report.jobs.first { $0.job == .full }?.status == .ran)
            #expect(report.stateWarning?.contains("unreadable") == true, "\(report.stateWarning ?? "")")
            #expect(try a.repo.repository.entries().filter { $0.manifest?.type == .full }.count == 1)
            // The damaged file is kept aside, byte for byte; the new state is readable.
            let aside = try FileManager.default.contentsOfDirectory(atPath: "\(a.repo.path)/schedule").filter { $0.hasPrefix("state.json.unreadable-") }
            #expect(aside.count == 1)
            #expect(try aside.first.map { try Data(contentsOf: URL(fileURLWithPath: "\(a.repo.path)/schedule/\($0)")) } == damaged)
            #expect(try SchedulerState.read(a.repo.repository).jobs[ScheduledJob.full.rawValue]?.lastSuccessAt != nil)
        }
    }

    @Test func drillFailingAtEveryTickIsRetriedOnceThenBacksOff() async throws {
        try await ArchivedDatabase.with { a in
            let full = try await a.full()
            // A damaged backup: every drill stops at verification (fast, nothing created).
            let table = try #require(full.tables.max { $0.file.storedBytes < $1.file.storedBytes })
            let file = "\(a.repo.path)/\(a.repo.repository.backupFolder(full.label))/\(table.file.path)"
            var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
            bytes[bytes.count / 2] ^= 0x01
            try bytes.write(to: URL(fileURLWithPath: file))
            // The window is open now (and the lifecycle round done): the drill is due at every tick.
            let t0 = Date()
            var utc = Calendar(identifier: .gregorian)
            utc.timeZone = .gmt
            let open = utc.dateComponents([.hour, .minute], from: t0.addingTimeInterval(-3600))
            let close = utc.dateComponents([.hour, .minute], from: t0.addingTimeInterval(3 * 3600))
            let window = String(format: "%02d:%02d-%02d:%02d", open.hour!, open.minute!, close.hour!, close.minute!)
            let policy = try PolicyLoader.parse(PolicyLoader.builtInDefault.replacingOccurrences(of: "window: \"02:00-05:00\"", with: "window: \"\(window)\""),
                                                source: "(test)")
            var state = SchedulerState()
            state.jobs[ScheduledJob.lifecycle.rawValue] = SchedulerState.JobState(lastSuccessAt: t0, lastAttemptAt: t0, lastFailure: nil)
            try state.write(a.repo.repository)
            func drill(_ minutes: Double) async throws -> JobOutcome {
                let report = try await SchedulerTick.run(SchedulerTick.Options(database: a.db.connectionString, repositoryPath: a.repo.path,
                                                                               policy: policy, now: t0.addingTimeInterval(minutes * 60)))
                return try #require(report.jobs.first { $0.job == .drill })
            }
            #expect(try await drill(0).status == .failed)
            #expect(try await drill(5).status == .failed)           // retried at the next tick
            let waiting = try await drill(10)                      // then waits two ticks (10 min from the last attempt)
            #expect(waiting.status == .skipped && waiting.reason.contains("failed 2 times in a row"), "\(waiting.logLine)")
            let again = try await drill(15)
            #expect(again.status == .failed, "\(again.logLine)")
            #expect(try await drill(30).status == .skipped)         // four ticks now
            #expect(try await drill(35).status == .failed)
            #expect(try SchedulerState.read(a.repo.repository).jobs[ScheduledJob.drill.rawValue]?.consecutiveFailures == 4)
            #expect(try DrillRecord.all(a.repo.repository).isEmpty)
        }
    }

    @Test func clockGoingBackADayDoesNotStopTheFullOrMaintenance() async throws {
        try await ArchivedDatabase.with { a in
            _ = try await a.full()
            let t0 = Date()
            let policy = try PolicyLoader.parse(PolicyLoader.builtInDefault, source: "(test)")
            var state = SchedulerState()
            state.jobs[ScheduledJob.maintenance.rawValue] = SchedulerState.JobState(lastSuccessAt: t0, lastAttemptAt: t0)
            try state.write(a.repo.repository)
            func tick(_ at: Date) async throws -> [ScheduledJob: JobOutcome] {
                let report = try await SchedulerTick.run(SchedulerTick.Options(database: a.db.connectionString, repositoryPath: a.repo.path,
                                                                               policy: policy, dryRun: true, now: at))
                return Dictionary(uniqueKeysWithValues: report.jobs.map { ($0.job, $0) })
            }
            // With the clock right, nothing of either is due.
            let now = try await tick(t0)
            #expect(now[.full]?.status == .skipped && now[.maintenance]?.status == .skipped)
            // The clock went back a day: the newest full and the last maintenance look like they are from tomorrow.
            let back = try await tick(t0.addingTimeInterval(-86_400))
            #expect(back[.full]?.status == .due && (back[.full]?.reason ?? "").contains("clock went back"), "\(back[.full]?.logLine ?? "")")
            #expect(back[.maintenance]?.status == .due, "\(back[.maintenance]?.logLine ?? "")")
        }
    }

    /// `drill --keep` whose restore fails keeps the scratch database, marked as kept, so that the
    /// next drill does not remove it as a leftover of a killed drill.
    @Test func aKeptDrillWhoseRestoreFailsIsKeptAndLeftAloneByTheNextDrill() async throws {
        try await ArchivedDatabase.with { a in
            _ = try await a.full()
            let admin = try await TestServer.admin()
            defer { admin.close() }
            func exists(_ name: String) async throws -> Bool {
                try await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]).count == 1
            }
            let failed = try await FTBackupBinary.run(["drill", "--db", a.db.connectionString.raw, "--repo", a.repo.path, "--keep"],
                                                environment: ["FTBACKUP_FAILPOINT": "drill.restore-fails"])
            #expect(failed.status != 0 && failed.stderr.contains("drill.restore-fails"), "\(failed.stderr)")
            let name = try #require(failed.stderr.firstMatch(of: /database=(ftbackup_drill_[0-9TZ_]+)/)?.1).description
            #expect(try await exists(name), "a failed drill with --keep dropped its database")
            let second = try await FTBackupBinary.run(["drill", "--db", a.db.connectionString.raw, "--repo", a.repo.path])
            #expect(second.status == 0 || second.status == 2, "\(second.stderr)")
            #expect(try await exists(name), "the next drill removed the kept database")
            let kept = [name]
            for name in kept { try await admin.execute("DROP DATABASE IF EXISTS \(try admin.escapeIdentifier(name)) WITH (FORCE)") }
        }
    }

    /// A newer full backup whose manifest cannot be read stops the drill (exit 65, naming it) instead
    /// of drilling the older full and passing while the newest backup is unusable.
    @Test func aDrillStopsWhenTheNewestFullBackupIsUnreadable() async throws {
        try await ArchivedDatabase.with { a in
            let older = try await a.full().label
            let newer = try await a.full().label
            let manifest = "\(a.repo.path)/backups/\(newer)/manifest.json"
            let bytes = try Data(contentsOf: URL(fileURLWithPath: manifest))
            try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: manifest))
            let drill = try await FTBackupBinary.run(["drill", "--db", a.db.connectionString.raw, "--repo", a.repo.path])
            #expect(drill.status == 65, "\(drill.stdout)\(drill.stderr)")
            #expect(drill.stderr.contains("backup \(newer), newer than \(older), is unreadable"), "\(drill.stderr)")
        }
    }
}
