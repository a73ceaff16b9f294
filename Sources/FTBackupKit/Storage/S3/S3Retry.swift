import Foundation

/// When and how long to retry an S3 request.
///
/// Object stores answer 500/503 (`SlowDown`), 429, reset connections and time out now and then by
/// design; each request is retried with exponential backoff and full jitter, bounded in attempts and
/// in total time, before the command fails with one line naming bucket, key and status.
public struct S3Retry: Sendable {
    public var attempts: Int
    public var baseDelay: Double
    public var maxDelay: Double
    public var maxTotal: Double

    public init(attempts: Int = 8, baseDelay: Double = 0.1, maxDelay: Double = 5, maxTotal: Double = 120) {
        self.attempts = attempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxTotal = maxTotal
    }

    /// `FTBACKUP_S3_RETRIES` overrides the attempt count (1 = no retry).
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> S3Retry {
        var retry = S3Retry()
        if let text = environment["FTBACKUP_S3_RETRIES"], let count = Int(text), count >= 1 { retry.attempts = count }
        return retry
    }

    /// True for answers worth another try: throttling and server errors.
    public static func isRetryable(status: Int, body: [UInt8]) -> Bool {
        if status == 429 || status >= 500 { return true }
        // Some stores throttle with 400/403 and a SlowDown or RequestTimeout code.
        if status == 400 {
            let code = S3XML.first("Code", in: body)
            return code == "RequestTimeout" || code == "SlowDown"
        }
        return false
    }

    /// The wait before attempt `attempt` (1-based retries): full jitter over an exponential cap.
    public func delay(beforeRetry attempt: Int) -> Double {
        let cap = min(maxDelay, baseDelay * pow(2, Double(attempt - 1)))
        return Double.random(in: 0...cap)
    }

    /// Runs `body` until it gives an answer that is not retryable, or the attempts or time run out.
    /// Returns the last answer (the caller reports a failing one), marked with its attempt number (a retried
    /// request's answer may meet an earlier attempt's effect); rethrows the last transport error.
    public func run(_ body: () throws -> S3HTTPResponse) throws -> S3HTTPResponse {
        let start = Date()
        var attempt = 1
        while true {
            let outcome: Result<S3HTTPResponse, S3TransportError>
            do {
                var response = try body()
                response.attempt = attempt
                outcome = .success(response)
            } catch let error as S3TransportError { outcome = .failure(error) }
            let again: Bool
            switch outcome {
            case .success(let response): again = Self.isRetryable(status: response.status, body: response.body)
            case .failure: again = true
            }
            let wait = delay(beforeRetry: attempt)
            if !again || attempt >= attempts || Date().timeIntervalSince(start) + wait > maxTotal { return try outcome.get() }
            Thread.sleep(forTimeInterval: wait)
            attempt += 1
        }
    }
}
