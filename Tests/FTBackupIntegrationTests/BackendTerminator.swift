import Foundation
@testable import FTBackupKit

/// Terminates the server process running a matching statement as soon as the server shows one, polling
/// from a thread of its own with a connection of its own, until it has, the work it watches has ended
/// (``stop()``), or a generous deadline has passed.
///
/// Not a fixed number of polls: how long the work takes to reach the statement depends on the machine's
/// load (a loaded CI machine took longer than the 400 polls of 5 ms the first version allowed). Not a Task:
/// the full suite runs many tests at once on a 2-thread cooperative pool, and tests that run the CLI wait
/// for it synchronously; a polling Task could then sleep through the whole statement. The deadline is only
/// for work that never ends (``stop()`` ends the polling with the work): under a load of 25 on 2 cores a backup
/// took more than the 120 s it once was to reach its COPY, and the test saw it complete instead.
final class BackendTerminator: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    private var outcome: Result<Bool, Error>?
    private var waiting: [CheckedContinuation<Bool, Error>] = []

    /// Starts polling `database` for a backend (not its own) whose current query is `LIKE pattern`.
    init(_ database: ConnectionString, queryLike pattern: String, deadlineSeconds: Double = 900) {
        let thread = Thread { [self] in
            finish(Result {
                let connection = try PGConnection.connect(database)
                let deadline = Date().addingTimeInterval(deadlineSeconds)
                while Date() < deadline && !lock.withLock({ stopped }) {
                    let terminated = try connection.query("""
                        SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity
                        WHERE datname = current_database() AND query LIKE $1 AND pid <> pg_backend_pid()
                        """, [pattern]).first?.requiredInt("n") ?? 0
                    if terminated > 0 { return true }
                    Thread.sleep(forTimeInterval: 0.005)
                }
                return false
            })
        }
        thread.start()
    }

    /// Stops polling: the watched work ended (if it ended before a backend was terminated, ``terminated()`` is false).
    func stop() { lock.withLock { stopped = true } }

    private func finish(_ result: Result<Bool, Error>) {
        let continuations = lock.withLock { () -> [CheckedContinuation<Bool, Error>] in
            outcome = result
            defer { waiting = [] }
            return waiting
        }
        for continuation in continuations { continuation.resume(with: result) }
    }

    /// Waits for the polling to end; true when it terminated a backend.
    func terminated() async throws -> Bool {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Bool, Error>) in
            let ready = lock.withLock { () -> Result<Bool, Error>? in
                if let outcome { return outcome }
                waiting.append(continuation)
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}
