import Foundation
import Logging

/// How long each phase of a restore took, and which phase a failure happened in, shared by the runner
/// and `PostDataSteps`: a failed restore names the phase that failed.
final class RestorePhaseClock: @unchecked Sendable {
    private let lock = NSLock()
    private var seconds: [String: Double] = [:]
    private var started = "plan"
    private var failed: String?
    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

    /// The phase a failure is reported in: the first that failed, else the last one started.
    var phase: String { lock.withLock { failed ?? started } }
    var phases: [String: Double] { lock.withLock { seconds } }

    /// Marks the start of an untimed step, so a failure in it is named by it.
    func enter(_ name: String) { lock.withLock { started = name } }

    func timed<T>(_ name: String, _ body: () async throws -> T) async throws -> T {
        enter(name)
        let start = Date()
        let value: T
        do {
            value = try await body()
        } catch {
            lock.withLock { if failed == nil { failed = name } }
            throw error
        }
        let elapsed = Date().timeIntervalSince(start)
        lock.withLock { seconds[name] = elapsed }
        logger.info("restore phase done", metadata: ["phase": .string(name), "seconds": .string(String(format: "%.2f", elapsed))])
        return value
    }
}
