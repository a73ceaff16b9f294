import Foundation

/// The threads that run libcurl for callers that are async tasks.
///
/// curl calls block, and Swift's cooperative pool has only as many threads as cores, so (like libpq's
/// ``ConnectionThread``) curl never runs there. ``CurlTransport`` sends from the calling thread only
/// when that thread is a dedicated one (a table's copy thread, the lock-renewing thread: no current
/// task); a request made from inside a task is handed to one of these threads instead. Debug builds
/// check at every `curl_easy_perform` that it is not running on a cooperative-pool thread.
final class S3TransportThreads: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []

    /// Shared by every transport of the process: a few threads, started on first use.
    static let shared = S3TransportThreads(count: 4)

    private static let marker = "ftbackup.s3-transport-thread"

    private init(count: Int) {
        for index in 0..<count {
            let thread = Thread { [unowned self] in
                Thread.current.threadDictionary[Self.marker] = true
                self.loop()
            }
            thread.name = "ftbackup-s3-\(index)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// True on one of these threads.
    static var isTransportThread: Bool { Thread.current.threadDictionary[marker] as? Bool == true }

    /// True when the caller runs inside a Swift task (on the cooperative pool in this program).
    static var isInsideTask: Bool { withUnsafeCurrentTask { $0 != nil } }

    /// Runs `body` on a transport thread and waits for it (the calling thread does no curl work).
    func run<T>(_ body: @escaping () throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        var outcome: Result<T, Error>!
        condition.lock()
        jobs.append {
            outcome = Result { try body() }
            done.signal()
        }
        condition.signal()
        condition.unlock()
        done.wait()
        return try outcome.get()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }
}
