import Foundation

/// What replay needs to know about one column of a restored table, read once per relation from the
/// target's own catalog (user-defined type OIDs differ between the source and a restored copy, so the
/// relation message's type OID is not used).
struct ReplayColumn: Equatable {
    var name: String
    /// `format_type(atttypid, atttypmod)`, as the replay session spells it (`character(5)`, `rs.mood`, `numeric(10,2)[]`).
    var sqlType: String
    /// The type (the base type of a domain, the element type of an array) has a default btree operator
    /// class, so `=` is a true equivalence: rows can be found by typed equality, and an index can help.
    /// Types without one (json, xml, point, box, composites) are matched by their text form only.
    var hasEquality: Bool
    /// `GENERATED ALWAYS AS IDENTITY`: an UPDATE may only set it to DEFAULT.
    var isAlwaysIdentity: Bool
    /// The identity's sequence (`pg_get_serial_sequence`), quoted and qualified.
    var identitySequence: String?
    /// The type by its quoted, qualified name, without a modifier (`pg_catalog.bpchar`, not `character`, which
    /// is `character(1)`): what a batched statement's parameters are read as before they are assigned.
    var castType: String = ""
    /// In a unique index or exclusion constraint, or the table has one over an expression, with a predicate, or
    /// over a generated column (computed from columns an UPDATE sets, and never published itself): an UPDATE
    /// that sets it is applied alone (rows of one statement are checked in no defined order).
    var isUniquelyIndexed = true

    /// The published columns (not dropped, not generated) of `schema.table` in attribute order.
    static func load(_ connection: PGConnection, schema: String, table: String) throws -> [ReplayColumn] {
        try connection.query("""
            SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attidentity = 'a' AS always_identity,
                   quote_ident(tn.nspname) || '.' || quote_ident(t.typname) AS cast_type,
                   EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND (i.indisunique OR i.indisexclusion)
                           AND (a.attnum = ANY (i.indkey::int2[]) OR i.indexprs IS NOT NULL OR i.indpred IS NOT NULL
                                OR EXISTS (SELECT 1 FROM pg_attribute g WHERE g.attrelid = i.indrelid AND g.attnum = ANY (i.indkey::int2[])
                                                                         AND g.attgenerated <> ''))) AS uniquely_indexed,
                   CASE WHEN a.attidentity = 'a' THEN pg_get_serial_sequence(a.attrelid::regclass::text, a.attname) END AS sequence,
                   (SELECT CASE WHEN e.typtype IN ('e', 'r', 'm') THEN true ELSE EXISTS (
                               SELECT 1 FROM pg_opclass o JOIN pg_am am ON am.oid = o.opcmethod AND am.amname = 'btree'
                               WHERE o.opcdefault AND (o.opcintype = e.oid OR EXISTS (
                                   SELECT 1 FROM pg_cast k WHERE k.castsource = e.oid AND k.casttarget = o.opcintype
                                                             AND k.castmethod = 'b' AND k.castcontext = 'i'))) END
                    FROM pg_type b JOIN pg_type e ON e.oid = CASE WHEN b.typcategory = 'A' AND b.typelem <> 0 THEN b.typelem ELSE b.oid END
                    WHERE b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END) AS typed
            FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace
            WHERE a.attrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
            ORDER BY a.attnum
            """, [schema, table]).rows.map {
            ReplayColumn(name: try $0.requiredString("name"), sqlType: try $0.requiredString("type"),
                         hasEquality: try $0.bool("typed") ?? false, isAlwaysIdentity: try $0.bool("always_identity") ?? false,
                         identitySequence: try $0.string("sequence"), castType: try $0.requiredString("cast_type"),
                         isUniquelyIndexed: try $0.bool("uniquely_indexed") ?? true)
        }
    }

    /// The condition that `s.<column>` holds exactly the value pgoutput sent as the text of parameter
    /// `$n`: the text is read back through the column's type (`'t'` and `'true'` are one boolean, an
    /// `inet` prints without `/32`, `char(n)` keeps its padding), then compared as text in the "C"
    /// collation so values that are equal but not identical (`0` and `-0`, `1.0` and `1.00`,
    /// `'1 day'` and `'24 hours'`) are told apart. Typed equality comes first where the type has it,
    /// so the text form is only computed for candidate rows.
    func exactMatch(_ quotedName: String, parameter n: Int) -> String {
        let typed = "$\(n)::\(sqlType)"
        let text = "s.\(quotedName)::text COLLATE \"C\" = (\(typed))::text"
        return hasEquality ? "s.\(quotedName) = \(typed) AND \(text)" : text
    }
}
