import Foundation

/// Reads the ISO 8601 forms ftbackup writes (`2026-11-25T14:32:07Z`, `…07.123Z`, `…07.123456Z`, or with a `±HH:MM`
/// offset) without Foundation's parser or a regex: a restore decodes thousands of manifest dates before it touches
/// the target, and those two were most of that time.
///
/// It gives exactly the `Date` Foundation gives for the same text (the whole second, then the fraction added as
/// `Double` of its digits), which `Timestamps.parseISO8601WithFoundation` checks in the tests; a text it does not
/// take as canonical (out-of-range fields, a year before 1583 where Foundation's calendar is Julian, an offset beyond
/// 18 hours, other separators, more than 9 fraction digits) returns nil and is left to Foundation.
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
        var index = 19
        var fraction = 0.0
        if b[index] == 0x2E {
            let start = index + 1
            var end = start
            while end < b.count, b[end] >= 0x30, b[end] <= 0x39 { end += 1 }
            let digits = end - start
            guard (1...9).contains(digits), let value = number(b, start, digits) else { return nil }
            // Both exact in a Double, so the division is the correctly rounded value: what Double("0.digits") gives.
            fraction = Double(value) / powersOfTen[digits]
            index = end
        }
        var offset = 0
        switch b.count - index {
        case 1 where b[index] == 0x5A:
            offset = 0
        case 6 where (b[index] == 0x2B || b[index] == 0x2D) && b[index + 3] == 0x3A:
            // Foundation refuses an offset beyond 18 hours (+18:01, +23:59).
            guard let hours = number(b, index + 1, 2), let minutes = number(b, index + 4, 2), minutes < 60, hours * 60 + minutes <= 18 * 60 else { return nil }
            offset = (hours * 60 + minutes) * 60 * (b[index] == 0x2D ? -1 : 1)
        default:
            return nil
        }
        let seconds = daysSinceEpoch(year: year, month: month, day: day) * 86_400 + hour * 3_600 + minute * 60 + second - offset
        return Date(timeIntervalSince1970: Double(seconds)).addingTimeInterval(fraction)
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
