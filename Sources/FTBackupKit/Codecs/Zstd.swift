import CZstd

/// Streaming zstd compression with the frame checksum on, so a flipped bit is caught at restore.
///
/// `workers > 0` lets libzstd compress on that many threads of its own while the caller keeps
/// reading from the database.
public struct ZstdCompressor: StreamCodec {
    private let context: ZstdContextBox
    private var output: [UInt8]

    public init(level: Int = 3, workers: Int = 0) throws {
        guard let cctx = ZSTD_createCCtx() else {
            throw CodecError(kind: .internalFailure, codec: "zstd", detail: "cannot allocate a compression context")
        }
        context = ZstdContextBox(cctx: cctx)
        try Self.check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, Int32(level)), "compression level \(level)")
        try Self.check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1), "checksum flag")
        if workers > 0 {
            // Only honoured by multithreaded builds of libzstd (Debian's is one); ignore otherwise.
            _ = ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, Int32(workers))
        }
        output = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
    }

    public mutating func process(_ input: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        try run(input, directive: ZSTD_e_continue, emit: emit)
    }

    public mutating func finish(emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        try run(UnsafeRawBufferPointer(start: nil, count: 0), directive: ZSTD_e_end, emit: emit)
    }

    private mutating func run(_ input: UnsafeRawBufferPointer, directive: ZSTD_EndDirective,
                              emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        let cctx = context.cctx!
        let capacity = output.count
        while true {
            let (remaining, produced): (Int, Int) = try output.withUnsafeMutableBytes { out in
                var outBuffer = ZSTD_outBuffer(dst: out.baseAddress, size: capacity, pos: 0)
                let remaining = ZSTD_compressStream2(cctx, &outBuffer, &inBuffer, directive)
                try Self.check(remaining, "compressing")
                return (remaining, outBuffer.pos)
            }
            if produced > 0 { try output.withUnsafeBytes { try emit(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) } }
            let inputDone = inBuffer.pos == inBuffer.size
            if directive == ZSTD_e_continue ? (inputDone && produced < capacity) : remaining == 0 { return }
        }
    }

    static func check(_ code: Int, _ what: String) throws {
        if ZSTD_isError(code) != 0 {
            throw CodecError(kind: .internalFailure, codec: "zstd", detail: "\(what): \(String(cString: ZSTD_getErrorName(code)))")
        }
    }
}

/// Streaming zstd decompression; accepts concatenated frames, verifies each frame's checksum, and
/// reports a stream that stops inside a frame as truncated.
public struct ZstdDecompressor: StreamCodec {
    private let context: ZstdContextBox
    private var output: [UInt8]
    /// zstd's hint of how much input the current frame still needs (0 between frames).
    private var pending = 0
    private var sawInput = false

    public init() throws {
        guard let dctx = ZSTD_createDCtx() else {
            throw CodecError(kind: .internalFailure, codec: "zstd", detail: "cannot allocate a decompression context")
        }
        context = ZstdContextBox(dctx: dctx)
        output = [UInt8](repeating: 0, count: ZSTD_DStreamOutSize())
    }

    public mutating func process(_ input: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard input.count > 0 else { return }
        sawInput = true
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        let dctx = context.dctx!
        let capacity = output.count
        while true {
            let (result, produced): (Int, Int) = output.withUnsafeMutableBytes { out in
                var outBuffer = ZSTD_outBuffer(dst: out.baseAddress, size: capacity, pos: 0)
                let result = ZSTD_decompressStream(dctx, &outBuffer, &inBuffer)
                return (result, outBuffer.pos)
            }
            if ZSTD_isError(result) != 0 {
                throw CodecError(kind: .corrupted, codec: "zstd", detail: String(cString: ZSTD_getErrorName(result)))
            }
            pending = result
            if produced > 0 { try output.withUnsafeBytes { try emit(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) } }
            if inBuffer.pos == inBuffer.size && produced < capacity { return }
        }
    }

    public mutating func finish(emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        if !sawInput {
            throw CodecError(kind: .truncated, codec: "zstd", detail: "the stream is empty (not even one frame)")
        }
        if pending != 0 {
            throw CodecError(kind: .truncated, codec: "zstd", detail: "the input ends inside a frame")
        }
    }
}

/// Owns a zstd context and frees it with the codec (codecs are value types, contexts are not).
final class ZstdContextBox {
    let cctx: OpaquePointer?
    let dctx: OpaquePointer?
    init(cctx: OpaquePointer) { self.cctx = cctx; self.dctx = nil }
    init(dctx: OpaquePointer) { self.cctx = nil; self.dctx = dctx }
    deinit {
        if let cctx { ZSTD_freeCCtx(cctx) }
        if let dctx { ZSTD_freeDCtx(dctx) }
    }
}
