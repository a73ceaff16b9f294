import Foundation

/// Sessions connected ahead of the step that uses them, so the step does not wait for its handshakes.
///
/// Each connection is a TCP, TLS and SCRAM handshake and a new server process: 10–15 ms on loopback, paid
/// several times on a one-tool restore's critical path (its load workers, its replay). `start()` connects
/// them in the background, each on a thread of its own, and runs their setup; `take()` hands the next one
/// out. A session the server ended while it waited (`idle_session_timeout`, a restart) is replaced by one
/// connected then. One that could not connect or be set up fails `take()` with that error, as connecting
/// on time would: it is not tried again, which would double a timeout's wait and the failed logins an
/// authentication lockout counts (adv30 D2, D3). Sessions never taken are closed by `close()` (or when this
/// is released). A session ahead holds its slot while others connect: callers start them only where the
/// server has room (`ConnectionHeadroom`).
final class SessionsAhead: @unchecked Sendable {
    private let lock = NSLock()
    private let target: ConnectionString
    private let name: String
    private let setup: String
    private let count: Int
    private var opening: [Task<DatabaseSession, any Error>] = []
    private var taken = 0
    private var closed = false

    /// `count` sessions to `target` (their threads named `name-0`, `name-1`, …; `name` alone for one), each running
    /// `setup` once connected.
    init(_ count: Int, target: ConnectionString, name: String, setup: String) {
        self.count = count
        self.target = target
        self.name = name
        self.setup = setup
    }

    /// Starts connecting; later calls do nothing.
    func start() {
        lock.withLock {
            guard opening.isEmpty, !closed else { return }
            let (target, setup) = (self.target, self.setup)
            opening = (0..<count).map { index in
                let name = threadName(index)
                return Task { try await Self.connect(target, name: name, setup: setup) }
            }
        }
    }

    /// The next session, its setup run: the one connected ahead when it answers, one connected now when it was ended
    /// meanwhile or none was started; the error of connecting ahead when that failed.
    func take() async throws -> DatabaseSession {
        let (ahead, index) = lock.withLock { () -> (Task<DatabaseSession, any Error>?, Int) in
            defer { taken += 1 }
            return (taken < opening.count && !closed ? opening[taken] : nil, taken)
        }
        if let ahead {
            let session = try await ahead.value
            // One round trip proves the session is still there (the server may have ended it while it waited).
            if (try? await session.execute("SELECT 1")) != nil { return session }
            session.close()
        }
        return try await Self.connect(target, name: threadName(index), setup: setup)
    }

    private func threadName(_ index: Int) -> String { count == 1 ? name : "\(name)-\(index)" }

    /// Closes the sessions not taken (those still connecting, once connected).
    func close() {
        let left = lock.withLock { () -> [Task<DatabaseSession, any Error>] in
            closed = true
            defer { opening = [] }
            return taken < opening.count ? Array(opening[taken...]) : []
        }
        for task in left {
            Task { (try? await task.value)?.close() }
        }
    }

    deinit { close() }

    private static func connect(_ target: ConnectionString, name: String, setup: String) async throws -> DatabaseSession {
        let session = try await DatabaseSession.connect(target, name: name)
        do {
            if !setup.isEmpty { try await session.execute(setup) }
        } catch {
            session.close()
            throw error
        }
        return session
    }
}
