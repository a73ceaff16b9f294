import Foundation
import Testing
@testable import FTBackupKit

/// `ftbackup status` as on-call reads it (adv12): its level must be the suite's, whatever happens
/// to its metrics file; every read failure is UNKNOWN naming the file; pruned rows are counted.
@Suite struct AdversarialStatusTests {
    static func audit(_ db: TestDatabase) async throws -> Int64 {
        let session = try await db.connect()
        defer { session.close() }
        var rows: Int64 = 0
        for table in try await session.query("""
            SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
              AND ((n.nspname = 'audit' AND c.relname = 'events') OR (n.nspname LIKE 'sprint\\_%' AND c.relname = 'audit_log'))
            """).rows {
            rows += try await session.query("SELECT count(*) AS n FROM \(try table.requiredString("name"))").first!.int64("n")
        }
        return rows
    }

    /// A metrics folder that cannot be written: a warning on stderr, and the exit code and first line
    /// stay the suite's (CRITICAL: no full), not UNKNOWN.
    @Test func statusKeepsItsLevelWhenItsMetricsFileCannotBeWritten() async throws {
        try await TestRepository.with { repo in
            try FileManager.default.createDirectory(atPath: repo.path, withIntermediateDirectories: true)
            let outcome = try await FTBackupBinary.run(["status", "--repo", repo.path, "--no-report", "--metrics-dir", "/proc/ftbackup-no-such-folder"])
            #expect(outcome.status == 2, "\(outcome.stdout)\(outcome.stderr)")
            #expect(outcome.stdout.hasPrefix("FTBACKUP CRITICAL - no complete full backup in the repository"), "\(outcome.stdout)")
            #expect(outcome.stderr.hasPrefix("ftbackup: warning: cannot write metrics file") && outcome.stderr.split(separator: "\n").count == 1,
                    "\(outcome.stderr)")
        }
    }

    /// Rows prune-audit removed (counted in the database before and after) are what `status` and
    /// `ftbackup_lifecycle_rows_total{kind="prune-audit"}` say, not 0; the text line names the kind whole.
    @Test func statusCountsTheRowsPruneAuditRemoved() async throws {
        let metrics = try MonitoringTests.folder()
        defer { try? FileManager.default.removeItem(atPath: metrics) }
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                let before = try await Self.audit(db)
                let prune = try await FTBackupBinary.run(["lifecycle", "prune-audit", "--db", db.connectionString.raw, "--repo", repo.path])
                #expect(prune.status == 0, "\(prune.stderr)")
                let removed = before - (try await Self.audit(db))
                #expect(removed > 0)
                let json = try await FTBackupBinary.run(["status", "--repo", repo.path, "--no-report", "--output", "json", "--metrics-dir", metrics])
                let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
                let lifecycle = ((object?["health"] as? [String: Any])?["lifecycle"] as? [[String: Any]]) ?? []
                let pruned = lifecycle.first { $0["kind"] as? String == "prune-audit" }
                #expect((pruned?["rowsTotal"] as? NSNumber)?.int64Value == removed, "\(lifecycle)")
                #expect((pruned?["rows"] as? NSNumber)?.int64Value == removed, "\(lifecycle)")
                let suite = try String(contentsOfFile: MetricsFile.path(directory: metrics, job: "suite"), encoding: .utf8)
                #expect(suite.contains("ftbackup_lifecycle_rows_total{kind=\"prune-audit\"} \(removed)\n"), "\(suite)")
                #expect(try await promtool(["check", "metrics"], stdin: suite).status == 0, "\(suite)")
                let text = try await FTBackupBinary.run(["status", "--repo", repo.path, "--no-report"])
                #expect(text.stdout.contains("lifecycle prune-audit: "), "\(text.stdout)")
            }
        }
    }

    /// A truncated backup manifest and a corrupt lifecycle run log are read failures: UNKNOWN (3),
    /// one line naming the file, not "no complete full" or a run counted as 0 rows.
    @Test func statusIsUnknownForAnUnreadableManifestOrRunLog() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                #expect(try await FTBackupBinary.run(["backup", "--type", "full", "--db", db.connectionString.raw, "--repo", repo.path]).status == 0)
                #expect(try await FTBackupBinary.run(["lifecycle", "prune-audit", "--db", db.connectionString.raw, "--repo", repo.path]).status == 0)
                let storage = repo.repository.storage
                let label = try repo.repository.entries().first!.label
                let manifest = repo.repository.manifestPath(label)
                let original = try storage.readAll(manifest)
                try storage.writeAll(manifest, Array(original.prefix(100)))
                let broken = try await FTBackupBinary.run(["status", "--repo", repo.path, "--no-report"])
                #expect(broken.status == 3, "\(broken.stdout)")
                #expect(broken.stdout.hasPrefix("FTBACKUP UNKNOWN - backup \(label) has an unreadable manifest"), "\(broken.stdout)")
                #expect(broken.stdout.split(separator: "\n").count == 1, "\(broken.stdout)")

                try storage.writeAll(manifest, original)
                let log = "lifecycle/prune-audit/\(try RecordChain.names(storage, folder: "lifecycle/prune-audit").last!)"
                try storage.writeAll(log, Array("{ \"run\": ".utf8))
                let corrupt = try await FTBackupBinary.run(["status", "--repo", repo.path, "--no-report"])
                #expect(corrupt.status == 3, "\(corrupt.stdout)")
                #expect(corrupt.stdout.hasPrefix("FTBACKUP UNKNOWN - lifecycle run log \(repo.path)/\(log) is unreadable"), "\(corrupt.stdout)")
            }
        }
    }

    /// When `status` cannot read the repository, its suite file must say so: `ftbackup_status_level 3`
    /// (the other gauges kept, so their age alerts still fire), not the last level it measured.
    @Test func unknownStatusIsWrittenToTheSuiteMetricsFile() async throws {
        let metrics = try MonitoringTests.folder()
        defer { try? FileManager.default.removeItem(atPath: metrics) }
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                #expect(try await FTBackupBinary.run(["backup", "--type", "full", "--db", db.connectionString.raw, "--repo", repo.path]).status == 0)
                let first = try await FTBackupBinary.run(["status", "--repo", repo.path, "--no-report", "--metrics-dir", metrics])
                #expect(first.status == 1, "\(first.stdout)")
                let file = MetricsFile.path(directory: metrics, job: "suite")
                #expect(try String(contentsOfFile: file, encoding: .utf8).contains("ftbackup_status_level 1\n"))
                try repo.repository.storage.writeAll("drills/20260101T000000Z.json", Array("{".utf8))
                let unknown = try await FTBackupBinary.run(["status", "--repo", repo.path, "--no-report", "--metrics-dir", metrics])
                #expect(unknown.status == 3, "\(unknown.stdout)")
                let suite = try String(contentsOfFile: file, encoding: .utf8)
                #expect(suite.contains("ftbackup_status_level 3\n") && !suite.contains("ftbackup_status_level 1"), "\(suite)")
                #expect(suite.contains("ftbackup_newest_full_timestamp_seconds "), "\(suite)")
                #expect(try await promtool(["check", "metrics"], stdin: suite).status == 0, "\(suite)")
            }
        }
    }
}
