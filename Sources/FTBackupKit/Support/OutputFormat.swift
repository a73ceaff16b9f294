import Foundation

/// How read commands print their results: for people (`text`) or for machines (`json`).
public enum OutputFormat: String, Sendable, CaseIterable {
    case text
    case json
}

/// Encodes command results as stable, sorted, pretty JSON with ISO 8601 UTC dates.
public enum JSONOutput {
    public static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(Timestamps.iso8601UTC(date))
        }
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

/// Formats and parses times: always stored in UTC, always shown with their zone.
public enum Timestamps {
    public static func iso8601UTC(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt))
    }

    /// A human form with the zone spelled out, e.g. `2026-11-25 14:32:07 UTC`.
    public static func display(_ date: Date, timeZone: TimeZone = .gmt) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = timeZone
        if timeZone.secondsFromGMT(for: date) == 0 && (timeZone.identifier == "GMT" || timeZone.identifier == "UTC") {
            formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
            return formatter.string(from: date) + " UTC"
        }
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss ZZZZZ"
        return formatter.string(from: date)
    }
}

/// Human-readable byte counts (binary units), for progress lines and `info`.
public enum ByteCount {
    public static func format(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : "\(String(format: "%.1f", value)) \(units[unit])"
    }
}
