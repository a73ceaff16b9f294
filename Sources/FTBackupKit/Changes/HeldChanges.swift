import Foundation

/// Replay's changes held back to be sent as multi-row statements, one run per table: the set-based apply.
///
/// Replay runs as a replica (`session_replication_role = replica`) into tables whose triggers and foreign
/// keys are not yet created, so within a target transaction one table's changes cannot affect another's:
/// runs of different tables go in any order. Within a table, changes to different keys commute as long as
/// nothing else orders them, so a run holds a table's INSERTs, UPDATEs by key and DELETEs by key with no key
/// twice, and is sent as one statement per kind (and per set of updated columns) and power-of-two chunk:
/// `DELETE … USING (VALUES …)` first (a delete only frees a unique value, so every later insert still fits),
/// then `INSERT … VALUES (…), (…)`, then `UPDATE … FROM (VALUES …)`. Each statement touches each row at most
/// once and must touch exactly its number of rows. A run is sent when full, when the table's next change does
/// not fit it (a key it holds: that change comes after the run), or when the caller flushes (before a target
/// COMMIT, a TRUNCATE, a change of encoding). The caller keeps out of runs what depends on order within a
/// statement or across keys, sending the table's run first: an UPDATE setting a column of a unique index or
/// exclusion constraint, a key-changing UPDATE, rows matched by their whole old value. INSERTs without a key
/// (a table without one) only share a run with other INSERTs, in order.
struct HeldChanges {
    enum Kind: String { case insert = "I", update = "U", delete = "D" }

    /// One table's held changes.
    struct Run {
        let relid: UInt32
        /// The relation's key columns (indices), to find an INSERT's key in its row; empty: it has none.
        let keyColumns: [Int]
        /// Parameters of each change: an INSERT's new row; a DELETE's key; an UPDATE's set values, then its key.
        var inserts: [[String?]] = []
        var deletes: [[String?]] = []
        /// UPDATEs per set of set columns (indices into the relation's columns), in the order the sets came.
        var updates: [(setColumns: [Int], rows: [[String?]])] = []
        /// The keys held. An INSERT's is only worked out once the run holds an UPDATE or DELETE too: a run of
        /// INSERTs alone keeps their order and needs none (a bulk load pays nothing for them).
        var keys: Set<[String?]> = []
        var insertKeysPending = false
        /// Some INSERT has no key (a table without one, or NULL in it): the run takes only INSERTs.
        var unkeyed = false
        var count = 0
        var bytes = 0
        /// The first change's source (its transaction, its LSN), and the last change's.
        var first: ReplaySource
        var lastCommitLSN: UInt64
        var lastChangeLSN: UInt64

        var holdsOnlyInserts: Bool { deletes.isEmpty && updates.isEmpty }

        func key(ofInsert row: [String?]) -> [String?]? {
            guard !keyColumns.isEmpty else { return nil }
            var key: [String?] = []
            key.reserveCapacity(keyColumns.count)
            for index in keyColumns {
                guard index < row.count, let value = row[index] else { return nil }
                key.append(value)
            }
            return key
        }

        mutating func registerInsertKeys() {
            guard insertKeysPending else { return }
            for row in inserts {
                if let key = key(ofInsert: row) { keys.insert(key) } else { unkeyed = true }
            }
            insertKeysPending = false
        }

        /// Whether the run can take the change (an UPDATE's or DELETE's `key`; an INSERT's `row`).
        mutating func accepts(_ kind: Kind, _ setColumns: [Int], key: [String?]?, row: [String?]) -> Bool {
            guard count < HeldChanges.maxRows, bytes < HeldChanges.maxBytes else { return false }
            if kind == .insert {
                if holdsOnlyInserts { return true }
                return self.key(ofInsert: row).map { !keys.contains($0) } ?? false
            }
            registerInsertKeys()
            guard let key, !unkeyed, !keys.contains(key) else { return false }
            return kind != .update || updates.count < HeldChanges.maxShapes || updates.contains { $0.setColumns == setColumns }
        }
    }

    static let maxRows = 64
    static let maxBytes = 64 << 10
    /// Sets of updated columns in one run, at most.
    static let maxShapes = 8
    /// All runs together, at most: past it every run is sent.
    static let maxHeldBytes = 8 << 20

    /// Open runs in the order they began; `index` finds a table's. Runs are changed in place, never copied.
    private var runs: [Run] = []
    private var index: [UInt32: Int] = [:]
    private(set) var heldBytes = 0

    var isEmpty: Bool { runs.isEmpty }

    /// The table's run, taken out, unless it can take a change of this kind and shape with this key (an
    /// UPDATE's or DELETE's) or row (an INSERT's).
    mutating func closing(_ relid: UInt32, unlessItAccepts kind: Kind, _ setColumns: [Int], key: [String?]?, row: [String?] = []) -> Run? {
        guard let position = index[relid], !runs[position].accepts(kind, setColumns, key: key, row: row) else { return nil }
        return take(relid)
    }

    /// Adds a change (`key`: an UPDATE's or DELETE's key values; `keyColumns`: where an INSERT's row holds its
    /// key) to the table's run, which `closing` made sure accepts it; true when the run is now full.
    mutating func append(_ relid: UInt32, _ kind: Kind, _ setColumns: [Int], values: [String?], key: [String?]?, keyColumns: [Int] = [],
                         source: ReplaySource) -> Bool {
        let size = values.reduce(8) { $0 + ($1?.utf8.count ?? 0) }
        let position: Int
        if let known = index[relid] {
            position = known
        } else {
            position = runs.count
            index[relid] = position
            runs.append(Run(relid: relid, keyColumns: keyColumns, first: source, lastCommitLSN: source.commitLSN, lastChangeLSN: source.changeLSN))
        }
        switch kind {
        case .insert:
            if runs[position].holdsOnlyInserts {
                runs[position].insertKeysPending = true
            } else if let key = runs[position].key(ofInsert: values) {
                runs[position].keys.insert(key)
            } else {
                runs[position].unkeyed = true
            }
            runs[position].inserts.append(values)
        case .delete: runs[position].deletes.append(values)
        case .update:
            if let shape = runs[position].updates.firstIndex(where: { $0.setColumns == setColumns }) {
                runs[position].updates[shape].rows.append(values)
            } else {
                runs[position].updates.append((setColumns, [values]))
            }
        }
        if kind != .insert, let key {
            runs[position].registerInsertKeys()
            runs[position].keys.insert(key)
        }
        runs[position].count += 1
        runs[position].bytes += size
        runs[position].lastCommitLSN = source.commitLSN
        runs[position].lastChangeLSN = source.changeLSN
        heldBytes += size
        return runs[position].count >= Self.maxRows || runs[position].bytes >= Self.maxBytes
    }

    mutating func take(_ relid: UInt32) -> Run? {
        guard let position = index.removeValue(forKey: relid) else { return nil }
        let run = runs.remove(at: position)
        for later in runs[position...] { index[later.relid]! -= 1 }
        heldBytes -= run.bytes
        return run
    }

    /// Every run, in the order they began, leaving nothing held.
    mutating func takeAll() -> [Run] {
        defer { self = HeldChanges() }
        return runs
    }

    /// The row counts to send `count` rows of `parameters` parameters each in: powers of two, largest first,
    /// so a shape needs at most seven prepared statements, and never more than PostgreSQL's 65,535 parameters.
    static func chunks(_ count: Int, parameters: Int) -> [Int] {
        var limit = maxRows
        while limit > 1 && limit * max(parameters, 1) > 65_535 { limit /= 2 }
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

    /// `($1::t1, $2::t2), ($3::t1, $4::t2)` for `rows` rows of the given parameter types (nil: untyped).
    static func values(types: [String?], rows: Int) -> String {
        var tuples: [String] = []
        tuples.reserveCapacity(rows)
        for row in 0..<rows {
            tuples.append("(" + types.indices.map { "$\(row * types.count + $0 + 1)" + (types[$0].map { "::\($0)" } ?? "") }.joined(separator: ", ") + ")")
        }
        return tuples.joined(separator: ", ")
    }

    /// `INSERT INTO table (columns) OVERRIDING SYSTEM VALUE VALUES ($1, …), (…)` for `rows` rows.
    static func insertSQL(table: String, columns: [String], rows: Int) -> String {
        // OVERRIDING SYSTEM VALUE: identity values come from the source, as COPY restores them.
        "INSERT INTO \(table) (\(columns.joined(separator: ", "))) OVERRIDING SYSTEM VALUE VALUES "
            + values(types: Array(repeating: nil, count: columns.count), rows: rows)
    }

    /// `UPDATE ONLY table t SET a = v.s0 FROM (VALUES ($1::type, $2::keytype), …) v (s0, k0) WHERE t.key = v.k0`:
    /// `set` and `keys` are quoted column names with the types their parameters are read as.
    static func updateSQL(table: String, set: [(column: String, type: String)], keys: [(column: String, type: String)], rows: Int) -> String {
        let names = set.indices.map { "s\($0)" } + keys.indices.map { "k\($0)" }
        return "UPDATE ONLY \(table) t SET " + set.enumerated().map { "\($1.column) = v.s\($0)" }.joined(separator: ", ")
            + " FROM (VALUES \(values(types: (set + keys).map(\.type), rows: rows))) v (\(names.joined(separator: ", ")))"
            + " WHERE " + keys.enumerated().map { "t.\($1.column) = v.k\($0)" }.joined(separator: " AND ")
    }

    /// `DELETE FROM ONLY table t USING (VALUES ($1::keytype), …) v (k0) WHERE t.key = v.k0`.
    static func deleteSQL(table: String, keys: [(column: String, type: String)], rows: Int) -> String {
        "DELETE FROM ONLY \(table) t USING (VALUES \(values(types: keys.map(\.type), rows: rows))) v (\(keys.indices.map { "k\($0)" }.joined(separator: ", ")))"
            + " WHERE " + keys.enumerated().map { "t.\($1.column) = v.k\($0)" }.joined(separator: " AND ")
    }
}
