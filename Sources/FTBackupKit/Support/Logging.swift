import Foundation
import Logging

/// Log lines for a journal: one line per event, `key=value` pairs, UTC timestamps.
///
/// When stdout is not a terminal (cron, systemd) ftbackup writes these instead of progress bars,
/// so the journal gets plain structured lines. Values are quoted when they contain spaces.
public struct LineLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let level = event.level, message = event.message, extra = event.metadata
        var fields = ["ts=\(Timestamps.iso8601UTC(Date()))", "level=\(level)", "msg=\(Self.quote(message.description))"]
        let all = metadata.merging(extra ?? [:]) { $1 }
        for key in all.keys.sorted() { fields.append("\(key)=\(Self.quote(all[key]!.description))") }
        let text = fields.joined(separator: " ") + "\n"
        FileHandle.standardError.write(Data(text.utf8))
    }

    static func quote(_ value: String) -> String {
        if !value.isEmpty, !value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline }) { return value }
        return "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n") + "\""
    }
}
