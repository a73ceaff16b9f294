import Foundation

/// Where a replayed command came from in the source's change stream, to name it when it fails.
struct ReplaySource {
    /// The source transaction's commit LSN and time (PostgreSQL microseconds).
    var commitLSN: UInt64 = 0
    var commitTime: Int64?
    /// The change's own LSN.
    var changeLSN: UInt64 = 0
    /// For changes sent together from several source transactions: the last one's commit LSN.
    var throughCommitLSN: UInt64?
    /// What the command does, for messages: "UPDATE on app.items", "prepare", "TRUNCATE".
    var what = ""

    /// "the source transaction committed at LSN 0/16B3748 (2026-11-28 09:31:07.123456 UTC)".
    /// With `throughCommitLSN`: "the source transactions committed from LSN 0/16B3748 (…) through LSN 0/16B9A10".
    var transaction: String {
        let time = commitTime.map { " (\(Timestamps.displayExact(PgOutputDecoder.date(fromPostgresMicroseconds: $0))))" } ?? ""
        if let through = throughCommitLSN, through != commitLSN {
            return "the source transactions committed from LSN \(LSN.format(commitLSN))\(time) through LSN \(LSN.format(through))"
        }
        return "the source transaction committed at LSN \(LSN.format(commitLSN))\(time)"
    }
}

/// Sends replay's statements through libpq pipeline mode and checks every result, in order.
///
/// One prepared statement and one round trip per change capped replay at ~7,500 changes/s; here
/// statements go out without waiting, in sync groups of at most `syncStatements` commands or
/// `syncBytes` of parameters (``ReplayGrouping``), and one group's results are read while the server runs the next, so at
/// most two groups are in flight (bounded memory on both sides, and the server never blocks writing
/// results nobody reads). Every result is checked as it comes back: the first error, or an UPDATE or
/// DELETE that did not touch exactly one row, stops replay naming the source transaction and change
/// (an error aborts the rest of its sync group, so nothing after it is applied). `drain` reads every
/// outstanding result: the caller drains before each COMMIT, so a target transaction only ever commits
/// source transactions whose every change was checked.
final class ReplayPipeline {
    /// What a command's result must satisfy.
    enum Expectation: Equatable {
        case succeeds
        /// Exactly this many rows: an UPDATE or DELETE replayed by key touches one, else the target and
        /// the archive disagree; a multi-row INSERT inserts all of its rows.
        case rows(Int)
    }

    private struct Pending {
        let expectation: Expectation
        let source: ReplaySource
    }

    private let connection: PGConnection
    private let grouping: ReplayGrouping
    /// Sent since the last sync.
    private var filling: [Pending] = []
    private var fillingBytes = 0
    /// Synced groups whose results are not read yet (at most one between calls).
    private var synced: [[Pending]] = []
    private(set) var active = false
    /// The newest source commit a target COMMIT covered (set by the caller), for messages.
    var committedThrough: UInt64?

    init(connection: PGConnection, grouping: ReplayGrouping) {
        self.connection = connection
        self.grouping = grouping
    }

    /// Enters pipeline mode (no result may be outstanding on the connection).
    func start() throws {
        guard !active else { return }
        try connection.enterPipelineMode()
        active = true
    }

    /// Reads every outstanding result and leaves pipeline mode.
    func finish() throws {
        guard active else { return }
        try drain()
        try connection.exitPipelineMode()
        active = false
    }

    /// Runs ordinary (non-pipelined) work on the connection: outstanding results are read and checked
    /// first, then pipeline mode resumes.
    func synchronously<T>(_ body: (PGConnection) throws -> T) throws -> T {
        guard active else { return try body(connection) }
        try finish()
        let value = try body(connection)
        try start()
        return value
    }

    func prepare(_ name: String, _ sql: String, parameterCount: Int, source: ReplaySource) throws {
        var source = source
        source.what = "preparing \(source.what)"
        try connection.sendPrepare(name, sql, parameterCount: parameterCount)
        try queued(Pending(expectation: .succeeds, source: source), bytes: sql.utf8.count)
    }

    /// Queues a prepared statement; with `byteText` each parameter goes as the bytes its scalars stand
    /// for (see ``PgOutputDecoder/decode(_:byteText:)``), in the segment's own client_encoding.
    func send(_ name: String, _ values: [String?], byteText: Bool, expecting expectation: Expectation, source: ReplaySource) throws {
        try sendPrepared(name, values, byteText: byteText)
        try queued(Pending(expectation: expectation, source: source), bytes: Self.size(values))
    }

    func query(_ sql: String, _ values: [String?] = [], source: ReplaySource) throws {
        try connection.sendQuery(sql, values)
        try queued(Pending(expectation: .succeeds, source: source), bytes: sql.utf8.count + Self.size(values))
    }

    /// Runs a prepared statement now, after every outstanding result was read and checked, and returns
    /// the rows it affected (for the rare change whose next step depends on that number).
    func executeNow(_ name: String, _ values: [String?], byteText: Bool, source: ReplaySource) throws -> Int {
        try drain()
        try sendPrepared(name, values, byteText: byteText)
        try connection.pipelineSync()
        return try readOne(Pending(expectation: .succeeds, source: source))
    }

    private func sendPrepared(_ name: String, _ values: [String?], byteText: Bool) throws {
        guard byteText else { return try connection.sendPrepared(name, values) }
        try connection.sendPrepared(name, rawParameters: values.map { $0.map { $0.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) } } })
    }

    /// Reads and checks every outstanding result.
    func drain() throws {
        if !filling.isEmpty { try sync() }
        while !synced.isEmpty { try readGroup() }
    }

    private func queued(_ pending: Pending, bytes: Int) throws {
        guard active else { throw PostgresError(message: "internal error: a replay statement was sent outside pipeline mode") }
        filling.append(pending)
        fillingBytes += bytes
        if filling.count >= grouping.syncStatements || fillingBytes >= grouping.syncBytes {
            try sync()
            // The group before runs while this one is sent: read its results now, keeping two in flight at most.
            while synced.count > 1 { try readGroup() }
        }
    }

    private func sync() throws {
        try connection.pipelineSync()
        synced.append(filling)
        filling = []
        fillingBytes = 0
    }

    private func readGroup() throws {
        let group = synced.removeFirst()
        for pending in group {
            switch try connection.nextPipelineResult() {
            case .done(let affected):
                if case .rows(let expected) = pending.expectation, affected != expected { throw diverged(pending.source, affected, expected: expected) }
            case .failed(let error):
                throw failed(pending.source, error)
            case .aborted:
                throw failed(pending.source, PostgresError(message: "aborted by an earlier error"))
            case .sync:
                throw PostgresError(message: "replay pipeline out of step: a sync arrived before \(group.count) results")
            }
        }
        guard case .sync = try connection.nextPipelineResult() else {
            throw PostgresError(message: "replay pipeline out of step: more results than commands")
        }
    }

    /// The result of a command in a group of its own, which must succeed.
    private func readOne(_ pending: Pending) throws -> Int {
        let outcome = try connection.nextPipelineResult()
        guard case .sync = try connection.nextPipelineResult() else {
            throw PostgresError(message: "replay pipeline out of step: more results than commands")
        }
        switch outcome {
        case .done(let affected): return affected
        case .failed(let error): throw failed(pending.source, error)
        case .aborted, .sync: throw failed(pending.source, PostgresError(message: "no result"))
        }
    }

    private func failed(_ source: ReplaySource, _ error: PostgresError) -> PostgresError {
        var error = error
        error.context = "replaying \(source.what) at LSN \(LSN.format(source.changeLSN)) in \(source.transaction)\(appliedSoFar)"
        return error
    }

    func diverged(_ source: ReplaySource, _ affected: Int, expected: Int = 1) -> FTBackupError {
        let when = source.commitTime.map { Timestamps.display(PgOutputDecoder.date(fromPostgresMicroseconds: $0)) } ?? "its commit"
        return FTBackupError(.dataError, "replay diverged: \(source.what) at LSN \(LSN.format(source.changeLSN)) in \(source.transaction) touched \(affected) rows, expected \(expected)\(appliedSoFar)",
                             hint: "the target holds a partial restore: drop it. Every full backup taken before this change replays it the same way; restore --at a time before \(when), or after the next full backup taken since then, and report this (ftbackup verify --segments checks the archive)")
    }

    /// "; the target has committed every source transaction up to LSN …", when it has committed any.
    private var appliedSoFar: String {
        committedThrough.map { "; the target has committed every source transaction up to LSN \(LSN.format($0)) and none after" } ?? ""
    }

    private static func size(_ values: [String?]) -> Int {
        values.reduce(32) { $0 + ($1?.utf8.count ?? 0) }
    }
}

/// How replay batches its work: source transactions per target transaction, and commands per pipeline
/// sync. The defaults are what restore uses; tests make them small to put every kind of boundary
/// (a group commit, a sync) inside the stretch they check.
struct ReplayGrouping: Sendable {
    /// Source transactions per target transaction, at most (one larger source transaction is never split).
    var transactions = 1000
    /// Bytes of decoded changes per target transaction, at most (checked at source commits).
    var bytes = 16 << 20
    /// Commands per pipeline sync group, and bytes of parameters: what is in flight at most (two groups).
    var syncStatements = 1000
    var syncBytes = 256 << 10
    /// Prepared statements kept on the target at most: past it they are all deallocated and prepared again
    /// as needed (a long replay of a wide keyless table prepares one per shape of changed columns and NULLs).
    var preparedStatements = 1000

    static let standard = ReplayGrouping()
}
