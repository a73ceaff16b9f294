import Foundation

/// The jobs one scheduler tick considers, in the order it runs them.
public enum ScheduledJob: String, Codable, Sendable, CaseIterable {
    /// `backup --type full`, then a verify of it.
    case full
    /// `backup --type incr` (a running follower covers it).
    case incremental
    /// `verify --segments`, then `expire`.
    case maintenance
    /// `lifecycle archive`, `lifecycle prune-audit`, then a verify of the archives and evidence (in the window).
    case lifecycle
    /// `drill` (in the window).
    case drill
}

/// Whether a job is due at a tick, and why (what `run --dry-run` prints).
public struct JobDecision: Codable, Sendable, Equatable {
    public var job: ScheduledJob
    public var due: Bool
    public var reason: String
}

/// What a tick did with one job: one key=value line in the log.
public struct JobOutcome: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable { case ran, skipped, failed, due }
    public var job: ScheduledJob
    public var status: Status
    public var reason: String
    public var detail: String?
    public var seconds: Double?
    /// The failure's exit code (as the job's own command would exit).
    public var exitCode: Int32?
    /// The rows and bytes a job that ran handled (its metrics file's `ftbackup_job_rows` and `_bytes`).
    public var totals: JobTotals?
    /// The sync to the second repository after the job (nil: none configured, or the job wrote nothing).
    public var secondRepository: SecondRepositoryOutcome?

    /// `job=full status=ran seconds=2.8 reason="…" detail="…"`
    public var logLine: String {
        var parts = ["job=\(job.rawValue)", "status=\(status.rawValue)"]
        if let seconds { parts.append(String(format: "seconds=%.1f", seconds)) }
        if let exitCode { parts.append("exit=\(exitCode)") }
        parts.append("reason=\(Self.quoted(reason))")
        if let detail { parts.append("detail=\(Self.quoted(detail))") }
        if let second = secondRepository { parts.append(second.logFields) }
        return parts.joined(separator: " ")
    }

    static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: " ") + "\""
    }
}

/// What the sync to the second repository after a job (and, after maintenance, its expiry) came to.
public struct SecondRepositoryOutcome: Codable, Sendable, Equatable {
    public var location: String
    public var ok: Bool
    public var detail: String
    /// The failure's exit code (as `ftbackup sync` would exit).
    public var exitCode: Int32?

    /// `second=ok second_detail="…"`, or `second=failed exit=… second_detail="…"`.
    var logFields: String {
        "second=\(ok ? "ok" : "failed")" + (exitCode.map { " second_exit=\($0)" } ?? "") + " second_detail=\(JobOutcome.quoted(detail))"
    }
}
