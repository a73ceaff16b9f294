import Foundation

/// Whether a connection to PostgreSQL must be encrypted with TLS: the policy's `database.require_tls`,
/// or, when the policy leaves it out, only for servers off this machine (a Unix socket or a loopback
/// address never leaves the host; anything else crosses a network someone else may read).
public enum TLSRequirement: Sendable, Equatable {
    /// Required for every host that is not a Unix socket or a loopback address.
    case automatic
    case required
    case notRequired

    public init(policy value: Bool?) {
        switch value {
        case .some(true): self = .required
        case .some(false): self = .notRequired
        case .none: self = .automatic
        }
    }

    /// Whether a connection to `hosts` (libpq's `host`/`hostaddr`, comma-separated; empty for the
    /// default Unix socket) must use TLS.
    public func applies(toHosts hosts: String) -> Bool {
        switch self {
        case .required: return true
        case .notRequired: return false
        case .automatic:
            return hosts.split(separator: ",", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
                .contains { !Self.isLocal($0) }
        }
    }

    /// A Unix socket folder, an abstract socket, `localhost`, 127.0.0.0/8 or ::1.
    static func isLocal(_ host: String) -> Bool {
        if host.isEmpty || host.hasPrefix("/") || host.hasPrefix("@") { return true }
        let lower = host.lowercased()
        if lower == "localhost" || lower == "::1" || lower == "[::1]" || lower == "0:0:0:0:0:0:0:1" { return true }
        let octets = lower.split(separator: ".", omittingEmptySubsequences: false)
        if octets.count == 4, octets.allSatisfy({ UInt8($0) != nil }), octets[0] == "127" { return true }
        return false
    }
}

/// What a connection's encryption is, from libpq: shown by `check` and `info` so an operator can see
/// that the connection to the database is encrypted and whether the server's certificate was verified.
public struct TLSStatus: Sendable, Codable, Equatable {
    public var encrypted: Bool
    /// `TLSv1.3`, …; nil without TLS.
    public var `protocol`: String?
    public var cipher: String?
    /// The sslmode libpq used (`disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full`).
    public var sslmode: String
    /// True when libpq checked the server's certificate against a trusted root (verify-ca, verify-full);
    /// `hostVerified` when it also checked the host name (verify-full).
    public var certificateVerified: Bool
    public var hostVerified: Bool

    public var summary: String {
        guard encrypted else { return "not encrypted (sslmode=\(sslmode))" }
        let verification = hostVerified ? "server certificate and host name verified"
            : certificateVerified ? "server certificate verified, host name not checked" : "server certificate NOT verified"
        return "TLS \(self.protocol ?? "?") \(cipher ?? "?"), \(verification) (sslmode=\(sslmode))"
    }
}

extension ConnectionString {
    /// The hosts libpq will try, from the string or the `PGHOSTADDR`/`PGHOST` environment.
    var effectiveHosts: String {
        let environment = ProcessInfo.processInfo.environment
        return option("hostaddr") ?? option("host") ?? environment["PGHOSTADDR"] ?? environment["PGHOST"] ?? ""
    }

    /// The sslmode the string or `PGSSLMODE` sets, if any (`requiressl=1` is the old spelling of require).
    var explicitSSLMode: String? {
        if let mode = option("sslmode") { return mode }
        if option("requiressl") == "1" { return "require" }
        return ProcessInfo.processInfo.environment["PGSSLMODE"]
    }

    /// True when this connection must be encrypted (policy, or a host off this machine by default).
    public var mustUseTLS: Bool { tlsRequirement.applies(toHosts: effectiveHosts) }

    /// The sslmode to add to the connection: `require` when TLS is needed and nothing chose a mode.
    /// A mode that allows plain text when TLS is needed is refused before any connection is made, so
    /// no password or query is ever sent in the clear.
    func sslModeToAdd() throws -> String? {
        guard mustUseTLS else { return nil }
        guard let mode = explicitSSLMode else { return "require" }
        if ["disable", "allow", "prefer"].contains(mode) {
            throw FTBackupError(.permission,
                                "refusing to connect to \(redacted) with sslmode=\(mode): TLS is required for this host (policy database.require_tls)",
                                hint: "use sslmode=verify-full with sslrootcert=FILE (or sslmode=require), or set database.require_tls: false in the policy")
        }
        return nil
    }
}
