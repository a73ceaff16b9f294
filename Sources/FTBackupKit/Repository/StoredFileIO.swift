import Foundation

/// Writes one repository file from a raw stream: compress → SHA-256 of what is stored → storage,
/// in bounded memory. Nothing is visible under the file's name until `finish()`.
public final class CompressedFileWriter {
    private let writer: any StorageWriter
    private var compressor: any StreamCodec
    private var digest = StreamDigest()
    private var rawBytes: Int64 = 0
    private let path: String
    private let codec: CompressionCodec

    public init(storage: any RepositoryStorage, path: String, compression: Policy.Compression) throws {
        self.path = path
        self.codec = compression.codec
        compressor = try compression.codec.makeCompressor(level: compression.level, workers: compression.workers)
        writer = try storage.openWrite(path)
    }

    public func write(_ raw: UnsafeRawBufferPointer) throws {
        rawBytes += Int64(raw.count)
        try compressor.process(raw) { stored in
            digest.update(stored)
            try writer.write(stored)
        }
    }

    /// Ends the stream, makes the file durable and returns what the manifest records about it.
    public func finish() throws -> BackupManifest.StoredFile {
        try compressor.finish { stored in
            digest.update(stored)
            try writer.write(stored)
        }
        try writer.commit()
        return BackupManifest.StoredFile(path: path, codec: codec, storedBytes: digest.byteCount,
                                         sha256: digest.hexDigest(), rawBytes: rawBytes)
    }

    public func abort() { writer.abort() }
}

/// Reads one repository file back, checking it against its manifest entry as it streams.
public enum StoredFileReader {
    /// Streams `file` (a path relative to `folder`) through its decompressor into `sink` (or, with
    /// `decompress: false`, only checks its size and digest). Throws a data error naming the file
    /// when its size, SHA-256, compressed framing or decompressed length is wrong.
    public static func read(_ storage: any RepositoryStorage, folder: String, file: BackupManifest.StoredFile,
                            decompress: Bool = true, into sink: (UnsafeRawBufferPointer) throws -> Void = { _ in }) throws {
        let path = "\(folder)/\(file.path)"
        let shown = "\(storage.location)/\(path)"
        func bad(_ why: String) -> FTBackupError {
            FTBackupError(.dataError, "repository file \(shown) is bad: \(why)",
                          hint: "run ftbackup verify; restore from another backup if it is damaged")
        }
        let reader: any StorageReader
        do { reader = try storage.openRead(path) } catch let error as FTBackupError where error.status != .permission {
            throw bad("cannot open it (\(error.message))")
        }
        defer { reader.close() }
        var digest = StreamDigest()
        var decompressor: (any StreamCodec)? = decompress ? try file.codec.makeDecompressor() : nil
        var rawBytes: Int64 = 0
        func emit(_ raw: UnsafeRawBufferPointer) throws {
            rawBytes += Int64(raw.count)
            try sink(raw)
        }
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        // A codec error is reported only if the size and digest are right: a changed file is named as such.
        var codecFailure: CodecError?
        while true {
            let count = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
            if count == 0 { break }
            try buffer.withUnsafeBytes { raw in
                let chunk = UnsafeRawBufferPointer(rebasing: raw[0..<count])
                digest.update(chunk)
                if digest.byteCount > file.storedBytes { throw bad("longer than the \(file.storedBytes) bytes recorded") }
                guard codecFailure == nil, decompressor != nil else { return }
                do { try decompressor!.process(chunk, emit: emit) } catch let error as CodecError { codecFailure = error }
            }
        }
        if digest.byteCount != file.storedBytes {
            throw bad("\(digest.byteCount) bytes instead of the \(file.storedBytes) recorded (truncated)")
        }
        if digest.hexDigest() != file.sha256 { throw bad("SHA-256 mismatch (the file changed after it was written)") }
        if codecFailure == nil, decompressor != nil {
            do { try decompressor!.finish(emit: emit) } catch let error as CodecError { codecFailure = error }
        }
        if let codecFailure { throw bad(codecFailure.description) }
        if decompressor != nil, rawBytes != file.rawBytes {
            throw bad("decompresses to \(rawBytes) bytes instead of \(file.rawBytes)")
        }
    }
}
