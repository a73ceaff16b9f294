/// Walks a binary COPY stream (PostgreSQL's `PGCOPY` file format) as it is decompressed, checking its
/// framing and counting its rows, in constant memory.
///
/// It exists so that `verify` proves more of a binary data file than its digest: that it is a whole
/// COPY stream (signature, header, every tuple with the table's number of fields, each field's length
/// within the data, the end marker and nothing after it) holding the rows the manifest records. A
/// file that was cut or garbled before its digest was taken is named, not found at restore.
struct BinaryCopyScanner {
    static let signature: [UInt8] = Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00]

    enum State: Equatable {
        /// Signature (11), flags (4), header extension length (4).
        case header
        case headerExtension(remaining: Int)
        /// The next tuple's 16-bit field count (-1: the end marker).
        case tupleStart
        case fieldLength
        case fieldData(remaining: Int)
        case ended
    }

    /// The number of fields every tuple must have (the table's copied columns).
    let fields: Int
    private(set) var state = State.header
    private(set) var rows: Int64 = 0
    private var fieldsLeft = 0
    /// Bytes of a fixed-size item split across chunks.
    private var pending: [UInt8] = []

    init(fields: Int) { self.fields = fields }

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    mutating func consume(_ chunk: UnsafeRawBufferPointer) throws {
        var index = 0
        let count = chunk.count
        while index < count {
            switch state {
            case .headerExtension(let remaining):
                let take = min(remaining, count - index)
                index += take
                state = remaining - take == 0 ? .tupleStart : .headerExtension(remaining: remaining - take)
            case .fieldData(let remaining):
                let take = min(remaining, count - index)
                index += take
                if remaining - take > 0 { state = .fieldData(remaining: remaining - take) } else { try endField() }
            case .ended:
                throw Malformed(description: "binary COPY data continues after its end marker")
            case .header, .tupleStart, .fieldLength:
                let size = state == .header ? 19 : state == .tupleStart ? 2 : 4
                let take = min(size - pending.count, count - index)
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[index..<(index + take)]))
                index += take
                if pending.count == size {
                    let item = pending
                    pending.removeAll(keepingCapacity: true)
                    try complete(item)
                }
            }
        }
    }

    /// Feeds `chunk` and keeps the first problem instead of throwing it (a damaged file is named by its
    /// digest first: see ``problem``).
    mutating func consumeRecording(_ chunk: UnsafeRawBufferPointer) {
        guard problem == nil else { return }
        do { try consume(chunk) } catch { problem = "\(error)" }
    }

    /// The first framing problem `consumeRecording` met.
    private(set) var problem: String?

    /// Throws unless the stream ended with its end marker after exactly `expectedRows` rows.
    func finish(expectedRows: Int64) throws {
        guard state == .ended else {
            throw Malformed(description: "binary COPY data ends without its end marker after \(rows) rows (truncated)")
        }
        guard rows == expectedRows else {
            throw Malformed(description: "binary COPY data holds \(rows) rows, the manifest records \(expectedRows)")
        }
    }

    private mutating func complete(_ item: [UInt8]) throws {
        switch state {
        case .header:
            guard Array(item[0..<11]) == Self.signature else { throw Malformed(description: "not binary COPY data (bad signature)") }
            guard Self.int32(item, 11) & (1 << 16) == 0 else { throw Malformed(description: "binary COPY data with oids") }
            let extensionLength = Int(Self.int32(item, 15))
            guard extensionLength >= 0 else { throw Malformed(description: "binary COPY header extension length \(extensionLength)") }
            state = extensionLength == 0 ? .tupleStart : .headerExtension(remaining: extensionLength)
        case .tupleStart:
            let fieldCount = Int(Int16(bitPattern: UInt16(item[0]) << 8 | UInt16(item[1])))
            if fieldCount == -1 {
                state = .ended
                return
            }
            guard fieldCount == fields else {
                throw Malformed(description: "binary COPY row \(rows + 1) has \(fieldCount) fields, the table has \(fields) columns")
            }
            rows += 1
            fieldsLeft = fieldCount
            state = fieldCount == 0 ? .tupleStart : .fieldLength
        case .fieldLength:
            let length = Int(Self.int32(item, 0))
            if length == -1 { try endField(); return }
            guard length >= 0 else { throw Malformed(description: "binary COPY row \(rows) has a field of length \(length)") }
            if length == 0 { try endField() } else { state = .fieldData(remaining: length) }
        default:
            break
        }
    }

    private mutating func endField() throws {
        fieldsLeft -= 1
        state = fieldsLeft == 0 ? .tupleStart : .fieldLength
    }

    private static func int32(_ bytes: [UInt8], _ at: Int) -> Int32 {
        Int32(bitPattern: UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3]))
    }
}
