import Foundation

/// Consecutive INSERTs into one table within one source transaction, held back to be sent as
/// multi-row INSERTs: one statement for up to `maxRows` rows costs the server far less than as many
/// statements. Rows keep their order, nothing else is sent between them, and each statement must
/// insert exactly its number of rows.
struct PendingInserts {
    static let maxRows = 64
    static let maxBytes = 64 << 10

    private(set) var relid: UInt32?
    private(set) var rows: [[String?]] = []
    private(set) var firstLSN: UInt64 = 0
    private(set) var lastLSN: UInt64 = 0
    private var bytes = 0

    var isEmpty: Bool { rows.isEmpty }
    var isFull: Bool { rows.count >= Self.maxRows || bytes >= Self.maxBytes }

    mutating func append(_ relid: UInt32, _ values: [String?], at lsn: UInt64) {
        if rows.isEmpty { self.relid = relid; firstLSN = lsn }
        rows.append(values)
        lastLSN = lsn
        bytes += values.reduce(8) { $0 + ($1?.utf8.count ?? 0) }
    }

    /// Takes the rows out, leaving this empty.
    mutating func take() -> (relid: UInt32, rows: [[String?]], first: UInt64, last: UInt64)? {
        guard let relid, !rows.isEmpty else { return nil }
        defer { self = PendingInserts() }
        return (relid, rows, firstLSN, lastLSN)
    }

    /// The row counts to send `count` rows of `columns` columns in: powers of two, largest first, so a
    /// table needs at most seven prepared statements, and never more than PostgreSQL's 65,535 parameters.
    static func chunks(_ count: Int, columns: Int) -> [Int] {
        var limit = maxRows
        while limit > 1 && limit * max(columns, 1) > 65_535 { limit /= 2 }
        var sizes: [Int] = []
        var left = count
        while left > 0 {
            var size = limit
            while size > left { size /= 2 }
            sizes.append(size)
            left -= size
        }
        return sizes
    }

    /// `INSERT INTO table (columns) OVERRIDING SYSTEM VALUE VALUES ($1, …), (…)` for `rows` rows.
    static func sql(table: String, columns: [String], rows: Int) -> String {
        var tuples: [String] = []
        tuples.reserveCapacity(rows)
        for row in 0..<rows {
            tuples.append("(" + (1...columns.count).map { "$\(row * columns.count + $0)" }.joined(separator: ", ") + ")")
        }
        // OVERRIDING SYSTEM VALUE: identity values come from the source, as COPY restores them.
        return "INSERT INTO \(table) (\(columns.joined(separator: ", "))) OVERRIDING SYSTEM VALUE VALUES \(tuples.joined(separator: ", "))"
    }
}
