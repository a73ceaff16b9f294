import Foundation
import Testing
@testable import FTBackupKit

/// Retries of S3 requests against a fake transport that fails on cue.
@Suite struct S3RetryTests {
    /// Answers from a script, then 200; counts the requests.
    final class ScriptedTransport: S3Transport, @unchecked Sendable {
        var script: [Result<Int, S3TransportError>]
        var requests: [S3HTTPRequest] = []
        let lock = NSLock()

        init(_ script: [Result<Int, S3TransportError>]) { self.script = script }

        func send(_ request: S3HTTPRequest) throws -> S3HTTPResponse {
            let next: Result<Int, S3TransportError> = lock.withLock {
                requests.append(request)
                return script.isEmpty ? .success(200) : script.removeFirst()
            }
            let status = try next.get()
            let body = status == 503 ? Array("<Error><Code>SlowDown</Code></Error>".utf8) : []
            return S3HTTPResponse(status: status, headers: ["etag": "\"e\""], body: body)
        }
    }

    func client(_ transport: ScriptedTransport, attempts: Int = 5) -> S3Client {
        S3Client(credentials: S3Credentials(accessKey: "AKID", secretKey: "very-secret-key", region: "us-east-1",
                                            endpoint: URL(string: "http://127.0.0.1:9")!, pathStyle: true, caBundle: nil, partSize: 1 << 20),
                 bucket: "bkt", transport: transport, retry: S3Retry(attempts: attempts, baseDelay: 0.001, maxDelay: 0.01, maxTotal: 5))
    }

    @Test func fiveHundredsThrottlingAndResetsAreRetriedUntilTheyPass() throws {
        let transport = ScriptedTransport([.success(503), .success(500), .success(429), .failure(S3TransportError(message: "Connection reset by peer"))])
        let response = try client(transport).expect([200], "PUT", key: "backups/x/data/1.copy.zst", body: [1, 2, 3])
        #expect(response.status == 200)
        #expect(transport.requests.count == 5)
        // Each attempt is signed afresh, and the secret is never sent.
        #expect(transport.requests.allSatisfy { request in request.headers.contains { $0.0 == "Authorization" } })
        #expect(!transport.requests.contains { request in request.headers.contains { $0.1.contains("very-secret-key") } })
    }

    @Test func anAnswerSaysWhetherAnEarlierAttemptMayHaveTakenEffect() throws {
        let first = try client(ScriptedTransport([])).send("PUT", key: "locks/write.lock", body: [1])
        #expect(first.attempt == 1 && !first.isRetry)
        let retried = try client(ScriptedTransport([.failure(S3TransportError(message: "Connection reset by peer"))])).send("PUT", key: "locks/write.lock", body: [1])
        #expect(retried.attempt == 2 && retried.isRetry)
        var resent = first
        resent.mayHaveBeenResent = true
        #expect(resent.isRetry)
    }

    @Test func aRequestThatKeepsFailingEndsInOneLineNamingBucketKeyAndStatus() throws {
        let transport = ScriptedTransport(Array(repeating: .success(503), count: 10))
        let error = #expect(throws: FTBackupError.self) { try client(transport, attempts: 4).expect([200], "GET", key: "backups/x/manifest.json") }
        #expect(transport.requests.count == 4)
        #expect(error?.status == .unavailable)
        let text = error?.description ?? ""
        #expect(text.contains("s3://bkt/backups/x/manifest.json") && text.contains("HTTP 503") && text.contains("SlowDown"))
        #expect(!text.contains("\n") && !text.contains("very-secret-key"))
    }

    @Test func aRefusalIsNotRetried() throws {
        let transport = ScriptedTransport([.success(403)])
        let error = #expect(throws: FTBackupError.self) { try client(transport).expect([200], "GET", key: "k") }
        #expect(transport.requests.count == 1)
        #expect(error?.status == .permission)
    }

    @Test func anUnreachableEndpointIsRetriedThenReportedAsUnavailable() throws {
        let transport = ScriptedTransport(Array(repeating: .failure(S3TransportError(message: "Couldn't connect to server")), count: 10))
        let error = #expect(throws: FTBackupError.self) { try client(transport, attempts: 3).expect([200], "GET", key: "k") }
        #expect(transport.requests.count == 3)
        #expect(error?.status == .unavailable)
    }

    @Test func backoffIsBoundedAndJittered() {
        let retry = S3Retry(attempts: 8, baseDelay: 0.1, maxDelay: 5, maxTotal: 60)
        for attempt in 1...20 { #expect((0...5).contains(retry.delay(beforeRetry: attempt))) }
    }
}
