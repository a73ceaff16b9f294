/// A compressor or decompressor fed chunk by chunk.
///
/// Backup and restore push table streams of any size through these in bounded memory: each call
/// hands its output to `emit` in pieces and keeps no more than one working buffer.
public protocol StreamCodec {
    /// Consumes `input`, emitting whatever output is ready.
    mutating func process(_ input: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws
    /// Ends the stream, emitting the rest. A decompressor throws here if its input stopped early.
    mutating func finish(emit: (UnsafeRawBufferPointer) throws -> Void) throws
}

/// Why a codec failed: the stream is corrupt or ends before it should.
public struct CodecError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable { case corrupted, truncated, internalFailure }
    public var kind: Kind
    public var codec: String
    public var detail: String

    public var description: String {
        switch kind {
        case .corrupted: return "\(codec) stream is corrupted: \(detail)"
        case .truncated: return "\(codec) stream is truncated: \(detail)"
        case .internalFailure: return "\(codec) failed: \(detail)"
        }
    }
}

/// The codecs a repository file can be written with (recorded in the manifest).
public enum CompressionCodec: String, Sendable, Codable, CaseIterable {
    case zstd
    case gzip
    case none

    public var fileExtension: String {
        switch self {
        case .zstd: return ".zst"
        case .gzip: return ".gz"
        case .none: return ""
        }
    }

    public func makeCompressor(level: Int, workers: Int = 0) throws -> any StreamCodec {
        switch self {
        case .zstd: return try ZstdCompressor(level: level, workers: workers)
        case .gzip: return try GzipCompressor(level: level)
        case .none: return PassThroughCodec()
        }
    }

    public func makeDecompressor() throws -> any StreamCodec {
        switch self {
        case .zstd: return try ZstdDecompressor()
        case .gzip: return try GzipDecompressor()
        case .none: return PassThroughCodec()
        }
    }
}

/// Stores data as is (for `compression: none`).
public struct PassThroughCodec: StreamCodec {
    public init() {}
    public mutating func process(_ input: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        if input.count > 0 { try emit(input) }
    }
    public mutating func finish(emit: (UnsafeRawBufferPointer) throws -> Void) throws {}
}
