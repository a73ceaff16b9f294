import Foundation
import Testing
@testable import FTBackupKit

@Suite struct ScheduleGeneratorTests {
    /// deploy/ holds the generator's output for policies/default.yaml, byte for byte.
    @Test func deployExamplesMatchTheGenerator() throws {
        let policy = try PolicyLoader.load(fileAt: "\(projectRoot)/policies/default.yaml")
        let units = ScheduleGenerator.systemd(policy)
        let shipped = try FileManager.default.contentsOfDirectory(atPath: "\(projectRoot)/deploy/systemd").filter { !$0.hasSuffix(".example") }.sorted()
        #expect(shipped == units.map(\.name).sorted())
        for unit in units {
            #expect(try String(contentsOfFile: "\(projectRoot)/deploy/systemd/\(unit.name)", encoding: .utf8) == unit.contents, "\(unit.name)")
        }
        #expect(try String(contentsOfFile: "\(projectRoot)/deploy/cron/ftbackup", encoding: .utf8) == ScheduleGenerator.cron(policy))
    }
}
