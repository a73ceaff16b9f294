import Foundation
import Testing
@testable import FTBackupKit

/// Manifests decoded once per process are never answered from memory once their file has changed or is gone.
@Suite struct DecodedManifestCacheTests {
    static func segment(_ label: String, transactions: Int) -> ChangeSegmentManifest {
        let time = Date(timeIntervalSince1970: 1_795_946_400)
        return ChangeSegmentManifest(
            formatVersion: 1, label: label, slot: "ftbackup_test", source: nil,
            startLSN: "0/1000", endLSN: "0/2000", transactions: transactions, firstCommitLSN: "0/1010", lastCommitLSN: "0/1FF0",
            firstCommitTime: time, lastCommitTime: time.addingTimeInterval(60), relations: [], schemaChanges: nil, ddl: nil, createdAt: time,
            file: .init(path: "\(label).seg.zst", codec: .zstd, storedBytes: 100, sha256: String(repeating: "0", count: 64), rawBytes: 100))
    }

    @Test func aRewrittenOrDamagedOrRemovedSegmentManifestIsReadAgain() async throws {
        try await TestRepository.with { repo in
            let storage = repo.repository.storage
            let label = "0000000000001000-20261129T000000Z-a1b2"
            let path = ChangeSegmentManifest.manifestPath(label)
            try storage.writeAll(path, try Self.segment(label, transactions: 1).encoded())
            #expect(try ChangeSegmentManifest.all(storage).map(\.transactions) == [1])
            #expect(try ChangeSegmentManifest.all(storage).map(\.transactions) == [1])  // from memory: the same bytes
            // Rewritten with the same size: the new content is read.
            try storage.writeAll(path, try Self.segment(label, transactions: 7).encoded())
            #expect(try ChangeSegmentManifest.all(storage).map(\.transactions) == [7])
            #expect(try ChangeSegmentManifest.discover(storage).compactMap { if case .readable(let s) = $0 { s.transactions } else { nil } } == [7])
            // Damaged after it was decoded: refused, not answered from memory.
            var bytes = try storage.readAll(path)
            bytes[bytes.count / 2] = UInt8(ascii: "#")
            try storage.writeAll(path, bytes)
            #expect(throws: FTBackupError.self) { _ = try ChangeSegmentManifest.all(storage) }
            // Removed: gone from the listing and from memory.
            try storage.remove(path)
            #expect(try ChangeSegmentManifest.all(storage).isEmpty)
        }
    }

    @Test func concurrentMapKeepsOrderAndThrowsTheFirstFailingElementsError() throws {
        let numbers = Array(0..<10_000)
        #expect(try numbers.concurrentMap { $0 * 2 } == numbers.map { $0 * 2 })
        struct Failure: Error, Equatable { let at: Int }
        #expect(throws: Failure(at: 17)) { _ = try numbers.concurrentMap { if $0 % 1000 == 17 || $0 == 9_999 { throw Failure(at: $0) }; return $0 } }
        #expect(try [Int]().concurrentMap { $0 } == [])
    }
}
