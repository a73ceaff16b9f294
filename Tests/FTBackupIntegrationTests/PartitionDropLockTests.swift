import Foundation
import Testing
@testable import FTBackupKit

/// What a partition drop holds while it writes to the repository.
@Suite struct PartitionDropLockTests {
    /// The drop's pending evidence (written so that a run killed between COMMIT and its record leaves every deleted
    /// row on record) used to be written after `DETACH PARTITION`, while the transaction held the audit parent's
    /// ACCESS EXCLUSIVE lock. On object storage that write is a PUT with retries, and every application insert into
    /// `audit.events` waited behind it, past the lock timeout the README promises. It is now written before the drop
    /// asks for any lock. The run is held just after that write (a failpoint that pauses): an application insert must
    /// get its lock at once, and the run, killed there, leaves nothing unaccounted for (the rerun settles the pending
    /// evidence as not committed, drops the partitions and records every row it removed).
    ///
    /// The paused run keeps a transaction with an xid open (its id is in the pending evidence), which replication
    /// slots created meanwhile wait for: the test kills it as soon as it has checked the insert.
    @Test func aPartitionDropWritesItsPendingEvidenceBeforeItLocksTheAuditTable() async throws {
        try await TestServer.withDatabase { db in
            let app = try await db.connect("app")
            defer { app.close() }
            try await TestRepository.with { repo in
                let conninfo = "\(try TestServer.dsn) dbname=\(db.name)"
                let count = "SELECT count(*) AS n FROM audit.events"
                let before = try await app.query(count).first!.int64("n")
                let log = NSTemporaryDirectory() + "ftbackup-drop-lock-\(UUID()).log"
                defer { try? FileManager.default.removeItem(atPath: log) }
                let (process, _, _) = try FTBackupBinary.start(
                    ["-c", #"exec "$0" "$@" 2>"$STDERR_FILE""#, try FTBackupBinary.path, "lifecycle", "prune-audit", "--db", conninfo,
                     "--repo", repo.path],
                    environment: ["FTBACKUP_FAILPOINT": "prune.drop-evidence-pending", "STDERR_FILE": log], executable: "/bin/sh")
                defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
                let deadline = Date().addingTimeInterval(600)  // it exports the partitions first: slow on a loaded machine
                var paused = false
                while !paused && process.isRunning && Date() < deadline {
                    paused = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("failpoint prune.drop-evidence-pending reached")
                    if !paused { try await Task.sleep(for: .milliseconds(20)) }
                }
                try #require(paused, "the run never reached its drop: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
                let pending = try repo.repository.storage.list("lifecycle/prune-audit").map(\.path).filter { $0.hasSuffix(".pending-batch") }
                #expect(pending.count == 1, "\(pending)")

                // Nothing holds the audit table: the application's insert gets its lock at once.
                try await app.execute("SET lock_timeout = '2s'")
                var failure: String?
                do {
                    try await app.execute("INSERT INTO audit.events (action) VALUES ('app: while the drop writes its evidence')")
                } catch {
                    failure = "\(error)"
                }
                #expect(failure == nil, "the application's insert waited for the prune: \(failure ?? "")")

                kill(process.processIdentifier, SIGKILL)
                await FTBackupBinary.waitForExit(process)
                let rerun = try await FTBackupBinary.run(["lifecycle", "prune-audit", "--db", conninfo, "--repo", repo.path])
                #expect(rerun.status == 0, "\(rerun.stderr)")
                #expect(rerun.stdout.contains("had not committed"), "\(rerun.stdout)")
                let after = try await app.query(count).first!.int64("n")
                #expect(after < before)
                let recorded = try Self.recordedAuditEventRows(repo.repository.storage)
                #expect(recorded == before + 1 - after, "removed \(before + 1 - after), recorded \(recorded)")
                let left = try repo.repository.storage.list("lifecycle/prune-audit").map(\.path).filter { $0.hasSuffix(".pending-batch") }
                #expect(left.isEmpty, "\(left)")
            }
        }
    }

    /// The rows of `audit.events` that all prune records together say were removed.
    static func recordedAuditEventRows(_ storage: any RepositoryStorage) throws -> Int64 {
        try RecordChain.names(storage, folder: "lifecycle/prune-audit").reduce(Int64(0)) { total, name in
            let report = try BackupManifest.decoder().decode(AuditPruner.Report.self,
                                                             from: Data(try storage.readAll("lifecycle/prune-audit/\(name)")))
            return total + report.tables.filter { $0.schema == "audit" && $0.table == "events" }.reduce(0) { $0 + $1.rows }
        }
    }
}
