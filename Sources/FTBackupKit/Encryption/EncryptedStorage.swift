import Crypto
import Foundation

/// A repository whose files are encrypted at rest: a decorator over the repository's plain storage (a
/// folder, ``LocalStorage``, or a bucket, ``S3Storage``) that encrypts what is written and decrypts
/// (authenticating every segment) what is read. The store only ever sees ciphertext.
///
/// It exists so that backups, change segments, archives, evidence, drill records and manifests are all
/// encrypted without their writers knowing. Each file is ``EncryptedFilePrefix`` then Tink's
/// AES-GCM-HKDF streaming ciphertext (``StreamingAEAD``) under its unit's data key (``KeyStore``), with
/// the file's repository path as associated data: a file moved, swapped, truncated or changed does
/// not read. Lock files, key records and `encryption.json` stay plain (``EncryptionUnit``). A unit
/// without a key record was written before encryption was turned on: its plain files stay readable;
/// a plain file in a unit that has a key is refused (exit 65), as is an encrypted one in a unit without.
public struct EncryptedStorage: RepositoryStorage {
    /// The storage underneath, which holds the ciphertext as is (sync copies it from there).
    public let base: any RepositoryStorage
    let keyStore: KeyStore
    public var location: String { base.location }
    /// The id of the master key in use.
    public var masterKeyId: String { keyStore.master.id }

    public init(base: any RepositoryStorage, master: MasterKey) {
        self.base = base
        keyStore = KeyStore(base: base, master: master)
    }

    public func list(_ folder: String) throws -> [StorageEntry] { try base.list(folder) }
    public func exists(_ path: String) throws -> Bool { try base.exists(path) }
    public func makeFolder(_ path: String) throws { try base.makeFolder(path) }

    /// The plaintext size of an encrypted file (what its manifest records).
    public func size(of path: String) throws -> Int64 {
        let stored = try base.size(of: path)
        guard EncryptionUnit.of(path) != nil, EncryptedFilePrefix.isEncrypted(try firstBytes(path)) else { return stored }
        return EncryptedFilePrefix.plaintextSize(storedSize: stored)
    }

    /// True when the unit `path` belongs to has a data key (its files are encrypted).
    public func isEncrypted(_ path: String) throws -> Bool {
        guard let unit = EncryptionUnit.of(path) else { return false }
        return try keyStore.record(unit) != nil
    }

    public func openRead(_ path: String) throws -> any StorageReader {
        guard let unit = EncryptionUnit.of(path) else { return try base.openRead(path) }
        let shown = "\(location)/\(path)"
        let reader = try base.openRead(path)
        do {
            let prefix = try PrefixReading.read(reader, count: EncryptedFilePrefix.size)
            let record = try keyStore.record(unit)
            guard EncryptedFilePrefix.isEncrypted(prefix) else {
                if record != nil {
                    throw FTBackupError(.dataError, "repository file \(shown) is not encrypted, but \(unit) is: a plain file where an encrypted one is expected",
                                        hint: "it was replaced; restore it from a copy of the repository or use another backup")
                }
                guard try keyStore.mayBePlain(unit) else {
                    throw FTBackupError(.dataError, "repository file \(shown) is not encrypted, and \(unit) was not in the repository when encryption was turned on: a plain file where an encrypted one is expected",
                                        hint: "it was put there by hand (or by a run without the key); remove it, or restore it from a copy of the repository")
                }
                return PrefixedReader(prefix: prefix, rest: reader)
            }
            guard let record else {
                throw FTBackupError(.dataError, "repository file \(shown) is encrypted, but \(unit) has no key record (\(EncryptionUnit.recordPath(unit)))",
                                    hint: "the file was moved here from another unit, or the key record was removed")
            }
            guard EncryptedFilePrefix.dataKeyId(prefix) == record.dataKeyId else {
                throw FTBackupError(.dataError, "repository file \(shown) is encrypted with another unit's data key: it was moved or swapped from elsewhere in the repository",
                                    hint: "restore it from a copy of the repository or use another backup")
            }
            let key = try keyStore.dataKey(record)
            return DecryptingReader(base: reader, decryptor: StreamingAEAD.Decryptor(dataKey: key, associatedData: Array(path.utf8)), shown: shown)
        } catch {
            reader.close()
            throw error
        }
    }

    public func openWrite(_ path: String) throws -> any StorageWriter {
        guard let unit = EncryptionUnit.of(path), let (record, key) = try keyStore.keyForWriting(unit) else { return try base.openWrite(path) }
        let writer = try base.openWrite(path)
        return EncryptingWriter(base: writer, prefix: EncryptedFilePrefix.bytes(dataKeyId: record.dataKeyId),
                                encryptor: StreamingAEAD.Encryptor(dataKey: key, associatedData: Array(path.utf8)))
    }

    /// Removes the file or folder, then the key record of a unit that no longer has any file.
    public func remove(_ path: String) throws {
        try base.remove(path)
        guard let unit = EncryptionUnit.of(path) else { return }
        let gone: Bool
        switch EncryptionUnit.shape(of: unit) {
        case .file: gone = try !base.exists(unit)
        case .segment: gone = try !EncryptionUnit.segmentFiles(unit).contains { try base.exists($0) }
        case .folder: gone = try !base.exists(unit)
        }
        if gone { try keyStore.forget(unit) }
    }

    private func firstBytes(_ path: String) throws -> [UInt8] {
        // One small ranged GET on a bucket, rather than the reader's first (large) range.
        if let s3 = base as? S3Storage { return try s3.firstBytes(path, count: EncryptedFilePrefix.size) }
        let reader = try base.openRead(path)
        defer { reader.close() }
        return try PrefixReading.read(reader, count: EncryptedFilePrefix.size)
    }

    /// The data key of the unit `path` belongs to (tests cross-check the format with Tink's own library).
    public func dataKeyForTesting(_ path: String) throws -> [UInt8]? {
        guard let unit = EncryptionUnit.of(path), let record = try keyStore.record(unit) else { return nil }
        return try keyStore.dataKey(record).withUnsafeBytes { Array($0) }
    }
}

enum PrefixReading {
    /// Up to `count` bytes from the start of `reader` (fewer only at the end of the file).
    static func read(_ reader: any StorageReader, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let got = try bytes.withUnsafeMutableBytes { try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[filled...])) }
            if got == 0 { break }
            filled += got
        }
        return Array(bytes[0..<filled])
    }
}

/// A plain file whose first bytes were already read (to look for the encryption prefix).
final class PrefixedReader: StorageReader {
    private var prefix: [UInt8]
    private let rest: any StorageReader

    init(prefix: [UInt8], rest: any StorageReader) {
        self.prefix = prefix
        self.rest = rest
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard !prefix.isEmpty else { return try rest.read(into: buffer) }
        let count = min(prefix.count, buffer.count)
        prefix.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: count) }
        prefix.removeFirst(count)
        return count
    }

    func close() { rest.close() }
}

/// Decrypts a stored file as it is read; any segment that does not authenticate, or a missing last
/// segment, is a data error naming the file (exit 65).
final class DecryptingReader: StorageReader {
    private let base: any StorageReader
    private var decryptor: StreamingAEAD.Decryptor
    private let shown: String
    private var output: [UInt8] = []
    private var outputOffset = 0
    private var input = [UInt8](repeating: 0, count: 256 * 1024)
    private var ended = false

    init(base: any StorageReader, decryptor: StreamingAEAD.Decryptor, shown: String) {
        self.base = base
        self.decryptor = decryptor
        self.shown = shown
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while outputOffset == output.count {
            if ended { return 0 }
            output.removeAll(keepingCapacity: true)
            outputOffset = 0
            let count = try input.withUnsafeMutableBytes { try base.read(into: $0) }
            do {
                if count == 0 {
                    ended = true
                    try decryptor.finish { output.append(contentsOf: $0) }
                } else {
                    try input.withUnsafeBytes { raw in
                        try decryptor.process(UnsafeRawBufferPointer(rebasing: raw[0..<count])) { output.append(contentsOf: $0) }
                    }
                }
            } catch let failure as StreamingAEAD.Failure {
                throw FTBackupError(.dataError, "repository file \(shown) does not decrypt: \(Self.describe(failure))",
                                    hint: "run ftbackup verify; restore from another backup if it is damaged")
            }
        }
        let count = min(buffer.count, output.count - outputOffset)
        output.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + outputOffset, byteCount: count) }
        outputOffset += count
        return count
    }

    static func describe(_ failure: StreamingAEAD.Failure) -> String {
        switch failure {
        case .badHeader: return "its encryption header is damaged"
        case .truncated: return "it is truncated (its last segment is missing)"
        case .segment(let number): return "segment \(number) does not authenticate (a changed byte, or the file was moved from another path)"
        }
    }

    func close() { base.close() }
}

/// Encrypts a file as it is written: the prefix and header first, each 1 MiB segment as it fills, the
/// last one at `commit()`.
final class EncryptingWriter: StorageWriter {
    private let base: any StorageWriter
    private var encryptor: StreamingAEAD.Encryptor
    private var prefix: [UInt8]?

    init(base: any StorageWriter, prefix: [UInt8], encryptor: StreamingAEAD.Encryptor) {
        self.base = base
        self.encryptor = encryptor
        self.prefix = prefix + encryptor.header
    }

    private func writeHeader() throws {
        guard let bytes = prefix else { return }
        try bytes.withUnsafeBytes { try base.write($0) }
        prefix = nil
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try writeHeader()
        try encryptor.process(bytes) { segment in try segment.withUnsafeBytes { try base.write($0) } }
    }

    func commit() throws {
        try writeHeader()
        try encryptor.finish { segment in try segment.withUnsafeBytes { try base.write($0) } }
        try base.commit()
    }

    func abort() { base.abort() }
}
