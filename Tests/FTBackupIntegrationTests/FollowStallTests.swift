import Foundation
import Testing
@testable import FTBackupKit

extension ChangeArchivalTests {
    @Suite struct FollowStallTests {
        /// Issue 9 (follow-up of item 9): a follower that cannot read its slot records the stall as the
        /// incremental pass does, so `info` reports the broken chain with the server's reason; a follower
        /// that seals a segment again clears it.
        @Test func followerThatCannotAdvanceIsReportedBrokenAndClearsItOnceItSeals() async throws {
            try await ArchivedDatabase.with(prepare: "CREATE TABLE public.stall_f (id int PRIMARY KEY)") { a in
                let policyFile = try sealingEverySecondPolicyFile()
                defer { try? FileManager.default.removeItem(atPath: policyFile) }
                let conninfo = "\(try TestServer.dsn) dbname=\(a.db.name)"
                let arguments = ["follow", "--db", conninfo, "--repo", a.repo.path, "--policy", policyFile]
                let repository = Repository.local(a.repo.path)
                _ = try await a.full()

                // An earlier failure on record: a follower that seals clears it.
                ChangeArchiveStall.record(FTBackupError(.failure, "an earlier failure"), storage: repository.storage)
                #expect(try await ChangeArchiveStatus.read(repository, database: a.db.connectionString).broken != nil)
                let (healthy, _, _) = try FTBackupBinary.start(arguments)
                try await a.session.execute("INSERT INTO public.stall_f VALUES (1)")
                // Until it has sealed (seal_every 1s; a loaded machine takes longer to start it).
                _ = try await Eventually.holds(while: { healthy.isRunning }) { try !repository.storage.exists(ChangeArchiveStall.path) }
                kill(healthy.processIdentifier, SIGTERM)
                await FTBackupBinary.waitForExit(healthy)
                #expect(healthy.terminationStatus == 0)
                #expect(try !repository.storage.exists(ChangeArchiveStall.path))
                #expect(try await ChangeArchiveStatus.read(repository, database: a.db.connectionString).broken == nil)

                // Decoding fails from now on (the publication is gone): the follower stops and says why, on record.
                try await a.session.execute("DROP PUBLICATION \(ChangeArchivalNames.publication); INSERT INTO public.stall_f VALUES (2)")
                let (stalled, _, err) = try FTBackupBinary.start(arguments)
                let deadline = Date().addingTimeInterval(600)
                while stalled.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(200)) }
                if stalled.isRunning { kill(stalled.processIdentifier, SIGKILL) }
                await FTBackupBinary.waitForExit(stalled)
                let stderr = await FTBackupBinary.text(of: err)
                #expect(stalled.terminationStatus != 0, "\(stderr)")
                let stall = try #require(ChangeArchiveStall.read(repository.storage))
                #expect(stall.reason.contains("publication"), "\(stall.reason)")
                let info = try await FTBackupBinary.run(["info", "--repo", a.repo.path, "--db", conninfo])
                #expect(info.status == 69, "\(info.stdout)\(info.stderr)")
                #expect(info.stdout.contains("cannot advance"), "\(info.stdout)")
                try await a.session.execute("CREATE PUBLICATION \(ChangeArchivalNames.publication) FOR ALL TABLES")
            }
        }
    }
}

extension ChangeArchivalTests {
    /// adv13: a `changes/stalled.json` that is there but cannot be read (damaged, edited, or written
    /// under another key) must not read as "no stall": `info` reports the chain broken (exit 69),
    /// naming the file, where it used to call the chain healthy.
    @Suite struct DamagedStallRecordTests {
        @Test func aDamagedStallRecordReportsTheChainBrokenNotHealthy() async throws {
            try await ArchivedDatabase.with(prepare: "CREATE TABLE public.stall_d (id int PRIMARY KEY)") { a in
                _ = try await a.full()
                try await a.session.execute("INSERT INTO public.stall_d VALUES (1)")
                _ = try await a.incremental()
                let conninfo = "\(try TestServer.dsn) dbname=\(a.db.name)"
                let healthy = try await FTBackupBinary.run(["info", "--db", conninfo, "--repo", a.repo.path])
                #expect(healthy.status == 0, "\(healthy.stdout)\(healthy.stderr)")
                try Repository.local(a.repo.path).storage.writeAll(ChangeArchiveStall.path, Array("{\"since\": garbage".utf8))
                let damaged = try await FTBackupBinary.run(["info", "--db", conninfo, "--repo", a.repo.path])
                #expect(damaged.status == 69, "\(damaged.stdout)\(damaged.stderr)")
                #expect((damaged.stdout + damaged.stderr).contains("stalled.json is there but cannot be read"), "\(damaged.stdout)\(damaged.stderr)")
            }
        }
    }
}
