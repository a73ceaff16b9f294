import Foundation
import Testing
@testable import FTBackupKit

@Suite struct RetentionUnitTests {
    @Test func upperBoundIsReadFromARangeBoundAndNothingElse() {
        #expect(AuditTable.upperBound("FOR VALUES FROM ('2019-01-01 00:00:00') TO ('2020-01-01 00:00:00')") == "2020-01-01 00:00:00")
        #expect(AuditTable.upperBound("FOR VALUES FROM (MINVALUE) TO ('2018-01-01 00:00:00')") == "2018-01-01 00:00:00")
        #expect(AuditTable.upperBound("FOR VALUES FROM ('2026-01-01 00:00:00') TO (MAXVALUE)") == nil)
        #expect(AuditTable.upperBound("DEFAULT") == nil)
        #expect(AuditTable.upperBound("FOR VALUES IN ('a')") == nil)
        #expect(AuditTable.upperBound("FOR VALUES WITH (modulus 4, remainder 1)") == nil)
        #expect(AuditTable.upperBound("FOR VALUES FROM ('it''s') TO ('o''clock')") == "o'clock")
    }

    @Test func timestampTextOrdersAsTheServerDoes() {
        #expect(TimestampText.less("2019-01-01 00:00:00", "2019-01-01 00:00:00.5"))
        #expect(!TimestampText.less("2019-01-01 00:00:00.5", "2019-01-01 00:00:00"))
        #expect(TimestampText.less("9999-12-31 23:59:59", "10000-01-01 00:00:00"))
        #expect(TimestampText.less("0044-03-15 00:00:00 BC", "0001-01-01 00:00:00"))
        #expect(TimestampText.less("0100-01-01 00:00:00 BC", "0044-03-15 00:00:00 BC"))
    }

    @Test func applicationTriggersDefaultToSkipAndAcceptFire() throws {
        #expect(try PolicyLoader.parse(PolicyLoader.builtInDefault, source: "x").applicationTriggers == .skip)
        let fire = PolicyLoader.builtInDefault.replacingOccurrences(of: "application_triggers: skip", with: "application_triggers: fire")
        #expect(try PolicyLoader.parse(fire, source: "x").applicationTriggers == .fire)
        let bad = PolicyLoader.builtInDefault.replacingOccurrences(of: "application_triggers: skip", with: "application_triggers: sometimes")
        let error = #expect(throws: FTBackupError.self) { _ = try PolicyLoader.parse(bad, source: "x") }
        #expect(error?.status == .configuration)
        #expect(error?.message.contains("lifecycle.application_triggers") == true)
    }

    @Test func evidenceWrittenBeforePartitionsExistedStillDecodes() throws {
        let old = #"""
        {"run":"20250101T000000Z","dryRun":false,"cutoff":"2018-01-01 00:00:00","retention":"7y","legalHoldOrganizations":[],
         "batchSize":5000,"tables":[{"schema":"audit","table":"events","rows":3,"oldest":"2017-01-01 00:00:00",
         "newest":"2017-12-31 00:00:00","sha256":"ab","batches":1,"longestBatchSeconds":0.1}],"seconds":1,"complete":true}
        """#
        let report = try BackupManifest.decoder().decode(AuditPruner.Report.self, from: Data(old.utf8))
        #expect(report.rows == 3)
        #expect(report.tables[0].partitions.isEmpty)
        #expect(report.silencedTriggers.isEmpty)
    }
}
