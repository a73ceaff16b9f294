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
        let zone: TimeZone?
        switch zoneText {
        case "Z", "UTC", "GMT": zone = .gmt
        default:
            if zoneText.first == "+" || zoneText.first == "-" {
                let digits = zoneText.dropFirst().filter(\.isNumber)
                let hours = Int(digits.prefix(2)) ?? 0, minutes = Int(digits.dropFirst(2)) ?? 0
                zone = TimeZone(secondsFromGMT: (zoneText.first == "-" ? -1 : 1) * (hours * 3600 + minutes * 60))
            } else {
                zone = TimeZone(identifier: String(zoneText))
            }
        }
        guard let zone else {
            throw FTBackupError(.usage, "--at '\(text)': unknown time zone \(zoneText)", hint: "use an offset or a zone name, e.g. \(examples)")
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let components = DateComponents(year: Int(match.1), month: Int(match.2), day: Int(match.3), hour: Int(match.4),
                                        minute: Int(match.5), second: match.6.map { Int($0)! } ?? 0)
        guard let whole = calendar.date(from: components), calendar.component(.day, from: whole) == components.day,
              (0...23).contains(components.hour!), (0...59).contains(components.minute!), (0...59).contains(components.second!) else {
            throw FTBackupError(.usage, "--at '\(text)' is not a valid date and time", hint: "e.g. \(examples)")
        }
        let fraction = match.7.map { Double("0" + $0)! } ?? 0
        return whole.addingTimeInterval(fraction)
    }
}
