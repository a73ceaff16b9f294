import Foundation
import Logging

/// Progress of long work: a live line (bytes, rate, ETA) on a terminal; when stderr is not a terminal
/// (cron, systemd's journal), a plain `key=value` progress line every 10 seconds and one debug line
/// per finished item.
public final class ProgressReporter: @unchecked Sendable {
    private let lock = NSLock()
    private let title: String
    private let expectedBytes: Int64
    private let expectedItems: Int
    private let interactive: Bool
    private let logger: Logger
    private let started = Date()
    private var bytes: Int64 = 0
    private var items = 0
    private var lastDraw = Date()
    private let quiet: Bool

    public init(title: String, expectedBytes: Int64, expectedItems: Int, logger: Logger, quiet: Bool = false) {
        self.title = title
        self.expectedBytes = max(expectedBytes, 1)
        self.expectedItems = expectedItems
        self.interactive = isatty(STDERR_FILENO) == 1
        self.logger = logger
        self.quiet = quiet
    }

    /// Counts bytes as they pass (cheap; draws at most twice a second).
    public func advance(bytes count: Int) {
        lock.lock()
        bytes += Int64(count)
        let draw = !quiet && Date().timeIntervalSince(lastDraw) > (interactive ? 0.5 : 10)
        if draw { lastDraw = Date() }
        let line = draw ? render() : nil
        lock.unlock()
        guard let line else { return }
        if interactive {
            FileHandle.standardError.write(Data(("\r" + line + "\u{1B}[K").utf8))
        } else {
            logger.info("\(line)")
        }
    }

    /// One item (a table) is done.
    public func finished(item: String, metadata: Logger.Metadata) {
        lock.lock()
        items += 1
        let done = items
        lock.unlock()
        if !interactive && !quiet {
            var fields = metadata
            fields["item"] = .string(item)
            fields["done"] = .string("\(done)/\(expectedItems)")
            logger.debug("\(title): finished \(item)", metadata: fields)
        }
    }

    /// Clears the live line.
    public func end() {
        if interactive && !quiet { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    private func render() -> String {
        let elapsed = max(Date().timeIntervalSince(started), 0.001)
        let rate = Double(bytes) / elapsed
        let remaining = rate > 0 ? Double(max(expectedBytes - bytes, 0)) / rate : 0
        let eta = bytes >= expectedBytes ? "finishing" : "ETA \(Self.clock(remaining))"
        return "\(title): \(items)/\(expectedItems) tables, \(ByteCount.format(bytes)) of ~\(ByteCount.format(expectedBytes)), "
            + "\(ByteCount.format(Int64(rate)))/s, \(eta)"
    }

    static func clock(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        return String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60)
    }
}
