/// Walks a text COPY stream as it is decompressed, counting its rows, in constant memory.
///
/// It exists so that `verify` proves more of a text data file than its digest, as ``BinaryCopyScanner`` does for
/// binary ones: COPY text ends every row with a newline and writes a newline inside a value as the two characters
/// `\n`, so a whole file holds exactly as many newlines as rows and ends with one. A file cut or miscounted before
/// its digest was taken, or a binary COPY stream put where the manifest says text (a restore would load it as text
/// and fail, or worse), is named by `verify`, not found at restore.
///
/// COPY text also writes a tab inside a value as `\t` (every server encoding is ASCII-safe: no byte of a multibyte
/// character is below 0x80), so a row of `fields` columns holds exactly `fields - 1` tabs, and a row of a table
/// without copied columns is empty. Another table's data with as many rows (its file under this table's name, as
/// ``BinaryCopyScanner`` would name it by its field count) is named too.
struct TextCopyScanner {
    private(set) var rows: Int64 = 0
    /// Columns each row must hold.
    private let fields: Int
    /// The first bytes, enough to recognise the binary signature.
    private var head: [UInt8] = []
    private var lastByte: UInt8?
    private var tabsInRow = 0
    private var bytesInRow = 0
    /// The first row whose field count is wrong: (row number from 1, fields it holds).
    private var badRow: (row: Int64, fields: Int)?

    init(fields: Int) {
        self.fields = fields
    }

    mutating func consume(_ chunk: UnsafeRawBufferPointer) {
        guard let last = chunk.last else { return }
        if head.count < BinaryCopyScanner.signature.count {
            head += chunk.prefix(BinaryCopyScanner.signature.count - head.count)
        }
        let tabs = max(0, fields - 1)
        for byte in chunk {
            if byte == 0x0A {
                rows += 1
                if badRow == nil, tabsInRow != tabs || (fields == 0 && bytesInRow > 0) {
                    badRow = (rows, fields == 0 && tabsInRow == 0 ? 1 : tabsInRow + 1)
                }
                tabsInRow = 0
                bytesInRow = 0
            } else {
                bytesInRow += 1
                if byte == 0x09 { tabsInRow += 1 }
            }
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
        if let badRow {
            throw BinaryCopyScanner.Malformed(description: "text COPY row \(badRow.row) holds \(badRow.fields) fields, the manifest records \(fields) columns")
        }
        guard rows == expectedRows else {
            throw BinaryCopyScanner.Malformed(description: "text COPY data holds \(rows) rows, the manifest records \(expectedRows)")
        }
    }
}
