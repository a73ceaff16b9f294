import Foundation
import Testing
@testable import FTBackupKit

@Suite struct ComplianceReportTests {
    static func monthStart(_ date: Date, adding months: Int = 0) -> Date {
        let calendar = ReportPeriod.calendar
        let parts = calendar.dateComponents([.year, .month], from: date)
        return calendar.date(byAdding: .month, value: months, to: calendar.date(from: DateComponents(year: parts.year, month: parts.month, day: 1))!)!
    }

    /// A repository with a known history: real archive and prune runs (the first prune's evidence
    /// then edited), fulls every day for 35 days, hourly segments for 9 days with one hour's segment
    /// missing 3 days ago, a passed drill two months ago and this month, none last month.
    /// Each section's findings are exactly what that history must give.
    @Test func knownHistoryGivesExactlyEachSectionsFindings() async throws {
        try await TestServer.withDatabase { db in
            let template = try await TestRepository.with { source in try await BackupRunner.runFull(try .test(db, source)) }
            try await TestRepository.with { repo in
                let policy = try testPolicy()
                // A run log from before chaining (no link): listed as such, and the first chained record links to it.
                try repo.repository.storage.writeAll("lifecycle/prune-audit/20190101T000000Z.json", Array(#"{"run":"20190101T000000Z"}"#.utf8))
                _ = try await ToolDataArchiver.run(ArchiveOptions(database: db.connectionString, repositoryPath: repo.path, policy: policy))
                let first = try await AuditPruner.run(AuditPruner.Options(database: db.connectionString, repositoryPath: repo.path, policy: policy))
                try await Task.sleep(for: .milliseconds(1100))
                let second = try await AuditPruner.run(AuditPruner.Options(database: db.connectionString, repositoryPath: repo.path, policy: policy))
                #expect(first.rows > 0 && second.rows == 0)
                _ = try await ArchiveVerifier.verify(repo.repository, jobs: 2)

                let now = Date()
                let base = now.addingTimeInterval(-40 * 86_400)
                let session = try await db.connect()
                let identity = try await session.withConnection { try DatabaseIdentity.of($0) }
                try ReportKnownHistory.writeFulls(template, into: repo.repository, days: 35, base: base, now: now)
                let today = ReportKnownHistory.dayStart(now)
                let missing = today.addingTimeInterval(-3 * 86_400 + 10 * 3600)
                try ReportKnownHistory.writeSegments(into: repo.repository, source: identity, from: today.addingTimeInterval(-9 * 86_400),
                                                     base: base, now: now, missing: missing)
                let twoMonthsAgo = Self.monthStart(now, adding: -2)
                try ReportKnownHistory.writeDrill(into: repo.repository, at: twoMonthsAgo.addingTimeInterval(14 * 86_400 + 36_000),
                                                  passed: true, rto: 900, rpo: 1800)
                try ReportKnownHistory.writeDrill(into: repo.repository, at: min(Self.monthStart(now).addingTimeInterval(3 * 3600), now.addingTimeInterval(-3600)),
                                                  passed: true, rto: 1200, rpo: 2400)
                // The one edited evidence record: the first prune run's batch size.
                let edited = "lifecycle/prune-audit/\(first.run).json"
                let text = String(decoding: try repo.repository.storage.readAll(edited), as: UTF8.self)
                #expect(text.contains("\"batchSize\" : 5000"))
                try repo.repository.storage.writeAll(edited, Array(text.replacingOccurrences(of: "\"batchSize\" : 5000", with: "\"batchSize\" : 5001").utf8))

                let period = try ReportPeriod.parse(month: nil, from: ReportPeriod.dayText(twoMonthsAgo), to: ReportPeriod.dayText(now))
                let report = try await ComplianceReport.build(ComplianceReportOptions(database: db.connectionString, repositoryPath: repo.path,
                                                                                     policy: policy, period: period, now: now))
                #expect(report.reportVersion == 1)
                // 1. Audit retention: pruned, so nothing overdue; both runs listed with their proof.
                #expect(report.findings(in: .auditRetention) == [])
                #expect(report.auditRetention.pruneRuns.map(\.run) == [first.run, second.run])
                #expect(report.auditRetention.pruneRuns.flatMap(\.tables).filter { !$0.newestBeforeCutoff }.isEmpty)
                #expect(report.auditRetention.pruneRuns.map(\.sealed) == [false, true])
                // 2. Archival: only rows a reference keeps from archiving can remain, counted independently.
                var expectedArchival: [String] = []
                for tool in report.archival.tools {
                    let overdue = try await session.query("""
                        SELECT count(*) AS n FROM \(tool.schema).tool_data
                        WHERE status = 'completed' AND \(tool.ageColumn) < now() - interval '2 years' - interval '1 month'
                        """).first!.int64("n")
                    if overdue > 0 { expectedArchival.append("\(tool.schema): \(overdue) completed rows older than 2y plus the 1mo lifecycle interval") }
                }
                let archival = report.findings(in: .archival).map(\.message)
                #expect(archival.count == expectedArchival.count, "\(archival)")
                for (message, expected) in zip(archival, expectedArchival) { #expect(message.hasPrefix(expected), "\(message)") }
                #expect(report.archival.archives.filter { $0.verification != "ok" }.isEmpty)
                #expect(!report.archival.archives.isEmpty)
                // 3. Backups: every day verified (or past retention), exactly one gap from the hour missing.
                let backups = report.findings(in: .backups).map(\.message)
                let nextFull = today.addingTimeInterval(-2 * 86_400 + 3600)
                #expect(backups.count == 1, "\(backups)")
                #expect(backups.first?.hasPrefix("not restorable from \(Timestamps.display(missing.addingTimeInterval(-1))) to \(Timestamps.display(nextFull)): change segments not contiguous") == true, "\(backups)")
                #expect(report.backups.hours.filter { $0.status == .gap }.count == 16)
                #expect(report.backups.days.filter { ![.verified, .expired, .pending].contains($0.status) }.isEmpty)
                // 4. Recovery testing: last month had no drill.
                #expect(report.findings(in: .recoveryTesting).map(\.message)
                        == ["\(ReportPeriod.monthText(Self.monthStart(now, adding: -1))): no restore drill (policy: drills every 1mo)"])
                #expect(report.recoveryTesting.months.map(\.status) == [.passed, .missing, .passed])
                // Evidence: the edited record breaks its seal, its successor's link and its anchor in the
                // database; every other chain is intact.
                let evidence = report.findings(in: .evidence).map(\.message)
                #expect(evidence.count == 3, "\(evidence)")
                #expect(evidence.contains { $0.hasPrefix("\(edited) was changed after the database anchored it") }, "\(evidence)")
                #expect(evidence.contains { $0.hasPrefix("prune evidence \(edited) does not match its seal") })
                #expect(evidence.contains { $0.hasPrefix("\(edited) was changed after \(second.run).json was written") })
                #expect(report.evidence.chains.filter { !$0.intact }.map(\.kind) == ["prune-audit"])
                #expect(report.evidence.chains.first { $0.kind == "drill" }?.chained == 2)
                #expect(report.evidence.chains.first { $0.kind == "prune-audit" }?.beforeChaining == ["20190101T000000Z.json"])
                #expect(report.findings.count == archival.count + 5)
                // Every format carries every finding.
                for format in [ReportFormat.text, .markdown, .html] {
                    let rendered = try report.rendered(format)
                    #expect(rendered.contains("no restore drill"), "\(format)")
                }
                let json = try JSONSerialization.jsonObject(with: Data(try report.rendered(.json).utf8)) as! [String: Any]
                #expect(json["reportVersion"] as? Int == 1)
                #expect((json["findings"] as? [[String: Any]])?.count == report.findings.count)
            }
        }
    }

    /// On the seeded database (nine years of audit rows), the report has an audit-retention finding
    /// and exits 2; after `lifecycle prune-audit` that finding is gone.
    @Test func auditRetentionFindingOnTheSeededDatabaseIsGoneAfterPruneAudit() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                try FileManager.default.createDirectory(atPath: repo.path, withIntermediateDirectories: true)
                let dsn = db.connectionString.raw
                func auditFindings() async throws -> [String] {
                    let outcome = try await FTBackupBinary.run(["report", "--db", dsn, "--repo", repo.path, "--format", "json"])
                    #expect(outcome.status == 2, "\(outcome.stderr)")
                    let json = try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as! [String: Any]
                    return (json["findings"] as! [[String: Any]]).filter { $0["section"] as? String == "audit-retention" }.map { $0["message"] as! String }
                }
                let before = try await auditFindings()
                #expect(before.contains { $0.hasPrefix("audit.events: ") && $0.contains("rows older than the 7y retention plus the 1mo prune interval") }, "\(before)")
                let prune = try await FTBackupBinary.run(["lifecycle", "prune-audit", "--db", dsn, "--repo", repo.path])
                #expect(prune.status == 0, "\(prune.stderr)")
                #expect(try await auditFindings() == [])
            }
        }
    }

    /// A database that cannot be reached is a finding of sections 1 and 2; the rest of the report is made.
    @Test func unreachableDatabaseIsAFindingAndTheRepositorySectionsAreStillMade() async throws {
        try await TestRepository.with { repo in
            try FileManager.default.createDirectory(atPath: repo.path, withIntermediateDirectories: true)
            let outcome = try await FTBackupBinary.run(["report", "--db", "host=127.0.0.1 port=1 connect_timeout=3", "--repo", repo.path, "--format", "markdown"])
            #expect(outcome.status == 2, "\(outcome.stderr)")
            #expect(outcome.stdout.contains("**audit-retention** (error): database facts missing"))
            #expect(outcome.stdout.contains("**archival** (error): database facts missing"))
            #expect(outcome.stdout.contains("## 3. Backups"))
        }
    }

    /// The database facts must be the repository's own database's: another database is refused (64), not reported on.
    @Test func reportOnAnotherDatabaseThanTheRepositorysIsRefused() async throws {
        try await TestServer.withDatabase { db in
            try await TestServer.withDatabase { other in
                try await TestRepository.with { repo in
                    let prune = try await FTBackupBinary.run(["lifecycle", "prune-audit", "--db", db.connectionString.raw, "--repo", repo.path])
                    #expect(prune.status == 0, "\(prune.stderr)")
                    let outcome = try await FTBackupBinary.run(["report", "--db", other.connectionString.raw, "--repo", repo.path])
                    #expect(outcome.status == 64, "\(outcome.stderr)")
                    #expect(outcome.stdout.isEmpty && outcome.stderr.split(separator: "\n").count == 1, "\(outcome.stderr)")
                }
            }
        }
    }

    @Test func badPeriodsExit64WithOneLine() async throws {
        for arguments in [["--month", "2026-13"], ["--from", "2026-02-30", "--to", "2026-03-01"], ["--from", "2026-03-01"],
                          ["--month", "2026-01", "--from", "2026-01-01", "--to", "2026-01-02"], ["--format", "pdf"]] {
            let outcome = try await FTBackupBinary.run(["report", "--repo", NSTemporaryDirectory()] + arguments)
            #expect(outcome.status == 64, "\(arguments): \(outcome.stderr)")
            #expect(outcome.stderr.split(separator: "\n").count == 1, "\(outcome.stderr)")
        }
    }
}

@Suite struct ComplianceReportHTMLTests {
    /// The HTML report of a known history (a gap, a failed drill, audit rows of every age) renders in
    /// headless Chromium: self-contained (no script, no external asset), with its SVG charts, and the
    /// screenshot is not blank (many colours, among them the gap's red and the coverage's green).
    @Test func htmlReportRendersInHeadlessChromiumWithItsCharts() async throws {
        guard let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first(where: FileManager.default.isExecutableFile(atPath:)) else {
            Issue.record("chromium is missing: scripts/install-deps.sh installs it")
            return
        }
        try await TestServer.withDatabase { db in
            let template = try await TestRepository.with { source in try await BackupRunner.runFull(try .test(db, source)) }
            try await TestRepository.with { repo in
                let session = try await db.connect()
                defer { session.close() }
                // Retention done first, so the findings are few and the charts are in the screenshot.
                let policy = try testPolicy()
                _ = try await ToolDataArchiver.run(ArchiveOptions(database: db.connectionString, repositoryPath: repo.path, policy: policy))
                _ = try await AuditPruner.run(AuditPruner.Options(database: db.connectionString, repositoryPath: repo.path, policy: policy))
                let identity = try await session.withConnection { try DatabaseIdentity.of($0) }
                let now = Date(), base = now.addingTimeInterval(-40 * 86_400), today = ReportKnownHistory.dayStart(now)
                try ReportKnownHistory.writeFulls(template, into: repo.repository, days: 20, base: base, now: now)
                try ReportKnownHistory.writeSegments(into: repo.repository, source: identity, from: today.addingTimeInterval(-9 * 86_400),
                                                     base: base, now: now, missing: today.addingTimeInterval(-2 * 86_400 + 13 * 3600))
                try ReportKnownHistory.writeDrill(into: repo.repository, at: now.addingTimeInterval(-20 * 86_400), passed: true, rto: 1500, rpo: 2000)
                try ReportKnownHistory.writeDrill(into: repo.repository, at: now.addingTimeInterval(-2 * 86_400), passed: false, rto: 16_000, rpo: 3000)
                let out = (repo.path as NSString).deletingLastPathComponent + "/report.html"
                let from = ReportPeriod.dayText(now.addingTimeInterval(-27 * 86_400)), to = ReportPeriod.dayText(now)
                let outcome = try await FTBackupBinary.run(["report", "--db", db.connectionString.raw, "--repo", repo.path, "--from", from, "--to", to,
                                                      "--format", "html", "--out", out])
                #expect(outcome.status == 2, "\(outcome.stderr)")
                #expect(try FileManager.default.attributesOfItem(atPath: out)[.posixPermissions] as? Int == 0o600)
                let html = try String(contentsOfFile: out, encoding: .utf8)
                #expect(html.components(separatedBy: "<svg").count - 1 >= 4)
                #expect(!html.contains("<script") && !html.contains("src=") && !html.contains("href=") && !html.contains("url("))
                #expect(html.contains("@media print"))
                let png = (repo.path as NSString).deletingLastPathComponent + "/report.png"
                let process = Process()
                process.executableURL = URL(fileURLWithPath: chromium)
                process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--screenshot=\(png)",
                                     "--window-size=1200,3000", "file://\(out)"]
                process.standardOutput = FileHandle.nullDevice
                process.standardError = FileHandle.nullDevice
                try process.run()
                await FTBackupBinary.waitForExit(process)
                #expect(process.terminationStatus == 0)
                let image = try PNGPixels(Array(try Data(contentsOf: URL(fileURLWithPath: png))))
                #expect(image.width == 1200)
                let colours = Set(image.pixels)
                #expect(colours.count > 50, "\(colours.count) colours")
                let counts = Dictionary(image.pixels.map { ($0, 1) }, uniquingKeysWith: +)
                #expect((counts[0xC62828] ?? 0) > 200, "gap red")
                #expect((counts[0x2E7D32] ?? 0) > 200, "restorable green")
                if let keep = ProcessInfo.processInfo.environment["FTBACKUP_KEEP_REPORT_PNG"] {
                    try? FileManager.default.removeItem(atPath: keep)
                    try FileManager.default.copyItem(atPath: png, toPath: keep)
                    try? FileManager.default.removeItem(atPath: keep + ".html")
                    try FileManager.default.copyItem(atPath: out, toPath: keep + ".html")
                }
            }
        }
    }
}
