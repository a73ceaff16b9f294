import Foundation

/// A relation as pgoutput describes it (generated and dropped columns are left out by the server).
///
/// Row messages carry only a relid and bare values; this description gives them table and column
/// names. The server sends it again whenever its cached definition changes, so the newest one wins,
/// and archived segments store the descriptions their rows need (hence `Codable`).
public struct RelationDescription: Sendable, Equatable, Codable {
    /// One published column, in the order tuple values arrive.
    public struct Column: Sendable, Equatable, Codable {
        public var name: String
        public var typeOID: UInt32
        public var typmod: Int32
        /// Part of the replica identity (the key UPDATE and DELETE are matched on).
        public var isKey: Bool

        public init(name: String, typeOID: UInt32, typmod: Int32, isKey: Bool) {
            self.name = name
            self.typeOID = typeOID
            self.typmod = typmod
            self.isKey = isKey
        }
    }

    public var relid: UInt32
    /// Empty for `pg_catalog`, as the server sends it.
    public var namespace: String
    public var name: String
    /// 'd' default, 'n' nothing, 'f' full, 'i' index (ASCII value).
    public var replicaIdentity: UInt8
    public var columns: [Column]

    public init(relid: UInt32, namespace: String, name: String, replicaIdentity: UInt8, columns: [Column]) {
        self.relid = relid
        self.namespace = namespace
        self.name = name
        self.replicaIdentity = replicaIdentity
        self.columns = columns
    }
}

/// One column value of a pgoutput tuple, in the type's text form.
///
/// `unchangedToast` marks a TOASTed value an UPDATE did not touch: the server does not send it, so
/// applying the change must leave that column alone rather than set it.
public enum TupleValue: Sendable, Equatable {
    case null
    case unchangedToast
    case text(String)
}

/// A decoded pgoutput (proto_version 1) message: one per row of a change batch or per XLogData
/// message of a replication stream.
public enum PgOutputMessage: Sendable, Equatable {
    /// `commitTime`: microseconds since 2000-01-01 UTC.
    case begin(finalLSN: UInt64, commitTime: Int64, xid: UInt32)
    case commit(flags: UInt8, commitLSN: UInt64, endLSN: UInt64, commitTime: Int64)
    case origin(lsn: UInt64, name: String)
    case relation(RelationDescription)
    case type(oid: UInt32, namespace: String, name: String)
    case insert(relid: UInt32, new: [TupleValue])
    /// 'K' → `oldKey`, 'O' → `oldFull`; both nil when the key did not change and identity is not FULL.
    case update(relid: UInt32, oldKey: [TupleValue]?, oldFull: [TupleValue]?, new: [TupleValue])
    /// Exactly one of `oldKey` ('K') and `oldFull` ('O') is set by the decoder.
    case delete(relid: UInt32, oldKey: [TupleValue]?, oldFull: [TupleValue]?)
    case truncate(relids: [UInt32], cascade: Bool, restartIdentity: Bool)
    /// 'M', from `pg_logical_emit_message` (sent only with the `messages` option).
    case logicalMessage(transactional: Bool, lsn: UInt64, prefix: String, content: [UInt8])
}

/// Decodes pgoutput proto_version 1 messages (big-endian integers, NUL-terminated UTF-8 strings),
/// so the archive can be checked, indexed and replayed without the server.
///
/// Anything malformed — an unknown message type, a buffer too short or too long, a tuple column kind
/// other than `n`/`u`/`t` (binary `b` values need the `binary` option, which ftbackup does not ask
/// for), invalid UTF-8 — throws `CodecError(kind: .corrupted, codec: "pgoutput", …)`.
public enum PgOutputDecoder {
    static let codec = "pgoutput"
    /// Seconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
    static let postgresEpochUnixSeconds: Int64 = 946_684_800

    /// With `byteText`, tuple values are not UTF-8 (a segment decoded in another database encoding,
    /// e.g. SQL_ASCII): each byte becomes the scalar of the same number (U+0000…U+00FF), so the exact
    /// bytes come back through ``TupleValue/rawBytes(_:)``.
    public static func decode(_ bytes: [UInt8], byteText: Bool = false) throws -> PgOutputMessage {
        var r = MessageReader(bytes: bytes)
        r.byteText = byteText
        let kind = try r.uint8()
        let message: PgOutputMessage
        switch kind {
        case UInt8(ascii: "B"):
            message = .begin(finalLSN: try r.uint64(), commitTime: try r.int64(), xid: try r.uint32())
        case UInt8(ascii: "C"):
            message = .commit(flags: try r.uint8(), commitLSN: try r.uint64(), endLSN: try r.uint64(), commitTime: try r.int64())
        case UInt8(ascii: "O"):
            message = .origin(lsn: try r.uint64(), name: try r.string())
        case UInt8(ascii: "R"):
            let relid = try r.uint32()
            let namespace = try r.string()
            let name = try r.string()
            let replicaIdentity = try r.uint8()
            let count = try r.count16("columns")
            var columns: [RelationDescription.Column] = []
            columns.reserveCapacity(count)
            for _ in 0..<count {
                let flags = try r.uint8()
                columns.append(.init(name: try r.string(), typeOID: try r.uint32(), typmod: try r.int32(), isKey: flags & 1 != 0))
            }
            message = .relation(RelationDescription(relid: relid, namespace: namespace, name: name,
                                                    replicaIdentity: replicaIdentity, columns: columns))
        case UInt8(ascii: "Y"):
            message = .type(oid: try r.uint32(), namespace: try r.string(), name: try r.string())
        case UInt8(ascii: "I"):
            let relid = try r.uint32()
            try r.expect(UInt8(ascii: "N"), "insert")
            message = .insert(relid: relid, new: try r.tuple())
        case UInt8(ascii: "U"):
            let relid = try r.uint32()
            var oldKey: [TupleValue]?
            var oldFull: [TupleValue]?
            switch try r.uint8() {
            case UInt8(ascii: "K"):
                oldKey = try r.tuple()
                try r.expect(UInt8(ascii: "N"), "update")
            case UInt8(ascii: "O"):
                oldFull = try r.tuple()
                try r.expect(UInt8(ascii: "N"), "update")
            case UInt8(ascii: "N"):
                break
            case let other:
                throw corrupted("update has tuple kind \(describe(other)), expected K, O or N")
            }
            message = .update(relid: relid, oldKey: oldKey, oldFull: oldFull, new: try r.tuple())
        case UInt8(ascii: "D"):
            let relid = try r.uint32()
            switch try r.uint8() {
            case UInt8(ascii: "K"): message = .delete(relid: relid, oldKey: try r.tuple(), oldFull: nil)
            case UInt8(ascii: "O"): message = .delete(relid: relid, oldKey: nil, oldFull: try r.tuple())
            case let other: throw corrupted("delete has tuple kind \(describe(other)), expected K or O")
            }
        case UInt8(ascii: "T"):
            let count = try r.int32()
            guard count >= 0, Int(count) <= r.remaining / 4 else { throw corrupted("truncate of \(count) relations") }
            let flags = try r.uint8()
            var relids: [UInt32] = []
            relids.reserveCapacity(Int(count))
            for _ in 0..<count { relids.append(try r.uint32()) }
            message = .truncate(relids: relids, cascade: flags & 1 != 0, restartIdentity: flags & 2 != 0)
        case UInt8(ascii: "M"):
            let flags = try r.uint8()
            let lsn = try r.uint64()
            let prefix = try r.string()
            let length = try r.int32()
            guard length >= 0 else { throw corrupted("message content length \(length)") }
            message = .logicalMessage(transactional: flags & 1 != 0, lsn: lsn, prefix: prefix, content: try r.bytes(Int(length)))
        default:
            throw corrupted("unknown message type \(describe(kind))")
        }
        guard r.remaining == 0 else {
            throw corrupted("\(r.remaining) bytes after a '\(Character(Unicode.Scalar(kind)))' message")
        }
        return message
    }

    /// PostgreSQL timestamps (µs since 2000-01-01 UTC) to Date and back.
    public static func date(fromPostgresMicroseconds microseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(postgresEpochUnixSeconds) + Double(microseconds) / 1_000_000)
    }

    /// The nearest microsecond; dates beyond PostgreSQL's range are clamped.
    public static func postgresMicroseconds(from date: Date) -> Int64 {
        let seconds = date.timeIntervalSince1970 - Double(postgresEpochUnixSeconds)
        let microseconds = (seconds * 1_000_000).rounded()
        guard microseconds.isFinite else { return microseconds > 0 ? .max : .min }
        return Int64(exactly: microseconds) ?? (microseconds > 0 ? .max : .min)
    }

    static func corrupted(_ detail: String) -> CodecError {
        CodecError(kind: .corrupted, codec: codec, detail: detail)
    }

    static func describe(_ byte: UInt8) -> String {
        (0x21...0x7E).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "0x" + String(byte, radix: 16)
    }

    /// Big-endian reads over one message; running past its end is corruption.
    private struct MessageReader {
        let bytes: [UInt8]
        var offset = 0
        /// Tuple text carries bytes, not UTF-8 (see `decode(_:byteText:)`).
        var byteText = false

        var remaining: Int { bytes.count - offset }

        mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
            guard count <= remaining else {
                throw corrupted("message ends early: needs \(count) more bytes at offset \(offset), has \(remaining)")
            }
            defer { offset += count }
            return bytes[offset..<(offset + count)]
        }

        mutating func integer<T: FixedWidthInteger>(_: T.Type) throws -> T {
            var value: T = 0
            for byte in try take(MemoryLayout<T>.size) { value = value << 8 | T(truncatingIfNeeded: byte) }
            return value
        }

        mutating func uint8() throws -> UInt8 { try integer(UInt8.self) }
        mutating func int16() throws -> Int16 { try integer(Int16.self) }
        mutating func int32() throws -> Int32 { try integer(Int32.self) }
        mutating func uint32() throws -> UInt32 { try integer(UInt32.self) }
        mutating func int64() throws -> Int64 { try integer(Int64.self) }
        mutating func uint64() throws -> UInt64 { try integer(UInt64.self) }
        mutating func bytes(_ count: Int) throws -> [UInt8] { Array(try take(count)) }

        mutating func expect(_ byte: UInt8, _ what: String) throws {
            let found = try uint8()
            guard found == byte else {
                throw corrupted("\(what) has tuple kind \(describe(found)), expected \(describe(byte))")
            }
        }

        /// An Int16 count that cannot be negative, nor exceed the bytes left (each item takes ≥ 1 byte).
        mutating func count16(_ what: String) throws -> Int {
            let count = try int16()
            guard count >= 0, Int(count) <= remaining else { throw corrupted("\(count) \(what) with \(remaining) bytes left") }
            return Int(count)
        }

        /// A NUL-terminated string.
        mutating func string() throws -> String {
            guard let end = bytes[offset...].firstIndex(of: 0) else { throw corrupted("string at offset \(offset) has no terminator") }
            let text = try Self.utf8(bytes[offset..<end])
            offset = end + 1
            return text
        }

        /// TupleData: Int16 column count, per column `n`, `u` or `t` + Int32 length + text.
        mutating func tuple() throws -> [TupleValue] {
            let count = try count16("tuple columns")
            var values: [TupleValue] = []
            values.reserveCapacity(count)
            for _ in 0..<count {
                switch try uint8() {
                case UInt8(ascii: "n"): values.append(.null)
                case UInt8(ascii: "u"): values.append(.unchangedToast)
                case UInt8(ascii: "t"):
                    let length = try int32()
                    guard length >= 0 else { throw corrupted("tuple value length \(length)") }
                    let slice = try take(Int(length))
                    values.append(.text(byteText ? String(String.UnicodeScalarView(slice.map { Unicode.Scalar($0) })) : try Self.utf8(slice)))
                case let other:
                    throw corrupted("tuple column kind \(describe(other)), expected n, u or t")
                }
            }
            return values
        }

        /// Strict UTF-8: a repaired string would silently change archived data.
        static func utf8(_ slice: ArraySlice<UInt8>) throws -> String {
            let text = String(decoding: slice, as: UTF8.self)
            guard text.utf8.elementsEqual(slice) else { throw corrupted("text is not valid UTF-8") }
            return text
        }
    }
}

/// Encodes pgoutput proto_version 1 messages exactly as the server does: the inverse of
/// `PgOutputDecoder`, for tests and fixtures.
public enum PgOutputEncoder {
    public static func encode(_ message: PgOutputMessage) -> [UInt8] {
        var w = Writer()
        switch message {
        case let .begin(finalLSN, commitTime, xid):
            w.byte("B"); w.int(finalLSN); w.int(commitTime); w.int(xid)
        case let .commit(flags, commitLSN, endLSN, commitTime):
            w.byte("C"); w.int(flags); w.int(commitLSN); w.int(endLSN); w.int(commitTime)
        case let .origin(lsn, name):
            w.byte("O"); w.int(lsn); w.string(name)
        case let .relation(relation):
            w.byte("R"); w.int(relation.relid); w.string(relation.namespace); w.string(relation.name)
            w.int(relation.replicaIdentity); w.int(Int16(truncatingIfNeeded: relation.columns.count))
            for column in relation.columns {
                w.int(UInt8(column.isKey ? 1 : 0)); w.string(column.name); w.int(column.typeOID); w.int(column.typmod)
            }
        case let .type(oid, namespace, name):
            w.byte("Y"); w.int(oid); w.string(namespace); w.string(name)
        case let .insert(relid, new):
            w.byte("I"); w.int(relid); w.byte("N"); w.tuple(new)
        case let .update(relid, oldKey, oldFull, new):
            w.byte("U"); w.int(relid)
            if let oldKey { w.byte("K"); w.tuple(oldKey) } else if let oldFull { w.byte("O"); w.tuple(oldFull) }
            w.byte("N"); w.tuple(new)
        case let .delete(relid, oldKey, oldFull):
            w.byte("D"); w.int(relid)
            if let oldKey { w.byte("K"); w.tuple(oldKey) } else { w.byte("O"); w.tuple(oldFull ?? []) }
        case let .truncate(relids, cascade, restartIdentity):
            w.byte("T"); w.int(Int32(truncatingIfNeeded: relids.count))
            w.int(UInt8((cascade ? 1 : 0) | (restartIdentity ? 2 : 0)))
            for relid in relids { w.int(relid) }
        case let .logicalMessage(transactional, lsn, prefix, content):
            w.byte("M"); w.int(UInt8(transactional ? 1 : 0)); w.int(lsn); w.string(prefix)
            w.int(Int32(truncatingIfNeeded: content.count)); w.out.append(contentsOf: content)
        }
        return w.out
    }

    private struct Writer {
        var out: [UInt8] = []

        mutating func byte(_ ascii: Unicode.Scalar) { out.append(UInt8(ascii: ascii)) }
        mutating func int<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) }
        }
        mutating func string(_ s: String) { out.append(contentsOf: s.utf8); out.append(0) }
        mutating func tuple(_ values: [TupleValue]) {
            int(Int16(truncatingIfNeeded: values.count))
            for value in values {
                switch value {
                case .null: byte("n")
                case .unchangedToast: byte("u")
                case let .text(text): byte("t"); int(Int32(truncatingIfNeeded: text.utf8.count)); out.append(contentsOf: text.utf8)
                }
            }
        }
    }
}

/// LSN text form "16/B374D848" <-> UInt64, as PostgreSQL prints and reads `pg_lsn`.
public enum LSN {
    /// Upper and lower 32 bits in uppercase hex without padding, like the server.
    public static func format(_ v: UInt64) -> String {
        String(v >> 32, radix: 16, uppercase: true) + "/" + String(v & 0xFFFF_FFFF, radix: 16, uppercase: true)
    }

    /// Accepts what `pg_lsn` input accepts: 1–8 hex digits, a slash, 1–8 hex digits; nil otherwise.
    public static func parse(_ s: String) -> UInt64? {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        var halves: [UInt64] = []
        for part in parts {
            guard (1...8).contains(part.utf8.count), part.utf8.allSatisfy({ isHex($0) }),
                  let value = UInt64(part, radix: 16) else { return nil }
            halves.append(value)
        }
        return halves[0] << 32 | halves[1]
    }

    private static func isHex(_ c: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(c)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(c)
    }
}
