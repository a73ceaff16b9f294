import Foundation
import Testing
@testable import FTBackupKit

/// ftbackup's encrypted files are Tink's AES-GCM-HKDF streaming format exactly: Google's own Python
/// implementation (`tink` 1.16.1 from PyPI, installed by scripts/install-deps.sh into .scratch/tink-venv)
/// decrypts what ftbackup wrote, and ftbackup decrypts what Tink wrote. Missing Tink fails the test.
@Suite struct TinkCrossCheckTests {
    static var python: String {
        get throws {
            if let configured = ProcessInfo.processInfo.environment["FTBACKUP_TINK_PYTHON"], !configured.isEmpty { return configured }
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let path = root.appendingPathComponent(".scratch/tink-venv/bin/python").path
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw FTBackupError(.usage, "\(path) is missing: Tink's Python package is needed for this test", hint: "run make deps (scripts/install-deps.sh)")
            }
            return path
        }
    }

    /// A raw keyset with one AesGcmHkdfStreamingKey (the data key; 1 MiB segments, 32-byte derived keys, HKDF-SHA256).
    static let script = #"""
    import io, sys
    from tink import streaming_aead, secret_key_access, proto_keyset_format
    from tink.proto import aes_gcm_hkdf_streaming_pb2, common_pb2, tink_pb2
    streaming_aead.register()
    mode, key_hex, ad = sys.argv[1], sys.argv[2], sys.argv[3].encode()
    params = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingParams(ciphertext_segment_size=1048576, derived_key_size=32,
                                                                  hkdf_hash_type=common_pb2.SHA256)
    key = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingKey(version=0, key_value=bytes.fromhex(key_hex), params=params)
    keyset = tink_pb2.Keyset(primary_key_id=1, key=[tink_pb2.Keyset.Key(
        key_data=tink_pb2.KeyData(type_url="type.googleapis.com/google.crypto.tink.AesGcmHkdfStreamingKey",
                                  value=key.SerializeToString(), key_material_type=tink_pb2.KeyData.SYMMETRIC),
        status=tink_pb2.ENABLED, key_id=1, output_prefix_type=tink_pb2.RAW)])
    primitive = proto_keyset_format.parse(keyset.SerializeToString(), secret_key_access.TOKEN).primitive(streaming_aead.StreamingAead)
    data = sys.stdin.buffer.read()
    if mode == "decrypt":
        with primitive.new_decrypting_stream(io.BytesIO(data), ad) as stream:
            sys.stdout.buffer.write(stream.read())
    else:
        class Kept(io.BytesIO):
            def close(self): pass
        out = Kept()
        with primitive.new_encrypting_stream(out, ad) as stream:
            stream.write(data)
        sys.stdout.buffer.write(out.getvalue())
    """#

    static func tink(_ mode: String, key: [UInt8], associatedData: String, _ input: [UInt8]) throws -> [UInt8] {
        let folder = NSTemporaryDirectory() + "ftbackup-tink-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Data(input).write(to: URL(fileURLWithPath: folder + "/in"))
        FileManager.default.createFile(atPath: folder + "/out", contents: nil)
        FileManager.default.createFile(atPath: folder + "/err", contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try python)
        process.arguments = ["-c", script, mode, key.map { String(format: "%02x", $0) }.joined(), associatedData]
        process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: folder + "/in"))
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: folder + "/out"))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: folder + "/err"))
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw FTBackupError(.failure, "tink \(mode) failed: \(String(decoding: try Data(contentsOf: URL(fileURLWithPath: folder + "/err")), as: UTF8.self))")
        }
        return Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/out")))
    }

    func withStorage(_ body: (EncryptedStorage, LocalStorage) throws -> Void) throws {
        let folder = NSTemporaryDirectory() + "ftbackup-tink-repo-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let local = LocalStorage(root: folder + "/repo")
        try body(EncryptedStorage(base: local, master: try MasterKey.create(path: folder + "/key")), local)
    }

    @Test func tinkDecryptsWhatFtbackupWrote() throws {
        try withStorage { storage, local in
            for size in [0, 5, 3 * (1 << 20) + 123] {
                let path = "backups/20261128T000000Z-F/data/\(size).copy.zst"
                let plaintext = StreamingAEADTests.bytes(size, seed: 3)
                try storage.writeAll(path, plaintext)
                let stored = try local.readAll(path)
                let key = try #require(try storage.dataKeyForTesting(path))
                #expect(try Self.tink("decrypt", key: key, associatedData: path, Array(stored.dropFirst(EncryptedFilePrefix.size))) == plaintext,
                        "size \(size)")
                // The associated data is the path: Tink refuses the same bytes under another one.
                #expect(throws: (any Error).self) {
                    _ = try Self.tink("decrypt", key: key, associatedData: path + "x", Array(stored.dropFirst(EncryptedFilePrefix.size)))
                }
            }
        }
    }

    @Test func ftbackupDecryptsWhatTinkWrote() throws {
        try withStorage { storage, local in
            try storage.writeAll("changes/segments/0000000001000000-x.json", Array("{}".utf8))
            let path = "changes/segments/0000000001000000-x.seg.zst"
            let key = try #require(try storage.dataKeyForTesting(path))
            let record = try #require(try storage.keyStore.record("changes/segments/0000000001000000-x"))
            for size in [0, 1_048_520, 2 * (1 << 20) + 7] {
                let plaintext = StreamingAEADTests.bytes(size, seed: 9)
                let ciphertext = try Self.tink("encrypt", key: key, associatedData: path, plaintext)
                try local.writeAll(path, EncryptedFilePrefix.bytes(dataKeyId: record.dataKeyId) + ciphertext)
                #expect(try storage.readAll(path) == plaintext, "size \(size)")
            }
        }
    }
}
