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

    /// A boolean SQL expression, true when the copied columns of table `alias` (a `pg_class` row) may
    /// all travel in binary.
    static func sql(_ alias: String) -> String {
        let names = textOnlyBuiltIns.map { "'\($0)'" }.joined(separator: ", ")
        return """
            NOT EXISTS (
                WITH RECURSIVE used(type_oid) AS (
                    SELECT a.atttypid FROM pg_attribute a
                    WHERE a.attrelid = \(alias).oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                    UNION
                    SELECT inner_type.oid FROM used JOIN pg_type ut ON ut.oid = used.type_oid
                    CROSS JOIN LATERAL (
                        SELECT ut.typelem WHERE ut.typelem <> 0
                        UNION ALL SELECT ut.typbasetype WHERE ut.typbasetype <> 0
                        UNION ALL SELECT ca.atttypid FROM pg_attribute ca
                                  WHERE ut.typrelid <> 0 AND ca.attrelid = ut.typrelid AND ca.attnum > 0 AND NOT ca.attisdropped
                        UNION ALL SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = ut.oid
                        UNION ALL SELECT r.rngtypid FROM pg_range r WHERE r.rngmultitypid = ut.oid
                    ) AS inner_type(oid)
                )
                SELECT 1 FROM used JOIN pg_type t ON t.oid = used.type_oid
                WHERE t.oid >= 16384 OR t.typsend = 0 OR t.typreceive = 0
                   OR (t.typnamespace = 'pg_catalog'::regnamespace AND t.typname IN (\(names))))
            """
    }
}
