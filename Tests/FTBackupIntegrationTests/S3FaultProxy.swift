import Foundation
import Testing
@testable import FTBackupKit

/// scripts/s3-fault-proxy.py in front of the loopback S3 server: ftbackup talks to it instead of moto and meets
/// 5xx answers, connection resets, slow and truncated answers, or a store that stops, as the arguments say.
final class S3FaultProxy {
    let process = Process()
    let endpoint: String
    let logPath: String

    /// Starts the proxy with `arguments` (see the script's usage) and waits until it listens.
    init(_ arguments: [String]) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/s3-fault-proxy.py").path
        logPath = NSTemporaryDirectory() + "ftbackup-s3-proxy-\(UUID()).log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let stdout = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, try S3TestStore.variable("FTBACKUP_TEST_S3_ENDPOINT")] + arguments
        process.standardOutput = stdout
        process.standardError = FileHandle(forWritingAtPath: logPath)
        try process.run()
        var line = Data()
        while !line.contains(0x0A) {
            guard let byte = try stdout.fileHandleForReading.read(upToCount: 1), !byte.isEmpty else { break }
            line.append(byte)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            throw FTBackupError(.failure, "the S3 fault proxy did not start: \(log)")
        }
        endpoint = "http://127.0.0.1:\(port)"
    }

    deinit { stop() }

    func stop() {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
    }

    /// The proxy's log: one "fault KIND METHOD PATH" line per fault it injected.
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// How many faults of `kind` it injected.
    func count(_ kind: String) -> Int { log.split(separator: "\n").filter { $0.hasPrefix("fault \(kind) ") }.count }

    /// The store's environment with the proxy as the endpoint.
    func environment(_ store: S3TestStore) -> [String: String] { ["AWS_ENDPOINT_URL_S3": endpoint] }
}
