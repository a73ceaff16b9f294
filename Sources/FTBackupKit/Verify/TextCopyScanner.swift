import Foundation

/// Walks a text COPY stream as it is decompressed, counting its rows, in constant memory.
///
/// It exists so that `verify` proves more of a text data file than its digest, as ``BinaryCopyScanner`` does for
/// binary ones: COPY text ends every row with a newline and writes a newline inside a value as the two characters
/// `\n`, so a whole file holds exactly as many newlines as rows and ends with one. A file cut or miscounted before
/// its digest was taken, or a binary COPY stream put where the manifest says text (a restore would load it as text
/// and fail, or worse), is named by `verify`, not found at restore.
struct TextCopyScanner {
    private(set) var rows: Int64 = 0
    /// The first bytes, enough to recognise the binary signature.
    private var head: [UInt8] = []
    private var lastByte: UInt8?

    mutating func consume(_ chunk: UnsafeRawBufferPointer) {
        guard let last = chunk.last else { return }
        if head.count < BinaryCopyScanner.signature.count {
            head += chunk.prefix(BinaryCopyScanner.signature.count - head.count)
        }
        guard var at = chunk.baseAddress else { return }
        let end = at + chunk.count
        while at < end, let found = memchr(at, 0x0A, end - at) {
            rows += 1
            at = UnsafeRawPointer(found) + 1
        }
        lastByte = last
    }

    /// Throws unless the stream is text COPY data of exactly `expectedRows` whole rows.
    func finish(expectedRows: Int64) throws {
        if head == BinaryCopyScanner.signature {
            throw BinaryCopyScanner.Malformed(description: "binary COPY data in a file the manifest records as text")
        }
        if let lastByte, lastByte != 0x0A {
            throw BinaryCopyScanner.Malformed(description: "text COPY data ends in the middle of a row after \(rows) rows (truncated)")
        }
        guard rows == expectedRows else {
            throw BinaryCopyScanner.Malformed(description: "text COPY data holds \(rows) rows, the manifest records \(expectedRows)")
        }
    }
}
