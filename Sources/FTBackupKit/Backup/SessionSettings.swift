/// Session settings under which COPY text is written and read, the same as pg_dump's, so values
/// round-trip exactly whatever the server's or the role's defaults are.
enum SessionSettings {
    static func copy(encoding: String) -> String {
        """
        SET client_encoding TO '\(encoding.replacingOccurrences(of: "'", with: "''"))';
        SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3;
        SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0;
        SET row_security = off; SET bytea_output = hex
        """
    }
}
