import Foundation

/// After replay, moves sequences past the values their columns drew after the newest heartbeat.
///
/// The heartbeat records each sequence as of the archival pass that wrote it; rows inserted between it
/// and the restore time carry values the sequence gave later. Where the order is certain — a sequence
/// that does not CYCLE — an ascending one is raised to the largest value any column drawing from it
/// holds, and a descending one lowered to the smallest. The columns are every column whose DEFAULT
/// calls the sequence (found through `pg_attrdef`'s dependency, owned or not, any table; a partition
/// through its parent) and the identity column it backs; only integer columns, and only values inside
/// the sequence's range, count.
/// A cycling sequence keeps the heartbeat's value: past a wrap, the largest value says nothing.
enum SequenceFloor {
    /// Applies the floor (or, descending, the ceiling) to each of `sequences` (OIDs) that has one.
    static func apply(_ connection: PGConnection, sequences: [Int64]) throws {
        guard !sequences.isEmpty else { return }
        let columns = try connection.query("""
            WITH u AS (
                SELECT d.refobjid AS seq, ad.adrelid AS rel, ad.adnum AS attnum
                FROM pg_depend d JOIN pg_attrdef ad ON ad.oid = d.objid
                WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = ANY($1::oid[])
                UNION
                SELECT d.objid, d.refobjid, d.refobjsubid FROM pg_depend d
                WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'i'
                  AND d.refobjsubid > 0 AND d.objid = ANY($1::oid[]))
            SELECT u.seq::bigint AS seq, format('%s%s', CASE WHEN r.relkind = 'r' THEN 'ONLY ' ELSE '' END, u.rel::regclass) AS source,
                   quote_ident(a.attname) AS col, s.seqincrement > 0 AS ascending, s.seqincrement::text AS increment,
                   format('%s.%s', quote_ident(n.nspname), quote_ident(q.relname)) AS sequence, s.seqmin::text AS min, s.seqmax::text AS max
            FROM u
            JOIN pg_sequence s ON s.seqrelid = u.seq AND NOT s.seqcycle
            JOIN pg_class q ON q.oid = u.seq JOIN pg_namespace n ON n.oid = q.relnamespace
            JOIN pg_class r ON r.oid = u.rel AND r.relkind IN ('r', 'p')
            JOIN pg_attribute a ON a.attrelid = u.rel AND a.attnum = u.attnum AND NOT a.attisdropped
                                AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
            -- A partition whose parent draws from the same sequence is read through the parent.
            WHERE NOT (r.relispartition AND EXISTS (SELECT 1 FROM pg_inherits i JOIN u p ON p.rel = i.inhparent AND p.seq = u.seq
                                                    WHERE i.inhrelid = u.rel))
            ORDER BY 1, 2, 3
            """, [PostgresArray.text(sequences.map(String.init))])
        var bySequence: [Int64: [(source: String, column: String)]] = [:]
        var details: [Int64: (name: String, ascending: Bool, increment: String, min: String, max: String)] = [:]
        for row in columns.rows {
            let oid = try row.int64("seq")
            bySequence[oid, default: []].append((try row.requiredString("source"), try row.requiredString("col")))
            details[oid] = (try row.requiredString("sequence"), try row.bool("ascending") ?? true,
                            try row.requiredString("increment"), try row.requiredString("min"), try row.requiredString("max"))
        }
        for (oid, users) in bySequence.sorted(by: { $0.key < $1.key }) {
            guard let sequence = details[oid] else { continue }
            let (extreme, pick) = sequence.ascending ? ("max", "greatest") : ("min", "least")
            let drawn = users.map { "(SELECT \(extreme)(\($0.column))::bigint FROM \($0.source))" }.joined(separator: ", ")
            // The last value already given out: last_value once called, else the one before it.
            let past = sequence.ascending ? "m > g" : "m < g"
            try connection.query("""
                SELECT setval(\(try connection.escapeLiteral(sequence.name))::regclass, m)
                FROM (SELECT \(pick)(\(drawn)) AS m) v,
                     (SELECT CASE WHEN is_called THEN last_value ELSE last_value::numeric - $1::numeric END AS g FROM \(sequence.name)) c
                WHERE m IS NOT NULL AND m BETWEEN $2::bigint AND $3::bigint AND \(past)
                """, [sequence.increment, sequence.min, sequence.max])
        }
    }
}
