import Foundation

/// The compliance report laid out once, format-free: sections of headings, paragraphs, lists,
/// tables and (HTML only) charts. The text, Markdown and HTML renderers each turn it into their
/// format, so the three always say the same thing.
struct ReportDocument {
    enum Chart {
        case coverage(BackupCoverage)
        case auditAges(AuditRetentionFacts, retentionYears: Int)
        case drills(RecoveryTestingFacts)
    }

    enum Block {
        case paragraph(String)
        case list([String])
        case table([String], [[String]])
        case chart(Chart)
    }

    struct Section {
        var title: String
        /// `pass`, or `N finding(s)`.
        var status: String
        var passed: Bool
        var blocks: [Block]
    }

    var title: String
    var meta: [String]
    var findings: [ComplianceReport.Finding]
    var sections: [Section]

    init(_ report: ComplianceReport) {
        title = "Compliance report \(report.period.label)"
        meta = [
            "Period: \(Timestamps.display(report.period.from)) to \(Timestamps.display(report.period.to)) (UTC days, end exclusive)",
            "Generated: \(Timestamps.display(report.generatedAt)) by ftbackup \(report.ftbackupVersion)",
            "Repository: \(report.repository)",
            "Database: \(report.database ?? "not reached")",
            "Policy: \(report.policySource)",
        ]
        findings = report.findings
        func section(_ title: String, _ kind: ComplianceReport.Section, _ blocks: [Block]) -> Section {
            let count = report.findings(in: kind).count
            return Section(title: title, status: count == 0 ? "pass" : "\(count) finding\(count == 1 ? "" : "s")", passed: count == 0, blocks: blocks)
        }
        sections = [
            section("1. Audit retention", .auditRetention, Self.audit(report.auditRetention, report: report)),
            section("2. Tool data archival", .archival, Self.archival(report.archival)),
            section("3. Backups", .backups, Self.backups(report.backups)),
            section("4. Recovery testing", .recoveryTesting, Self.drills(report.recoveryTesting)),
            section("Tamper evidence", .evidence, Self.evidence(report.evidence)),
        ]
    }

    static func policy(_ values: [ComplianceReport.PolicyValue]) -> Block {
        .paragraph("Policy: " + values.map { "\($0.name) \($0.value)" }.joined(separator: "; ") + ".")
    }

    static func bytes(_ value: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var amount = Double(value), unit = 0
        while amount >= 1024 && unit < units.count - 1 { amount /= 1024; unit += 1 }
        return unit == 0 ? "\(value) B" : String(format: "%.1f %@", amount, units[unit])
    }

    static func audit(_ facts: AuditRetentionFacts, report: ComplianceReport) -> [Block] {
        var blocks: [Block] = [policy(facts.policy)]
        if facts.databaseAvailable {
            blocks.append(.paragraph("Rows older than the retention are counted against the cut-off \(facts.retentionCutoff ?? "?") (database time zone \(facts.timeZone ?? "?")); rows under legal hold or still referenced are kept on purpose; overdue rows are past the retention plus the grace and not kept."))
            blocks.append(.table(["leaf", "rows", "oldest", "past retention", "kept (hold/reference)", "overdue"],
                                 facts.leaves.map { [$0.leaf, "\($0.rows)", $0.oldest ?? "-", "\($0.pastRetention)", "\($0.kept)", "\($0.overdue)"] }))
            let years = Int(report.auditRetentionYears)
            blocks.append(.chart(.auditAges(facts, retentionYears: years)))
        } else {
            blocks.append(.paragraph("The database was not reached: its audit rows are not in this report."))
        }
        if facts.pruneRuns.isEmpty {
            blocks.append(.paragraph("No prune-audit run in the period."))
        } else {
            blocks.append(.paragraph("Prune runs in the period: each table's newest removed row must be older than the run's cut-off."))
            for run in facts.pruneRuns {
                blocks.append(.paragraph("Run \(run.run): cut-off \(run.cutoff) \(run.timeZone ?? ""), \(run.rows) rows removed, \(run.complete ? "complete" : "UNFINISHED"), evidence seal \(run.sealed ? "intact" : "BROKEN")."))
                blocks.append(.table(["table", "rows", "oldest removed", "newest removed", "newest < cut-off", "SHA-256", "partitions dropped"],
                                     run.tables.filter { $0.rows > 0 }.map { table in
                                         [table.table, "\(table.rows)", table.oldest ?? "-", table.newest ?? "-", table.newestBeforeCutoff ? "yes" : "NO",
                                          String((table.sha256 ?? "-").prefix(16)),
                                          table.partitionsDropped.isEmpty ? "-" : table.partitionsDropped.map { String($0.prefix { $0 != " " }) }.joined(separator: ", ")]
                                     }))
            }
        }
        return blocks
    }

    static func archival(_ facts: ArchivalFacts) -> [Block] {
        var blocks: [Block] = [policy(facts.policy)]
        if facts.databaseAvailable {
            blocks.append(.paragraph("Completed rows older than the archive age (cut-off \(facts.archiveCutoff ?? "?")) still in the database, per tool:"))
            blocks.append(.table(["tool schema", "age column", "past age", "held", "overdue", "oldest completed"],
                                 facts.tools.filter { $0.pastAge > 0 || $0.overdue > 0 }.map {
                                     [$0.schema, $0.ageColumn, "\($0.pastAge)", "\($0.held)", "\($0.overdue)", $0.oldestCompleted ?? "-"]
                                 }))
            let clean = facts.tools.filter { $0.pastAge == 0 && $0.overdue == 0 }.count
            blocks.append(.paragraph("\(clean) of \(facts.tools.count) tool schemas hold no completed row past the archive age."))
        } else {
            blocks.append(.paragraph("The database was not reached: its tool data is not in this report."))
        }
        let inPeriod = facts.archives.filter(\.inPeriod)
        blocks.append(.paragraph("Archives created in the period: \(inPeriod.count) (\(inPeriod.reduce(0) { $0 + $1.rows }) rows, \(bytes(inPeriod.reduce(0) { $0 + $1.storedBytes })) stored); put back in the period: \(facts.unarchives.count) run(s), \(facts.unarchives.reduce(0) { $0 + $1.rows }) rows. Verification is trusted from each archive's last verify (not re-read by this report):"))
        let listed = facts.archives.filter { $0.inPeriod || $0.status == "committed" && $0.verification != "ok" }
        blocks.append(.paragraph("Every archive's last verify: \(facts.archives.filter { $0.verification == "ok" }.count) of \(facts.archives.count) ok. Listed: the archives of the period and any other whose last verify is not ok."))
        blocks.append(.table(["archive", "schema", "status", "created", "rows", "stored", "last verify"],
                             listed.map { (archive: ArchivalFacts.Archive) -> [String] in
                                 let verified = archive.verifiedAt.map { " " + Timestamps.display($0) } ?? ""
                                 let last = archive.verification.map { $0 + verified } ?? "never"
                                 return [archive.name, archive.schema, archive.status, Timestamps.display(archive.createdAt), "\(archive.rows)",
                                         bytes(archive.storedBytes), last]
                             }))
        if !facts.unarchives.isEmpty {
            blocks.append(.table(["unarchive run", "archive", "rows"], facts.unarchives.map { [$0.run, $0.archive, "\($0.rows)"] }))
        }
        return blocks
    }

    static func backups(_ facts: BackupCoverage) -> [Block] {
        var blocks: [Block] = [policy(facts.policy), .chart(.coverage(facts))]
        let counts = Dictionary(grouping: facts.days, by: \.status).mapValues(\.count)
        blocks.append(.paragraph("Days of the period: " + [BackupCoverage.DayStatus.verified, .unverified, .missing, .expired, .pending]
            .compactMap { status in counts[status].map { "\($0) \(status.rawValue)" } }.joined(separator: ", ") + "."))
        let bad = facts.days.filter { $0.status == .missing || $0.status == .unverified }
        if !bad.isEmpty { blocks.append(.list(bad.map { "\($0.day): \($0.status.rawValue)\($0.backups.isEmpty ? "" : " (\($0.backups.joined(separator: ", ")))")" })) }
        let restorable = facts.hours.filter { $0.status == .restorable }.count
        if facts.hours.isEmpty {
            blocks.append(.paragraph("No hour of the period lies within the incremental retention: older change segments are gone by policy, so restorable hours are not shown."))
        } else {
            blocks.append(.paragraph("Hours of the period within the incremental retention restorable by restore --at: \(restorable) of \(facts.hours.count)\(facts.hours.contains { $0.status == .pending } ? " (the newest not sealed yet, within the RPO)" : ""); newest restorable point \(facts.newestRestorablePoint.map { Timestamps.display($0) } ?? "none")."))
        }
        if !facts.gaps.isEmpty {
            blocks.append(.table(["gap from", "to", "why"], facts.gaps.map { [Timestamps.display($0.from), Timestamps.display($0.to), $0.reason] }))
        }
        blocks.append(.paragraph("Newest full: \(facts.newestFull ?? "none"). Expiry last ran: \(facts.lastExpiryAt.map { Timestamps.display($0) } ?? "not recorded (ftbackup run records it)")."))
        blocks.append(.paragraph("Storage: backups \(bytes(facts.storage.backupsBytes)), change segments \(bytes(facts.storage.segmentsBytes)), archives \(bytes(facts.storage.archivesBytes)), lifecycle evidence and exports \(bytes(facts.storage.lifecycleBytes)); total \(bytes(facts.storage.totalBytes))."))
        return blocks
    }

    static func drills(_ facts: RecoveryTestingFacts) -> [Block] {
        var blocks: [Block] = [policy(facts.policy)]
        blocks.append(.table(["month", "drills", "result"], facts.months.map { [$0.month, "\($0.drills)", $0.status.rawValue] }))
        if facts.drills.isEmpty {
            blocks.append(.paragraph("No drill in the period\(facts.newestDrill.map { "; the newest is \($0)" } ?? "").\n"))
        } else {
            blocks.append(.table(["drill", "started", "RTO measured / objective", "RPO measured / objective", "result"],
                                 facts.drills.map {
                                     [$0.label, Timestamps.display($0.startedAt), "\(duration($0.rtoSeconds)) / \(duration($0.rtoObjectiveSeconds))",
                                      "\(duration($0.rpoSeconds)) / \(duration($0.rpoObjectiveSeconds))",
                                      $0.passed ? "passed" : "FAILED: " + $0.reasons.joined(separator: "; ")]
                                 }))
            blocks.append(.chart(.drills(facts)))
        }
        return blocks
    }

    static func evidence(_ facts: EvidenceFacts) -> [Block] {
        var blocks: [Block] = [.paragraph("Each record carries the SHA-256 of the record of its kind before it; the newest record of each kind is protected by the next one.")]
        if let anchored = facts.anchored {
            blocks.append(.paragraph("\(anchored) record(s) anchored in the database (their SHA-256 written there as they were written) were checked against the repository: a record deleted or edited since, the newest included, is a finding."))
        } else {
            blocks.append(.paragraph("No record anchors were read from the database (no --db, or none recorded yet): the newest record of each kind is protected only by its successor."))
        }
        blocks.append(.table(["kind", "records", "chained", "before chaining", "chain"],
                             facts.chains.map {
                                 [$0.kind, "\($0.records)", "\($0.chained)", $0.beforeChaining.isEmpty ? "-" : "\($0.beforeChaining.count): \($0.beforeChaining.joined(separator: ", "))",
                                  $0.intact ? "intact" : "BROKEN (\($0.problems.count))"]
                             }))
        return blocks
    }

    static func duration(_ seconds: Double) -> String {
        if seconds < 60 { return String(format: "%.1fs", seconds) }
        let whole = Int(seconds.rounded())
        if whole < 3600 { return String(format: "%dm %02ds", whole / 60, whole % 60) }
        return String(format: "%dh %02dm", whole / 3600, whole % 3600 / 60)
    }
}

extension ComplianceReport {
    /// The audit retention in years, for the age chart's line (the policy may say it in other units).
    var auditRetentionYears: Double {
        guard let value = auditRetention.policy.first?.value, let period = Period(parsing: value) else { return 7 }
        return period.nominalSeconds / 31_536_000
    }
}
