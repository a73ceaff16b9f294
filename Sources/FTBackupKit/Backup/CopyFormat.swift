/// The COPY format of one table's data file in a full backup.
///
/// It exists because binary COPY loads in about half the server time of text for timestamps, uuids
/// and inets, but is only exact where both servers agree on every value's binary form: built-in
/// types on the same major version (see ``BinaryCopyEligibility`` and the README's "COPY formats").
/// A manifest written before the field existed has no `format`: its files are text.
public enum CopyFormat: String, Codable, Sendable, Equatable {
    case text, binary
}

/// Decides, inside the backup's snapshot, which tables may travel in binary COPY.
///
/// A table keeps text when any copied column's type — looked through recursively: array element,
/// domain base, composite attribute, range subtype, multirange's range — is not built in (oid ≥
/// 16384, `FirstNormalObjectId`: enums, composites, domains, ranges of the database, extension types
/// such as citext, hstore or ltree, whose oids differ from database to database and which binary
/// arrays and records embed), has no binary send or receive function, or is one whose binary form is
/// not portable between databases: the `reg*` types (their binary is an oid, their text a name) and
/// `money` (its text follows `lc_monetary`, which pg_dump relies on; kept as pg_dump keeps it).
/// Only a UTF8 database's tables go binary: binary text values travel in the client encoding, which
/// every ftbackup session pins to UTF8, and a restore into another encoding is converted by the server.
enum BinaryCopyEligibility {
    /// Built-in types whose binary form is an oid or otherwise tied to the database it was read from.
    static let textOnlyBuiltIns = ["regclass", "regtype", "regproc", "regprocedure", "regoper", "regoperator", "regconfig",
                                   "regdictionary", "regnamespace", "regrole", "regcollation", "money",
                                   "pg_node_tree", "pg_ndistinct", "pg_dependencies", "pg_mcv_list", "aclitem"]

    /// A `WITH RECURSIVE` clause defining `text_only_types`: every type some ordinary table's column has
    /// that keeps its table in text. Computed once for the database's column types (a per-table
    /// recursion cost a second on a 100-table database).
    static var withClause: String {
        let names = textOnlyBuiltIns.map { "'\($0)'" }.joined(separator: ", ")
        return """
            WITH RECURSIVE reach(root, type_oid) AS (
                SELECT DISTINCT a.atttypid, a.atttypid FROM pg_attribute a JOIN pg_class rc ON rc.oid = a.attrelid
                WHERE rc.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
                UNION
                SELECT reach.root, inner_type.oid FROM reach JOIN pg_type ut ON ut.oid = reach.type_oid
                CROSS JOIN LATERAL (
                    SELECT ut.typelem WHERE ut.typelem <> 0
                    UNION ALL SELECT ut.typbasetype WHERE ut.typbasetype <> 0
                    UNION ALL SELECT ca.atttypid FROM pg_attribute ca
                              WHERE ut.typrelid <> 0 AND ca.attrelid = ut.typrelid AND ca.attnum > 0 AND NOT ca.attisdropped
                    UNION ALL SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = ut.oid
                    UNION ALL SELECT r.rngtypid FROM pg_range r WHERE r.rngmultitypid = ut.oid
                ) AS inner_type(oid)
            ), text_only_types AS (
                SELECT DISTINCT reach.root AS type_oid FROM reach JOIN pg_type t ON t.oid = reach.type_oid
                WHERE t.oid >= 16384 OR t.typsend = 0 OR t.typreceive = 0
                   OR (t.typnamespace = 'pg_catalog'::regnamespace AND t.typname IN (\(names)))
            )
            """
    }

    /// A boolean SQL expression (under ``withClause``), true when the copied columns of table `alias`
    /// (a `pg_class` row) may all travel in binary.
    static func sql(_ alias: String) -> String {
        """
        NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = \(alias).oid AND a.attnum > 0 AND NOT a.attisdropped
                    AND a.attgenerated = '' AND a.atttypid IN (SELECT type_oid FROM text_only_types))
        """
    }
}
