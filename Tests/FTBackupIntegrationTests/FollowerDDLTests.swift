import Foundation
import Testing
@testable import FTBackupKit

extension ChangeArchivalTests.PointInTimeTests {
    /// A follower's stream describes `ftbackup.ddl_log` once: DDL committed in a later segment of the
    /// same stream must still be recorded in that segment's manifest (the barrier restore --at keeps).
    @Test func followerRecordsDDLInEverySegmentOfItsStream() async throws {
        try await ArchivedDatabase.with(prepare: "CREATE TABLE public.ddl_victim (id int PRIMARY KEY, n int)") { a in
            let policyFile = try sealingEverySecondPolicyFile()
            defer { try? FileManager.default.removeItem(atPath: policyFile) }
            _ = try await a.full()
            let (follower, _, _) = try FTBackupBinary.start(["follow", "--db", "\(try TestServer.dsn) dbname=\(a.db.name)", "--repo", a.repo.path,
                                                             "--policy", policyFile])
            defer { if follower.isRunning { kill(follower.processIdentifier, SIGKILL) } }
            try await a.session.execute("ALTER TABLE public.ddl_victim ADD COLUMN first int")
            // Sealed before the second DDL commits, so that one is in a later segment of the same stream.
            try await a.waitUntilSealed(after: try await a.clock(), by: follower, "the first ALTER TABLE")
            try await a.session.execute("ALTER TABLE public.ddl_victim ADD COLUMN second int")
            try await a.waitUntilSealed(after: try await a.clock(), by: follower, "the second ALTER TABLE")
            kill(follower.processIdentifier, SIGTERM)
            await FTBackupBinary.waitForExit(follower)
            let segments = try ChangeSegmentManifest.all(a.repo.repository.storage)
            let recorded = segments.flatMap { $0.ddl ?? [] }.map(\.commandTag)
            #expect(recorded.filter { $0 == "ALTER TABLE" }.count == 2, "\(segments.map { ($0.label, $0.ddl?.map(\.description) ?? []) })")
        }
    }
}
