import Foundation
import Testing
@testable import FTBackupKit

/// curl never runs on Swift's cooperative pool: a request from inside a task goes to a transport thread.
@Suite struct S3TransportThreadTests {
    /// A closed loopback port: curl runs and fails at once, which is all this test needs.
    let request = S3HTTPRequest(method: "GET", url: "http://127.0.0.1:1/bucket/key", headers: [], body: [])

    @Test func requestFromAsyncTaskRunsCurlOnTransportThreadNotPool() async throws {
        #expect(S3TransportThreads.isInsideTask)
        let before = CurlTransport.performedOnTransportThreads.count
        let transport = CurlTransport(caBundle: nil)
        // perform() asserts (debug) that it is not inside a task; reaching the error means it ran off the pool.
        #expect(throws: S3TransportError.self) { try transport.send(request) }
        #expect(CurlTransport.performedOnTransportThreads.count == before + 1)
    }

    @Test func requestFromDedicatedThreadRunsCurlOnThatThread() async throws {
        let transport = CurlTransport(caBundle: nil)
        let request = self.request
        let outcome: (insideTask: Bool, failed: Bool) = await withCheckedContinuation { continuation in
            let thread = Thread {
                let failed = (try? transport.send(request)) == nil
                continuation.resume(returning: (S3TransportThreads.isInsideTask, failed))
            }
            thread.start()
        }
        #expect(!outcome.insideTask)
        #expect(outcome.failed)
    }
}
