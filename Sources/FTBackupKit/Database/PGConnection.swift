import CLibPQ
import Foundation

/// One blocking libpq connection.
///
/// Every method blocks the calling thread, so a `PGConnection` is only ever used from its
/// `DatabaseSession`'s own thread (hence `@unchecked Sendable`: the session serialises all access).
public final class PGConnection: @unchecked Sendable {
    let handle: OpaquePointer
    /// How this connection is named in messages: host, port, database and user, never the password.
    public let target: String
    private let connectionString: ConnectionString

    private init(handle: OpaquePointer, target: String, connectionString: ConnectionString) {
        self.handle = handle
        self.target = target
        self.connectionString = connectionString
    }

    deinit { PQfinish(handle) }

    /// Opens a connection. libpq's conventions apply unchanged; `fallback_application_name` is
    /// `ftbackup` unless the string or `PGAPPNAME` names another application.
    ///
    /// The session's `client_encoding` is always UTF8, whatever the database's encoding: statement
    /// text goes out as Swift's UTF-8 and results are read back as UTF-8, so names and values with any
    /// character survive the round trip (a LATIN1 database's `données` was read back as `donn�es`).
    /// COPY data travels in the database's own encoding through COPY's `ENCODING` option
    /// (``CopyStatement``), and change decoding sets its own (``ChangeArchiver/decodingEncoding(_:)``).
    ///
    /// `replication: true` opens a logical replication connection (`replication=database`), which
    /// speaks only the simple query protocol: use `simpleQuery`, never `query`.
    public static func connect(_ connectionString: ConnectionString, replication: Bool = false) throws -> PGConnection {
        var keywords = ["fallback_application_name"]
        var values = ["ftbackup"]
        // Before the connection string: added only when nothing in it or in PGSSLMODE chose a mode.
        if let sslmode = try connectionString.sslModeToAdd() {
            keywords.append("sslmode")
            values.append(sslmode)
        }
        if !connectionString.raw.isEmpty {
            keywords.append("dbname")
            values.append(connectionString.raw)
        }
        if let options = connectionString.combinedServerOptions {
            keywords.append("options")
            values.append(options)
        }
        // After the connection string, so nothing in it or in PGCLIENTENCODING changes it.
        keywords.append("client_encoding")
        values.append("UTF8")
        if replication {
            keywords.append("replication")
            values.append("database")
        }
        let handle: OpaquePointer? = withCStrings(keywords) { keywordPointers in
            withCStrings(values) { valuePointers in
                PQconnectdbParams(keywordPointers, valuePointers, 1)
            }
        }
        guard let handle else {
            throw FTBackupError(.failure, "cannot connect to \(connectionString.redacted): out of memory in libpq")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let raw = String(cString: PQerrorMessage(handle))
            PQfinish(handle)
            throw connectFailure(raw, connectionString)
        }
        let target = describe(handle)
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        let connection = PGConnection(handle: handle, target: target, connectionString: connectionString)
        if connectionString.mustUseTLS && !connection.tlsStatus.encrypted {
            throw FTBackupError(.permission, "refusing the connection to \(connectionString.redacted): it is not encrypted and TLS is required for this host (policy database.require_tls)",
                                hint: "use sslmode=verify-full with sslrootcert=FILE, and a server with ssl = on")
        }
        return connection
    }

    /// Turns libpq's connection failure into one line with an exit status and a remedy.
    static func connectFailure(_ raw: String, _ connectionString: ConnectionString) -> FTBackupError {
        let text = connectionString.scrub(raw)
            .split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: "; ")
        let lower = text.lowercased()
        let where_ = connectionString.redacted
        if lower.contains("password authentication failed") || lower.contains("no password supplied")
            || lower.contains("authentication failed") {
            return FTBackupError(.permission, "cannot connect to \(where_): \(text)",
                                 hint: "check the user and password (~/.pgpass, PGPASSWORD or the connection string)")
        }
        if lower.contains("ssl") || lower.contains("certificate") || lower.contains("encryption") {
            return FTBackupError(.permission, "cannot connect to \(where_): \(text)",
                                 hint: "check pg_hba.conf for this host and user, sslmode, sslrootcert (the CA that signed the server's certificate) and the server's ssl setting")
        }
        if lower.contains("database") && lower.contains("does not exist") {
            return FTBackupError(.unavailable, "cannot connect to \(where_): \(text)",
                                 hint: "check dbname in --db / FTBACKUP_DB")
        }
        if lower.contains("role") && lower.contains("does not exist") {
            return FTBackupError(.permission, "cannot connect to \(where_): \(text)", hint: "check the user name")
        }
        return FTBackupError(.unavailable, "cannot connect to \(where_): \(text)",
                             hint: "check that the server is running and that host and port are right")
    }

    private static func describe(_ handle: OpaquePointer) -> String {
        func value(_ pointer: UnsafeMutablePointer<CChar>?) -> String { pointer.map { String(cString: $0) } ?? "" }
        return "host=\(value(PQhost(handle))) port=\(value(PQport(handle))) dbname=\(value(PQdb(handle))) user=\(value(PQuser(handle)))"
    }

    /// Whether this connection is encrypted, with what, and whether the server's certificate was verified.
    public var tlsStatus: TLSStatus {
        func attribute(_ name: String) -> String? { PQsslAttribute(handle, name).map { String(cString: $0) } }
        var sslmode = "prefer"
        if let options = PQconninfo(handle) {
            var option = options
            while let keyword = option.pointee.keyword {
                if String(cString: keyword) == "sslmode", let value = option.pointee.val { sslmode = String(cString: value) }
                option += 1
            }
            PQconninfoFree(options)
        }
        let encrypted = PQsslInUse(handle) == 1
        return TLSStatus(encrypted: encrypted, protocol: encrypted ? attribute("protocol") : nil, cipher: encrypted ? attribute("cipher") : nil,
                         sslmode: sslmode, certificateVerified: encrypted && ["verify-ca", "verify-full"].contains(sslmode),
                         hostVerified: encrypted && sslmode == "verify-full")
    }

    /// The server's version number (`150018` for 15.18).
    public var serverVersionNumber: Int { Int(PQserverVersion(handle)) }

    /// True while the connection is usable.
    public var isAlive: Bool { PQstatus(handle) == CONNECTION_OK }

    /// The server process serving this connection (for `pg_terminate_backend` and lock reports).
    public var backendPID: Int32 { PQbackendPID(handle) }

    // MARK: Queries

    /// Runs one statement with text-format parameters (`$1`, `$2`, …) and returns all its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any SQLParameter] = []) throws -> QueryResult {
        let texts = parameters.map(\.sqlText)
        let result: OpaquePointer? = withOptionalCStrings(texts) { pointers in
            PQexecParams(handle, sql, Int32(texts.count), nil, pointers, nil, nil, 0)
        }
        defer { PQclear(result) }
        try check(result, accept: [PGRES_COMMAND_OK, PGRES_TUPLES_OK], context: nil)
        return Self.materialize(result!)
    }

    /// Prepares a statement once (parameter types inferred by the server from context).
    public func prepare(_ name: String, _ sql: String, parameterCount: Int) throws {
        let result = PQprepare(handle, name, sql, Int32(parameterCount), nil)
        defer { PQclear(result) }
        try check(result, accept: [PGRES_COMMAND_OK], context: sql)
    }

    /// Runs a prepared statement with text parameters; returns the rows it affected.
    @discardableResult
    public func executePrepared(_ name: String, _ parameters: [String?]) throws -> Int {
        let result: OpaquePointer? = withOptionalCStrings(parameters) { pointers in
            PQexecPrepared(handle, name, Int32(parameters.count), pointers, nil, nil, 0)
        }
        defer { PQclear(result) }
        try check(result, accept: [PGRES_COMMAND_OK, PGRES_TUPLES_OK], context: "prepared statement \(name)")
        return Int(String(cString: PQcmdTuples(result!))) ?? 0
    }

    /// Runs a prepared statement with parameters given as bytes in the session's client_encoding,
    /// passed as they are (replay of a segment not in UTF-8); returns the rows it affected.
    @discardableResult
    public func executePrepared(_ name: String, rawParameters: [[UInt8]?]) throws -> Int {
        let result: OpaquePointer? = withOptionalCByteStrings(rawParameters) { pointers in
            PQexecPrepared(handle, name, Int32(rawParameters.count), pointers, nil, nil, 0)
        }
        defer { PQclear(result) }
        try check(result, accept: [PGRES_COMMAND_OK, PGRES_TUPLES_OK], context: "prepared statement \(name)")
        return Int(String(cString: PQcmdTuples(result!))) ?? 0
    }

    /// Runs one statement through the simple query protocol and returns its rows (replication
    /// commands such as `CREATE_REPLICATION_SLOT` need it).
    @discardableResult
    public func simpleQuery(_ sql: String) throws -> QueryResult {
        let result = PQexec(handle, sql)
        defer { PQclear(result) }
        try check(result, accept: [PGRES_COMMAND_OK, PGRES_TUPLES_OK], context: nil)
        return Self.materialize(result!)
    }

    /// Runs one or more statements without parameters (DDL scripts, `BEGIN`, `SET …`).
    public func execute(_ sql: String) throws {
        try execute(script: Array(sql.utf8))
    }

    /// Runs a script given as bytes in the session's `client_encoding` (a schema dump's own text,
    /// which need not be UTF-8), byte for byte.
    public func execute(script: [UInt8]) throws {
        var result = (script + [0]).withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { PQexec(handle, $0.baseAddress) }
        }
        var failure: PostgresError?
        // PQexec returns the last result; earlier ones are discarded by libpq itself.
        if !Self.isSuccess(result) { failure = PostgresError.from(result: result, connection: handle, context: nil) }
        PQclear(result)
        // Drain anything left (only after COPY, which we never start here).
        result = PQgetResult(handle)
        while result != nil {
            PQclear(result)
            result = PQgetResult(handle)
        }
        if let failure { throw failure }
    }

    /// Runs `body` inside a transaction: committed if it returns, rolled back if it throws.
    public func transaction<T>(_ begin: String = "BEGIN", _ body: () throws -> T) throws -> T {
        try execute(begin)
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            if isAlive { try? execute("ROLLBACK") }
            throw error
        }
    }

    /// Starts a REPEATABLE READ, READ ONLY transaction that sees exactly the exported snapshot `id`.
    public func beginTransaction(importingSnapshot id: String) throws {
        try execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try execute("SET TRANSACTION SNAPSHOT \(try escapeLiteral(id))")
    }

    // MARK: Escaping

    /// Quotes an identifier with libpq's `PQescapeIdentifier` (`My "Table"` → `"My ""Table"""`).
    public func escapeIdentifier(_ name: String) throws -> String {
        let utf8 = Array(name.utf8)
        guard let escaped = PQescapeIdentifier(handle, name, utf8.count) else {
            throw PostgresError(message: "cannot quote identifier: \(String(cString: PQerrorMessage(handle)))")
        }
        defer { PQfreemem(escaped) }
        return String(cString: escaped)
    }

    /// Quotes a literal with libpq's `PQescapeLiteral`.
    public func escapeLiteral(_ value: String) throws -> String {
        let utf8 = Array(value.utf8)
        guard let escaped = PQescapeLiteral(handle, value, utf8.count) else {
            throw PostgresError(message: "cannot quote literal: \(String(cString: PQerrorMessage(handle)))")
        }
        defer { PQfreemem(escaped) }
        return String(cString: escaped)
    }

    /// `schema.table`, both parts quoted.
    public func qualifiedName(_ schema: String, _ table: String) throws -> String {
        "\(try escapeIdentifier(schema)).\(try escapeIdentifier(table))"
    }

    // MARK: Results

    static func isSuccess(_ result: OpaquePointer?) -> Bool {
        guard let result else { return false }
        let status = PQresultStatus(result)
        return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_COPY_OUT
            || status == PGRES_COPY_IN || status == PGRES_EMPTY_QUERY
    }

    func check(_ result: OpaquePointer?, accept: [ExecStatusType], context: String?) throws {
        guard let result, accept.contains(PQresultStatus(result)) else {
            throw PostgresError.from(result: result, connection: handle, context: context)
        }
    }

    static func materialize(_ result: OpaquePointer) -> QueryResult {
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        var rows: [QueryResult.Row] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            let values: [String?] = (0..<columnCount).map { column in
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 { return nil }
                return String(cString: PQgetvalue(result, Int32(row), Int32(column)))
            }
            rows.append(QueryResult.Row(columns: columns, values: values))
        }
        let tag = String(cString: PQcmdTuples(result))
        return QueryResult(columns: columns, rows: rows, affectedRows: Int(tag))
    }
}
