import CZlib

/// Streaming gzip (RFC 1952) compression through zlib, for archives that other tools must read.
public struct GzipCompressor: StreamCodec {
    private let stream: ZlibStreamBox
    private var output = [UInt8](repeating: 0, count: 128 * 1024)

    public init(level: Int = 6) throws {
        stream = ZlibStreamBox(inflating: false)
        // windowBits 15 + 16 asks zlib for a gzip header and trailer (CRC-32 and length).
        let status = deflateInit2_(&stream.z, Int32(level), Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                                   ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            throw CodecError(kind: .internalFailure, codec: "gzip", detail: "deflateInit2 failed (\(status))")
        }
        stream.initialised = true
    }

    public mutating func process(_ input: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard input.count > 0 else { return }
        try run(input, flush: Z_NO_FLUSH, emit: emit)
    }

    public mutating func finish(emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        try run(UnsafeRawBufferPointer(start: nil, count: 0), flush: Z_FINISH, emit: emit)
    }

    private mutating func run(_ input: UnsafeRawBufferPointer, flush: Int32,
                              emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        let box = stream
        box.z.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        box.z.avail_in = uInt(input.count)
        let capacity = output.count
        while true {
            let (status, produced): (Int32, Int) = output.withUnsafeMutableBytes { out in
                box.z.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
                box.z.avail_out = uInt(capacity)
                let status = deflate(&box.z, flush)
                return (status, capacity - Int(box.z.avail_out))
            }
            if status == Z_STREAM_ERROR {
                throw CodecError(kind: .internalFailure, codec: "gzip", detail: "deflate failed")
            }
            if produced > 0 { try output.withUnsafeBytes { try emit(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) } }
            if flush == Z_FINISH {
                if status == Z_STREAM_END { return }
            } else if box.z.avail_in == 0 && produced < capacity {
                return
            }
        }
    }
}

/// Streaming gzip decompression; checks each member's CRC-32 and length, accepts concatenated
/// members, and reports a stream that stops early as truncated.
public struct GzipDecompressor: StreamCodec {
    private let stream: ZlibStreamBox
    private var output = [UInt8](repeating: 0, count: 128 * 1024)
    private var insideMember = false
    private var sawInput = false

    public init() throws {
        stream = ZlibStreamBox(inflating: true)
        let status = inflateInit2_(&stream.z, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            throw CodecError(kind: .internalFailure, codec: "gzip", detail: "inflateInit2 failed (\(status))")
        }
        stream.initialised = true
    }

    public mutating func process(_ input: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard input.count > 0 else { return }
        sawInput = true
        let box = stream
        box.z.next_in = UnsafeMutablePointer(mutating: input.baseAddress!.assumingMemoryBound(to: Bytef.self))
        box.z.avail_in = uInt(input.count)
        let capacity = output.count
        while box.z.avail_in > 0 || insideMember {
            insideMember = true
            let (status, produced): (Int32, Int) = output.withUnsafeMutableBytes { out in
                box.z.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
                box.z.avail_out = uInt(capacity)
                let status = inflate(&box.z, Z_NO_FLUSH)
                return (status, capacity - Int(box.z.avail_out))
            }
            switch status {
            case Z_OK, Z_BUF_ERROR:
                break
            case Z_STREAM_END:
                insideMember = false
                if box.z.avail_in > 0 { inflateReset(&box.z) }
            default:
                let reason = box.z.msg.map { String(cString: $0) } ?? "zlib status \(status)"
                throw CodecError(kind: .corrupted, codec: "gzip", detail: reason)
            }
            if produced > 0 { try output.withUnsafeBytes { try emit(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) } }
            if box.z.avail_in == 0 && produced < capacity { break }
        }
    }

    public mutating func finish(emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        if !sawInput {
            throw CodecError(kind: .truncated, codec: "gzip", detail: "the stream is empty (no gzip header)")
        }
        if insideMember {
            throw CodecError(kind: .truncated, codec: "gzip", detail: "the input ends before the gzip trailer")
        }
    }
}

/// Owns a `z_stream` at a stable address and ends it with the codec.
final class ZlibStreamBox {
    var z = z_stream()
    var initialised = false
    let inflating: Bool
    init(inflating: Bool) { self.inflating = inflating }
    deinit {
        guard initialised else { return }
        if inflating { inflateEnd(&z) } else { deflateEnd(&z) }
    }
}
