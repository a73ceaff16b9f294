/// One row of `pg_logical_slot_peek_binary_changes`: where the change sits in the WAL, the
/// transaction it belongs to, and the output plugin's message (one pgoutput message per row).
public struct ChangeRow: Sendable, Equatable {
    public var lsn: UInt64
    public var xid: UInt32
    public var data: [UInt8]

    public init(lsn: UInt64, xid: UInt32, data: [UInt8]) {
        self.lsn = lsn
        self.xid = xid
        self.data = data
    }
}

/// Reads `COPY (SELECT lsn, xid, data FROM pg_logical_slot_peek_binary_changes(…)) TO STDOUT
/// (FORMAT binary)` as it arrives, chunk by chunk.
///
/// Change batches are fetched through COPY so a batch of any size streams straight to the archive:
/// the parser keeps only the unconsumed tail of its input (at most one partial row, which may be a
/// multi-megabyte bytea), and every input byte is copied at most twice (into the tail, then into the
/// row). Binary COPY avoids escaping bytea as hex text, which would double its size.
///
/// Format (all integers big-endian): signature `PGCOPY\n\xff\r\n\0`, Int32 flags, Int32 header
/// extension length and that many bytes; then per tuple Int16 field count and per field Int32 length
/// (-1 for NULL) and the bytes; the trailer is an Int16 -1.
public struct ChangeRowCopyParser {
    private enum Phase { case header, rows, done }

    static let codec = "COPY binary"
    static let signature: [UInt8] = [0x50, 0x47, 0x43, 0x4F, 0x50, 0x59, 0x0A, 0xFF, 0x0D, 0x0A, 0x00]

    private var phase = Phase.header
    /// Input received but not yet consumed: always less than one complete header or row.
    private var tail: [UInt8] = []
    public private(set) var rowsSeen = 0

    public init() {}

    /// Feed any chunk boundaries; calls `row` for each complete row.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, row: (ChangeRow) throws -> Void) throws {
        guard bytes.count > 0 else { return }
        if tail.isEmpty {
            // Parse straight from the caller's buffer and keep only what is left over.
            var consumed = 0
            defer { if consumed < bytes.count { tail.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[consumed...])) } }
            try consume(bytes, consumed: &consumed, row: row)
        } else {
            tail.append(contentsOf: bytes)
            // Move the tail out while parsing so `consume` may mutate `self` (phase, rowsSeen).
            let pending = tail
            tail = []
            var consumed = 0
            // What is left starts inside this chunk whenever anything was consumed, so copying it
            // costs no more than the chunk did.
            defer { tail = consumed == 0 ? pending : Array(pending[consumed...]) }
            try pending.withUnsafeBytes { try consume($0, consumed: &consumed, row: row) }
        }
    }

    /// Throws CodecError(kind: .truncated, codec: "COPY binary", …) if the stream stopped before the
    /// trailer. Bad headers, field counts and lengths are reported by `feed` as `.corrupted`.
    public func finish() throws {
        switch phase {
        case .done:
            return
        case .header:
            throw CodecError(kind: .truncated, codec: Self.codec,
                             detail: tail.isEmpty ? "no data" : "stopped inside the header (\(tail.count) bytes)")
        case .rows:
            throw CodecError(kind: .truncated, codec: Self.codec,
                             detail: tail.isEmpty ? "stopped after \(rowsSeen) rows without the trailer"
                                                 : "stopped inside row \(rowsSeen + 1) (\(tail.count) bytes of it received)")
        }
    }

    /// Consumes every complete header, row and trailer at the start of `buffer`, advancing `consumed`
    /// past each one as it is handled (so a throwing `row` leaves the parser consistent).
    private mutating func consume(_ buffer: UnsafeRawBufferPointer, consumed: inout Int,
                                  row: (ChangeRow) throws -> Void) throws {
        while consumed < buffer.count {
            var reader = Reader(buffer: buffer, offset: consumed)
            switch phase {
            case .header:
                guard reader.has(Self.signature.count) else { return }
                guard reader.bytes(Self.signature.count).elementsEqual(Self.signature) else {
                    throw CodecError(kind: .corrupted, codec: Self.codec, detail: "bad signature")
                }
                guard let flags = reader.int32(), let extensionLength = reader.int32() else { return }
                // Bits 0–15 are critical (a reader must abort on any it does not know); bit 16 means
                // OIDs are included, which this reader does not expect.
                guard flags & 0x1_FFFF == 0 else {
                    throw CodecError(kind: .corrupted, codec: Self.codec, detail: "unsupported header flags \(flags)")
                }
                guard extensionLength >= 0 else {
                    throw CodecError(kind: .corrupted, codec: Self.codec, detail: "negative header extension length \(extensionLength)")
                }
                guard reader.has(Int(extensionLength)) else { return }
                reader.skip(Int(extensionLength))
                phase = .rows
                consumed = reader.offset
            case .rows:
                guard let fieldCount = reader.int16() else { return }
                if fieldCount == -1 {
                    phase = .done
                    consumed = reader.offset
                    continue
                }
                guard fieldCount == 3 else {
                    throw CodecError(kind: .corrupted, codec: Self.codec,
                                     detail: "row \(rowsSeen + 1) has \(fieldCount) fields, expected 3 (lsn, xid, data)")
                }
                guard let lsnLength = try fieldLength(&reader, "lsn") else { return }
                guard lsnLength == 8 else { throw badLength("lsn", lsnLength, "8") }
                guard let lsn = reader.uint64() else { return }
                guard let xidLength = try fieldLength(&reader, "xid") else { return }
                guard xidLength == 4 else { throw badLength("xid", xidLength, "4") }
                guard let xid = reader.uint32() else { return }
                guard let dataLength = try fieldLength(&reader, "data") else { return }
                guard reader.has(dataLength) else { return }
                let data = Array(reader.bytes(dataLength))
                rowsSeen += 1
                consumed = reader.offset
                try row(ChangeRow(lsn: lsn, xid: xid, data: data))
            case .done:
                throw CodecError(kind: .corrupted, codec: Self.codec, detail: "data after the trailer")
            }
        }
    }

    /// A field's length, or nil if it has not arrived yet; NULL and negative lengths are corrupt here
    /// (the three columns are never NULL).
    private func fieldLength(_ reader: inout Reader, _ field: String) throws -> Int? {
        guard let length = reader.int32() else { return nil }
        guard length >= 0 else {
            throw CodecError(kind: .corrupted, codec: Self.codec,
                             detail: length == -1 ? "row \(rowsSeen + 1): \(field) is NULL" : "row \(rowsSeen + 1): \(field) has length \(length)")
        }
        return Int(length)
    }

    private func badLength(_ field: String, _ length: Int, _ expected: String) -> CodecError {
        CodecError(kind: .corrupted, codec: Self.codec,
                   detail: "row \(rowsSeen + 1): \(field) has \(length) bytes, expected \(expected)")
    }

    /// Big-endian reads over a buffer; each returns nil (and reads nothing) when the bytes have not arrived.
    private struct Reader {
        let buffer: UnsafeRawBufferPointer
        var offset: Int

        func has(_ count: Int) -> Bool { buffer.count - offset >= count }
        mutating func skip(_ count: Int) { offset += count }

        mutating func bytes(_ count: Int) -> UnsafeRawBufferPointer {
            defer { offset += count }
            return UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + count)])
        }
        mutating func int16() -> Int16? {
            guard has(2) else { return nil }
            defer { offset += 2 }
            return Int16(bigEndian: buffer.loadUnaligned(fromByteOffset: offset, as: Int16.self))
        }
        mutating func int32() -> Int32? {
            guard has(4) else { return nil }
            defer { offset += 4 }
            return Int32(bigEndian: buffer.loadUnaligned(fromByteOffset: offset, as: Int32.self))
        }
        mutating func uint32() -> UInt32? {
            guard has(4) else { return nil }
            defer { offset += 4 }
            return UInt32(bigEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
        }
        mutating func uint64() -> UInt64? {
            guard has(8) else { return nil }
            defer { offset += 8 }
            return UInt64(bigEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        }
    }
}

/// Writes the COPY BINARY stream `ChangeRowCopyParser` reads: for tests, and for a streaming follower
/// that archives changes in the same format as a batch fetch.
public enum ChangeRowCopyWriter {
    /// Signature, flags 0, no header extension.
    public static func header() -> [UInt8] {
        ChangeRowCopyParser.signature + [0, 0, 0, 0, 0, 0, 0, 0]
    }

    public static func row(_ r: ChangeRow) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(2 + 4 + 8 + 4 + 4 + 4 + r.data.count)
        append(&out, UInt16(3))
        append(&out, UInt32(8))
        append(&out, r.lsn)
        append(&out, UInt32(4))
        append(&out, r.xid)
        append(&out, UInt32(r.data.count))
        out.append(contentsOf: r.data)
        return out
    }

    /// Field count -1.
    public static func trailer() -> [UInt8] { [0xFF, 0xFF] }

    static func append<T: FixedWidthInteger>(_ out: inout [UInt8], _ value: T) {
        withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) }
    }
}
