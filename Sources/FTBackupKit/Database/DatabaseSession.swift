import Foundation

/// An async face over one `PGConnection` and the thread it runs on.
///
/// It exists so that async code can use PostgreSQL without ever blocking Swift's cooperative pool:
/// every libpq call of this session runs, in order, on the session's own thread. N sessions are N
/// threads and really work in parallel.
public final class DatabaseSession: Sendable {
    private let thread: ConnectionThread
    private let connection: PGConnection
    /// Host, port, database and user of this session (never the password).
    public let target: String

    /// Cancels the running statement if the process is interrupted (SIGINT, SIGTERM, SIGHUP): the
    /// server would otherwise run it to its end (a CREATE INDEX, a REFRESH) after ftbackup is gone.
    private let cancelOnInterrupt: UUID

    private init(thread: ConnectionThread, connection: PGConnection) {
        self.thread = thread
        self.connection = connection
        self.target = connection.target
        self.cancelOnInterrupt = TemporaryFiles.onInterrupt {
            connection.cancelRunningQuery()
            return nil
        }
    }

    /// Connects on a new thread of its own.
    public static func connect(_ connectionString: ConnectionString, name: String = "ftbackup-db",
                               replication: Bool = false) async throws -> DatabaseSession {
        let thread = ConnectionThread(name: name)
        do {
            let connection = try await thread.run { () -> PGConnection in
                let connection = try PGConnection.connect(connectionString, replication: replication)
                // A statement of a killed ftbackup (SIGKILL, OOM) stops within a second on PostgreSQL 14+: the
                // server looks for the closed socket while it runs, instead of finishing an index build or a
                // REFRESH for nobody, holding its locks against the rerun.
                // A database's or role's idle timeouts (set to end an application's forgotten sessions) ended ftbackup's
                // own while they waited: a restore's session through its data phase, a backup's snapshot holder
                // (adv30: a restore into a database with idle_session_timeout = 1s failed in its sequences phase).
                // A logical replication connection takes them before its first command: the backup's snapshot holder
                // (CREATE_REPLICATION_SLOT … EXPORT_SNAPSHOT) is idle in its transaction for the whole copy, and a
                // later SET would release the snapshot (adv31 D3: a full backup failed "invalid snapshot identifier").
                if connection.serverVersionNumber >= 140000 {
                    try connection.execute((replication ? "" : "SET client_connection_check_interval = 1000; ")
                                           + "SET idle_session_timeout = 0; SET idle_in_transaction_session_timeout = 0")
                } else if connection.serverVersionNumber >= (replication ? 100000 : 90600) {  // (SQL on a walsender: 10+)
                    try connection.execute("SET idle_in_transaction_session_timeout = 0")
                }
                return connection
            }
            return DatabaseSession(thread: thread, connection: connection)
        } catch {
            thread.shutdown()
            throw error
        }
    }

    /// Runs blocking work with the connection on the session's thread.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
        let connection = self.connection
        return try await thread.run { try body(connection) }
    }

    @discardableResult
    public func query(_ sql: String, _ parameters: [any SQLParameter] = []) async throws -> QueryResult {
        try await withConnection { try $0.query(sql, parameters) }
    }

    public func execute(_ sql: String) async throws {
        try await withConnection { try $0.execute(sql) }
    }

    public func escapeIdentifier(_ name: String) throws -> String { try connection.escapeIdentifier(name) }
    public func escapeLiteral(_ value: String) throws -> String { try connection.escapeLiteral(value) }
    public func qualifiedName(_ schema: String, _ table: String) throws -> String {
        try connection.qualifiedName(schema, table)
    }

    public var backendPID: Int32 { connection.backendPID }
    /// False once the connection is lost (the server ended the session, the network dropped it).
    public var isAlive: Bool { connection.isAlive }
    public var serverVersionNumber: Int { connection.serverVersionNumber }

    /// Asks the server to cancel what this session is running (safe from any thread: libpq's
    /// cancel request uses its own socket).
    public func cancel() { connection.cancelRunningQuery() }

    /// Ends the thread once queued work is done; the connection closes when the session is released.
    public func close() {
        TemporaryFiles.cancelInterruptAction(cancelOnInterrupt)
        thread.shutdown()
    }

    deinit {
        TemporaryFiles.cancelInterruptAction(cancelOnInterrupt)
        thread.shutdown()
    }
}
