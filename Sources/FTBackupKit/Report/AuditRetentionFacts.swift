import Foundation

/// Section 1, audit retention: every audit leaf's oldest row and rows past retention (what prune
/// keeps on purpose told apart from what is overdue), audit rows by age, and every prune run of the
/// period with its proof that nothing younger than its cut-off went (newest removed < cut-off).
public struct AuditRetentionFacts: Codable, Sendable {
    public struct Leaf: Codable, Sendable, Equatable {
        public var table: String
        public var leaf: String
        public var bound: String?
        public var rows: Int64
        public var oldest: String?
        public var pastRetention: Int64
        /// Under legal hold or still referenced: kept on purpose.
        public var kept: Int64
        /// Past retention plus the grace and not kept: a finding.
        public var overdue: Int64
    }

    public struct AgeBucket: Codable, Sendable, Equatable {
        /// Whole years of age: 0 is younger than a year.
        public var years: Int
        public var rows: Int64
    }

    public struct PruneTable: Codable, Sendable, Equatable {
        public var table: String
        public var rows: Int64
        public var oldest: String?
        public var newest: String?
        public var sha256: String?
        public var partitionsDropped: [String]
        /// The proof: the newest removed row is older than the run's cut-off.
        public var newestBeforeCutoff: Bool
    }

    public struct PruneRun: Codable, Sendable, Equatable {
        public var run: String
        public var startedAt: Date?
        public var complete: Bool
        public var cutoff: String
        public var cutoffInstant: String?
        public var timeZone: String?
        public var rows: Int64
        public var sealed: Bool
        public var tables: [PruneTable]
    }

    public var policy: [ComplianceReport.PolicyValue]
    public var databaseAvailable: Bool
    public var timeZone: String?
    public var retentionCutoff: String?
    public var leaves: [Leaf]
    public var ageByYear: [AgeBucket]
    public var pruneRuns: [PruneRun]
    public var findings: [ComplianceReport.Finding]

    static let kind = "prune-audit"

    static func make(database: DatabaseFacts?, unreachable: String?, storage: any RepositoryStorage, policy: Policy,
                     period: ReportPeriod) throws -> AuditRetentionFacts {
        var findings: [ComplianceReport.Finding] = []
        let grace = policy.scheduling.lifecycle.interval
        let leaves = (database?.leaves ?? []).map {
            Leaf(table: $0.table, leaf: $0.leaf, bound: $0.bound, rows: $0.rows, oldest: $0.oldest, pastRetention: $0.pastRetention,
                 kept: $0.kept, overdue: $0.overdue)
        }
        if let unreachable {
            findings.append(.init(.auditRetention, .error, "database facts missing: \(unreachable)"))
        }
        for (table, rows) in Dictionary(grouping: leaves, by: \.table).sorted(by: { $0.key < $1.key }) {
            let overdue = rows.reduce(0) { $0 + $1.overdue }
            guard overdue > 0 else { continue }
            let oldest = rows.compactMap(\.oldest).min(by: TimestampText.less) ?? "?"
            findings.append(.init(.auditRetention, .error,
                                  "\(table): \(overdue) rows older than the \(policy.auditRetention) retention plus the \(grace) prune interval (oldest \(oldest)); run lifecycle prune-audit"))
        }
        var runs: [PruneRun] = []
        let folder = "lifecycle/\(kind)"
        for name in try RecordChain.names(storage, folder: folder) {
            let run = String(name.dropLast(5))
            let startedAt = ReportPeriod.labelTime(run)
            guard let startedAt, period.contains(startedAt) else { continue }
            let report: AuditPruner.Report
            do {
                report = try BackupManifest.decoder().decode(AuditPruner.Report.self, from: Data(try storage.readAll("\(folder)/\(name)")))
            } catch {
                findings.append(.init(.evidence, .error, "\(folder)/\(name) is unreadable as prune evidence: \(EvidenceVerifier.describe(error))"))
                continue
            }
            var sealed = true
            do { try report.checkSeal("\(folder)/\(name)") } catch let error as FTBackupError {
                sealed = false
                findings.append(.init(.evidence, .error, error.message))
            }
            let tables = report.tables.map { table in
                PruneTable(table: "\(table.schema).\(table.table)", rows: table.rows, oldest: table.oldest, newest: table.newest,
                           sha256: table.sha256, partitionsDropped: table.partitions.filter { $0.method == .drop }.map { "\($0.partition) (\($0.export ?? "-"))" },
                           newestBeforeCutoff: table.newest.map { TimestampText.less($0, report.cutoff) } ?? true)
            }
            for table in tables where !table.newestBeforeCutoff {
                findings.append(.init(.auditRetention, .error, "prune run \(run) removed from \(table.table) a row dated \(table.newest ?? "?"), not before its cut-off \(report.cutoff)"))
            }
            if !report.complete {
                findings.append(.init(.auditRetention, .warning, "prune run \(run) did not finish (its evidence is partial: \(report.rows) rows so far)"))
            }
            runs.append(PruneRun(run: run, startedAt: startedAt, complete: report.complete, cutoff: report.cutoff, cutoffInstant: report.cutoffInstant,
                                 timeZone: report.timeZone, rows: report.rows, sealed: sealed, tables: tables))
        }
        return AuditRetentionFacts(
            policy: [.init(name: "retention", value: policy.auditRetention.description),
                     .init(name: "grace (prune interval, schedule.lifecycle)", value: grace.description),
                     .init(name: "legal hold organizations", value: policy.legalHoldOrganizations.isEmpty ? "none" : policy.legalHoldOrganizations.joined(separator: ", "))],
            databaseAvailable: database != nil, timeZone: database?.timeZone, retentionCutoff: database?.retentionCutoff, leaves: leaves,
            ageByYear: (database?.ageByYear ?? [:]).sorted { $0.key < $1.key }.map { AgeBucket(years: $0.key, rows: $0.value) },
            pruneRuns: runs, findings: findings)
    }
}
