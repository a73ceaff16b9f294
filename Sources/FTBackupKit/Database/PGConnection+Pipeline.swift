import CLibPQ
import Foundation

/// One result read back from a connection in libpq pipeline mode.
enum PipelineResult {
    /// A command that succeeded, with the rows it affected (its command tag's number; 0 when it has none).
    case done(affected: Int)
    /// The command the server (or libpq) rejected: everything after it up to the next sync is aborted.
    case failed(PostgresError)
    /// A command skipped because an earlier one of the same sync group failed.
    case aborted
    /// The end of a sync group (`PQpipelineSync`).
    case sync
}

/// libpq pipeline mode (PostgreSQL 14+ libpq): commands are sent without waiting for their results,
/// which are read back later in the order they were sent. Only the extended query protocol works here
/// (one statement per command, no COPY, no `PQexec`). Like every `PGConnection` method these block.
extension PGConnection {
    func enterPipelineMode() throws {
        guard PQenterPipelineMode(handle) == 1 else { throw pipelineError("cannot enter pipeline mode") }
    }

    /// Leaves pipeline mode; every result must have been read first.
    func exitPipelineMode() throws {
        guard PQexitPipelineMode(handle) == 1 else { throw pipelineError("cannot leave pipeline mode") }
    }

    /// Queues a statement's preparation.
    func sendPrepare(_ name: String, _ sql: String, parameterCount: Int) throws {
        guard PQsendPrepare(handle, name, sql, Int32(parameterCount), nil) == 1 else { throw pipelineError("cannot send a prepare") }
    }

    /// Queues a prepared statement with text parameters.
    func sendPrepared(_ name: String, _ parameters: [String?]) throws {
        let sent = withOptionalCStrings(parameters) { pointers in
            PQsendQueryPrepared(handle, name, Int32(parameters.count), pointers, nil, nil, 0)
        }
        guard sent == 1 else { throw pipelineError("cannot send prepared statement \(name)") }
    }

    /// Queues a prepared statement with parameters given as bytes in the session's client_encoding.
    func sendPrepared(_ name: String, rawParameters: [[UInt8]?]) throws {
        let sent = withOptionalCByteStrings(rawParameters) { pointers in
            PQsendQueryPrepared(handle, name, Int32(rawParameters.count), pointers, nil, nil, 0)
        }
        guard sent == 1 else { throw pipelineError("cannot send prepared statement \(name)") }
    }

    /// Queues one statement with text parameters (extended protocol: a single statement).
    func sendQuery(_ sql: String, _ parameters: [String?] = []) throws {
        let sent = withOptionalCStrings(parameters) { pointers in
            PQsendQueryParams(handle, sql, Int32(parameters.count), nil, pointers, nil, nil, 0)
        }
        guard sent == 1 else { throw pipelineError("cannot send a statement") }
    }

    /// Ends the current sync group and sends everything queued.
    func pipelineSync() throws {
        guard PQpipelineSync(handle) == 1 else { throw pipelineError("cannot send a pipeline sync") }
    }

    /// Reads the next command's result (blocking until it arrives), or the next sync.
    func nextPipelineResult() throws -> PipelineResult {
        guard let result = PQgetResult(handle) else { throw pipelineError("no result where one was expected") }
        let status = PQresultStatus(result)
        if status == PGRES_PIPELINE_SYNC {
            PQclear(result)
            return .sync
        }
        let outcome: PipelineResult
        switch status {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK:
            outcome = .done(affected: Int(String(cString: PQcmdTuples(result))) ?? 0)
        case PGRES_PIPELINE_ABORTED:
            outcome = .aborted
        default:
            outcome = .failed(PostgresError.from(result: result, connection: handle, context: nil))
        }
        PQclear(result)
        // Each command's results end with a NULL.
        if let extra = PQgetResult(handle) {
            PQclear(extra)
            throw pipelineError("a command in the pipeline returned more than one result")
        }
        return outcome
    }

    private func pipelineError(_ what: String) -> PostgresError {
        let detail = String(cString: PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines)
        return PostgresError(message: detail.isEmpty ? what : "\(what): \(detail)", connectionLost: PQstatus(handle) == CONNECTION_BAD)
    }
}
