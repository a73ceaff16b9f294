import ArgumentParser
import FTBackupKit
import Foundation

/// The `ftbackup` command line: a thin front over FTBackupKit. Each verb parses its options,
/// calls one library entry point and prints the result as text or JSON.
@main
struct FTBackup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ftbackup",
        abstract: "Backup, archival and recovery for the Fast Track database.",
        discussion: """
            Exit codes: 0 success, 1 unexpected failure, 2 a drill ran but missed an objective or a check (or a report has findings), 64 bad usage or input, 65 corrupt or incomplete \
            repository data or a data error on the server, 69 database unreachable, 70 a safety check stopped a destructive \
            statement before it committed, 73 cannot write, 75 repository locked by another run (or a full backup overtaken \
            by DDL on every attempt), 77 authentication or privilege refused, 78 invalid policy or configuration. On SIGINT, \
            SIGTERM or SIGHUP: children stopped, temporary files removed, then the process ends by that signal (130, 143, 129 in a shell).
            """,
        version: FTBackupVersion.current,
        subcommands: [CheckCommand.self, SetupCommand.self, TeardownCommand.self, BackupCommand.self, InfoCommand.self, VerifyCommand.self, RestoreCommand.self, FollowCommand.self, ExpireCommand.self, SyncCommand.self, LifecycleCommand.self, DrillCommand.self, ReportCommand.self, StatusCommand.self, KeyCommand.self, RepoCommand.self, RunCommand.self, ScheduleCommand.self, DevCommand.self]
    )

    static func main() async {
        // Wall times are the database's, never the client machine's: libpq must not send PGTZ
        // (retention's cut-off is read in the database's own zone; see DatabaseTimeZone).
        unsetenv("PGTZ")
        // Temporary files go with the process: on return, on error, and on SIGINT, SIGTERM or SIGHUP.
        TemporaryFiles.installSignalCleanup()
        do {
            var command = try parseAsRoot()
            let metrics = JobMetricsHook(command)
            do {
                if var asynchronous = command as? AsyncParsableCommand {
                    try await asynchronous.run()
                } else {
                    try command.run()
                }
            } catch {
                metrics?.finish(exitCode: (error as? ExitCode)?.rawValue ?? 1)
                throw error
            }
            metrics?.finish(exitCode: 0)
            TemporaryFiles.removeAll()
        } catch {
            TemporaryFiles.yieldToInterrupt()
            TemporaryFiles.removeAll()
            exit(withError: error)
        }
    }
}

/// Options every command shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("db"), help: "Source database: libpq conninfo or URI (else FTBACKUP_DB, else libpq's PG* defaults).")
    var database: String?

    @Option(name: .customLong("repo"), help: "Repository folder (else FTBACKUP_REPO).")
    var repository: String?

    @Option(name: .customLong("policy"), help: "Policy file (else FTBACKUP_POLICY, else policies/default.yaml).")
    var policyPath: String?

    @Option(name: .customLong("metrics-dir"), help: "Write Prometheus metrics (ftbackup_<job>.prom) for node_exporter's textfile collector here (else FTBACKUP_METRICS_DIR, else the policy's monitoring.metrics_dir).")
    var metricsDirectoryOption: String?

    @Option(name: .customLong("key-file"), help: "Master key that encrypts the repository at rest (else FTBACKUP_KEY_FILE, else the policy's encryption.key_file).")
    var keyFile: String?

    @Option(name: .customLong("output"), help: "text or json.")
    var output: OutputFormat = .text

    @Option(name: [.customShort("j", allowingJoined: true), .customLong("jobs")], help: "Parallel database connections.")
    var jobs: Int = 2

    func validate() throws {
        guard (1...64).contains(jobs) else { throw ValidationError("--jobs must be between 1 and 64") }
    }

    func connectionString() throws -> ConnectionString {
        try connection(database ?? ProcessInfo.processInfo.environment["FTBACKUP_DB"] ?? "")
    }

    /// A connection string (the source or a target) under the policy's TLS requirement.
    func connection(_ text: String) throws -> ConnectionString {
        try ConnectionString(text).requiringTLS(policy().tlsRequirement)
    }

    /// The repository path; resolving it also loads the master key, if one is named, for every
    /// repository this process opens (``RepositoryEncryption``).
    func repositoryPath(required: Bool) throws -> String? {
        // --repo, else FTBACKUP_REPO, else the policy's repository.path; its uri_style and ca_bundle apply
        // where FTBACKUP_S3_URI_STYLE / FTBACKUP_S3_CA_BUNDLE are not set; second_env_file, for the second.
        let settings = try policy().repository
        settings.applyS3Settings()
        let environment = ProcessInfo.processInfo.environment["FTBACKUP_REPO"]
        let path = repository ?? ((environment ?? "").isEmpty ? settings.path : environment)
        if required && (path ?? "").isEmpty {
            throw FTBackupError(.usage, "no repository given", hint: "pass --repo PATH, set FTBACKUP_REPO, or give the policy's repository.path")
        }
        try configureEncryption()
        return path.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The master key file named by `--key-file`, `FTBACKUP_KEY_FILE` or the policy, if any.
    func keyFilePath() throws -> String? { RepositoryEncryption.keyFilePath(option: keyFile, policy: try policy()) }

    /// Loads the named master key (refusing one that group or others can read) and makes it the process's.
    func configureEncryption() throws {
        RepositoryEncryption.use(try keyFilePath().map { try MasterKey.load(path: $0) })
    }

    /// The repository path of a command that reads it: it must exist.
    func existingRepositoryPath() throws -> String {
        let path = try repositoryPath(required: true)!
        if S3Location.isS3(path) {
            // One request: a wrong secret, a missing bucket or an empty prefix fails here with one line.
            guard !(try S3Storage.open(path).list("")).isEmpty else {
                throw FTBackupError(.usage, "no repository at \(path)", hint: "check --repo / FTBACKUP_REPO; a first backup creates it")
            }
            return path
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw FTBackupError(.usage, "no repository at \(path)", hint: "check --repo / FTBACKUP_REPO; a first backup creates it")
        }
        return path
    }

    func policy() throws -> Policy { try PolicyLoader.load(path: policyPath) }

    /// Where metrics files go, if anywhere: `--metrics-dir`, `FTBACKUP_METRICS_DIR`, the policy's `monitoring.metrics_dir`.
    func metricsDirectory() throws -> String? {
        if let option = metricsDirectoryOption, !option.isEmpty { return option }
        if let environment = ProcessInfo.processInfo.environment["FTBACKUP_METRICS_DIR"], !environment.isEmpty { return environment }
        return try policy().metricsDirectory
    }
}

extension OutputFormat: ExpressibleByArgument {}

/// Runs a command body, turning any failure into one line on stderr and a stable exit code.
func reportingFailures(_ body: () async throws -> ExitStatus) async throws {
    let status: ExitStatus
    do {
        status = try await body()
    } catch where TemporaryFiles.isEnding {
        TemporaryFiles.yieldToInterrupt()
        throw error
    } catch let error as FTBackupError {
        printError(error.description)
        status = error.status
    } catch let error as PostgresError {
        printError(error.description)
        status = error.exitStatus
    } catch let error as CodecError {
        printError(error.description)
        status = .dataError
    } catch let error as ExitCode {
        throw error
    } catch {
        printError("\(error)")
        status = .failure
    }
    if status != .success { throw ExitCode(status.rawValue) }
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data("ftbackup: error: \(line)\n".utf8))
}

/// A warning: the command goes on (one line on stderr, never shown as an error).
func printWarning(_ line: String) {
    FileHandle.standardError.write(Data("ftbackup: warning: \(line)\n".utf8))
}

func printLine(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
