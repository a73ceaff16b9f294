import Foundation

/// The stretch of time a compliance report covers: whole UTC days, `from` inclusive, `to` exclusive.
///
/// It exists so that `--month 2026-10` and `--from 2026-10-01 --to 2026-10-31` mean exactly the
/// same days everywhere in the report, whatever zone the machine is in.
public struct ReportPeriod: Codable, Sendable, Equatable {
    public var from: Date
    public var to: Date
    /// `2026-10`, or `2026-10-01..2026-10-31`.
    public var label: String

    public init(from: Date, to: Date, label: String) {
        self.from = from
        self.to = to
        self.label = label
    }

    static var calendar: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        return calendar
    }

    /// `--month YYYY-MM`, or `--from DATE --to DATE` (both days included), or neither: the current
    /// UTC month. Anything else is a usage error (exit 64).
    public static func parse(month: String?, from: String?, to: String?, now: Date = Date()) throws -> ReportPeriod {
        if month != nil && (from != nil || to != nil) {
            throw FTBackupError(.usage, "--month cannot be combined with --from/--to")
        }
        if let month {
            let parts = month.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0].count == 4, parts[1].count == 2, let year = Int(parts[0]), let number = Int(parts[1]),
                  (1...12).contains(number), let start = calendar.date(from: DateComponents(year: year, month: number, day: 1)),
                  let end = calendar.date(byAdding: .month, value: 1, to: start)
            else { throw FTBackupError(.usage, "--month \(month) is not a month: give YYYY-MM (2026-10)") }
            return ReportPeriod(from: start, to: end, label: month)
        }
        if from != nil || to != nil {
            guard let from, let to else { throw FTBackupError(.usage, "--from and --to go together") }
            let start = try day(from, option: "--from")
            let last = try day(to, option: "--to")
            guard start <= last else { throw FTBackupError(.usage, "--from \(from) is after --to \(to)") }
            return ReportPeriod(from: start, to: calendar.date(byAdding: .day, value: 1, to: last)!, label: "\(from)..\(to)")
        }
        let parts = calendar.dateComponents([.year, .month], from: now)
        let start = calendar.date(from: DateComponents(year: parts.year, month: parts.month, day: 1))!
        return ReportPeriod(from: start, to: calendar.date(byAdding: .month, value: 1, to: start)!,
                            label: String(format: "%04d-%02d", parts.year!, parts.month!))
    }

    /// `YYYY-MM-DD` as the start of that UTC day; a day that does not exist (02-30) is refused.
    static func day(_ text: String, option: String) throws -> Date {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
              let date = calendar.date(from: DateComponents(year: year, month: month, day: day)),
              calendar.dateComponents([.year, .month, .day], from: date) == DateComponents(year: year, month: month, day: day)
        else { throw FTBackupError(.usage, "\(option) \(text) is not a day: give YYYY-MM-DD (UTC)") }
        return date
    }

    public func contains(_ date: Date) -> Bool { date >= from && date < to }

    /// The UTC days of the period, up to (and including) the day of `now`.
    func days(until now: Date) -> [Date] {
        var days: [Date] = []
        var day = from
        while day < to && day <= now {
            days.append(day)
            day = Self.calendar.date(byAdding: .day, value: 1, to: day)!
        }
        return days
    }

    /// The first instants of the UTC months the period touches, up to the month of `now`.
    func months(until now: Date) -> [Date] {
        let parts = Self.calendar.dateComponents([.year, .month], from: from)
        var month = Self.calendar.date(from: DateComponents(year: parts.year, month: parts.month, day: 1))!
        var months: [Date] = []
        while month < to && month <= now {
            months.append(month)
            month = Self.calendar.date(byAdding: .month, value: 1, to: month)!
        }
        return months
    }

    /// A run label's time (`20261125T140501Z…`), nil when the name does not start with one.
    static func labelTime(_ label: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = .gmt
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.date(from: String(label.prefix(16)))
    }

    static func dayText(_ date: Date) -> String {
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year!, parts.month!, parts.day!)
    }

    static func monthText(_ date: Date) -> String { String(dayText(date).prefix(7)) }
}
