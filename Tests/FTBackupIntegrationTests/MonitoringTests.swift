import Foundation
import Testing
@testable import FTBackupKit

/// Runs promtool (Debian's `prometheus` package, installed by `make test`); missing, the test fails. It runs and is
/// waited for on a thread of its own, never on the cooperative pool.
func promtool(_ arguments: [String], stdin: String? = nil) async throws -> (status: Int32, output: String) {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try promtoolBlocking(arguments, stdin: stdin) }) }
    }
}

private func promtoolBlocking(_ arguments: [String], stdin: String?) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["promtool"] + arguments
    let output = Pipe(), input = Pipe()
    process.standardOutput = output
    process.standardError = output
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
    try input.fileHandleForWriting.close()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, text)
}

@Suite struct MonitoringTests {
    static func folder() throws -> String {
        let folder = NSTemporaryDirectory() + "ftbackup-metrics-\(UUID())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    /// A job's file after a success, then after a failure: the failure is recorded and the last success kept.
    @Test func everyRunWritesItsJobFileAndAFailureKeepsTheLastSuccess() async throws {
        let metrics = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: metrics) }
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                let ok = try await FTBackupBinary.run(["backup", "--type", "full", "--db", db.connectionString.raw, "--repo", repo.path, "--metrics-dir", metrics])
                #expect(ok.status == 0, "\(ok.stderr)")
                let file = MetricsFile.path(directory: metrics, job: "backup_full")
                let first = try String(contentsOfFile: file, encoding: .utf8)
                let check = try await promtool(["check", "metrics"], stdin: first)
                #expect(check.status == 0, "\(check.output)\n\(first)")
                let success = MetricsFile.readValues(directory: metrics, job: "backup_full")["ftbackup_job_last_success_timestamp_seconds"]
                #expect(success != nil && first.contains("ftbackup_job_last_exit_code{job=\"backup_full\"} 0"))
                #expect(try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int == 0o644)

                // Through the environment this time, as a unit file would set it.
                let failed = try await FTBackupBinary.run(["backup", "--type", "full", "--db", "host=127.0.0.1 port=1 connect_timeout=3", "--repo", repo.path],
                                                    environment: ["FTBACKUP_METRICS_DIR": metrics])
                #expect(failed.status == 69, "\(failed.stderr)")
                let after = MetricsFile.readValues(directory: metrics, job: "backup_full")
                #expect(after["ftbackup_job_last_exit_code"] == 69)
                #expect(after["ftbackup_job_last_success_timestamp_seconds"] == success)
                #expect((after["ftbackup_job_last_failure_timestamp_seconds"] ?? 0) >= success ?? .infinity)
                #expect(try await promtool(["check", "metrics"], stdin: try String(contentsOfFile: file, encoding: .utf8)).status == 0)
                #expect(try FileManager.default.contentsOfDirectory(atPath: metrics).allSatisfy { $0.hasSuffix(".prom") })
            }
        }
    }

    /// Nagios levels: nothing backed up is CRITICAL; a fresh full without a drill is WARNING; after a
    /// passing drill OK; an unreadable repository UNKNOWN. The suite file passes promtool.
    @Test func statusGivesNagiosLevelsAndItsMetricsPassPromtool() async throws {
        let metrics = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: metrics) }
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                func status() async throws -> (Int32, [String: Any]) {
                    let outcome = try await FTBackupBinary.run(["status", "--db", db.connectionString.raw, "--repo", repo.path, "--no-report",
                                                          "--metrics-dir", metrics, "--output", "json"])
                    return (outcome.status, (try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: Any]) ?? [:])
                }
                try FileManager.default.createDirectory(atPath: repo.path, withIntermediateDirectories: true)
                let (empty, emptyJSON) = try await status()
                #expect(empty == 2, "\(emptyJSON)")
                let problems = (emptyJSON["problems"] as? [[String: Any]])?.compactMap { $0["message"] as? String } ?? []
                #expect(problems.contains("no complete full backup in the repository"), "\(problems)")

                #expect(try await FTBackupBinary.run(["backup", "--type", "full", "--db", db.connectionString.raw, "--repo", repo.path]).status == 0)
                let (warning, warningJSON) = try await status()
                #expect(warning == 1, "\(warningJSON)")
                let drill = try await ServerWideResource.drillScratchDatabases.shared {
                    try await FTBackupBinary.run(["drill", "--db", db.connectionString.raw, "--repo", repo.path])
                }
                #expect(drill.status == 0, "\(drill.stderr)")
                let (ok, okJSON) = try await status()
                #expect(ok == 0, "\(okJSON)")
                let suite = try String(contentsOfFile: MetricsFile.path(directory: metrics, job: "suite"), encoding: .utf8)
                #expect(try await promtool(["check", "metrics"], stdin: suite).status == 0, "\(suite)")
                for name in ["ftbackup_newest_full_timestamp_seconds", "ftbackup_recovery_point_timestamp_seconds", "ftbackup_drill_last_success 1",
                             "ftbackup_drill_last_rto_seconds", "ftbackup_status_level 0"] {
                    #expect(suite.contains(name), "\(name) in \(suite)")
                }
                let text = try await FTBackupBinary.run(["status", "--repo", repo.path + "/missing"])
                #expect(text.status == 3 && text.stdout.hasPrefix("FTBACKUP UNKNOWN - "), "\(text.stdout)")
            }
        }
    }

    /// A full the scheduler tick takes writes the same job file as `backup --type full` would, beside the tick's own.
    @Test func jobsASchedulerTickRunsGetTheirOwnJobFiles() async throws {
        let metrics = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: metrics) }
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                let tick = try await FTBackupBinary.run(["run", "--db", db.connectionString.raw, "--repo", repo.path, "--metrics-dir", metrics])
                #expect(tick.stdout.contains("job=full status=ran"), "\(tick.stdout) \(tick.stderr)")
                let full = MetricsFile.readValues(directory: metrics, job: "backup_full")
                #expect(full["ftbackup_job_last_exit_code"] == 0 && full["ftbackup_job_last_success_timestamp_seconds"] != nil, "\(full)")
                #expect(MetricsFile.readValues(directory: metrics, job: "scheduler_tick")["ftbackup_job_last_run_timestamp_seconds"] != nil)
            }
        }
    }

    /// `ftbackup_job_rows` and `ftbackup_job_bytes` are the full's own rows and stored bytes (as its manifest
    /// says), the rows prune-audit deleted, and the full a scheduler tick took; a failed run keeps the last success's.
    @Test func jobFilesCarryTheRowsAndBytesOfTheLastSuccess() async throws {
        let metrics = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: metrics) }
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                let ok = try await FTBackupBinary.run(["backup", "--type", "full", "--db", db.connectionString.raw, "--repo", repo.path, "--metrics-dir", metrics])
                #expect(ok.status == 0, "\(ok.stderr)")
                let manifest = try #require(try repo.repository.entries().compactMap(\.manifest).first)
                let full = MetricsFile.readValues(directory: metrics, job: "backup_full")
                #expect(manifest.totals.rows > 0 && full["ftbackup_job_rows"] == Double(manifest.totals.rows), "\(full)")
                #expect(manifest.totals.storedBytes > 0 && full["ftbackup_job_bytes"] == Double(manifest.totals.storedBytes), "\(full)")

                let failed = try await FTBackupBinary.run(["backup", "--type", "full", "--db", "host=127.0.0.1 port=1 connect_timeout=3", "--repo", repo.path,
                                                     "--metrics-dir", metrics])
                #expect(failed.status == 69, "\(failed.stderr)")
                let kept = MetricsFile.readValues(directory: metrics, job: "backup_full")
                #expect(kept["ftbackup_job_rows"] == full["ftbackup_job_rows"] && kept["ftbackup_job_bytes"] == full["ftbackup_job_bytes"], "\(kept)")
                #expect(try await promtool(["check", "metrics"], stdin: try String(contentsOfFile: MetricsFile.path(directory: metrics, job: "backup_full"),
                                                                              encoding: .utf8)).status == 0)

                let prune = try await FTBackupBinary.run(["lifecycle", "prune-audit", "--db", db.connectionString.raw, "--repo", repo.path,
                                                    "--metrics-dir", metrics, "--output", "json"])
                #expect(prune.status == 0, "\(prune.stderr)")
                let report = try JSONSerialization.jsonObject(with: Data(prune.stdout.utf8)) as? [String: Any]
                let deleted = ((report?["tables"] as? [[String: Any]]) ?? []).compactMap { ($0["rows"] as? NSNumber)?.int64Value }.reduce(0, +)
                let pruned = MetricsFile.readValues(directory: metrics, job: "lifecycle_prune_audit")
                #expect(deleted > 0 && pruned["ftbackup_job_rows"] == Double(deleted), "\(pruned) \(deleted)")

                // A tick on a repository of its own takes its first full, and writes that full's totals.
                try await TestRepository.with { second in
                    let tick = try await FTBackupBinary.run(["run", "--db", db.connectionString.raw, "--repo", second.path, "--metrics-dir", metrics])
                    #expect(tick.stdout.contains("job=full status=ran"), "\(tick.stdout) \(tick.stderr)")
                    let taken = try #require(try second.repository.entries().compactMap(\.manifest).first)
                    let ticked = MetricsFile.readValues(directory: metrics, job: "backup_full")
                    #expect(ticked["ftbackup_job_rows"] == Double(taken.totals.rows) && ticked["ftbackup_job_bytes"] == Double(taken.totals.storedBytes),
                            "\(ticked)")
                }
            }
        }
    }

    /// `status --output json` that cannot read the repository still has a numeric `level` (3) and a
    /// `problems` list, as every other status does.
    @Test func statusJSONWhenUnreadableHasTheSameLevelAndProblemsKeys() async throws {
        let outcome = try await FTBackupBinary.run(["status", "--repo", NSTemporaryDirectory() + "ftbackup-missing-\(UUID())", "--output", "json"])
        #expect(outcome.status == 3, "\(outcome.stdout) \(outcome.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: Any])
        #expect((json["level"] as? NSNumber)?.intValue == 3, "\(json)")
        let problems = try #require(json["problems"] as? [[String: Any]], "\(json)")
        #expect(problems.count == 1 && (problems[0]["level"] as? NSNumber)?.intValue == 3 && (problems[0]["message"] as? String)?.isEmpty == false,
                "\(problems)")
    }

    /// A metrics folder that cannot be written is a warning: `status` still exits with the suite's level
    /// (CRITICAL for an empty repository), not UNKNOWN.
    @Test func statusKeepsItsLevelWhenItsMetricsFileCannotBeWritten() async throws {
        try await TestRepository.with { repo in
            try FileManager.default.createDirectory(atPath: repo.path, withIntermediateDirectories: true)
            let outcome = try await FTBackupBinary.run(["status", "--repo", repo.path, "--no-report", "--metrics-dir", repo.path + "/no/such/folder"])
            #expect(outcome.status == 2 && outcome.stdout.hasPrefix("FTBACKUP CRITICAL - "), "\(outcome.stdout) \(outcome.stderr)")
            #expect(outcome.stderr.contains("ftbackup: warning: cannot write metrics file"), "\(outcome.stderr)")
        }
    }

    @Test func alertRulesPassPromtoolCheckAndTheirUnitTests() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let rules = root.appendingPathComponent("deploy/prometheus/ftbackup-rules.yml").path
        let check = try await promtool(["check", "rules", rules])
        #expect(check.status == 0 && check.output.contains("SUCCESS: 9 rules found"), "\(check.output)")
        let test = try await promtool(["test", "rules", root.appendingPathComponent("deploy/prometheus/ftbackup-rules.test.yml").path])
        #expect(test.status == 0 && test.output.contains("SUCCESS"), "\(test.output)")
    }
}
