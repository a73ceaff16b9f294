/// Session settings under which COPY text is written and read, the same as pg_dump's, so values
/// round-trip exactly whatever the server's or the role's defaults are. `xmloption = content` (as
/// pg_dump's script sets) so xml fragments load into a database whose default is DOCUMENT, and
/// `array_nulls = on` so a text file's NULL array elements stay NULL whatever the target's default.
enum SessionSettings {
    /// `encoding` is the session's client_encoding: the encoding of statement text and of what the
    /// session reads back. Backups and restores keep it UTF8 (every connection starts so) and name the
    /// database's own encoding on each COPY instead (``CopyStatement``).
    static func copy(encoding: String = "UTF8") -> String {
        """
        SET client_encoding TO '\(encoding.replacingOccurrences(of: "'", with: "''"))';
        SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3;
        SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0;
        SET row_security = off; SET bytea_output = hex;
        SET xmloption = content; SET array_nulls = on
        """
    }

    /// An empty search_path, as pg_dump sets: every name a value prints (`regclass`, `regtype`, …) and
    /// every definition read from the catalog comes out schema-qualified, so it reads back as the same
    /// object whatever the database's or role's search_path (`ALTER DATABASE … SET search_path = app, public`).
    static let qualifiedNames = "SET search_path = ''"
}
