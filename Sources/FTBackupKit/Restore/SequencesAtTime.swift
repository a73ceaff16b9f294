import Foundation

/// Sets every sequence of the restored schemas as close to its state at TIME as the archive allows,
/// and names each one whose state at TIME is not known.
///
/// Sequences are not decoded, so the archive knows them only from heartbeats: the newest one at or
/// before TIME (`before`, else the full's value) and the first one whose reading began after TIME
/// (`after`). Every sequence is set to `before`; one that columns draw from (a DEFAULT calling it,
/// an identity) is then moved past the values its columns hold at TIME (`SequenceFloor`), which is
/// where it stood. One that no column draws from (an explicit `nextval()` into a column without such a
/// default, `setval()`) and that moved between the two heartbeats is set to `after` — no value handed
/// out by TIME exceeds it, so it never hands out a used value, though it may skip some, as
/// PostgreSQL's own crash recovery does — and named in a warning. A cycling sequence keeps `before`
/// and is named when it moved. Without an `after` heartbeat in the archive (a follower's newest
/// seconds), the sequences no column pins are named.
enum SequencesAtTime {
    /// A sequence state as a heartbeat records it: [last_value, "t"/"f"].
    typealias State = [String]

    /// Applies `before` (newest heartbeat ≤ TIME), the floor, then `after`; returns one warning line per
    /// sequence whose state at TIME is not known exactly (empty when every one is).
    static func apply(_ connection: PGConnection, before: [String: State], after: [String: State]?, schemas: Set<String>) throws -> [String] {
        let sequences = try connection.query("""
            SELECT c.oid::bigint AS oid, n.nspname AS schema, c.relname AS name, s.seqincrement::text AS increment, s.seqcycle AS cycle,
                   EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid)
                   OR EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'i') AS has_columns
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_sequence s ON s.seqrelid = c.oid
            WHERE c.relkind = 'S' AND n.nspname = ANY($1::text[]) ORDER BY 2, 3
            """, [PostgresArray.text(Array(schemas))])
        var oids: [Int64] = []
        var atStart: [String: State] = [:]
        for row in sequences.rows {
            let schema = try row.requiredString("schema"), name = try row.requiredString("name")
            oids.append(try row.int64("oid"))
            let key = "\(schema).\(name)"
            if let recorded = before[key], recorded.count == 2 { try set(connection, schema, name, recorded) }
            atStart[key] = try state(connection, schema, name)
        }
        try SequenceFloor.apply(connection, sequences: oids)
        var unknown: [String] = []
        var unpinned: [String] = []
        for row in sequences.rows {
            let schema = try row.requiredString("schema"), name = try row.requiredString("name")
            let key = "\(schema).\(name)"
            let increment = Decimal(string: try row.requiredString("increment")) ?? 1
            let now = try state(connection, schema, name)
            guard let after else {
                if try row.bool("has_columns") != true || (try row.bool("cycle") ?? false) { unpinned.append(key) }
                continue
            }
            guard let next = after[key], next.count == 2, next != atStart[key] else { continue }
            // Drawn into columns (a DEFAULT calling it, an identity): the rows at TIME say where it stood (`SequenceFloor`).
            if try row.bool("has_columns") == true && !(try row.bool("cycle") ?? false) { continue }
            if try row.bool("cycle") ?? false {
                unknown.append("\(key) (cycles: somewhere from \(describe(now)) to \(describe(next)); kept at \(describe(now)))")
                continue
            }
            let ascending = increment > 0
            let reached = position(now, increment), upper = position(next, increment)
            if reached == upper { continue }  // its columns show it had got to the next heartbeat's value by TIME
            if ascending ? upper > reached : upper < reached {
                try set(connection, schema, name, next)
                unknown.append("\(key) (between \(describe(now)) and \(describe(next)); set to \(describe(next)))")
            } else {
                unknown.append("\(key) (moved back, by setval or TRUNCATE … RESTART IDENTITY: \(describe(now)), later \(describe(next)); kept at \(describe(now)))")
            }
        }
        var warnings: [String] = []
        if !unknown.isEmpty {
            warnings.append("the value at the restore time of \(unknown.count) sequence(s) is not known exactly (drawn on or set between the heartbeats around it, with no column showing where it stood); each is set so it never hands out a value already used, and may skip some: \(list(unknown))")
        }
        if !unpinned.isEmpty {
            warnings.append("no heartbeat after the restore time is archived yet: \(unpinned.count) sequence(s) no column pins are as of the last heartbeat before it and may be behind; run ftbackup backup --type incr and restore again for values known not to be behind: \(list(unpinned))")
        }
        return warnings
    }

    /// The position a state stands at: the last value handed out (the one before `last_value` if not yet called).
    static func position(_ state: State, _ increment: Decimal) -> Decimal {
        let value = Decimal(string: state[0]) ?? 0
        return state[1] == "t" ? value : value - increment
    }

    static func describe(_ state: State) -> String { state[1] == "t" ? state[0] : "\(state[0]) (not yet called)" }

    static func list(_ items: [String]) -> String {
        items.prefix(10).joined(separator: "; ") + (items.count > 10 ? "; and \(items.count - 10) more" : "")
    }

    static func set(_ connection: PGConnection, _ schema: String, _ name: String, _ state: State) throws {
        let sequence = try connection.escapeLiteral(try connection.qualifiedName(schema, name))
        try connection.query("SELECT setval(\(sequence)::regclass, $1::bigint, $2::boolean)", [state[0], state[1] == "t" ? "true" : "false"])
    }

    static func state(_ connection: PGConnection, _ schema: String, _ name: String) throws -> State {
        let row = try connection.query("SELECT last_value::text AS v, is_called FROM \(try connection.qualifiedName(schema, name))").first!
        return [try row.requiredString("v"), (try row.bool("is_called") ?? false) ? "t" : "f"]
    }
}
