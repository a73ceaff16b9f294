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
                // The forged prune record is also not anchored in the database though the real run before it is (adv17).
                #expect(evidence.count == 3, "\(evidence)")
                #expect(evidence.contains { $0.hasPrefix("\(folder)/\(forgedRun).json is not anchored in the database") }, "\(evidence)")
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
                let prune = try await FTBackupBinary.run(["lifecycle", "prune-audit", "--db", db.connectionString.raw, "--repo", repo.path])
                #expect(prune.status == 0, "\(prune.stderr)")
                let outcome = try await FTBackupBinary.run(["report", "--db", db.connectionString.raw, "--repo", repo.path,
                                                      "--out", "/proc/ftbackup-no-such-folder/report.html", "--format", "html"])
                #expect(outcome.status == 73, "\(outcome.stderr)")
                #expect(outcome.stderr.split(separator: "\n").count == 1, "\(outcome.stderr)")
                #expect(outcome.stderr.contains("--out") && !outcome.stderr.contains("ftbackup verify"), "\(outcome.stderr)")
            }
        }
    }

    /// adv12 #1 and #2: the newest record deleted, and a middle record deleted with its successor
    /// relinked to the one before, leave the chain walking intact; the database's anchors of the
    /// records (written as prune-audit wrote them) make both findings, each naming the record.
    @Test func aDeletedNewestRecordAndARelinkedMiddleOneAreFoundThroughTheDatabaseAnchors() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                let policy = try testPolicy()
                var runs: [String] = []
                for _ in 0..<3 {
                    runs.append(try await AuditPruner.run(AuditPruner.Options(database: db.connectionString, repositoryPath: repo.path, policy: policy)).run)
                    try await Task.sleep(for: .milliseconds(1100))
                }
                let storage = repo.repository.storage
                let folder = "lifecycle/prune-audit"
                let now = Date()
                let period = try ReportPeriod.parse(month: nil, from: ReportPeriod.dayText(now.addingTimeInterval(-86_400)),
                                                    to: ReportPeriod.dayText(now.addingTimeInterval(86_400)))
                func evidence() async throws -> (findings: [String], anchored: Int?, intact: Bool) {
                    let report = try await ComplianceReport.build(ComplianceReportOptions(database: db.connectionString, repositoryPath: repo.path,
                                                                                         policy: policy, period: period, now: now))
                    return (report.findings(in: .evidence).map(\.message), report.evidence.anchored,
                            report.evidence.chains.first { $0.kind == "prune-audit" }!.intact)
                }
                let clean = try await evidence()
                #expect(clean.findings.isEmpty && clean.anchored == 3, "\(clean)")

                let newest = "\(folder)/\(runs[2]).json", middle = "\(folder)/\(runs[1]).json", first = "\(folder)/\(runs[0]).json"
                let newestBytes = try storage.readAll(newest), middleBytes = try storage.readAll(middle)
                try storage.remove(newest)
                let deleted = try await evidence()
                #expect(deleted.intact, "the chain alone cannot see it")
                #expect(deleted.findings.count == 1 && deleted.findings[0].hasPrefix("\(newest) is missing: the database anchored it"), "\(deleted)")

                // Put the newest back, delete the middle one and relink the newest to the first, as a forger would.
                try storage.remove(middle)
                var object = try JSONSerialization.jsonObject(with: Data(newestBytes)) as! [String: Any]
                object["previousRecord"] = "\(runs[0]).json"
                object["previousRecordSHA256"] = RecordChain.sha256(try storage.readAll(first))
                try storage.writeAll(newest, Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])))
                let relinked = try await evidence()
                #expect(relinked.intact, "the chain alone cannot see it")
                #expect(relinked.findings.contains { $0.hasPrefix("\(middle) is missing: the database anchored it") }, "\(relinked)")
                #expect(relinked.findings.contains { $0.hasPrefix("\(newest) was changed after the database anchored it") }, "\(relinked)")
                #expect(relinked.findings.count == 2, "\(relinked)")
                _ = middleBytes
            }
        }
    }

    /// adv12 #10: a drill record is repository content; its label goes into the SVG charts' titles
    /// and axis text escaped, never as markup.
    @Test func aDrillLabelWithMarkupIsEscapedInTheHTMLCharts() async throws {
        try await TestRepository.with { repo in
            let now = Date()
            try ReportKnownHistory.writeDrill(into: repo.repository, at: now.addingTimeInterval(-3600), passed: true, rto: 60, rpo: 60)
            let path = try repo.repository.storage.list("drills").first { $0.path.hasSuffix(".json") }!.path
            var object = try JSONSerialization.jsonObject(with: Data(try repo.repository.storage.readAll(path))) as! [String: Any]
            object["label"] = "<script>alert(1)</script>"
            try repo.repository.storage.writeAll(path, Array(try JSONSerialization.data(withJSONObject: object)))
            let period = try ReportPeriod.parse(month: ReportPeriod.monthText(now), from: nil, to: nil)
            let report = try await ComplianceReport.build(ComplianceReportOptions(database: nil, repositoryPath: repo.path,
                                                                                 policy: try testPolicy(), period: period, now: now))
            let html = try report.rendered(.html)
            #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the label is shown, escaped")
            #expect(!html.contains("<script"), "no markup from a record")
        }
    }
}
