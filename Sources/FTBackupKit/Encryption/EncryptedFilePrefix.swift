/// ftbackup's own few bytes before the Tink ciphertext of an encrypted file: a magic string and the
/// id of the data key the file is encrypted with.
///
/// It exists so that a plain file where an encrypted one is expected (and the reverse) is recognised
/// from its first bytes, and so that a file moved from another unit is named as such (its data key id
/// is another unit's) before any decryption is tried.
enum EncryptedFilePrefix {
    static let magic: [UInt8] = Array("FTBENC1\n".utf8)
    /// Magic, then the data key id as 16 hex digits.
    static let size = magic.count + 16

    static func bytes(dataKeyId: String) -> [UInt8] { magic + Array(dataKeyId.utf8) }

    /// True when `bytes` (a file's first bytes) start with the magic.
    static func isEncrypted(_ bytes: [UInt8]) -> Bool { bytes.count >= magic.count && Array(bytes.prefix(magic.count)) == magic }

    /// The data key id of a file whose first `size` bytes are `bytes`.
    static func dataKeyId(_ bytes: [UInt8]) -> String? {
        guard bytes.count >= size, isEncrypted(bytes) else { return nil }
        return String(decoding: bytes[magic.count..<size], as: UTF8.self)
    }

    /// The plaintext length of an encrypted file of `storedSize` bytes (prefix, header and a tag per segment).
    static func plaintextSize(storedSize: Int64) -> Int64 {
        let ciphertext = storedSize - Int64(size)
        let segments = max(1, (ciphertext + Int64(StreamingAEAD.ciphertextSegmentSize) - 1) / Int64(StreamingAEAD.ciphertextSegmentSize))
        return max(0, ciphertext - Int64(StreamingAEAD.headerSize) - segments * Int64(StreamingAEAD.tagSize))
    }
}
