/// The `COPY` statements a backup reads a table with and a restore loads it with, built in one place
/// because the corner cases are the same both ways:
///
/// - a table with no copied column (`CREATE TABLE t ()`, or only generated columns) gets no column
///   list: `()` is a syntax error, and COPY without a list still writes one (empty) line per row, so
///   its row count survives;
/// - the data travels in the database's own encoding (COPY's `ENCODING` option) while the session
///   speaks UTF8, so the statement's names reach the server intact whatever the database's encoding;
/// - an extension's configuration table is read through the filter the extension registered
///   (`pg_extension_config_dump`), as pg_dump reads it, and appended to at restore: the extension's own
///   script has put its default rows in already.
enum CopyStatement {
    /// `COPY … TO STDOUT` for one table of a full backup.
    static func out(_ table: TableToCopy, encoding: String, _ connection: PGConnection) throws -> String {
        let name = try connection.qualifiedName(table.schema, table.name)
        let options = try withOptions(format: table.format, encoding: encoding, connection)
        guard let filter = table.extensionFilter else {
            return "COPY \(name)\(try columnList(table.columns, connection)) TO STDOUT \(options)"
        }
        let columns = try table.columns.map { try connection.escapeIdentifier($0) }.joined(separator: ", ")
        return "COPY (SELECT \(columns) FROM ONLY \(name) \(filter)) TO STDOUT \(options)"
    }

    /// `COPY … FROM STDIN` for one table of a restore. `freeze` only when the table was created or
    /// truncated in the same transaction (never an extension's configuration table).
    static func into(_ table: BackupManifest.Table, encoding: String, freeze: Bool, _ connection: PGConnection) throws -> String {
        let name = try connection.qualifiedName(table.schema, table.name)
        return "COPY \(name)\(try columnList(table.columns, connection)) FROM STDIN "
            + (try withOptions(format: table.copyFormat, encoding: encoding, freeze: freeze, connection))
    }

    /// `WITH (…)`: text names the data's encoding; binary has none to name (its text values travel in
    /// the session's client encoding, UTF8, and the server converts them: ``BinaryCopyEligibility``).
    static func withOptions(format: CopyFormat, encoding: String, freeze: Bool = false, _ connection: PGConnection) throws -> String {
        var options = format == .binary ? ["FORMAT binary"] : ["ENCODING \(try connection.escapeLiteral(encoding))"]
        if freeze { options.insert("FREEZE", at: 0) }
        return "WITH (\(options.joined(separator: ", ")))"
    }

    /// The `ENCODING` a restore's COPY declares into a database whose encoding is `target`: the backup's
    /// own, so the server converts (a LATIN1 backup into a UTF8 database) — except SQL_ASCII into a
    /// database of another encoding. PostgreSQL takes `COPY … ENCODING 'SQL_ASCII'` bytes as they are,
    /// without checking them against the database's encoding, which stored invalid UTF-8 in a UTF8
    /// database (every later conversion of those values fails). Those bytes are declared as the
    /// target's own instead, which the server checks: a value that is not valid there fails the load,
    /// naming the byte, as pg_restore would.
    static func loadEncoding(backup: String, target: String) -> String {
        backup == "SQL_ASCII" && target != "SQL_ASCII" ? target : backup
    }

    /// ` (a, b)`, or nothing for a table without copied columns.
    static func columnList(_ columns: [String], _ connection: PGConnection) throws -> String {
        columns.isEmpty ? "" : " (\(try columns.map { try connection.escapeIdentifier($0) }.joined(separator: ", ")))"
    }
}
