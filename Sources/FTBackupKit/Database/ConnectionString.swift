import CLibPQ
import Foundation

/// A libpq connection string (`key=value …` or a `postgresql://` URI) that never shows its secret.
///
/// Everything libpq supports keeps working unchanged (`PG*` variables, `~/.pgpass`, `sslmode`, …):
/// the string is handed to libpq as is. What ftbackup prints is `redacted`, built from the parsed
/// options without the password, and `scrub` removes the password from any text before it is shown.
public struct ConnectionString: Sendable, CustomStringConvertible {
    /// The string as given; empty means "libpq's defaults" (the `PG*` environment variables).
    public let raw: String
    private let options: [String: String]
    /// Whether the connection must be encrypted (the policy's `database.require_tls`); see ``TLSRequirement``.
    public private(set) var tlsRequirement: TLSRequirement = .automatic
    /// Server settings (`-c name=value …`) every connection and child process made from this string starts
    /// with, after the user's own (`options` in the string, else `PGOPTIONS`).
    public private(set) var serverOptions: String?

    /// Parses with libpq's own parser so that a malformed string is refused without being echoed.
    public init(_ raw: String) throws {
        self.raw = raw
        var parsed: [String: String] = [:]
        if !raw.isEmpty {
            var errorMessage: UnsafeMutablePointer<CChar>?
            guard let options = PQconninfoParse(raw, &errorMessage) else {
                if let errorMessage { PQfreemem(errorMessage) }
                throw FTBackupError(.usage, "invalid connection string: libpq cannot parse it",
                                    hint: "use key=value pairs such as 'host=db1 dbname=fasttrack' or a postgresql:// URI")
            }
            var option = options
            while let keyword = option.pointee.keyword {
                if let value = option.pointee.val { parsed[String(cString: keyword)] = String(cString: value) }
                option += 1
            }
            PQconninfoFree(options)
        }
        self.options = parsed
    }

    /// The same string under the policy's TLS requirement.
    public func requiringTLS(_ requirement: TLSRequirement) -> ConnectionString {
        var copy = self
        copy.tlsRequirement = requirement
        return copy
    }

    /// The same string whose connections and child processes start with `settings` (`-c name=value …`) too.
    public func addingServerOptions(_ settings: String) -> ConnectionString {
        var copy = self
        copy.serverOptions = [serverOptions, settings].compactMap { $0 }.joined(separator: " ")
        return copy
    }

    /// The `options` a connection gets when `serverOptions` are set: the user's own, then those.
    var combinedServerOptions: String? {
        guard let serverOptions else { return nil }
        let own = options["options"] ?? ProcessInfo.processInfo.environment["PGOPTIONS"]
        return [own, serverOptions].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
    }

    /// The value of one option as written in the string (not including environment defaults).
    public func option(_ key: String) -> String? { options[key] }

    /// `host=… port=… dbname=… user=…` with no password, for messages and logs.
    public var redacted: String {
        let keys = ["host", "hostaddr", "port", "dbname", "user", "sslmode"]
        let parts = keys.compactMap { key in options[key].map { "\(key)=\($0)" } }
        return parts.isEmpty ? "(libpq defaults)" : parts.joined(separator: " ")
    }

    public var description: String { redacted }

    /// Removes the password (as given here or in `PGPASSWORD`) from a text before it is shown.
    public func scrub(_ text: String) -> String {
        var result = text
        for secret in [options["password"], options["sslpassword"], ProcessInfo.processInfo.environment["PGPASSWORD"]] {
            if let secret, !secret.isEmpty { result = result.replacingOccurrences(of: secret, with: "********") }
        }
        return result
    }
}

extension ConnectionString {
    /// What a child process (pg_dump, pg_restore) needs to reach the same database: a conninfo
    /// without the password, for its command line, and the password in `PGPASSWORD`, so that it
    /// never appears in a process title.
    public func forChildProcess(overriding overrides: [String: String] = [:]) -> (conninfo: String, environment: [String: String]) {
        var parsed = options
        // The child must encrypt when this connection must: the same sslmode as the parent's connection.
        if mustUseTLS && explicitSSLMode == nil { parsed["sslmode"] = "require" }
        for (key, value) in overrides { parsed[key] = value }
        if let serverOptions, let own = parsed["options"] { parsed["options"] = own + " " + serverOptions }
        let password = parsed.removeValue(forKey: "password")
        // libpq has no environment variable for the client key's passphrase: a child process cannot get it
        // without showing it in its arguments, so it is not passed (use an unencrypted key or a pgpass-style setup).
        parsed.removeValue(forKey: "sslpassword")
        let conninfo = parsed.keys.sorted().map { key in
            let value = parsed[key]!.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
            return "\(key)='\(value)'"
        }.joined(separator: " ")
        var environment: [String: String] = [:]
        if let password { environment["PGPASSWORD"] = password }
        // In PGOPTIONS (a step may add its own settings there): the string's own `options` stay in the conninfo.
        if let serverOptions {
            environment["PGOPTIONS"] = options["options"] != nil ? serverOptions
                : [ProcessInfo.processInfo.environment["PGOPTIONS"], serverOptions].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
        }
        return (conninfo, environment)
    }
}
