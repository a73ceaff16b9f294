import Foundation

/// The time zone a database's `timestamp without time zone` values are written in: the database's
/// own TimeZone setting (`ALTER DATABASE … SET timezone`), else the server's (postgresql.conf).
///
/// Retention counts 7 years back from "now", and an audit table's "timestamp" column usually holds
/// wall time without a zone (`DEFAULT now()` in the application's sessions). Counting back in
/// ftbackup's own session zone — whatever `PGTZ`, a role setting or the client machine says — would
/// move the cut-off by up to a day, and delete rows that are hours short of 7 years. So the cut-off
/// is an instant, and wall times are read in this zone, which the evidence records. When the zone
/// cannot be told (the session's comes from a role or client setting, and the role may not read the
/// server's configuration), the run is refused rather than guess.
enum DatabaseTimeZone {
    static func resolve(_ connection: PGConnection) throws -> String {
        if let zone = try connection.query("""
            SELECT substring(cfg FROM position('=' IN cfg) + 1) AS zone
            FROM pg_db_role_setting s, unnest(s.setconfig) cfg
            WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) AND s.setrole = 0
              AND lower(cfg) LIKE 'timezone=%'
            """).first?.string("zone") {
            return zone
        }
        let session = try connection.query("SELECT setting, source FROM pg_settings WHERE name = 'TimeZone'").first!
        if ["default", "configuration file", "command line", "environment variable"].contains(try session.requiredString("source")) {
            return try session.requiredString("setting")
        }
        // The session's zone came from the client or a role: read the server's own, if this role may.
        if let file = try? connection.query("""
            SELECT setting FROM pg_file_settings WHERE lower(name) = 'timezone' AND applied ORDER BY seqno DESC LIMIT 1
            """).first?.string("setting") {
            return file
        }
        throw FTBackupError(.configuration, "cannot tell this database's time zone: the session's comes from \(try session.requiredString("source")) settings (\(try session.requiredString("setting"))), and this role may not read the server's configuration",
                            hint: "name it on the database, ALTER DATABASE … SET timezone = '…' (what the application's sessions use), or run as a role that may read pg_file_settings")
    }
}
