import Foundation
import Testing
@testable import FTBackupKit

/// Issue 12 as a hostile auditor and an on-call engineer would try it (adv12): records dated after
/// the clock, a report that cannot be written, `status` that must say UNKNOWN when it cannot read,
/// must not hide its level behind a metrics file, and must count pruned rows.
@Suite struct AdversarialReportTests {
    /// A prune-audit record and a drill record dated after the report's clock, each linked to its
    /// chain's head as a forger would: both are evidence findings, and the future drill does not
    /// make the current month pass.
    @Test func recordsDatedAfterTheClockAreFindingsAndPassNoMonth() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                let policy = try testPolicy()
                let run = try await AuditPruner.run(AuditPruner.Options(database: db.connectionString, repositoryPath: repo.path, policy: policy))
                let now = Date()
                let storage = repo.repository.storage
                let folder = "lifecycle/prune-audit"
                let forgedRun = DrillTarget.timestamp(now.addingTimeInterval(3600))
                var forged = try BackupManifest.decoder().decode(AuditPruner.Report.self, from: Data(try storage.readAll("\(folder)/\(run.run).json")))
                forged.run = forgedRun
                try RecordChain.write(try forged.sealed(), kind: "prune-audit", folder: folder, name: "\(forgedRun).json", storage: storage)
                let drillAt = now.addingTimeInterval(1800)
                try ReportKnownHistory.writeDrill(into: repo.repository, at: drillAt, passed: true, rto: 60, rpo: 60)

                let period = try ReportPeriod.parse(month: nil, from: ReportPeriod.dayText(now.addingTimeInterval(-86_400)),
                                                    to: ReportPeriod.dayText(now.addingTimeInterval(86_400)))
                let report = try await ComplianceReport.build(ComplianceReportOptions(database: db.connectionString, repositoryPath: repo.path,
                                                                                     policy: policy, period: period, now: now))
                let evidence = report.findings(in: .evidence).map(\.message)
                #expect(evidence.count == 2, "\(evidence)")
                #expect(evidence.contains { $0.hasPrefix("\(folder)/\(forgedRun).json is dated after this report was made") }, "\(evidence)")
                #expect(evidence.contains { $0.hasPrefix("drills/\(DrillTarget.timestamp(drillAt)).json is dated after this report was made") }, "\(evidence)")
                // The drill dated after now is no drill of its month.
                let month = ReportPeriod.monthText(now)
                #expect(report.recoveryTesting.months.first { $0.month == month }?.status == .missing)
                #expect(report.recoveryTesting.months.first { $0.month == month }?.drills == 0)
            }
        }
    }

    /// `report --out` into a folder that cannot be made is "cannot write" (73) with a hint about
    /// --out, not "corrupt repository data" (65) with a hint to verify the repository.
    @Test func reportOutIntoAFolderThatCannotBeMadeExits73() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                let prune = try FTBackupBinary.run(["lifecycle", "prune-audit", "--db", db.connectionString.raw, "--repo", repo.path])
                #expect(prune.status == 0, "\(prune.stderr)")
                let outcome = try FTBackupBinary.run(["report", "--db", db.connectionString.raw, "--repo", repo.path,
                                                      "--out", "/proc/ftbackup-no-such-folder/report.html", "--format", "html"])
                #expect(outcome.status == 73, "\(outcome.stderr)")
                #expect(outcome.stderr.split(separator: "\n").count == 1, "\(outcome.stderr)")
                #expect(outcome.stderr.contains("--out") && !outcome.stderr.contains("ftbackup verify"), "\(outcome.stderr)")
            }
        }
    }
}
