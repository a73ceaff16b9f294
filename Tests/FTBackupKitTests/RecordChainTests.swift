import Foundation
import Testing
@testable import FTBackupKit

/// The hash chain over lifecycle run logs and drill records: links, and every kind of break the walk names.
@Suite struct RecordChainTests {
    struct Note: Codable { var run: String; var rows: Int }

    func withStorage(_ body: (LocalStorage) throws -> Void) throws {
        let folder = NSTemporaryDirectory() + "ftbackup-chain-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try body(LocalStorage(root: folder))
    }

    func write(_ storage: LocalStorage, _ run: String) throws {
        try RecordChain.write(Note(run: run, rows: 1), kind: "prune-audit", folder: "lifecycle/prune-audit", name: "\(run).json", storage: storage)
    }

    @Test func eachRecordCarriesItsKindAndThePreviousFilesSHA256AndKeepsItsOwnFields() throws {
        try withStorage { storage in
            try write(storage, "20260101T000000Z")
            try write(storage, "20260201T000000Z")
            let first = try storage.readAll("lifecycle/prune-audit/20260101T000000Z.json")
            let second = try storage.readAll("lifecycle/prune-audit/20260201T000000Z.json")
            #expect(RecordChain.link(of: first) == .init(recordKind: "prune-audit", previousRecord: nil, previousRecordSHA256: nil))
            #expect(RecordChain.link(of: second) == .init(recordKind: "prune-audit", previousRecord: "20260101T000000Z.json",
                                                          previousRecordSHA256: RecordChain.sha256(first)))
            #expect(try JSONDecoder().decode(Note.self, from: Data(second)).run == "20260201T000000Z")
            let mode = try FileManager.default.attributesOfItem(atPath: storage.root + "/lifecycle/prune-audit/20260201T000000Z.json")[.posixPermissions] as? Int
            #expect(mode == 0o600)
            #expect(try RecordChainWalk.walk(storage, kind: "prune-audit", folder: "lifecycle/prune-audit").intact)
        }
    }

    @Test func rewritingARecordLinksToTheSamePredecessor() throws {
        try withStorage { storage in
            try write(storage, "20260101T000000Z")
            try write(storage, "20260201T000000Z")
            try write(storage, "20260201T000000Z")
            let walk = try RecordChainWalk.walk(storage, kind: "prune-audit", folder: "lifecycle/prune-audit")
            #expect(walk.problems == [])
            #expect(walk.chained == 2)
        }
    }

    @Test func walkNamesRecordsBeforeChainingAndAnEditedADeletedAndAnInsertedRecord() throws {
        try withStorage { storage in
            let folder = "lifecycle/prune-audit"
            try storage.writeAll("\(folder)/20250101T000000Z.json", Array(#"{"run":"old","rows":1}"#.utf8))
            for run in ["20260101T000000Z", "20260201T000000Z", "20260301T000000Z", "20260401T000000Z", "20260501T000000Z"] {
                try write(storage, run)
            }
            var walk = try RecordChainWalk.walk(storage, kind: "prune-audit", folder: folder)
            #expect(walk.beforeChaining == ["20250101T000000Z.json"])
            #expect(walk.problems == [])
            // Edited: one byte of the February record.
            var bytes = try storage.readAll("\(folder)/20260201T000000Z.json")
            let index = bytes.lastIndex(of: UInt8(ascii: "1"))!
            bytes[index] = UInt8(ascii: "7")
            try storage.writeAll("\(folder)/20260201T000000Z.json", bytes)
            // Deleted: April. Inserted: a record with no link after chaining began.
            try storage.remove("\(folder)/20260401T000000Z.json")
            try storage.writeAll("\(folder)/20260315T000000Z.json", Array(#"{"run":"x","rows":9}"#.utf8))
            walk = try RecordChainWalk.walk(storage, kind: "prune-audit", folder: folder)
            #expect(walk.problems.count == 3, "\(walk.problems)")
            #expect(walk.problems[0].hasPrefix("lifecycle/prune-audit/20260201T000000Z.json was changed after 20260301T000000Z.json was written"))
            #expect(walk.problems[1].hasPrefix("lifecycle/prune-audit/20260315T000000Z.json has no chain link"))
            #expect(walk.problems[2].hasPrefix("lifecycle/prune-audit/20260401T000000Z.json is missing: 20260501T000000Z.json names it"))
        }
    }

    /// A drill that started first but finished last is written after a later-named one: it links to
    /// the chain's head (write order), and the next record links to it; nothing forks.
    @Test func recordsWrittenOutOfNameOrderLinkInWriteOrderAndWalkIntact() throws {
        try withStorage { storage in
            try write(storage, "20260101T000000Z")
            try write(storage, "20260301T000000Z")
            try write(storage, "20260201T000000Z")
            try write(storage, "20260401T000000Z")
            let link = { (run: String) in RecordChain.link(of: try storage.readAll("lifecycle/prune-audit/\(run).json"))?.previousRecord }
            #expect(try link("20260201T000000Z") == "20260301T000000Z.json")
            #expect(try link("20260401T000000Z") == "20260201T000000Z.json")
            let walk = try RecordChainWalk.walk(storage, kind: "prune-audit", folder: "lifecycle/prune-audit")
            #expect(walk.problems == [])
        }
    }

    /// Eight writers of one kind at once (as drills and restores, which share the read lock, can be):
    /// the chain lock serializes them, so every record has one successor and the walk is intact.
    @Test func concurrentWritersOfOneKindNeverForkTheChain() throws {
        try withStorage { storage in
            DispatchQueue.concurrentPerform(iterations: 8) { index in
                try! write(storage, "2026010\(index)T000000Z")
            }
            let walk = try RecordChainWalk.walk(storage, kind: "prune-audit", folder: "lifecycle/prune-audit")
            #expect(walk.chained == 8)
            #expect(walk.problems == [])
        }
    }

    /// A record forged with a valid link to a record that already has a successor forks the chain.
    @Test func aSecondRecordLinkedToTheSamePredecessorIsAFork() throws {
        try withStorage { storage in
            try write(storage, "20260101T000000Z")
            try write(storage, "20260301T000000Z")
            let first = try storage.readAll("lifecycle/prune-audit/20260101T000000Z.json")
            let forged = #"{"run":"forged","rows":0,"recordKind":"prune-audit","previousRecord":"20260101T000000Z.json","previousRecordSHA256":"\#(RecordChain.sha256(first))"}"#
            try storage.writeAll("lifecycle/prune-audit/20260201T000000Z.json", Array(forged.utf8))
            let walk = try RecordChainWalk.walk(storage, kind: "prune-audit", folder: "lifecycle/prune-audit")
            #expect(walk.problems == ["lifecycle/prune-audit/20260101T000000Z.json is linked to by 20260201T000000Z.json and 20260301T000000Z.json: the chain forked, one was added later"])
        }
    }
}
