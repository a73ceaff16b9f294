import Crypto
import Foundation
import Testing
@testable import FTBackupKit

/// The streaming format (Tink AES-GCM-HKDF) and the encrypting storage, without a server.
@Suite struct StreamingAEADTests {
    static func bytes(_ count: Int, seed: UInt8 = 7) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) } }

    static func encrypt(_ plaintext: [UInt8], key: SymmetricKey, ad: String, chunk: Int = 100_000) throws -> [UInt8] {
        var encryptor = StreamingAEAD.Encryptor(dataKey: key, associatedData: Array(ad.utf8))
        var out = encryptor.header
        var offset = 0
        repeat {
            let end = min(plaintext.count, offset + chunk)
            try plaintext[offset..<end].withUnsafeBytes { try encryptor.process($0) { out += $0 } }
            offset = end
        } while offset < plaintext.count
        try encryptor.finish { out += $0 }
        return out
    }

    static func decrypt(_ ciphertext: [UInt8], key: SymmetricKey, ad: String, chunk: Int = 77_777) throws -> [UInt8] {
        var decryptor = StreamingAEAD.Decryptor(dataKey: key, associatedData: Array(ad.utf8))
        var out: [UInt8] = []
        var offset = 0
        while offset < ciphertext.count {
            let end = min(ciphertext.count, offset + chunk)
            try ciphertext[offset..<end].withUnsafeBytes { try decryptor.process($0) { out += $0 } }
            offset = end
        }
        try decryptor.finish { out += $0 }
        return out
    }

    @Test func roundTripsAtEverySegmentBoundaryAndSizeFormulaHolds() throws {
        let key = SymmetricKey(size: .bits256)
        let first = StreamingAEAD.ciphertextSegmentSize - StreamingAEAD.headerSize - StreamingAEAD.tagSize
        let other = StreamingAEAD.ciphertextSegmentSize - StreamingAEAD.tagSize
        for size in [0, 1, first - 1, first, first + 1, first + other, first + other + 1, 3 * (1 << 20) + 5] {
            let plaintext = Self.bytes(size)
            let ciphertext = try Self.encrypt(plaintext, key: key, ad: "backups/b/data/\(size)")
            #expect(try Self.decrypt(ciphertext, key: key, ad: "backups/b/data/\(size)") == plaintext, "size \(size)")
            let stored = Int64(ciphertext.count + EncryptedFilePrefix.size)
            #expect(EncryptedFilePrefix.plaintextSize(storedSize: stored) == Int64(size), "size \(size)")
        }
    }

    @Test func flippedByteTruncationAndOtherPathAreRefused() throws {
        let key = SymmetricKey(size: .bits256)
        let plaintext = Self.bytes(2 * (1 << 20) + 1000)
        let ciphertext = try Self.encrypt(plaintext, key: key, ad: "a")
        var flipped = ciphertext
        flipped[StreamingAEAD.headerSize + 5000] ^= 1
        #expect(throws: StreamingAEAD.Failure.segment(0)) { try Self.decrypt(flipped, key: key, ad: "a") }
        // Cut exactly after the second segment: each remaining segment authenticates, but none is the last.
        let cut = Array(ciphertext.prefix(2 * StreamingAEAD.ciphertextSegmentSize))
        #expect(throws: StreamingAEAD.Failure.truncated) { try Self.decrypt(cut, key: key, ad: "a") }
        #expect(throws: StreamingAEAD.Failure.truncated) { try Self.decrypt(Array(ciphertext.prefix(10)), key: key, ad: "a") }
        #expect(throws: StreamingAEAD.Failure.segment(0)) { try Self.decrypt(ciphertext, key: key, ad: "b") }
        #expect(throws: StreamingAEAD.Failure.segment(0)) { try Self.decrypt(ciphertext, key: SymmetricKey(size: .bits256), ad: "a") }
    }
}

@Suite struct EncryptedStorageTests {
    func withRepository(_ body: (String, MasterKey) throws -> Void) throws {
        let folder = NSTemporaryDirectory() + "ftbackup-enc-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try body(folder + "/repo", try MasterKey.create(path: folder + "/key"))
    }

    @Test func keyFileIsPrivateNeverOverwrittenAndRefusedWhenOthersCanReadIt() throws {
        try withRepository { (repo: String, key: MasterKey) throws in
            let path = (repo as NSString).deletingLastPathComponent + "/key"
            #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
            #expect(try MasterKey.load(path: path).id == key.id)
            #expect(key.id.count == 16)
            let overwrite = #expect(throws: FTBackupError.self) { _ = try MasterKey.create(path: path) }
            #expect(overwrite?.status == .usage)
            chmod(path, 0o640)
            let open = #expect(throws: FTBackupError.self) { _ = try MasterKey.load(path: path) }
            #expect(open?.status == .permission)
        }
    }

    @Test func filesAreEncryptedPerUnitAndReadBack() throws {
        try withRepository { (repo: String, key: MasterKey) throws in
            let storage = EncryptedStorage(base: LocalStorage(root: repo), master: key)
            let text = Array("id,email\n1,ada@example.com\n".utf8)
            try storage.writeAll("backups/b1/data/0.copy.zst", text)
            try storage.writeAll("backups/b1/manifest.json", text)
            try storage.writeAll("locks/write.lock", text)
            #expect(try storage.readAll("backups/b1/data/0.copy.zst") == text)
            #expect(try LocalStorage(root: repo).readAll("locks/write.lock") == text)
            let raw = try LocalStorage(root: repo).readAll("backups/b1/data/0.copy.zst")
            #expect(EncryptedFilePrefix.isEncrypted(raw))
            #expect(!String(decoding: raw, as: UTF8.self).contains("ada@example.com"))
            #expect(try storage.size(of: "backups/b1/data/0.copy.zst") == Int64(text.count))
            #expect(try LocalStorage(root: repo).list("keys").map(\.path) == ["keys/backups%2Fb1.json"])
            // A plain file in the encrypted unit, and a file moved from another unit, are refused.
            try LocalStorage(root: repo).writeAll("backups/b1/data/1.copy.zst", text)
            let plain = #expect(throws: FTBackupError.self) { _ = try storage.readAll("backups/b1/data/1.copy.zst") }
            #expect(plain?.status == .dataError)
            try storage.writeAll("backups/b2/data/0.copy.zst", text)
            try FileManager.default.copyItem(atPath: repo + "/backups/b2/data/0.copy.zst", toPath: repo + "/backups/b1/data/2.copy.zst")
            let moved = #expect(throws: FTBackupError.self) { _ = try storage.readAll("backups/b1/data/2.copy.zst") }
            #expect(moved?.status == .dataError)
            #expect(moved?.message.contains("moved or swapped") == true)
            // Inside one unit, another path is another file: refused by the associated data.
            try FileManager.default.copyItem(atPath: repo + "/backups/b1/data/0.copy.zst", toPath: repo + "/backups/b1/data/3.copy.zst")
            let renamed = #expect(throws: FTBackupError.self) { _ = try storage.readAll("backups/b1/data/3.copy.zst") }
            #expect(renamed?.status == .dataError)
            // Removing a unit removes its key record.
            try storage.remove("backups/b2")
            #expect(try !storage.exists("keys/backups%2Fb2.json"))
        }
    }

    @Test func olderPlainUnitsStayPlainAndAnotherKeyIsRefused() throws {
        try withRepository { (repo: String, key: MasterKey) throws in
            let text = Array("plain".utf8)
            try LocalStorage(root: repo).writeAll("backups/old/manifest.json", text)
            let storage = EncryptedStorage(base: LocalStorage(root: repo), master: key)
            try storage.writeAll("backups/old/verified.json", text)
            #expect(try LocalStorage(root: repo).readAll("backups/old/verified.json") == text)
            #expect(try storage.readAll("backups/old/manifest.json") == text)
            #expect(try storage.isEncrypted("backups/old/manifest.json") == false)
            try storage.writeAll("backups/new/manifest.json", text)
            RepositoryEncryption.use(MasterKey(bytes: [UInt8](repeating: 1, count: 32)), forRepository: repo)
            defer { RepositoryEncryption.use(nil, forRepository: repo) }
            let wrong = #expect(throws: FTBackupError.self) { _ = try RepositoryStorageFactory.open(repo) }
            #expect(wrong?.status == .permission)
        }
    }
}
