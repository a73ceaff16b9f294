import Foundation

/// How read commands print their results: for people (`text`) or for machines (`json`).
public enum OutputFormat: String, Sendable, CaseIterable {
    case text
    case json
}

/// Encodes command results as stable, sorted, pretty JSON with ISO 8601 UTC dates.
public enum JSONOutput {
    /// Dates to the millisecond, or with `microseconds` to the microsecond (what PostgreSQL gives:
    /// commit times and the recoverable window, which `restore --at` must accept as written). The
    /// millisecond form stays the default: prune evidence is sealed over it.
    public static func encode<T: Encodable>(_ value: T, microseconds: Bool = false) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(microseconds ? Timestamps.iso8601UTCMicroseconds(date) : Timestamps.iso8601UTC(date))
        }
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

/// Formats and parses times: always stored in UTC, always shown with their zone.
public enum Timestamps {
    public static func iso8601UTC(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt))
    }

    /// `2026-11-25T14:32:07.123456Z`: to the microsecond, as PostgreSQL keeps times.
    public static func iso8601UTCMicroseconds(_ date: Date) -> String {
        let total = (date.timeIntervalSince1970 * 1_000_000).rounded()
        let seconds = (total / 1_000_000).rounded(.down)
        let micros = Int(total - seconds * 1_000_000)
        let whole = Date(timeIntervalSince1970: seconds).formatted(Date.ISO8601FormatStyle(timeZone: .gmt))
        return String(whole.dropLast()) + String(format: ".%06dZ", micros)
    }

    /// Parses what `iso8601UTC` and `iso8601UTCMicroseconds` write (any number of fraction digits up to 9).
    ///
    /// Every manifest date goes through here (a restore reads every backup and segment manifest), so the canonical
    /// forms are read by ``CanonicalISO8601`` (a regex literal is compiled again at each use, and was half of a
    /// restore's planning time); anything else goes to Foundation as before. Both give the same `Date`, bit for bit.
    public static func parseISO8601(_ text: String) -> Date? {
        if let date = CanonicalISO8601.parse(text) { return date }
        // Milliseconds (what `iso8601UTC` writes): straight to the step the Foundation reading ends in, without its regex.
        if !CanonicalISO8601.mayHaveLongFraction(text) { return millisecondReading(text) }
        return parseISO8601WithFoundation(text)
    }

    /// The Foundation reading: the reference ``CanonicalISO8601`` is tested against, and the reading of forms it leaves.
    static func parseISO8601WithFoundation(_ text: String) -> Date? {
        // ASCII digits only: `\d` also matches other scripts' digits, which `Double` refuses (it was a forced unwrap: a
        // manifest date with such a fraction crashed the process instead of being refused).
        if let match = text.wholeMatch(of: #/([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})\.([0-9]{4,9})(Z|[+-][0-9]{2}:[0-9]{2})/#) {
            guard let whole = try? Date("\(match.1)\(match.3)", strategy: Date.ISO8601FormatStyle()),
                  let fraction = Double("0.\(match.2)") else { return nil }
            return whole.addingTimeInterval(fraction)
        }
        return millisecondReading(text)
    }

    /// Up to milliseconds: exactly as before, so re-encoded records (sealed evidence) come out the same.
    static func millisecondReading(_ text: String) -> Date? {
        try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    /// With the fraction of the second when there is one (`2026-11-25 14:32:07.123456 UTC`): the exact
    /// form of a time that `restore --at` must be able to take back.
    public static func displayExact(_ date: Date) -> String {
        var text = String(iso8601UTCMicroseconds(date).dropLast()).replacingOccurrences(of: "T", with: " ")
        if text.hasSuffix(".000000") { text.removeLast(7) }
        return text + " UTC"
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
