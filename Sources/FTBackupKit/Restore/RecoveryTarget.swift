import Foundation

/// Parses `--at`: ISO 8601 with an offset or a zone, never a silent guess.
///
/// Accepted: `2026-11-20T14:32:00+01:00`, `2026-11-20T14:32:00Z`, `2026-11-20 14:32 UTC`,
/// `2026-11-20 14:32:05.250 Europe/Berlin`. A time without a zone is refused: on-call engineers work
/// across zones and an hour's error restores the wrong data.
public enum RecoveryTarget {
    public static let examples = "2026-11-20T14:32:00+01:00, 2026-11-20T14:32:00Z, 2026-11-20 14:32 UTC, 2026-11-20 14:32 Europe/Berlin"

    public static func parse(_ text: String) throws -> Date {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let pattern = #/^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?\s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?|[A-Za-z_]+(?:/[A-Za-z_+-]+)+)?$/#
        guard let match = trimmed.wholeMatch(of: pattern) else {
            throw FTBackupError(.usage, "--at '\(text)' is not a time ftbackup understands", hint: "use ISO 8601 with a zone, e.g. \(examples)")
        }
        guard let zoneText = match.8 else {
            throw FTBackupError(.usage, "--at '\(text)' has no time zone", hint: "add one, e.g. \(examples)")
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        let components = DateComponents(year: Int(match.1), month: Int(match.2), day: Int(match.3), hour: Int(match.4),
                                        minute: Int(match.5), second: match.6.map { Int($0)! } ?? 0)
        // The wall time read as if it were UTC; the zone's offset is taken off below.
        // Every field in its range: the calendar would normalise month 13 to January of the next year, day 32 to the 1st.
        guard (1...12).contains(components.month!), let wall = calendar.date(from: components),
              calendar.component(.month, from: wall) == components.month, calendar.component(.day, from: wall) == components.day,
              (0...23).contains(components.hour!), (0...59).contains(components.minute!), (0...59).contains(components.second!) else {
            throw FTBackupError(.usage, "--at '\(text)' is not a valid date and time", hint: "e.g. \(examples)")
        }
        let fraction = match.7.map { Double("0" + $0)! } ?? 0
        switch zoneText {
        case "Z", "UTC", "GMT":
            return wall.addingTimeInterval(fraction)
        default:
            break
        }
        if zoneText.first == "+" || zoneText.first == "-" {
            let digits = zoneText.dropFirst().filter(\.isNumber)
            let hours = Int(digits.prefix(2))!, minutes = Int(digits.dropFirst(2)) ?? 0
            // +00:60 is not +01:00: an offset out of range is a typo, never read as something else.
            guard minutes <= 59, hours * 60 + minutes <= 14 * 60 else {
                throw FTBackupError(.usage, "--at '\(text)': \(zoneText) is not a UTC offset (hours up to 14, minutes 00 to 59)",
                                    hint: "e.g. \(examples)")
            }
            let seconds = (zoneText.first == "-" ? -1 : 1) * (hours * 3600 + minutes * 60)
            return wall.addingTimeInterval(Double(-seconds) + fraction)
        }
        guard let zone = TimeZone(identifier: String(zoneText)) else {
            throw FTBackupError(.usage, "--at '\(text)': unknown time zone \(zoneText)", hint: "use an offset or a zone name, e.g. \(examples)")
        }
        // Every instant whose local time in the zone is this wall time: none in a spring-forward gap,
        // two in an autumn overlap; only exactly one is a time.
        let offsets = Set(stride(from: -36, through: 36, by: 1).map { zone.secondsFromGMT(for: wall.addingTimeInterval(Double($0) * 3600)) })
        let candidates = offsets.map { wall.addingTimeInterval(Double(-$0)) }
            .filter { zone.secondsFromGMT(for: $0) == Int(wall.timeIntervalSince($0)) }
            .sorted()
        let wallText = "\(match.1)-\(match.2)-\(match.3)T\(match.4):\(match.5):\(match.6.map(String.init) ?? "00")\(match.7.map(String.init) ?? "")"
        func offsetText(_ seconds: Int) -> String {
            let sign = seconds < 0 ? "-" : "+", magnitude = abs(seconds)
            return String(format: "%@%02d:%02d", sign, magnitude / 3600, magnitude % 3600 / 60)
        }
        switch candidates.count {
        case 1:
            return candidates[0].addingTimeInterval(fraction)
        case 0:
            let before = zone.secondsFromGMT(for: wall.addingTimeInterval(-86_400)), after = zone.secondsFromGMT(for: wall.addingTimeInterval(86_400))
            throw FTBackupError(.usage, "--at '\(text)' does not exist in \(zone.identifier): the clocks were put forward past it that day (\(offsetText(before)) to \(offsetText(after)))",
                                hint: "give a time outside the gap, or an offset (e.g. \(wallText)\(offsetText(before)) or \(wallText)\(offsetText(after)))")
        default:
            let named = candidates.map { "\(wallText)\(offsetText(zone.secondsFromGMT(for: $0))) (\(Timestamps.iso8601UTC($0.addingTimeInterval(fraction))))" }
            throw FTBackupError(.usage, "--at '\(text)' is ambiguous in \(zone.identifier): the clocks were put back that night, so it happened twice: \(named.joined(separator: " and "))",
                                hint: "give the offset: \(named.map { String($0.prefix { $0 != " " }) }.joined(separator: " or "))")
        }
    }
}
