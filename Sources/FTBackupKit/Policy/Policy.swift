import Foundation
/// What the operators decided about backups, retention and recovery targets.
///
/// It exists so that schedules, retention periods and objectives are data in `policies/`, reviewed
/// like code, rather than constants in the tool. Every command loads and validates one.
public struct Policy: Sendable, Equatable, Codable {
    public enum Schedule: String, Sendable, Codable, CaseIterable {
        case hourly, daily, weekly, monthly

        /// The interval `ftbackup run` keeps between two runs of a job on this schedule (a month is 30 days).
        public var interval: Period {
            switch self {
            case .hourly: return Period(1, .hours)
            case .daily: return Period(1, .days)
            case .weekly: return Period(1, .weeks)
            case .monthly: return Period(1, .months)
            }
        }
    }

    public struct BackupKind: Sendable, Equatable, Codable {
        public var schedule: Schedule
        public var retention: Period
    }

    public struct ChangeArchival: Sendable, Equatable, Codable {
        public var enabled: Bool
        public var sealEvery: Period
        public var sealBytes: Int64
    }

    public struct Compression: Sendable, Equatable, Codable {
        public var codec: CompressionCodec
        public var level: Int
        public var workers: Int
    }

    /// An application-level reference between tool schemas (no foreign key enforces it).
    public struct Reference: Sendable, Equatable, Codable {
        public var fromSchema: String, fromTable: String, fromColumn: String
        public var toSchema: String, toTable: String, toColumn: String
    }

    public struct ArchiveToolData: Sendable, Equatable, Codable {
        public var status: String
        public var after: Period
        public var ageColumn: String
        public var ageColumnOverrides: [String: String]
        public var references: [Reference]
    }

    /// `lifecycle.application_triggers`: `skip` (default) runs lifecycle deletes and unarchive inserts with
    /// `session_replication_role = replica`, so an application trigger can neither rewrite nor add rows;
    /// `fire` lets them fire (only for applications whose triggers are meant to see retention work).
    public enum ApplicationTriggers: String, Sendable, Codable, CaseIterable { case skip, fire }

    public var version: Int
    public var full: BackupKind
    public var incremental: BackupKind
    public var changeArchival: ChangeArchival
    public var compression: Compression
    /// `schema.table` patterns (either part may be `*`) never backed up.
    public var exclude: [String]
    public var archiveToolData: ArchiveToolData
    public var auditRetention: Period
    public var legalHoldOrganizations: [String]
    /// Whether application triggers fire when lifecycle work deletes or puts back rows.
    public var applicationTriggers: ApplicationTriggers
    public var rto: Period
    public var rpo: Period
    public var drillSchedule: Schedule
    /// `drills.every`: the interval between drills, when given instead of (or besides) `drills.schedule`.
    public var drillEvery: Period? = nil
    /// `drills.checks`: the operators' own checks of a restored database (`{name, sql, expect}`).
    public var drillChecks: [DrillCheck] = []
    /// `schedule`: when `ftbackup run` does the heavy jobs, and what `ftbackup schedule` generates.
    public var scheduling: Scheduling = Scheduling()
    /// `database.require_tls`: every connection must be encrypted (true), need not be (false), or, when
    /// left out, must be for every host that is not a Unix socket or loopback (``TLSRequirement``).
    public var requireTLS: Bool? = nil
    /// `monitoring.metrics_dir`: where every command writes its Prometheus metrics file (nil: nowhere).
    public var metricsDirectory: String? = nil
    public var tlsRequirement: TLSRequirement { TLSRequirement(policy: requireTLS) }
    /// `encryption.key_file`: the master key that encrypts the repository at rest (nil: none unless
    /// `--key-file` or `FTBACKUP_KEY_FILE` names one).
    public var encryptionKeyFile: String? = nil

    /// `repository`: where the repository is, how its bucket is addressed, and the second repository the
    /// scheduler keeps in step (``RepositorySettings``).
    public var repository = RepositorySettings()

    /// The interval between two drills.
    public var drillInterval: Period { drillEvery ?? drillSchedule.interval }
    /// The file this policy came from (for messages and manifests).
    public var source: String

    /// True when `schema.table` matches one of the `exclude` patterns.
    public func excludes(schema: String, table: String) -> Bool {
        exclude.contains { pattern in
            let parts = pattern.split(separator: ".", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { return false }
            return (parts[0] == "*" || parts[0] == schema) && (parts[1] == "*" || parts[1] == table)
        }
    }
}

extension Policy {
    /// One of the policy's own checks of a drill's restored database: `sql` returns one value, which must
    /// read as `expect` (PostgreSQL's text form, so a boolean is `t` or `f`).
    public struct DrillCheck: Sendable, Equatable, Codable {
        public var name: String
        public var sql: String
        public var expect: String
        /// How long the check may run (`timeout`, default 5 minutes): a check that never returns fails
        /// instead of holding the drill, and with it the repository's locks, forever.
        public var timeout: Period?

        public static let defaultTimeoutSeconds: Double = 300

        public init(name: String, sql: String, expect: String, timeout: Period? = nil) {
            self.name = name
            self.sql = sql
            self.expect = expect
            self.timeout = timeout
        }

        public var timeoutSeconds: Double { timeout?.nominalSeconds ?? Self.defaultTimeoutSeconds }
    }

    /// The `schedule` section: what `ftbackup run` (one scheduler tick) needs beyond the backup schedules.
    public struct Scheduling: Sendable, Equatable, Codable {
        /// How often the timer or cron line calls `ftbackup run`.
        public var tick = Period(5, .minutes)
        /// The daily UTC window in which lifecycle jobs and drills start (minutes after midnight, end exclusive).
        public var windowStartMinute = 2 * 60
        public var windowEndMinute = 5 * 60
        /// How often the lifecycle jobs (archive, prune-audit, verify of their archives) run.
        public var lifecycle = Schedule.monthly
        /// How often change segments are verified and expiry runs.
        public var maintenance = Schedule.daily
        /// systemd's RandomizedDelaySec for the tick timer.
        public var randomizedDelay = Period(1, .minutes)
        /// Whether a long-running `ftbackup follow` service is part of the deployment.
        public var follower = true

        public init() {}

        /// `HH:MM-HH:MM`, as written in the policy.
        public var windowText: String {
            String(format: "%02d:%02d-%02d:%02d", windowStartMinute / 60, windowStartMinute % 60, windowEndMinute / 60, windowEndMinute % 60)
        }

        /// True when `date` falls in the window (a window may cross midnight: `23:00-01:00`).
        public func inWindow(_ date: Date) -> Bool {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = .gmt
            let parts = calendar.dateComponents([.hour, .minute], from: date)
            let minute = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
            if windowStartMinute <= windowEndMinute { return minute >= windowStartMinute && minute < windowEndMinute }
            return minute >= windowStartMinute || minute < windowEndMinute
        }
    }
}

extension Policy {
    /// The `repository` section. It exists so that a deployment can keep the repository's address, and its
    /// off-site copy, in the reviewed policy instead of in each timer's environment. `--repo` and
    /// `FTBACKUP_REPO` still win over `path`, and `FTBACKUP_S3_URI_STYLE` / `FTBACKUP_S3_CA_BUNDLE` over
    /// `uri_style` / `ca_bundle` (``applyS3Settings()``).
    public struct RepositorySettings: Sendable, Equatable, Codable {
        /// `path`: a folder or `s3://BUCKET/PREFIX`.
        public var path: String?
        /// `uri_style`: `path` or `host` addressing of an S3 bucket.
        public var uriStyle: String?
        /// `ca_bundle`: a CA bundle file for an S3 store with a private certificate authority.
        public var caBundle: String?
        /// `second`: a second repository (folder or `s3://…`) that `ftbackup run` syncs to after each job
        /// that wrote to the first, and expires by the same policy.
        public var second: String?
        /// `second_env_file`: the `s3://` second repository's own AWS settings (`AWS_*` / `FTBACKUP_S3_*` lines),
        /// used for it instead of the process's environment (another account, region or endpoint).
        public var secondEnvFile: String?

        public init(path: String? = nil, uriStyle: String? = nil, caBundle: String? = nil, second: String? = nil, secondEnvFile: String? = nil) {
            self.path = path
            self.uriStyle = uriStyle
            self.caBundle = caBundle
            self.second = second
            self.secondEnvFile = secondEnvFile
        }

        /// Makes `uri_style` and `ca_bundle` the S3 settings of this process (and of the children it starts)
        /// where the environment does not already set them (the environment wins), and `second_env_file`
        /// the settings of the second repository (``S3RepositoryEnvironment``).
        public func applyS3Settings() {
            for (name, value) in s3Defaults(environment: ProcessInfo.processInfo.environment) { setenv(name, value, 0) }
            if let second, let file = secondEnvFile, let location = try? S3Location(second) {
                S3RepositoryEnvironment.use(file: file, for: location)
            }
        }

        /// The variables `applyS3Settings` sets, given `environment` (tests check it without touching
        /// the process's environment, which other threads read).
        func s3Defaults(environment: [String: String]) -> [String: String] {
            var defaults: [String: String] = [:]
            if let uriStyle, environment["FTBACKUP_S3_URI_STYLE"] == nil { defaults["FTBACKUP_S3_URI_STYLE"] = uriStyle }
            if let caBundle, environment["FTBACKUP_S3_CA_BUNDLE"] == nil { defaults["FTBACKUP_S3_CA_BUNDLE"] = caBundle }
            return defaults
        }
    }
}
