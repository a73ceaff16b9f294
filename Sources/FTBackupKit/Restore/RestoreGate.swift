import Foundation

/// A one-time signal from the restore's index work to post-data (`PostDataSteps`): the moment all that
/// is left of it is in flight, post-data may start beside it.
///
/// Starting post-data earlier made it slower: a foreign key queued for a table lock makes every later
/// index build on that table queue behind it, so the builds ran one at a time. Opened only when no
/// build is left to hand out, post-data meets at most `jobs` builds, on the last (smallest) tables.
final class RestoreGate: @unchecked Sendable {
    private let lock = NSLock()
    private var isOpen = false
    private var isCancelled = false
    private var waiters: [CheckedContinuation<Void, any Error>] = []

    func open() {
        let waiting = lock.withLock {
            isOpen = true
            defer { waiters = [] }
            return waiters
        }
        for waiter in waiting { waiter.resume() }
    }

    /// Returns once the gate is open; throws `CancellationError` when the waiting task is cancelled first.
    func wait() async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome: Bool? = lock.withLock {
                    if isOpen { return true }
                    if isCancelled { return false }
                    waiters.append(continuation)
                    return nil
                }
                switch outcome {
                case true?: continuation.resume()
                case false?: continuation.resume(throwing: CancellationError())
                case nil: break
                }
            }
        } onCancel: {
            let waiting = lock.withLock {
                isCancelled = true
                defer { waiters = [] }
                return waiters
            }
            for waiter in waiting { waiter.resume(throwing: CancellationError()) }
        }
    }
}
