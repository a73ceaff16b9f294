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

    /// Paths with a space, a quote and a `%`: systemd and cron must still run that binary with that
    /// environment file (systemd splits on spaces and expands `%`; cron turns `%` into a newline).
    @Test func pathsWithSpacesQuotesAndPercentSurviveSystemdAndCron() throws {
        let folder = NSTemporaryDirectory() + "sched it's 100% \(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let binary = "\(folder)/ft backup"
        let environment = "\(folder)/env file"
        try "#!/bin/sh\necho \"ran:$1:$FTBACKUP_MARK\"\n".write(toFile: binary, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: binary)
        try "FTBACKUP_MARK=env-read\n".write(toFile: environment, atomically: true, encoding: .utf8)
        let policy = try PolicyLoader.load(fileAt: "\(projectRoot)/policies/default.yaml")

        // cron: the command field (after five time fields and the user), `\%` unescaped as cron does, run by /bin/sh.
        let line = try #require(ScheduleGenerator.cron(policy, binary: binary, environmentFile: environment)
            .split(separator: "\n").first { !$0.hasPrefix("#") })
        var fields = line.split(separator: " ", maxSplits: 6, omittingEmptySubsequences: true)
        let command = String(fields.removeLast())
        #expect(!command.replacingOccurrences(of: "\\%", with: "").contains("%"), "a bare % in \(command)")
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", command.replacingOccurrences(of: "\\%", with: "%").replacingOccurrences(of: "exec nice -n 10 ionice -c2 -n7 ", with: "exec ")]
        let output = Pipe()
        shell.standardOutput = output
        try shell.run()
        shell.waitUntilExit()
        #expect(String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) == "ran:run:env-read\n")

        // systemd: the unit's ExecStart names the binary (systemd-analyze verify checks it exists and is executable).
        let units = ScheduleGenerator.systemd(policy, binary: binary, environmentFile: environment)
        let service = try #require(units.first { $0.name == "ftbackup-run.service" })
        #expect(service.contents.contains("EnvironmentFile=\(environment.replacingOccurrences(of: "%", with: "%%"))\n"))
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else { return }
        let unitFolder = folder + "/units"
        try FileManager.default.createDirectory(atPath: unitFolder, withIntermediateDirectories: true)
        for unit in units { try unit.contents.write(toFile: "\(unitFolder)/\(unit.name)", atomically: true, encoding: .utf8) }
        let verify = Process()
        verify.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-analyze")
        verify.arguments = ["verify"] + units.map { "\(unitFolder)/\($0.name)" }
        let errors = Pipe()
        verify.standardError = errors
        verify.standardOutput = errors
        try verify.run()
        verify.waitUntilExit()
        let said = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(!said.contains("is not executable") && !said.contains("Failed"), "\(said)")
    }
}
