import Crypto
import Foundation

/// Tink's streaming AEAD "AES-GCM-HKDF" format, with AES-256-GCM, HKDF-SHA256 and 1 MiB ciphertext
/// segments (https://developers.google.com/tink/streaming-aead/aes_gcm_hkdf_streaming).
///
/// It exists so that a 100 GB table file is encrypted and authenticated in bounded memory with a
/// published construction instead of an invented one:
/// - header: `header length (1 byte) ‖ salt (32 bytes) ‖ nonce prefix (7 bytes)`, both random per file;
/// - segment key = HKDF-SHA256(ikm: data key, salt: salt, info: associated data, 32 bytes), so the
///   associated data (ftbackup: the file's repository path) is bound to every segment;
/// - segment `i` is AES-256-GCM under the nonce `prefix ‖ BE32(i) ‖ last-flag byte` with no per-segment
///   associated data; ciphertext segments are 1 MiB (the first one's plaintext is shorter by the header),
///   each ending in its 16-byte tag;
/// - only the final segment carries the last-segment flag, so a file cut at a segment boundary, segments
///   reordered or a file moved to another path all fail authentication.
public enum StreamingAEAD {
    public static let keySize = 32
    public static let noncePrefixSize = 7
    public static let tagSize = 16
    public static let headerSize = 1 + keySize + noncePrefixSize
    public static let ciphertextSegmentSize = 1 << 20

    /// Plaintext bytes in segment `index` when it is full.
    static func plaintextSegmentSize(_ index: UInt32) -> Int {
        ciphertextSegmentSize - tagSize - (index == 0 ? headerSize : 0)
    }

    static func segmentKey(dataKey: SymmetricKey, salt: some DataProtocol, associatedData: some DataProtocol) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: dataKey, salt: salt, info: associatedData, outputByteCount: keySize)
    }

    static func nonce(prefix: [UInt8], segment: UInt32, last: Bool) throws -> AES.GCM.Nonce {
        var bytes = prefix
        bytes += [UInt8(segment >> 24), UInt8(segment >> 16 & 0xff), UInt8(segment >> 8 & 0xff), UInt8(segment & 0xff)]
        bytes.append(last ? 1 : 0)
        return try AES.GCM.Nonce(data: bytes)
    }

    /// Encrypts a stream segment by segment: `process` as plaintext arrives, `finish` at its end.
    public struct Encryptor {
        private let key: SymmetricKey
        private let noncePrefix: [UInt8]
        private var pending: [UInt8] = []
        private var segment: UInt32 = 0
        /// The header, to be written before the first segment.
        public let header: [UInt8]

        public init(dataKey: SymmetricKey, associatedData: [UInt8]) {
            var salt = [UInt8](repeating: 0, count: keySize)
            var prefix = [UInt8](repeating: 0, count: noncePrefixSize)
            var generator = SystemRandomNumberGenerator()
            for i in salt.indices { salt[i] = generator.next() }
            for i in prefix.indices { prefix[i] = generator.next() }
            self.init(dataKey: dataKey, associatedData: associatedData, salt: salt, noncePrefix: prefix)
        }

        init(dataKey: SymmetricKey, associatedData: [UInt8], salt: [UInt8], noncePrefix: [UInt8]) {
            key = segmentKey(dataKey: dataKey, salt: salt, associatedData: associatedData)
            self.noncePrefix = noncePrefix
            header = [UInt8(headerSize)] + salt + noncePrefix
            pending.reserveCapacity(ciphertextSegmentSize)
        }

        /// Takes plaintext; emits each segment once it is known not to be the last one.
        public mutating func process(_ plaintext: UnsafeRawBufferPointer, emit: ([UInt8]) throws -> Void) throws {
            var offset = 0
            while offset < plaintext.count {
                let size = plaintextSegmentSize(segment)
                if pending.count == size {
                    // More plaintext follows, so the full segment held back is not the last one.
                    try emit(try seal(last: false))
                }
                let take = min(size - pending.count, plaintext.count - offset)
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: plaintext[offset..<(offset + take)]))
                offset += take
            }
        }

        /// Emits the last segment (empty only when the whole stream is).
        public mutating func finish(emit: ([UInt8]) throws -> Void) throws {
            try emit(try seal(last: true))
        }

        private mutating func seal(last: Bool) throws -> [UInt8] {
            let box = try AES.GCM.seal(pending, using: key, nonce: try nonce(prefix: noncePrefix, segment: segment, last: last))
            pending.removeAll(keepingCapacity: true)
            segment += 1
            return Array(box.ciphertext) + Array(box.tag)
        }
    }

    /// Why a stream did not decrypt; the storage layer turns it into a message naming the file.
    public enum Failure: Error, Equatable {
        case badHeader
        /// Segment `n` did not authenticate: a changed byte, another key, or a file moved from another path.
        case segment(UInt32)
        /// The stream ends without its last segment (cut at a segment boundary or shorter than a tag).
        case truncated
    }

    /// Decrypts a stream: `process` as ciphertext arrives (header first), `finish` at its end.
    public struct Decryptor {
        private let dataKey: SymmetricKey
        private let associatedData: [UInt8]
        private var key: SymmetricKey?
        private var noncePrefix: [UInt8] = []
        private var pending: [UInt8] = []
        private var segment: UInt32 = 0

        public init(dataKey: SymmetricKey, associatedData: [UInt8]) {
            self.dataKey = dataKey
            self.associatedData = associatedData
            pending.reserveCapacity(ciphertextSegmentSize + 1)
        }

        /// Ciphertext bytes of segment `segment` when it is full (the first one shares its size with the header).
        private var segmentBytes: Int { ciphertextSegmentSize - (segment == 0 ? headerSize : 0) }

        public mutating func process(_ ciphertext: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
            var offset = 0
            while offset < ciphertext.count {
                if key == nil {
                    let take = min(headerSize - pending.count, ciphertext.count - offset)
                    pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: ciphertext[offset..<(offset + take)]))
                    offset += take
                    if pending.count == headerSize { try readHeader() }
                    continue
                }
                // A full segment is decrypted once one more byte shows it is not the last.
                if pending.count == segmentBytes { try open(last: false, emit: emit) }
                let take = min(segmentBytes - pending.count, ciphertext.count - offset)
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: ciphertext[offset..<(offset + take)]))
                offset += take
            }
        }

        public mutating func finish(emit: (UnsafeRawBufferPointer) throws -> Void) throws {
            guard key != nil else { throw pending.isEmpty || pending[0] == UInt8(headerSize) ? Failure.truncated : Failure.badHeader }
            guard pending.count >= tagSize else { throw Failure.truncated }
            do {
                try open(last: true, emit: emit)
            } catch Failure.segment(let number) {
                // A segment that opens as a middle one means the segments after it are missing.
                if (try? open(last: false, emit: { _ in })) != nil { throw Failure.truncated }
                throw Failure.segment(number)
            }
        }

        private mutating func readHeader() throws {
            guard pending[0] == UInt8(headerSize) else { throw Failure.badHeader }
            let salt = Array(pending[1...keySize])
            noncePrefix = Array(pending[(1 + keySize)...])
            key = segmentKey(dataKey: dataKey, salt: salt, associatedData: associatedData)
            pending.removeAll(keepingCapacity: true)
        }

        private mutating func open(last: Bool, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
            guard let key else { throw Failure.badHeader }
            let plaintext: Data
            do {
                let box = try AES.GCM.SealedBox(nonce: try nonce(prefix: noncePrefix, segment: segment, last: last),
                                                ciphertext: pending[..<(pending.count - tagSize)],
                                                tag: pending[(pending.count - tagSize)...])
                plaintext = try AES.GCM.open(box, using: key)
            } catch {
                throw Failure.segment(segment)
            }
            pending.removeAll(keepingCapacity: true)
            segment += 1
            try plaintext.withUnsafeBytes { try emit($0) }
        }
    }
}
