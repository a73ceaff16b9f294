import Foundation
import Testing
@testable import FTBackupKit

/// The project's policies/ folder, found from this file's path.
let projectRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

@Suite struct PolicyTests {
    @Test func defaultPolicyFileStatesTheDesignTargets() throws {
        let policy = try PolicyLoader.load(fileAt: "\(projectRoot)/policies/default.yaml")
        #expect(policy.full.schedule == .daily)
        #expect(policy.full.retention == Period(30, .days))
        #expect(policy.incremental.schedule == .hourly)
        #expect(policy.incremental.retention == Period(7, .days))
        #expect(policy.changeArchival.enabled)
        #expect(policy.archiveToolData.after == Period(2, .years))
        #expect(policy.archiveToolData.status == "completed")
        #expect(policy.archiveToolData.ageColumnOverrides["sprint_00_woop"] == "updated_at")
        #expect(policy.archiveToolData.references.first?.fromColumn == "source_know_thyself_id")
        #expect(policy.auditRetention == Period(7, .years))
        #expect(policy.rto == Period(4, .hours))
        #expect(policy.rpo == Period(1, .hours))
        #expect(policy.drillSchedule == .monthly)
        #expect(policy.compression.codec == .zstd)
    }

    @Test func builtInDefaultEqualsTheShippedFile() throws {
        var file = try PolicyLoader.load(fileAt: "\(projectRoot)/policies/default.yaml")
        var builtIn = try PolicyLoader.parse(PolicyLoader.builtInDefault, source: "x")
        file.source = ""
        builtIn.source = ""
        #expect(file == builtIn)
    }

    private func failure(_ edit: (String) -> String) throws -> FTBackupError? {
        let text = edit(PolicyLoader.builtInDefault)
        return #expect(throws: FTBackupError.self) { _ = try PolicyLoader.parse(text, source: "policies/bad.yaml") }
    }

    @Test func unknownKeyNamesKeyLineAndFile() throws {
        let error = try failure { $0.replacingOccurrences(of: "  audit_retention: 7y", with: "  audit_retension: 7y") }
        #expect(error?.status == .configuration)
        #expect(error?.message.contains("policies/bad.yaml") == true)
        #expect(error?.message.contains("lifecycle.audit_retension") == true)
        #expect(error?.message.contains("line 16") == true)
        #expect(error?.message.contains("unknown key") == true)
    }

    @Test func badPeriodIsRefused() throws {
        let error = try failure { $0.replacingOccurrences(of: "retention: 30d", with: "retention: thirty days") }
        #expect(error?.message.contains("backup.full.retention") == true)
        #expect(error?.message.contains("thirty days") == true)
    }

    @Test func zeroAndNegativePeriodsAreRefused() throws {
        #expect(try failure { $0.replacingOccurrences(of: "rto: 4h", with: "rto: 0h") }?.message.contains("objectives.rto") == true)
        #expect(try failure { $0.replacingOccurrences(of: "rpo: 1h", with: "rpo: -1h") }?.message.contains("objectives.rpo") == true)
    }

    @Test func outOfRangeCompressionLevelIsRefused() throws {
        let error = try failure { $0.replacingOccurrences(of: "level: 1,", with: "level: 42,") }
        #expect(error?.message.contains("backup.compression.level") == true)
    }

    @Test func unknownScheduleIsRefused() throws {
        let error = try failure { $0.replacingOccurrences(of: "schedule: monthly", with: "schedule: fortnightly") }
        #expect(error?.message.contains("drills.schedule") == true)
        #expect(error?.message.contains("hourly, daily, weekly, monthly") == true)
    }

    @Test func missingRequiredKeyIsRefused() throws {
        let error = try failure { $0.replacingOccurrences(of: "objectives: { rto: 4h, rpo: 1h }", with: "objectives: { rto: 4h }") }
        #expect(error?.message.contains("objectives.rpo") == true)
        #expect(error?.message.contains("missing") == true)
    }

    @Test func legalHoldMustBeUUIDs() throws {
        let error = try failure {
            $0.replacingOccurrences(of: "legal_hold_organizations: []", with: "legal_hold_organizations: [acme]")
        }
        #expect(error?.message.contains("legal_hold_organizations[0]") == true)
    }

    @Test func malformedYAMLIsRefused() throws {
        let error = #expect(throws: FTBackupError.self) { _ = try PolicyLoader.parse("version: [1,", source: "p.yaml") }
        #expect(error?.status == .configuration)
    }

    @Test func missingFileIsAConfigurationError() throws {
        let error = #expect(throws: FTBackupError.self) { _ = try PolicyLoader.load(fileAt: "/nonexistent/policy.yaml") }
        #expect(error?.status == .configuration)
        #expect(error?.message.contains("/nonexistent/policy.yaml") == true)
    }

    @Test func excludePatterns() throws {
        var policy = try PolicyLoader.parse(PolicyLoader.builtInDefault, source: "x")
        policy.exclude = ["audit.*", "*.scratch"]
        #expect(policy.excludes(schema: "audit", table: "events"))
        #expect(policy.excludes(schema: "users", table: "scratch"))
        #expect(!policy.excludes(schema: "users", table: "accounts"))
    }

    @Test func periodRendersAsSQLInterval() {
        #expect(Period(parsing: "2y")?.sqlInterval == "2 years")
        #expect(Period(parsing: "90min")?.nominalSeconds == 5400)
        #expect(Period(parsing: "7") == nil)
        #expect(Period(parsing: "d") == nil)
    }
}

/// A policy check written `expect: true` (YAML's boolean, read as the text "true") passes on
/// PostgreSQL's boolean `t`, and fails on `f`; text values still compare exactly.
@Suite struct DrillCheckExpectTests {
    @Test func expectTrueMatchesPostgresBooleansAndTextStaysExact() {
        #expect(DrillValidation.matches("t", expect: "true"))
        #expect(DrillValidation.matches("t", expect: "t"))
        #expect(DrillValidation.matches("f", expect: "false"))
        #expect(!DrillValidation.matches("f", expect: "true"))
        #expect(!DrillValidation.matches("t", expect: "false"))
        #expect(!DrillValidation.matches(nil, expect: "true"))
        #expect(DrillValidation.matches("42", expect: "42"))
        #expect(!DrillValidation.matches("42", expect: "42.0"))
        #expect(!DrillValidation.matches("truth", expect: "true"))
    }
}

@Suite struct PolicyRepositorySectionTests {
    @Test func theRepositorySectionIsReadAndCheckedAndItsS3SettingsYieldToTheEnvironment() throws {
        let base = PolicyLoader.builtInDefault
        let policy = try PolicyLoader.parse(base + "\nrepository:\n  path: s3://b/p\n  uri_style: path\n  ca_bundle: /etc/ca.pem\n  second: /srv/second\n", source: "(t)")
        #expect(policy.repository == Policy.RepositorySettings(path: "s3://b/p", uriStyle: "path", caBundle: "/etc/ca.pem", second: "/srv/second"))
        #expect(try PolicyLoader.parse(base, source: "(t)").repository == Policy.RepositorySettings())
        #expect(throws: FTBackupError.self) { try PolicyLoader.parse(base + "\nrepository:\n  uri_style: virtual\n", source: "(t)") }
        #expect(throws: FTBackupError.self) { try PolicyLoader.parse(base + "\nrepository:\n  path: /r\n  second: /r/\n", source: "(t)") }
        #expect(throws: FTBackupError.self) { try PolicyLoader.parse(base + "\nrepository:\n  seconds: /x\n", source: "(t)") }
        // The environment wins; the policy fills in what it leaves unset. (Checked without setenv: other
        // suites' threads read the process's environment meanwhile.)
        #expect(policy.repository.s3Defaults(environment: ["FTBACKUP_S3_CA_BUNDLE": "/from/env.pem"]) == ["FTBACKUP_S3_URI_STYLE": "path"])
        #expect(policy.repository.s3Defaults(environment: [:]) == ["FTBACKUP_S3_URI_STYLE": "path", "FTBACKUP_S3_CA_BUNDLE": "/etc/ca.pem"])
    }
}
