import CLibPQ

/// An error reported by the PostgreSQL server or by libpq, with the server's fields kept.
///
/// It exists so that callers can act on the SQLSTATE (a lost connection, a missing schema, a lock
/// timeout) and so that every database failure renders as one line with its detail and hint.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    /// The five-character SQLSTATE (`42P01`), or nil for client-side failures such as a lost connection.
    public var sqlState: String?
    public var severity: String?
    public var message: String
    public var detail: String?
    public var hint: String?
    /// What ftbackup was doing when it failed ("COPY users.accounts TO STDOUT").
    public var context: String?
    /// True when the connection is gone and nothing more can be done with it.
    public var connectionLost: Bool

    public init(sqlState: String? = nil, severity: String? = nil, message: String, detail: String? = nil,
                hint: String? = nil, context: String? = nil, connectionLost: Bool = false) {
        self.sqlState = sqlState
        self.severity = severity
        self.message = message
        self.detail = detail
        self.hint = hint
        self.context = context
        self.connectionLost = connectionLost
    }

    public var description: String {
        var parts: [String] = []
        if let context { parts.append(context + ":") }
        parts.append(message)
        if let sqlState { parts.append("[SQLSTATE \(sqlState)]") }
        if let detail, !detail.isEmpty { parts.append("detail: \(detail)") }
        if let hint, !hint.isEmpty { parts.append("hint: \(hint)") }
        return parts.joined(separator: " ")
            .replacingOccurrences(of: "\n", with: " ")
            .trimmingCharacters(in: .whitespaces)
    }

    /// The exit status a command ends with when this error stops it.
    public var exitStatus: ExitStatus { Self.exitStatus(sqlState: sqlState, connectionLost: connectionLost) }

    /// The documented exit code for a SQLSTATE (README, exit codes): the server's errors are never "bad
    /// usage" (64), which is for what the operator typed.
    /// - 08 (connection), 57P01–57P04 (shutdown, cannot connect now, database dropped), 3D000 (no such
    ///   database), 53300 (too many connections): 69, the database is unavailable;
    /// - 28 (authentication) and 42501 (insufficient privilege): 77;
    /// - 22 (data exception), 23 (integrity violation), XX (internal error, data corrupted): 65;
    /// - 53100 (disk full) and 58030 (I/O error): 73, cannot write;
    /// - anything else (a statement ftbackup got wrong, a lock or serialization failure, out of memory): 1.
    public static func exitStatus(sqlState: String?, connectionLost: Bool) -> ExitStatus {
        guard let sqlState, sqlState.count == 5 else { return connectionLost ? .unavailable : .failure }
        switch sqlState {
        case "42501": return .permission
        case "3D000", "53300", "57P01", "57P02", "57P03", "57P04": return .unavailable
        case "53100", "58030": return .cannotWrite
        default: break
        }
        switch sqlState.prefix(2) {
        case "28": return .permission
        case "08": return .unavailable
        case "22", "23", "XX": return .dataError
        default: return connectionLost ? .unavailable : .failure
        }
    }

    /// Builds the error from a failed result, reading the server's diagnostic fields.
    static func from(result: OpaquePointer?, connection: OpaquePointer?, context: String?) -> PostgresError {
        func field(_ code: Character) -> String? {
            guard let result, let value = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
            return String(cString: value)
        }
        let lost = connection.map { PQstatus($0) == CONNECTION_BAD } ?? true
        if let primary = field("M") {
            return PostgresError(sqlState: field("C"), severity: field("V"), message: primary,
                                 detail: field("D"), hint: field("H"), context: context, connectionLost: lost)
        }
        var text = ""
        if let result, let message = PQresultErrorMessage(result) { text = String(cString: message) }
        if text.isEmpty, let connection, let message = PQerrorMessage(connection) { text = String(cString: message) }
        text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.isEmpty { text = "unknown libpq error" }
        return PostgresError(message: text, context: context, connectionLost: lost)
    }
}

import Foundation
