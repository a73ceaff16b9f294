import Foundation

/// Sessions connected ahead of the step that uses them, so the step does not wait for its handshakes.
///
/// Each connection is a TCP, TLS and SCRAM handshake and a new server process: 10–15 ms on loopback, paid
/// several times on a one-tool restore's critical path (its load workers, its replay). `start()` connects
/// them in the background, each on a thread of its own, and runs their setup; `take()` hands the next one
/// out. A session the server ended while it waited is replaced by one connected then. One that could not
/// connect or be set up fails `take()` with that error, as connecting on time would: it is not tried again,
/// which would double a timeout's wait and the failed logins an authentication lockout counts (adv30 D2,
/// D3). A session ahead holds its slot while others connect: callers start them only where the server has
/// room (`ConnectionHeadroom`).
///
/// Every one started must be `finish()`ed before its command ends (`SessionsAheadScope`): a connection still
/// under way when the process exits is inside libpq and OpenSSL as their exit handlers free them, and the
/// process crashed (adv31 D1: a refused `restore --at` plan, 4 runs in 40).
final class SessionsAhead: @unchecked Sendable {
    private let lock = NSLock()
    private let target: ConnectionString
    private let name: String
    private let setup: String
    private let count: Int
    /// The connections started, each dropped once taken or finished: a task keeps its session (and so its connection,
    /// which closes when the session is released) for as long as it is held.
    private var opening: [Task<DatabaseSession, any Error>?] = []
    private var taken = 0
    private var finished = false
    /// Whether the first connection started succeeded (a flag only: it keeps no session).
    private var firstConnected: Task<Bool, Never>?

    /// `count` sessions to `target` (their threads named `name-0`, `name-1`, …; `name` alone for one), each running
    /// `setup` once connected.
    init(_ count: Int, target: ConnectionString, name: String, setup: String) {
        self.count = count
        self.target = target
        self.name = name
        self.setup = setup
    }

    /// Starts connecting; later calls, and calls once finished, do nothing. `after`: only once that one's first session
    /// connected ahead (a second login attempt with the same wrong password, or a second wait on the same unreachable
    /// server, is not made).
    func start(after first: SessionsAhead? = nil) {
        lock.withLock {
            guard opening.isEmpty, !finished else { return }
            let (target, setup) = (self.target, self.setup)
            opening = (0..<count).map { index in
                let name = threadName(index)
                return Task {
                    if let first, await !first.firstConnects() {
                        throw FTBackupError(.unavailable, "not connected: the session it waited for could not connect")
                    }
                    return try await Self.connect(target, name: name, setup: setup)
                }
            }
            if let first = opening.first ?? nil { firstConnected = Task { (try? await first.value) != nil } }
        }
    }

    /// Whether the first session started ahead connected (waiting for it); true when none was started.
    private func firstConnects() async -> Bool {
        guard let connected = lock.withLock({ firstConnected }) else { return true }
        return await connected.value
    }

    /// The next session, its setup run: the one connected ahead when it answers, one connected now when it was ended
    /// meanwhile or none was started; the error of connecting ahead when that failed.
    func take() async throws -> DatabaseSession {
        let (ahead, index) = lock.withLock { () -> (Task<DatabaseSession, any Error>?, Int) in
            defer { taken += 1 }
            guard taken < opening.count, !finished else { return (nil, taken) }
            defer { opening[taken] = nil }
            return (opening[taken], taken)
        }
        if let ahead {
            let session = try await ahead.value
            // One round trip proves the session is still there (the server may have ended it while it waited).
            if (try? await session.execute("SELECT 1")) != nil { return session }
            session.close()
        }
        return try await Self.connect(target, name: threadName(index), setup: setup)
    }

    /// Waits for the connections still under way and closes the sessions never taken; `take()` connects on time after.
    func finish() async {
        let left = lock.withLock { () -> [Task<DatabaseSession, any Error>] in
            finished = true
            defer { opening = opening.map { _ in nil } }
            return opening.compactMap { $0 }
        }
        for task in left { (try? await task.value)?.close() }
    }

    private func threadName(_ index: Int) -> String { count == 1 ? name : "\(name)-\(index)" }

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

/// The sessions ahead one command starts, finished however it ends (`SessionsAhead`).
final class SessionsAheadScope: @unchecked Sendable {
    private let lock = NSLock()
    private var all: [SessionsAhead] = []

    /// `sessions`, to be finished with the scope.
    func adopt(_ sessions: SessionsAhead) -> SessionsAhead {
        lock.withLock { all.append(sessions) }
        return sessions
    }

    /// Runs `body`, then finishes every session adopted meanwhile, whether it returned or threw.
    func closing<T>(_ body: () async throws -> T) async throws -> T {
        do {
            let value = try await body()
            await finish()
            return value
        } catch {
            await finish()
            throw error
        }
    }

    func finish() async {
        for sessions in lock.withLock({ all }) { await sessions.finish() }
    }
}
