/// A length of time written in a policy as a number and a unit (`30d`, `2y`, `90min`).
///
/// Months and years are calendar units: the database computes cut-offs from them
/// (`now() - interval '2 years'`), so `sqlInterval` is what retention queries use.
public struct Period: Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Unit: String, Sendable, Codable, CaseIterable {
        case seconds = "s", minutes = "min", hours = "h", days = "d", weeks = "w", months = "mo", years = "y"

        var sqlName: String {
            switch self {
            case .seconds: return "seconds"
            case .minutes: return "minutes"
            case .hours: return "hours"
            case .days: return "days"
            case .weeks: return "weeks"
            case .months: return "months"
            case .years: return "years"
            }
        }

        /// Nominal length, for comparisons and schedules (a month is 30 days, a year 365).
        var seconds: Double {
            switch self {
            case .seconds: return 1
            case .minutes: return 60
            case .hours: return 3600
            case .days: return 86_400
            case .weeks: return 604_800
            case .months: return 2_592_000
            case .years: return 31_536_000
            }
        }
    }

    public var value: Int
    public var unit: Unit

    public init(_ value: Int, _ unit: Unit) {
        self.value = value
        self.unit = unit
    }

    /// Parses `<positive integer><unit>`; returns nil for anything else.
    public init?(parsing text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let value = Int(digits), value > 0,
              let unit = Unit(rawValue: String(trimmed.dropFirst(digits.count)).trimmingCharacters(in: .whitespaces))
        else { return nil }
        self.init(value, unit)
    }

    public var sqlInterval: String { "\(value) \(unit.sqlName)" }
    public var nominalSeconds: Double { Double(value) * unit.seconds }
    public var description: String { "\(value)\(unit.rawValue)" }
}

import Foundation
