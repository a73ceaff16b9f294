import ArgumentParser
import Dispatch
import FTBackupKit
import Foundation

/// `ftbackup follow`: the long-running change archiver (a systemd service). SIGTERM or SIGINT makes
/// it seal what it holds at the next transaction boundary and exit 0.
struct FollowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "follow",
        abstract: "Stream the archival slot and seal a change segment every few seconds (run it as a service).")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reportingFailures {
            let stop = StopFlag()
            var sources: [DispatchSourceSignal] = []
            for signalNumber in [SIGTERM, SIGINT] {
                signal(signalNumber, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signalNumber)
                source.setEventHandler { stop.set() }
                source.resume()
                sources.append(source)
            }
            defer { sources.forEach { $0.cancel() } }
            let report = try await ChangeFollower.run(ChangeFollower.Options(
                database: try global.connectionString(), repositoryPath: try global.repositoryPath(required: true)!,
                policy: try global.policy(), logger: makeLogger(), shouldStop: { stop.isSet }))
            if global.output == .json { printLine(try JSONOutput.encode(report)) }
            else { printLine("stopped: sealed \(report.segments.count) segments, \(report.transactions) transactions") }
            return .success
        }
    }
}

/// Set from a signal handler, read by the follower's loop.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
