/// The stable exit codes of every ftbackup command (documented in the README).
///
/// They follow BSD `sysexits.h` so that cron, systemd and scripts can tell a usage mistake from a
/// server that is down from a corrupted repository without parsing messages.
public enum ExitStatus: Int32, Sendable, CaseIterable {
    /// The command did what was asked.
    case success = 0
    /// An unexpected failure not covered below.
    case failure = 1
    /// A restore drill ran to the end but missed an objective (RTO, RPO) or a check; its record says which.
    case drillFailed = 2
    /// Bad command-line usage or input (a malformed `--at`, an unknown schema, …).
    case usage = 64
    /// The repository or a backup in it is corrupt, truncated or incomplete; `verify` found a bad file; the
    /// server reported bad, conflicting or corrupted data (SQLSTATE class 22, 23, XX).
    case dataError = 65
    /// The database server could not be reached or the database does not exist.
    case unavailable = 69
    /// A safety check stopped a destructive statement before it committed (a prune or archive batch
    /// whose evidence showed a row outside its eligibility); nothing of that batch was removed.
    case safetyStop = 70
    /// The repository or a target could not be written (read-only, full disk, permissions).
    case cannotWrite = 73
    /// Another run holds the repository lock, or what a run depends on changed under it before it changed anything
    /// (a full backup's tables rewritten, a `restore --clean`'s dependants altered); try again.
    case locked = 75
    /// The server refused the credentials or the role lacks a privilege.
    case permission = 77
    /// The policy file or configuration is invalid.
    case configuration = 78
}

/// The one error type every ftbackup failure is reported as.
///
/// It exists so that a failure always renders as one line saying what failed, where, and what to
/// do about it, and maps to a stable exit code. It never carries a secret: messages are built from
/// redacted connection descriptions only.
public struct FTBackupError: Error, CustomStringConvertible, Sendable {
    public var status: ExitStatus
    /// What went wrong, lowercase, no trailing period (for example "cannot connect to host=db port=5432").
    public var message: String
    /// What the operator can do about it, if we know.
    public var hint: String?

    public init(_ status: ExitStatus, _ message: String, hint: String? = nil) {
        self.status = status
        self.message = message
        self.hint = hint
    }

    public var description: String {
        let oneLine = message.replacingOccurrences(of: "\n", with: " ").trimmingCharacters(in: .whitespaces)
        guard let hint, !hint.isEmpty else { return oneLine }
        return "\(oneLine) (hint: \(hint))"
    }
}

import Foundation
