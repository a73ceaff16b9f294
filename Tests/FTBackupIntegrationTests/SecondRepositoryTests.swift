import Foundation
import Testing
@testable import FTBackupKit

/// The policy's `repository.second`: `ftbackup run` keeps a second repository in step after each job,
/// expires it by the same policy, and says so when it falls behind.
@Suite struct SecondRepositoryTests {
    /// The labels of the complete backups and of the change segments of a repository.
    static func history(_ path: String) throws -> (backups: [String], segments: [String]) {
        let repository = try Repository.open(path)
        return (try repository.entries().filter { $0.status == .complete }.map(\.label),
                try ChangeSegmentManifest.all(repository.storage).map(\.label).sorted())
    }

    /// The backup labels `info --output json` shows.
    static func infoLabels(_ path: String) async throws -> [String] {
        let info = try await FTBackupBinary.run(["info", "--output", "json", "--repo", path])
        #expect(info.status == 0, "\(info.stderr)")
        return ((try? JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any])?["backups"] as? [[String: Any]] ?? [])
            .compactMap { $0["label"] as? String }
    }

    @Test func aTickWithASecondRepositoryKeepsTheSameHistoryThereExpiresBothAndTheSecondRestoresExactly() async throws {
        try await ArchivedDatabase.with { a in
            let second = a.repo.path + "-second"
            defer { try? FileManager.default.removeItem(atPath: second) }
            let t0 = Date()
            var utc = Calendar(identifier: .gregorian)
            utc.timeZone = .gmt
            let open = utc.dateComponents([.hour, .minute], from: t0.addingTimeInterval(3 * 3600))
            let close = utc.dateComponents([.hour, .minute], from: t0.addingTimeInterval(4 * 3600))
            let window = String(format: "%02d:%02d-%02d:%02d", open.hour!, open.minute!, close.hour!, close.minute!)
            var policy = try PolicyLoader.parse(PolicyLoader.builtInDefault
                .replacingOccurrences(of: "window: \"02:00-05:00\"", with: "window: \"\(window)\"")
                .replacingOccurrences(of: "full: { schedule: daily, retention: 30d }", with: "full: { schedule: daily, retention: 1s }")
                .replacingOccurrences(of: "incremental: { schedule: hourly, retention: 7d }", with: "incremental: { schedule: hourly, retention: 1s }")
                + "\nrepository:\n  path: \(a.repo.path)\n  second: \(second)\n", source: "(test)")
            #expect(policy.repository.second == second)
            func tick(_ at: Date) async throws -> SchedulerTick.Report {
                try await SchedulerTick.run(SchedulerTick.Options(database: a.db.connectionString, repositoryPath: a.repo.path, policy: policy, now: at))
            }

            let first = try await tick(t0)
            #expect(!first.failed, "\(first.jobs.map(\.logLine))")
            let full = try #require(first.jobs.first { $0.job == .full })
            #expect(full.status == .ran && full.secondRepository?.ok == true, "\(full.logLine)")
            #expect(try Self.history(second) == (try Self.history(a.repo.path)))
            let firstLabels = try Self.history(a.repo.path).backups
            #expect(firstLabels.count == 1)

            // A day later: a new full, then maintenance expires the first full here and there.
            try await writeWorkloadLight(a.session)
            try await Task.sleep(for: .milliseconds(1100))
            let second2 = try await tick(t0.addingTimeInterval(25 * 3600))
            #expect(!second2.failed, "\(second2.jobs.map(\.logLine))")
            let maintenance = try #require(second2.jobs.first { $0.job == .maintenance })
            #expect(maintenance.status == .ran && maintenance.secondRepository?.ok == true, "\(maintenance.logLine)")
            #expect(maintenance.secondRepository?.detail.contains("expired 1 backup(s)") == true, "\(maintenance.logLine)")
            let here = try Self.history(a.repo.path), there = try Self.history(second)
            #expect(here.backups.count == 1 && !here.backups.contains(firstLabels[0]), "\(here)")
            #expect(here.backups == there.backups && here.segments == there.segments, "\(here) \(there)")
            #expect(try await Self.infoLabels(a.repo.path) == (try await Self.infoLabels(second)))
            let atNewest = try await TableFingerprint.compute(a.session)

            try await TestServer.withDatabase(seeded: false) { target in
                let restore = try await FTBackupBinary.run(["restore", "--repo", second, "--set", here.backups[0], "--target", target.connectionString.raw])
                #expect(restore.status == 0, "\(restore.stderr)")
                let t = try await target.connect()
                defer { t.close() }
                #expect(TableFingerprint.differences(source: atNewest, restored: try await TableFingerprint.compute(t)) == [])
            }

            // A second repository that cannot be written: the job still ran, the tick fails with the sync's
            // exit code, and status and its metrics say the second is behind.
            let blocked = a.repo.path + "-blocked"
            FileManager.default.createFile(atPath: blocked, contents: Data("a file".utf8))
            defer { try? FileManager.default.removeItem(atPath: blocked) }
            policy.repository.second = blocked
            let third = try await tick(t0.addingTimeInterval(50 * 3600))
            let ran = try #require(third.jobs.first { $0.status == .ran })
            #expect(ran.secondRepository?.ok == false && third.failed && third.exitCode == 73, "\(third.jobs.map(\.logLine))")
            #expect(ran.logLine.contains("second=failed"), "\(ran.logLine)")
            let health = try await RepositoryHealth.read(a.repo.repository, database: nil, policy: policy, now: t0.addingTimeInterval(51 * 3600))
            // The state file keeps microseconds: the lag is the hour to within a second.
            #expect(abs((health.secondRepositoryLagSeconds ?? 0) - 3600) < 1, "\(String(describing: health.secondRepository))")
            #expect(health.metricFamilies.contains { $0.name == "ftbackup_second_repository_lag_seconds" && abs(($0.samples.first?.value ?? 0) - 3600) < 1 })
            let status = SuiteStatus.evaluate(health, policy: policy, reportFindings: nil)
            #expect(status.problems.contains { $0.message.contains("second repository \(blocked) is behind") }, "\(status.problems)")
        }
    }

    /// `repository.second_env_file`: an off-site copy in another account, region or endpoint is reached with
    /// the file's settings, not the process's, for sync and for a restore from it; without the file the same
    /// sync goes to the process's settings (here a wrong key and a dead endpoint) and fails.
    @Test func anS3SecondRepositoryIsReachedWithItsOwnSettingsFileNotTheProcessEnvironment() async throws {
        try await TestServer.withDatabase { db in
            try await S3TestStore.with { store in
                let folder = NSTemporaryDirectory() + "ftbackup-second-env-\(UUID())"
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(atPath: folder) }
                let first = folder + "/first", settings = folder + "/second.env"
                let lines = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3", "AWS_REGION"].map { "\($0)=\(store.environment[$0]!)" }
                #expect(FileManager.default.createFile(atPath: settings, contents: Data(("# off-site\n" + lines.joined(separator: "\n") + "\n").utf8),
                                                       attributes: [.posixPermissions: 0o600]))
                func policy(_ name: String, envFile: Bool) throws -> String {
                    let path = folder + "/\(name).yaml"
                    try (PolicyLoader.builtInDefault + "\nrepository:\n  path: \(first)\n  second: \(store.url)\n"
                         + (envFile ? "  second_env_file: \(settings)\n" : "")).write(toFile: path, atomically: true, encoding: .utf8)
                    return path
                }
                let withFile = try policy("with", envFile: true), without = try policy("without", envFile: false)
                // The process's own AWS settings are not the second's.
                let process = ["AWS_ACCESS_KEY_ID": "AKIDNOTTHESECOND", "AWS_SECRET_ACCESS_KEY": "wrong", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
                               "AWS_REGION": "us-east-1", "AWS_PROFILE": "", "AWS_SESSION_TOKEN": "", "FTBACKUP_REPO": ""]
                // check probes the second the way sync reaches it.
                let checkWithout = try await FTBackupBinary.run(["check", "--db", db.connectionString.raw, "--policy", without], environment: process)
                #expect(checkWithout.status == 73 && checkWithout.stderr.contains("second repository \(store.url) is not writable"),
                        "\(checkWithout.status) \(checkWithout.stderr)")
                let check = try await FTBackupBinary.run(["check", "--db", db.connectionString.raw, "--policy", withFile], environment: process)
                #expect(check.status == 0 && check.stdout.contains("second:     \(store.url): writable"), "\(check.status) \(check.stdout) \(check.stderr)")
                let backup = try await FTBackupBinary.run(["backup", "--type", "full", "--db", db.connectionString.raw, "--policy", withFile], environment: process)
                #expect(backup.status == 0, "\(backup.stderr)")

                let refused = try await FTBackupBinary.run(["sync", "--policy", without], environment: process)
                #expect(refused.status != 0 && refused.stderr.contains("127.0.0.1:9"), "\(refused.status) \(refused.stderr)")
                #expect(try store.keys().isEmpty)

                let sync = try await FTBackupBinary.run(["sync", "--policy", withFile], environment: process)
                #expect(sync.status == 0, "\(sync.stderr)")
                #expect(try store.keys().contains { $0.hasPrefix("repo/backups/") && $0.hasSuffix("/manifest.json") })
                #expect(!sync.stdout.contains("wrong") && !sync.stderr.contains(store.environment["AWS_SECRET_ACCESS_KEY"]!))

                // The first repository lost: restore from the second, named by --repo, reached through the policy's file.
                let source = try await db.connect()
                defer { source.close() }
                let before = try await TableFingerprint.compute(source)
                try await TestServer.withDatabase(seeded: false) { target in
                    let restore = try await FTBackupBinary.run(["restore", "--repo", store.url, "--policy", withFile, "--target", target.connectionString.raw],
                                                         environment: process)
                    #expect(restore.status == 0, "\(restore.stderr)")
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(TableFingerprint.differences(source: before, restored: try await TableFingerprint.compute(t)) == [])
                }
            }
        }
    }
}
