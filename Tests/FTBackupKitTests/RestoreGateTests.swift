import Foundation
import Testing
@testable import FTBackupKit

@Suite struct RestoreGateTests {
    /// A wait that begins after the gate opened returns at once; one that began before returns when it opens.
    @Test func aWaitReturnsOnceTheGateIsOpenWhetherItBeganBeforeOrAfter() async throws {
        let early = RestoreGate()
        let waiter = Task { try await early.wait(); return Date() }
        try await Task.sleep(nanoseconds: 50_000_000)
        let opened = Date()
        early.open()
        #expect(try await waiter.value >= opened)
        let late = RestoreGate()
        late.open()
        try await late.wait()
    }

    /// A waiting post-data step is woken with CancellationError when the restore's other side fails (its task is cancelled),
    /// so a failed restore never hangs on a gate that will not open.
    @Test func cancellingAWaitThrowsCancellationInsteadOfHanging() async throws {
        let gate = RestoreGate()
        let waiter = Task { try await gate.wait() }
        try await Task.sleep(nanoseconds: 50_000_000)
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        let already = Task { () async throws -> Void in
            withUnsafeCurrentTask { $0?.cancel() }
            try await gate.wait()
        }
        await #expect(throws: CancellationError.self) { try await already.value }
    }
}
