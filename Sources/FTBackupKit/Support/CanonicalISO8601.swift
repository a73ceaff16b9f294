import Foundation

/// Reads the form manifests' times are written in (`2026-11-25T14:32:07.123456Z`: UTC, 4 to 9 fraction digits) without
/// Foundation's parser or a regex: a restore decodes thousands of manifest dates before it touches the target, and
/// those two were most of that time.
///
/// It gives exactly the `Date` `Timestamps.parseISO8601WithFoundation` gives for that form (the whole second, then
/// `Double` of the fraction's digits added), which the tests check. Any other text returns nil and is left to
/// Foundation: out-of-range fields, a year before 1583 (Foundation's calendar is Julian there), an offset, fewer than 4
/// fraction digits (Foundation's own arithmetic for those differs from that sum in the last bit now and then).
enum CanonicalISO8601 {
    static func parse(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { parse(bytes: $0) }
    }

    private static func parse(bytes b: UnsafeBufferPointer<UInt8>) -> Date? {
        // YYYY-MM-DDTHH:MM:SS is 19 bytes; then an optional .fraction, then Z or ±HH:MM.
        guard b.count >= 20, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54, b[13] == 0x3A, b[16] == 0x3A,
              let year = number(b, 0, 4), let month = number(b, 5, 2), let day = number(b, 8, 2),
              let hour = number(b, 11, 2), let minute = number(b, 14, 2), let second = number(b, 17, 2),
              // Foundation's calendar is Julian before the Gregorian reform (1582-10-15): those dates are left to it.
              year >= 1583, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
              hour < 24, minute < 60, second < 60 else { return nil }
        guard b[19] == 0x2E else { return nil }
        var end = 20
        while end < b.count, b[end] >= 0x30, b[end] <= 0x39 { end += 1 }
        let digits = end - 20
        guard (4...9).contains(digits), end == b.count - 1, b[end] == 0x5A, let value = number(b, 20, digits) else { return nil }
        // Both exact in a Double, so the division is the correctly rounded value: what Double("0.digits") gives.
        let fraction = Double(value) / powersOfTen[digits]
        let seconds = daysSinceEpoch(year: year, month: month, day: day) * 86_400 + hour * 3_600 + minute * 60 + second
        return Date(timeIntervalSince1970: Double(seconds)).addingTimeInterval(fraction)
    }

    /// False when `text` has no `.` followed by 4 or more ASCII digits: then the Foundation reading's regex (4 to 9
    /// fraction digits) cannot match, and its second step is all that is left to run.
    static func mayHaveLongFraction(_ text: String) -> Bool {
        var digits = -1
        for byte in text.utf8 {
            if byte == 0x2E { digits = 0 } else if digits >= 0, byte >= 0x30, byte <= 0x39 { digits += 1; if digits >= 4 { return true } } else { digits = -1 }
        }
        return false
    }

    private static let powersOfTen: [Double] = (0...9).map { pow(10, Double($0)) }

    /// The decimal number in `count` bytes from `start`, nil unless all are digits.
    private static func number(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ count: Int) -> Int? {
        guard start + count <= b.count else { return nil }
        var value = 0
        for i in start..<(start + count) {
            let digit = Int(b[i]) - 0x30
            guard digit >= 0 && digit <= 9 else { return nil }
            value = value * 10 + digit
        }
        return value
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days from 1970-01-01 to the proleptic Gregorian date (the civil-from-days inverse, by eras of 400 years).
    private static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
