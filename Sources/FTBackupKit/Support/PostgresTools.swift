import Foundation

/// Finds and runs PostgreSQL's own client programs (`pg_dump`, `pg_restore`).
///
/// ftbackup uses them where they are the honest tool: DDL capture and section-wise schema restore.
/// The program must be at least as new as the server, so the server's major version picks the
/// folder (`/usr/lib/postgresql/<major>/bin`); `FTBACKUP_PG_BINDIR` overrides the search. Children get
/// the password through `PGPASSWORD`, never on their command line.
public enum PostgresTools {
    public static func path(of program: String, serverVersionNumber: Int) throws -> String {
        let major = serverVersionNumber / 10000
        var candidates: [String] = []
        if let dir = ProcessInfo.processInfo.environment["FTBACKUP_PG_BINDIR"], !dir.isEmpty { candidates.append("\(dir)/\(program)") }
        candidates.append("/usr/lib/postgresql/\(major)/bin/\(program)")
        let installed = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        for version in installed.compactMap(Int.init).sorted(by: >) where version >= major {
            candidates.append("/usr/lib/postgresql/\(version)/bin/\(program)")
        }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            candidates.append("\(dir)/\(program)")
        }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw FTBackupError(.unavailable, "\(program) not found for PostgreSQL \(major)",
                                hint: "install postgresql-client-\(major) or set FTBACKUP_PG_BINDIR")
        }
        return found
    }

    /// Runs a program to completion, streaming its stdout to `stdoutSink` (on the calling thread).
    /// Fails with its first error (the cause) and its last stderr lines when it exits non-zero.
    public static func run(_ executable: String, _ arguments: [String], environment extra: [String: String] = [:],
                           secrets: ConnectionString? = nil,
                           stdoutSink: ((UnsafeRawBufferPointer) throws -> Void)? = nil) throws {
        let process = Process()
        // Through setpriv, so the child gets SIGTERM when the thread that started it (and waits for it) goes:
        // a SIGKILLed ftbackup used to leave pg_restore changing the target on its own. pg_dump and
        // pg_restore cancel their statements on SIGTERM. (setpriv execs the program: the pid is the tool's.)
        if let setpriv = deathSignalWrapper {
            process.executableURL = URL(fileURLWithPath: setpriv)
            process.arguments = ["--pdeathsig", "TERM", "--", executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in extra { environment[key] = value }
        process.environment = environment
        let name = (executable as NSString).lastPathComponent
        let errorFile = URL(fileURLWithPath: try TemporaryFiles.path("\(name)-\(UUID().uuidString).stderr"))
        _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil, attributes: [.posixPermissions: 0o600])
        defer { try? FileManager.default.removeItem(at: errorFile) }
        let errorHandle = try FileHandle(forWritingTo: errorFile)
        process.standardError = errorHandle
        process.standardInput = FileHandle.nullDevice
        let pipe = Pipe()
        process.standardOutput = stdoutSink == nil ? FileHandle.nullDevice : pipe
        do {
            try startWithSignalsUnblocked(process)
        } catch {
            throw FTBackupError(.failure, "cannot start \(executable): \(error.localizedDescription)")
        }
        let pid = process.processIdentifier
        TemporaryFiles.started(child: pid)
        defer { TemporaryFiles.ended(child: pid) }
        try? errorHandle.close()
        var sinkError: Error?
        if let stdoutSink {
            let reader = pipe.fileHandleForReading
            try? pipe.fileHandleForWriting.close()
            var buffer = [UInt8](repeating: 0, count: 256 * 1024)
            while true {
                let count = buffer.withUnsafeMutableBytes { Glibc.read(reader.fileDescriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                if sinkError == nil {
                    do { try buffer.withUnsafeBytes { try stdoutSink(UnsafeRawBufferPointer(rebasing: $0[0..<count])) } } catch {
                        sinkError = error
                        process.terminate()
                    }
                }
            }
        }
        process.waitUntilExit()
        if let sinkError { throw sinkError }
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            // Read leniently: pg_restore prints the server's messages in the dump's encoding (LATIN1, …),
            // and a strict UTF-8 read lost the whole message.
            let text = (try? Data(contentsOf: errorFile)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            let lines = text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
            let summary = errorSummary(lines)
            let message = secrets?.scrub(summary) ?? summary
            throw FTBackupError(exitStatus(ofFailure: summary), "\(name) failed (exit \(process.terminationStatus)): \(message.isEmpty ? "no message" : message)")
        }
    }

    /// util-linux's `setpriv`, when it can set the parent-death signal: `--pdeathsig` came in util-linux 2.33
    /// (RHEL 8 has 2.32, where every tool started through it would fail), so it is tried once first.
    static let deathSignalWrapper: String? = ["/usr/bin/setpriv", "/bin/setpriv"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }.flatMap { setsDeathSignal($0) ? $0 : nil }

    /// Runs the `setpriv` probe on a thread of its own now, so the first tool a command starts does not wait for it
    /// (two programs started, about 8 ms).
    static func probeAhead() {
        Thread.detachNewThread { _ = deathSignalWrapper }
    }

    /// True when `setpriv` runs a command with `--pdeathsig` (an older one refuses the option).
    static func setsDeathSignal(_ setpriv: String) -> Bool {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: setpriv)
        probe.arguments = ["--pdeathsig", "TERM", "--", "/bin/sh", "-c", ":"]
        probe.standardInput = FileHandle.nullDevice
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        guard (try? probe.run()) != nil else { return false }
        probe.waitUntilExit()
        return probe.terminationReason == .exit && probe.terminationStatus == 0
    }

    /// Starts `process` from this thread with no signal blocked. A child inherits the signal mask of the
    /// thread that starts it, and the threads ftbackup starts its tools from block SIGINT and SIGTERM:
    /// the SIGTERM an interrupted run sends its children stayed pending, and pg_restore went on changing
    /// the target (post-data to its end) after ftbackup had said it was interrupted.
    static func startWithSignalsUnblocked(_ process: Process) throws {
        var none = sigset_t(), previous = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try process.run()
    }

    /// The documented exit code for a pg_dump or pg_restore failure, from its error text (they print no
    /// SQLSTATE): the same classes as `PostgresError.exitStatus(sqlState:connectionLost:)`.
    static func exitStatus(ofFailure summary: String) -> ExitStatus {
        let text = summary.lowercased()
        func any(_ needles: [String]) -> Bool { needles.contains { text.contains($0) } }
        if any(["password authentication failed", "no password supplied", "permission denied", "must be owner of",
                "must be superuser", "role \"", "authentication failed"]) && !text.contains("does not exist") {
            return .permission
        }
        if any(["no space left on device", "could not extend file", "disk full", "input/output error"]) { return .cannotWrite }
        if any(["could not connect", "connection to server", "server closed the connection", "terminating connection",
                "the database system is", "too many clients"]) || (text.contains("database \"") && text.contains("does not exist")) {
            return .unavailable
        }
        if any(["violates foreign key constraint", "violates unique constraint", "violates check constraint", "violates not-null constraint",
                "violates exclusion constraint", "could not create unique index", "could not create exclusion constraint",
                "invalid input syntax", "out of range", "invalid byte sequence", "data corrupted", "invalid page"]) {
            return .dataError
        }
        return .failure
    }

    /// The first error line with the command it came from (pg_restore's "Command was:"), then the last
    /// line if it says something else: the cause, not only how the program ended.
    static func errorSummary(_ lines: [String]) -> String {
        guard let first = lines.firstIndex(where: { $0.contains("error:") || $0.contains("ERROR:") }) else {
            return lines.suffix(3).joined(separator: "; ")
        }
        var parts = [lines[first]]
        if first + 1 < lines.count, lines[first + 1].hasPrefix("Command was:") {
            parts.append(String(lines[first + 1].prefix(300)))
        }
        if let last = lines.last, first < lines.count - 1, !parts.contains(last), !last.hasPrefix("Command was:") { parts.append(last) }
        return parts.joined(separator: "; ")
    }
}
