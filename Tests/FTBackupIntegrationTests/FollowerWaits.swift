import Foundation
import Testing
@testable import FTBackupKit

extension ArchivedDatabase {
    /// The database's clock now: after every commit `session` made so far.
    func clock() async throws -> Date {
        try await session.query("SELECT extract(epoch FROM clock_timestamp()) AS t").first!.epochDate("t")!
    }

    /// Waits until `follower` has sealed a segment whose newest commit (a change, or the heartbeat it writes
    /// every `seal_every`) is after `time`, so everything committed before `time` is archived, and what is
    /// committed next goes into a later segment. Tests used to sleep a few seal intervals instead, which a
    /// loaded machine outlasts: up to ten minutes here; an issue is recorded if it never happens.
    func waitUntilSealed(after time: Date, by follower: Process, _ what: String) async throws {
        let deadline = Date().addingTimeInterval(600)
        while Date() < deadline && follower.isRunning {
            if try ChangeSegmentManifest.all(repo.repository.storage).compactMap(\.lastCommitTime).contains(where: { $0 > time }) { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        let state = follower.isRunning ? "within ten minutes" : "it exited"
        Issue.record("the follower did not seal a segment after \(what) (\(state))")
    }
}

/// Writes the built-in policy with `seal_every: 1s` (so a follower seals within a second of a change) to a temporary
/// file and returns its path; the caller removes it.
func sealingEverySecondPolicyFile() throws -> String {
    let path = NSTemporaryDirectory() + "ftbackup-follow-\(UUID()).yaml"
    try PolicyLoader.builtInDefault.replacingOccurrences(of: "seal_every: 60s", with: "seal_every: 1s")
        .write(toFile: path, atomically: true, encoding: .utf8)
    return path
}
