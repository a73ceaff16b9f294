import Foundation
import Testing
@testable import FTBackupKit

/// scripts/s3-fault-proxy.py in front of the loopback S3 server: ftbackup talks to it instead of moto and meets
/// 5xx answers, connection resets, slow and truncated answers, or a store that stops, as the arguments say.
final class S3FaultProxy {
    let pid: Int32
    let endpoint: String
    let logPath: String

    /// Starts the proxy with `arguments` (see the script's usage) and waits until it listens. It runs detached
    /// (started by a shell that exits at once), so no Foundation `Process` stays attached to it while the test
    /// runs other processes; ``stop()`` ends it by its pid.
    init(_ arguments: [String]) async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/s3-fault-proxy.py").path
        logPath = NSTemporaryDirectory() + "ftbackup-s3-proxy-\(UUID()).log"
        let portPath = logPath + ".port"
        defer { try? FileManager.default.removeItem(atPath: portPath) }
        let shell = try await FTBackupBinary.run(["-c", #"python3 "$0" "$@" </dev/null >"$PROXY_PORT_FILE" 2>"$PROXY_LOG_FILE" & echo $!"#, script,
                                            try S3TestStore.variable("FTBACKUP_TEST_S3_ENDPOINT")] + arguments,
                                           environment: ["PROXY_PORT_FILE": portPath, "PROXY_LOG_FILE": logPath], executable: "/bin/sh")
        guard let pid = Int32(shell.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw FTBackupError(.failure, "the S3 fault proxy did not start: \(shell.stderr)")
        }
        self.pid = pid
        var port: Int?
        let deadline = Date().addingTimeInterval(600)  // python starts slowly on a loaded machine
        while port == nil && Date() < deadline {
            port = (try? String(contentsOfFile: portPath, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            if port == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        guard let port else {
            kill(pid, SIGTERM)
            throw FTBackupError(.failure, "the S3 fault proxy did not start: \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")")
        }
        endpoint = "http://127.0.0.1:\(port)"
    }

    deinit { stop() }

    func stop() { kill(pid, SIGTERM) }

    /// The proxy's log: one "fault KIND METHOD PATH" line per fault it injected.
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// How many faults of `kind` it injected.
    func count(_ kind: String) -> Int { log.split(separator: "\n").filter { $0.hasPrefix("fault \(kind) ") }.count }

    /// The store's environment with the proxy as the endpoint.
    func environment(_ store: S3TestStore) -> [String: String] { ["AWS_ENDPOINT_URL_S3": endpoint] }
}
