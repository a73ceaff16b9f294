import Foundation
import Testing
@testable import FTBackupKit

/// Runs a whole buffer through a codec, feeding it in pieces of `piece` bytes.
func transform(_ codec: inout some StreamCodec, _ input: [UInt8], piece: Int = 7_919) throws -> [UInt8] {
    var output: [UInt8] = []
    var offset = 0
    while offset < input.count {
        let end = min(input.count, offset + piece)
        try input[offset..<end].withUnsafeBytes { chunk in
            try codec.process(chunk) { output.append(contentsOf: $0) }
        }
        offset = end
    }
    try codec.finish { output.append(contentsOf: $0) }
    return output
}

func compressThenDecompress(_ codec: CompressionCodec, _ input: [UInt8]) throws -> [UInt8] {
    var compressor = try codec.makeCompressor(level: codec == .gzip ? 6 : 3)
    let compressed = try transform(&compressor, input)
    var decompressor = try codec.makeDecompressor()
    return try transform(&decompressor, compressed, piece: 1_021)
}

/// Text that looks like COPY output: compressible but not trivially.
func sampleCopyText(bytes: Int, seed: UInt64 = 7) -> [UInt8] {
    var generator = SplitMix(seed: seed)
    var out: [UInt8] = []
    out.reserveCapacity(bytes + 200)
    while out.count < bytes {
        let id = generator.next()
        out.append(contentsOf: Array("\(id)\tuser-\(id % 1000)@example.com\t\\N\t{\"k\": \(id % 97)}\tcafé\\tline\\n\n".utf8))
    }
    return Array(out.prefix(bytes))
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Resident memory of this process now, from /proc (Linux).
func residentBytes() -> Int64 {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kib = line.split(separator: " ").compactMap { Int64($0) }.first ?? 0
        return kib * 1024
    }
    return 0
}

@Suite struct CodecTests {
    @Test(arguments: [CompressionCodec.zstd, .gzip, .none])
    func emptyStreamRoundTrips(codec: CompressionCodec) throws {
        #expect(try compressThenDecompress(codec, []) == [])
    }

    @Test(arguments: [CompressionCodec.zstd, .gzip, .none])
    func oneByteRoundTrips(codec: CompressionCodec) throws {
        #expect(try compressThenDecompress(codec, [0x42]) == [0x42])
    }

    @Test(arguments: [CompressionCodec.zstd, .gzip])
    func multiMegabyteStreamRoundTripsAndShrinks(codec: CompressionCodec) throws {
        let input = sampleCopyText(bytes: 3_000_000)
        var compressor = try codec.makeCompressor(level: codec == .gzip ? 6 : 3)
        let compressed = try transform(&compressor, input, piece: 65_536)
        #expect(compressed.count < input.count / 2)
        var decompressor = try codec.makeDecompressor()
        #expect(try transform(&decompressor, compressed) == input)
    }

    @Test func zstdWithWorkerThreadsRoundTrips() throws {
        let input = sampleCopyText(bytes: 5_000_000)
        var compressor = try ZstdCompressor(level: 3, workers: 2)
        let compressed = try transform(&compressor, input, piece: 262_144)
        var decompressor = try ZstdDecompressor()
        #expect(try transform(&decompressor, compressed) == input)
    }

    /// 512 MiB through compress → decompress → digest, with resident memory staying flat.
    @Test(arguments: [CompressionCodec.zstd, .gzip])
    func streamFarLargerThanBuffersKeepsMemoryFlat(codec: CompressionCodec) throws {
        let block = sampleCopyText(bytes: 1 << 20)
        let total = codec == .zstd ? 512 : 128  // MiB; gzip is slower, 128 MiB still dwarfs its buffers
        var compressor = try codec.makeCompressor(level: 1)
        var decompressor = try codec.makeDecompressor()
        var inputDigest = StreamDigest()
        var outputDigest = StreamDigest()
        let baseline = residentBytes()
        var peak = baseline
        for _ in 0..<total {
            try block.withUnsafeBytes { chunk in
                inputDigest.update(chunk)
                try compressor.process(chunk) { compressed in
                    try decompressor.process(compressed) { outputDigest.update($0) }
                }
            }
            peak = max(peak, residentBytes())
        }
        try compressor.finish { compressed in try decompressor.process(compressed) { outputDigest.update($0) } }
        try decompressor.finish { outputDigest.update($0) }
        #expect(outputDigest.byteCount == Int64(total) << 20)
        #expect(outputDigest.hexDigest() == inputDigest.hexDigest())
        #expect(peak - baseline < 48 << 20, "resident memory grew by \(peak - baseline) bytes")
    }

    @Test(arguments: [CompressionCodec.zstd, .gzip])
    func truncatedInputIsAnError(codec: CompressionCodec) throws {
        var compressor = try codec.makeCompressor(level: 3)
        let compressed = try transform(&compressor, sampleCopyText(bytes: 200_000))
        for cut in [compressed.count - 1, compressed.count / 2, 5] {
            var decompressor = try codec.makeDecompressor()
            #expect(throws: CodecError.self) { _ = try transform(&decompressor, Array(compressed.prefix(cut))) }
        }
        var decompressor = try codec.makeDecompressor()
        let error = #expect(throws: CodecError.self) { _ = try transform(&decompressor, []) }
        #expect(error?.kind == .truncated)
    }

    @Test(arguments: [CompressionCodec.zstd, .gzip])
    func corruptedInputIsAnError(codec: CompressionCodec) throws {
        var compressor = try codec.makeCompressor(level: 3)
        let compressed = try transform(&compressor, sampleCopyText(bytes: 200_000))
        for position in [compressed.count / 2, compressed.count - 3] {
            var damaged = compressed
            damaged[position] ^= 0x5A
            var decompressor = try codec.makeDecompressor()
            #expect(throws: CodecError.self) { _ = try transform(&decompressor, damaged) }
        }
    }

    @Test func zstdReadsConcatenatedFrames() throws {
        var first = try ZstdCompressor()
        var second = try ZstdCompressor()
        let a = Array("first frame\n".utf8), b = Array("second frame\n".utf8)
        let joined = try transform(&first, a) + transform(&second, b)
        var decompressor = try ZstdDecompressor()
        #expect(try transform(&decompressor, joined) == a + b)
    }

    @Test func digestMatchesKnownSHA256() {
        var digest = StreamDigest()
        Array("ab".utf8).withUnsafeBytes { digest.update($0) }
        Array("c".utf8).withUnsafeBytes { digest.update($0) }
        #expect(digest.hexDigest() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(digest.byteCount == 3)
        #expect(StreamDigest().hexDigest() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }
}
