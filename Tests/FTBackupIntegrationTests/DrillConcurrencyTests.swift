import Foundation
import Testing
@testable import FTBackupKit

/// What a running process has written to a pipe so far, read as it arrives.
final class PipeText: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()

    init(_ pipe: Pipe) {
        pipe.fileHandleForReading.readabilityHandler = { [self] handle in
            let chunk = handle.availableData
            if chunk.isEmpty { handle.readabilityHandler = nil }
            lock.withLock { data.append(chunk) }
        }
    }

    var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
}

extension DrillTests {
    /// Two drills on one server (two databases' schedules, or two suites of this test run): one that starts
    /// while the other is creating its scratch database must not take that database for a killed drill's
    /// leftover and drop it under the running drill. The window between `CREATE DATABASE` and the running
    /// drill's advisory lock used to hold the scratch comment with the lock still free.
    @Test func aDrillCreatingItsScratchDatabaseIsLeftAloneByAnotherDrill() async throws {
        try await ArchivedDatabase.with { a in
            _ = try await a.full()
            let (creating, _, err) = try FTBackupBinary.start(["drill", "--db", a.db.connectionString.raw, "--repo", a.repo.path],
                                                              environment: ["FTBACKUP_FAILPOINT": "drill.creating-target"])
            defer { if creating.isRunning { kill(creating.processIdentifier, SIGKILL) } }
            let stderr = PipeText(err)
            // Until it pauses inside the window, however long a loaded machine takes to get there.
            let deadline = Date().addingTimeInterval(600)
            var name: String?
            while name == nil && creating.isRunning && Date() < deadline {
                name = stderr.text.firstMatch(of: /failpoint drill\.creating-target reached \(database=(ftbackup_drill_[0-9TZ_]+)\)/).map { String($0.1) }
                if name == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            let scratch = try #require(name, "the first drill never reached the window: \(stderr.text)")
            let admin = try await TestServer.admin()
            defer { admin.close() }
            func exists() async throws -> Bool {
                try await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [scratch]).count == 1
            }
            #expect(try await exists())

            let other = try await DrillRunner.run(DrillOptions(source: a.db.connectionString, repositoryPath: a.repo.path, policy: try testPolicy()))
            #expect(!other.leftoversRemoved.contains(scratch), "the second drill removed the running drill's database: \(other.leftoversRemoved)")
            #expect(other.passed, "\(other.reasons)")
            if try await exists(), creating.isRunning {
                kill(creating.processIdentifier, SIGKILL)
                await FTBackupBinary.waitForExit(creating)
                try await admin.execute("DROP DATABASE IF EXISTS \(try admin.escapeIdentifier(scratch)) WITH (FORCE)")
            } else {
                // The failpoint pauses two minutes at most: on a loaded machine the first drill may have gone on
                // meanwhile. Its outcome says whether its database was left to it (it ends by dropping it itself).
                await FTBackupBinary.waitForExit(creating)
                #expect(creating.terminationStatus == 0, "the running drill's scratch database was dropped under it: \(stderr.text)")
            }
        }
    }
}

extension DrillTests {
    /// Drills started in the same second on one server pick the same scratch name. Each used to look the
    /// names up, then all but one failed in CREATE DATABASE ("already exists"); a taken name now moves a
    /// drill to the next suffix. Four at once here, each on its own connection, all get a database.
    @Test func drillsStartedInTheSameSecondEachGetAScratchDatabase() async throws {
        try await ServerWideResource.drillScratchDatabases.exclusive {
            let date = Date()
            let names = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        let admin = try await TestServer.admin()
                        defer { admin.close() }
                        let target = try await DrillTarget.create(on: admin, connection: try ConnectionString(try TestServer.dsn), source: admin, at: date)
                        try await target.drop()
                        return target.name
                    }
                }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            let first = DrillTarget.prefix + DrillTarget.timestamp(date)
            #expect(Set(names) == [first, first + "_2", first + "_3", first + "_4"])
        }
    }
}
