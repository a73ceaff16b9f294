import Foundation

/// Section 2, tool data archival: per tool the completed rows past the archive age still in the
/// database (held ones told apart), the archives created and put back in the period, and whether
/// every archive still verifies — trusted from each archive's last `verify` record (the monthly
/// lifecycle job runs `verify --archives`), named with its time; the report does not re-read them.
public struct ArchivalFacts: Codable, Sendable {
    public struct Tool: Codable, Sendable, Equatable {
        public var schema: String
        public var ageColumn: String
        public var pastAge: Int64
        public var held: Int64
        public var overdue: Int64
        public var oldestCompleted: String?
    }

    public struct Archive: Codable, Sendable, Equatable {
        public var name: String
        public var schema: String
        public var status: String
        public var createdAt: Date
        public var rows: Int64
        public var storedBytes: Int64
        public var inPeriod: Bool
        /// The last verify: `ok`, `failed` or nil (never verified), and when.
        public var verification: String?
        public var verifiedAt: Date?
        public var problems: [String]
    }

    public struct Unarchive: Codable, Sendable, Equatable {
        public var run: String
        public var archive: String
        public var rows: Int64
    }

    public var policy: [ComplianceReport.PolicyValue]
    public var databaseAvailable: Bool
    public var archiveCutoff: String?
    public var tools: [Tool]
    public var archives: [Archive]
    public var unarchives: [Unarchive]
    public var findings: [ComplianceReport.Finding]

    static func make(database: DatabaseFacts?, unreachable: String?, storage: any RepositoryStorage, policy: Policy,
                     period: ReportPeriod) throws -> ArchivalFacts {
        var findings: [ComplianceReport.Finding] = []
        let grace = policy.scheduling.lifecycle.interval
        if let unreachable { findings.append(.init(.archival, .error, "database facts missing: \(unreachable)")) }
        let tools = (database?.tools ?? []).map {
            Tool(schema: $0.schema, ageColumn: $0.ageColumn, pastAge: $0.pastAge, held: $0.held, overdue: $0.overdue, oldestCompleted: $0.oldestCompleted)
        }
        for tool in tools where tool.overdue > 0 {
            findings.append(.init(.archival, .error,
                                  "\(tool.schema): \(tool.overdue) \(policy.archiveToolData.status) rows older than \(policy.archiveToolData.after) plus the \(grace) lifecycle interval still in the database (oldest \(tool.oldestCompleted ?? "?")); run lifecycle archive (its --dry-run names any reference that keeps them)"))
        }
        var archives: [Archive] = []
        var unverified: [String] = []
        for (name, manifest) in try ArchiveStore(storage: storage).all() {
            guard let manifest else {
                findings.append(.init(.archival, .warning, "archive \(name) has no manifest (a run was interrupted while writing it)"))
                continue
            }
            let record = VerificationResultRecord.read(storage, path: ArchiveManifest.verificationPath(name: name))
            let archive = Archive(name: name, schema: manifest.schema, status: manifest.status.rawValue, createdAt: manifest.createdAt,
                                  rows: manifest.rows, storedBytes: manifest.storedBytes, inPeriod: period.contains(manifest.createdAt),
                                  verification: record?.outcome.rawValue, verifiedAt: record?.verifiedAt, problems: record?.problems ?? [])
            if manifest.status == .committed {
                if record == nil {
                    unverified.append(name)
                } else if record?.outcome == .failed {
                    findings.append(.init(.archival, .error, "archive \(name) FAILED its last verify (\(record.map { Timestamps.display($0.verifiedAt) } ?? "")): \(archive.problems.first ?? "")"))
                }
            }
            if manifest.status == .pending {
                findings.append(.init(.archival, .warning, "archive \(name) is pending (its run was interrupted; the next lifecycle archive settles it)"))
            }
            archives.append(archive)
        }
        if !unverified.isEmpty {
            let names = unverified.prefix(3).joined(separator: ", ") + (unverified.count > 3 ? ", …" : "")
            findings.append(.init(.archival, .error, "\(unverified.count) committed archive(s) never verified (\(names)); run ftbackup verify --archives"))
        }
        var unarchives: [Unarchive] = []
        let folder = "lifecycle/unarchive"
        for name in try RecordChain.names(storage, folder: folder) {
            guard let at = ReportPeriod.labelTime(name), period.contains(at),
                  let report = try? BackupManifest.decoder().decode(Unarchiver.Report.self, from: Data(try storage.readAll("\(folder)/\(name)")))
            else { continue }
            unarchives.append(Unarchive(run: String(name.dropLast(5)), archive: report.archive, rows: report.rows.values.reduce(0, +)))
        }
        return ArchivalFacts(
            policy: [.init(name: "archive completed tool data after", value: policy.archiveToolData.after.description),
                     .init(name: "status archived", value: policy.archiveToolData.status),
                     .init(name: "grace (lifecycle interval, schedule.lifecycle)", value: grace.description),
                     .init(name: "legal hold organizations", value: policy.legalHoldOrganizations.isEmpty ? "none" : policy.legalHoldOrganizations.joined(separator: ", "))],
            databaseAvailable: database != nil, archiveCutoff: database?.archiveCutoff, tools: tools, archives: archives,
            unarchives: unarchives, findings: findings)
    }
}
