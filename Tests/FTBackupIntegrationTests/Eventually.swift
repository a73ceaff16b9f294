import Foundation

/// Waits for a condition the way the whole suite should: a loaded CI machine takes minutes for what takes a second
/// alone (a follower starting and sealing, a killed session ending), so the bound is ten minutes, and a passing run
/// still ends its wait as soon as the condition holds. Fixed short bounds (10–120 s) were the suite's flaky failures.
enum Eventually {
    static let bound: Double = 600

    /// Polls `condition` every `interval` until it holds (true), `stillWorth` is false, or the bound passes (false).
    static func holds(every interval: Duration = .milliseconds(200), while stillWorth: () -> Bool = { true },
                      _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(bound)
        while Date() < deadline && stillWorth() {
            if try await condition() { return true }
            try await Task.sleep(for: interval)
        }
        return try await condition()
    }
}
