import CLibPQ
import Foundation

/// What a finished COPY moved.
public struct CopyOutcome: Sendable {
    /// Rows as reported by the server's command tag (`COPY 1234`).
    public var rows: Int64
    /// Bytes of COPY data that passed through the client.
    public var bytes: Int64
}

extension PGConnection {
    /// Streams `COPY … TO STDOUT` chunk by chunk into `sink`, never holding the table in memory.
    ///
    /// Rows are gathered into chunks of about `chunkSize` bytes so that compressors and digests see
    /// large buffers. If `sink` throws, the COPY is cancelled on the server and the error rethrown.
    @discardableResult
    public func copyOut(_ sql: String, chunkSize: Int = 256 * 1024,
                        into sink: (UnsafeRawBufferPointer) throws -> Void) throws -> CopyOutcome {
        let start = PQexec(handle, sql)
        defer { PQclear(start) }
        try check(start, accept: [PGRES_COPY_OUT], context: sql)

        var chunk = [UInt8]()
        chunk.reserveCapacity(chunkSize + 64 * 1024)
        var bytes: Int64 = 0
        var sinkFailure: Error?
        while true {
            var buffer: UnsafeMutablePointer<CChar>?
            let length = PQgetCopyData(handle, &buffer, 0)
            if length > 0, let buffer {
                if sinkFailure == nil {
                    let bytesRead = UnsafeRawBufferPointer(start: buffer, count: Int(length))
                    chunk.append(contentsOf: bytesRead)
                    bytes += Int64(length)
                    if chunk.count >= chunkSize {
                        do { try chunk.withUnsafeBytes(sink) } catch {
                            sinkFailure = error
                            cancelRunningQuery()
                        }
                        chunk.removeAll(keepingCapacity: true)
                    }
                }
                PQfreemem(buffer)
                continue
            }
            if let buffer { PQfreemem(buffer) }
            break  // -1: COPY done (or cancelled); -2: error. Either way the result says which.
        }
        if sinkFailure == nil, !chunk.isEmpty {
            do { try chunk.withUnsafeBytes(sink) } catch { sinkFailure = error }
        }
        // After a failed sink the server reports our own cancel: the sink's error is the one that matters.
        let outcome: CopyOutcome
        do { outcome = try finishCopy(context: sql, bytes: bytes) } catch { throw sinkFailure ?? error }
        if let sinkFailure { throw sinkFailure }
        return outcome
    }

    /// Streams `COPY … FROM STDIN`: `produce` is handed a writer and calls it with chunks of COPY
    /// data of any size. If `produce` throws, the COPY is aborted (nothing of it is committed) and
    /// the error rethrown.
    @discardableResult
    public func copyIn(_ sql: String,
                       from produce: (_ write: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws -> CopyOutcome {
        let start = PQexec(handle, sql)
        defer { PQclear(start) }
        try check(start, accept: [PGRES_COPY_IN], context: sql)

        var bytes: Int64 = 0
        let write: (UnsafeRawBufferPointer) throws -> Void = { buffer in
            guard buffer.count > 0 else { return }
            let sent = PQputCopyData(self.handle, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(buffer.count))
            if sent != 1 {
                throw PostgresError.from(result: nil, connection: self.handle, context: sql)
            }
            bytes += Int64(buffer.count)
        }
        do {
            try produce(write)
        } catch {
            _ = PQputCopyEnd(handle, "ftbackup aborted the COPY: \(error)".prefix(200).description)
            _ = try? finishCopy(context: sql, bytes: bytes)
            throw error
        }
        if PQputCopyEnd(handle, nil) != 1 {
            throw PostgresError.from(result: nil, connection: handle, context: sql)
        }
        return try finishCopy(context: sql, bytes: bytes)
    }

    /// Collects the results that end a COPY and turns a failed one into an error.
    private func finishCopy(context: String, bytes: Int64) throws -> CopyOutcome {
        var failure: PostgresError?
        var rows: Int64 = 0
        while let result = PQgetResult(handle) {
            let status = PQresultStatus(result)
            if status == PGRES_COMMAND_OK {
                rows = Int64(String(cString: PQcmdTuples(result))) ?? 0
            } else if status == PGRES_COPY_IN {
                // Still in COPY IN after an error path: end it so the connection is usable again.
                _ = PQputCopyEnd(handle, "aborted")
            } else if failure == nil {
                failure = PostgresError.from(result: result, connection: handle, context: context)
            }
            PQclear(result)
            if PQstatus(handle) == CONNECTION_BAD { break }
        }
        if failure == nil, PQstatus(handle) == CONNECTION_BAD {
            failure = PostgresError.from(result: nil, connection: handle, context: context)
        }
        if let failure { throw failure }
        return CopyOutcome(rows: rows, bytes: bytes)
    }

    /// Asks the server to cancel the statement this connection is running.
    public func cancelRunningQuery() {
        guard let cancel = PQgetCancel(handle) else { return }
        var errorBuffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(cancel, &errorBuffer, Int32(errorBuffer.count))
        PQfreeCancel(cancel)
    }
}

// MARK: - CopyBoth (logical replication streaming)

extension PGConnection {
    /// Starts a replication stream (`START_REPLICATION …`): the connection is then in CopyBoth mode.
    public func startReplicationStream(_ command: String) throws {
        let result = PQexec(handle, command)
        defer { PQclear(result) }
        try check(result, accept: [PGRES_COPY_BOTH], context: command)
    }

    /// The next message of a CopyBoth stream, waiting at most `timeout` seconds; nil if none came.
    public func readStreamMessage(timeout: Double) throws -> [UInt8]? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            var buffer: UnsafeMutablePointer<CChar>?
            let length = PQgetCopyData(handle, &buffer, 1)
            if length > 0, let buffer {
                defer { PQfreemem(buffer) }
                return Array(UnsafeRawBufferPointer(start: buffer, count: Int(length)))
            }
            if length == -1 {
                let result = PQgetResult(handle)
                defer { PQclear(result) }
                throw PostgresError.from(result: result, connection: handle, context: "replication stream ended")
            }
            if length == -2 { throw PostgresError.from(result: nil, connection: handle, context: "replication stream") }
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 { return nil }
            var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(remaining, 1) * 1000))
            if ready < 0 && errno != EINTR { throw PostgresError(message: "poll failed: \(String(cString: strerror(errno)))", connectionLost: true) }
            if ready > 0 && PQconsumeInput(handle) == 0 {
                throw PostgresError.from(result: nil, connection: handle, context: "replication stream")
            }
        }
    }

    /// Sends one message on a CopyBoth stream and flushes it.
    public func sendStreamMessage(_ bytes: [UInt8]) throws {
        let sent = bytes.withUnsafeBytes { PQputCopyData(handle, $0.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(bytes.count)) }
        guard sent == 1, PQflush(handle) == 0 else {
            throw PostgresError.from(result: nil, connection: handle, context: "replication status update")
        }
    }
}
