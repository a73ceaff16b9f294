import Crypto

/// A SHA-256 computed while a stream passes, so no file is ever read twice just to checksum it.
public struct StreamDigest: Sendable {
    private var hasher = SHA256()
    /// Bytes fed so far.
    public private(set) var byteCount: Int64 = 0

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: bytes)
        byteCount += Int64(bytes.count)
    }

    /// The lowercase hex digest of everything fed so far.
    public func hexDigest() -> String {
        hasher.finalize().map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
