import Foundation
import Logging

/// `ftbackup report`: the evidence an auditor asks for (SOC 2 A1.2/A1.3, ISO 27001 A.8.13 and
/// A.8.10, GDPR storage limitation), built from the repository's own records and the database.
///
/// It exists because logs are not evidence: each section states the facts, the policy value it
/// checks them against, and pass or finding; every finding is listed first. The JSON form of this
/// struct is a versioned schema (`reportVersion`, README "Compliance report") that compliance tooling
/// ingests, and `findings` is what a cron job or `ftbackup status` alerts on.
public struct ComplianceReport: Codable, Sendable {
    public static let version = 1

    public enum Section: String, Codable, Sendable, CaseIterable {
        case auditRetention = "audit-retention", archival, backups, recoveryTesting = "recovery-testing", evidence
    }

    public enum Severity: String, Codable, Sendable { case error, warning }

    /// One thing that is not a pass.
    public struct Finding: Codable, Sendable, Equatable {
        public var section: Section
        public var severity: Severity
        public var message: String

        public init(_ section: Section, _ severity: Severity, _ message: String) {
            self.section = section
            self.severity = severity
            self.message = message
        }
    }

    /// A policy value a section checks its facts against, as the policy states it.
    public struct PolicyValue: Codable, Sendable, Equatable {
        public var name: String
        public var value: String
    }

    public var reportVersion = Self.version
    public var findings: [Finding]
    public var generatedAt: Date
    public var period: ReportPeriod
    public var repository: String
    /// The database the facts of sections 1–2 come from (never a password); nil when none was reached.
    public var database: String?
    public var policySource: String
    public var ftbackupVersion: String
    public var auditRetention: AuditRetentionFacts
    public var archival: ArchivalFacts
    public var backups: BackupCoverage
    public var recoveryTesting: RecoveryTestingFacts
    public var evidence: EvidenceFacts

    public var passed: Bool { findings.isEmpty }

    public func findings(in section: Section) -> [Finding] { findings.filter { $0.section == section } }
}

/// What `ComplianceReport.build` needs.
public struct ComplianceReportOptions: Sendable {
    public var database: ConnectionString?
    public var repositoryPath: String
    public var policy: Policy
    public var period: ReportPeriod
    /// The report's clock (tests place it; production: now).
    public var now: Date
    public var logger: Logger

    public init(database: ConnectionString?, repositoryPath: String, policy: Policy, period: ReportPeriod, now: Date = Date(),
                logger: Logger = Logger(label: "ftbackup")) {
        self.database = database
        self.repositoryPath = repositoryPath
        self.policy = policy
        self.period = period
        self.now = now
        self.logger = logger
    }
}

extension ComplianceReport {
    /// Builds the report: repository facts always; database facts when the database answers (when
    /// it does not, sections 1–2 say so as a finding and the rest of the report is still made).
    /// Throws only when the repository cannot be read, or when the database reached is not the
    /// repository's source (exit 64, as every command).
    public static func build(_ options: ComplianceReportOptions) async throws -> ComplianceReport {
        let repository = try Repository.open(options.repositoryPath)
        let policy = options.policy
        var database: DatabaseFacts?
        var unreachable: String?
        if let connection = options.database {
            do {
                database = try await DatabaseFacts.read(connection, repositoryPath: options.repositoryPath, policy: policy, now: options.now)
            } catch let error as FTBackupError where error.status == .usage {
                throw error
            } catch {
                unreachable = (error as? FTBackupError)?.message ?? (error as? PostgresError)?.description ?? "\(error)"
            }
        } else {
            unreachable = "no database given (--db or FTBACKUP_DB)"
        }
        let evidence = try EvidenceFacts.read(repository.storage, period: options.period, now: options.now, anchors: database?.anchors)
        var report = ComplianceReport(
            findings: [], generatedAt: options.now, period: options.period, repository: options.repositoryPath,
            database: database == nil ? nil : options.database?.redacted, policySource: policy.source, ftbackupVersion: FTBackupVersion.current,
            auditRetention: try AuditRetentionFacts.make(database: database, unreachable: unreachable, storage: repository.storage, policy: policy,
                                                         period: options.period),
            archival: try ArchivalFacts.make(database: database, unreachable: unreachable, storage: repository.storage, policy: policy,
                                             period: options.period),
            backups: try BackupCoverage.make(repository, policy: policy, period: options.period, now: options.now),
            recoveryTesting: try RecoveryTestingFacts.make(repository, policy: policy, period: options.period, now: options.now),
            evidence: evidence)
        report.findings = report.auditRetention.findings + report.archival.findings + report.backups.findings
            + report.recoveryTesting.findings + report.evidence.findings
        return report
    }
}

extension ExitStatus {
    /// `ftbackup report` made the report and it has findings: the code a drill that missed an
    /// objective uses (2: "it ran, and the result is not a pass").
    public static let reportHasFindings = ExitStatus.drillFailed
}
