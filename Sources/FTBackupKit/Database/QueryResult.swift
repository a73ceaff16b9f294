import Foundation

/// The rows of a query, copied out of libpq into Swift values so they can cross threads.
///
/// Values arrive in PostgreSQL's text format; the typed accessors convert them and throw a clear
/// error naming the column when a value does not fit.
public struct QueryResult: Sendable {
    public let columns: [String]
    public let rows: [Row]
    /// The number in the command tag (`UPDATE 3` → 3), or nil.
    public let affectedRows: Int?

    public var count: Int { rows.count }
    public var first: Row? { rows.first }

    /// One result row.
    public struct Row: Sendable {
        let columns: [String]
        public let values: [String?]

        public func string(_ column: String) throws -> String? { values[try index(column)] }

        public func requiredString(_ column: String) throws -> String {
            guard let value = try string(column) else { throw nullError(column) }
            return value
        }

        public func int(_ column: String) throws -> Int? {
            guard let text = try string(column) else { return nil }
            guard let value = Int(text) else { throw typeError(column, text, "an integer") }
            return value
        }

        public func requiredInt(_ column: String) throws -> Int {
            guard let value = try int(column) else { throw nullError(column) }
            return value
        }

        public func int64(_ column: String) throws -> Int64 {
            guard let text = try string(column) else { throw nullError(column) }
            guard let value = Int64(text) else { throw typeError(column, text, "an integer") }
            return value
        }

        public func bool(_ column: String) throws -> Bool? {
            guard let text = try string(column) else { return nil }
            switch text {
            case "t", "true", "on": return true
            case "f", "false", "off": return false
            default: throw typeError(column, text, "a boolean")
            }
        }

        /// Reads a `timestamptz` that the query rendered as epoch seconds (`extract(epoch from …)`).
        public func epochDate(_ column: String) throws -> Date? {
            guard let text = try string(column) else { return nil }
            guard let seconds = Double(text) else { throw typeError(column, text, "epoch seconds") }
            return Date(timeIntervalSince1970: seconds)
        }

        private func index(_ column: String) throws -> Int {
            guard let index = columns.firstIndex(of: column) else {
                throw PostgresError(message: "result has no column \"\(column)\"")
            }
            return index
        }

        private func nullError(_ column: String) -> PostgresError {
            PostgresError(message: "column \"\(column)\" is unexpectedly NULL")
        }

        private func typeError(_ column: String, _ text: String, _ expected: String) -> PostgresError {
            PostgresError(message: "column \"\(column)\" value '\(text.prefix(40))' is not \(expected)")
        }
    }
}

/// A query parameter, sent in text format and typed by the server from context.
public protocol SQLParameter: Sendable {
    var sqlText: String? { get }
}

extension String: SQLParameter { public var sqlText: String? { self } }
extension Int: SQLParameter { public var sqlText: String? { String(self) } }
extension Int64: SQLParameter { public var sqlText: String? { String(self) } }
extension Bool: SQLParameter { public var sqlText: String? { self ? "true" : "false" } }
extension UUID: SQLParameter { public var sqlText: String? { uuidString.lowercased() } }
extension Date: SQLParameter { public var sqlText: String? { Timestamps.iso8601UTC(self) } }
extension Optional: SQLParameter where Wrapped: SQLParameter {
    public var sqlText: String? { self?.sqlText }
}
