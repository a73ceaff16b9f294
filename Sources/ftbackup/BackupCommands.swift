import ArgumentParser
import FTBackupKit
import Foundation
import Logging

/// `ftbackup backup --type full`: takes a backup and prints its label.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "backup", abstract: "Take a backup; prints its label.")

    @OptionGroup var global: GlobalOptions

    @Option(help: "full, or incr (seal the changes archived since the last pass; needs ftbackup setup).")
    var type: BackupManifest.BackupType = .full

    @Flag(help: "With --type full: continue this repository with a database of its source's name that was dropped and created again (new oid).")
    var reattach = false

    @Option(name: .customLong("copy-format"), help: "With --type full: auto (binary COPY for tables of built-in types, text for the rest; the default) or text (every table in text, restorable into any version).")
    var copyFormat: CopyFormatChoice = .auto

    enum CopyFormatChoice: String, ExpressibleByArgument { case auto, text }

    func run() async throws {
        try await reportingFailures {
            if reattach && type != .full {
                throw FTBackupError(.usage, "--reattach goes with --type full", hint: "the repository is re-attached by a full backup of the new database")
            }
            if type == .incr {
                let repositoryPath = try global.repositoryPath(required: true)!
                let report = try await ChangeArchiver.runIncremental(
                    database: try global.connectionString(), repositoryPath: repositoryPath,
                    policy: try global.policy(), logger: makeLogger())
                JobTotalsOfThisRun.record(JobTotals.incremental(report))
                // A schema change since the newest full (seen in this segment or one the follower sealed)
                // makes this run take a new full, so the chain stays replayable.
                if try ChangeArchiver.needsNewFull(repositoryPath: repositoryPath) {
                    printWarning("a schema change since the newest full backup was archived; taking a new full backup now")
                    let manifest = try await BackupRunner.runFull(BackupOptions(
                        database: try global.connectionString(), repositoryPath: repositoryPath,
                        policy: try global.policy(), jobs: global.jobs, logger: makeLogger()))
                    printLine("new full backup: \(manifest.label)")
                }
                if global.output == .json {
                    printLine(try JSONOutput.encode(report))
                } else if let pid = report.coveredByFollower {
                    printLine("ftbackup follow (pid \(pid)) is streaming the slot and sealing segments: it covers this pass")
                } else if let segment = report.segment {
                    printLine(segment.label)
                    printLine("  \(segment.transactions) transactions, \(segment.startLSN) … \(segment.endLSN), last commit \(segment.lastCommitTime.map { Timestamps.display($0) } ?? "-"), \(ByteCount.format(segment.file.storedBytes)) stored")
                }
                return .success
            }
            var options = BackupOptions(
                database: try global.connectionString(), repositoryPath: try global.repositoryPath(required: true)!,
                policy: try global.policy(), jobs: global.jobs, logger: makeLogger())
            options.reattach = reattach
            options.allowBinaryCopy = copyFormat == .auto
            let manifest = try await BackupRunner.runFull(options)
            JobTotalsOfThisRun.record(JobTotals(full: manifest))
            if global.output == .json {
                printLine(try JSONOutput.encode(["label": manifest.label]))
            } else {
                printLine(manifest.label)
            }
            return .success
        }
    }
}

extension BackupManifest.BackupType: ExpressibleByArgument {}

/// `ftbackup info [--set LABEL]`: every backup with its times, sizes and status.
struct InfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "List the backups in the repository.")

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("set"), help: "Only this backup.")
    var label: String?

    struct Row: Encodable {
        var label: String
        var type: String?
        var status: String
        var problem: String?
        var startedAt: Date?
        var stoppedAt: Date?
        var consistentAt: Date?
        var durationSeconds: Double?
        var tables: Int?
        var rows: Int64?
        var rawBytes: Int64?
        var storedBytes: Int64?
        var source: String?
        var walLSN: String?
        /// When a verify last found every file good (nil: never, or a later verify failed).
        var verifiedAt: Date?
        /// Set when the backup comes from another database than the repository's source: never used.
        var foreignSource: String?
        /// With `--set`: the database's settings the backup recorded (nil: a backup taken before they were).
        var databaseSettings: [DatabaseSetting]?
        /// True when the backup's files are encrypted at rest (false: written before encryption was on).
        var encrypted: Bool
    }

    func run() async throws {
        try await reportingFailures {
            let repository = try Repository.open(try global.existingRepositoryPath())
            let view = try RepositorySourceView.load(repository)
            var entries = try repository.entries()
            if let label {
                entries = entries.filter { $0.label == label }
                if entries.isEmpty { throw FTBackupError(.usage, "no backup \(label) in \(repository.storage.location)") }
            }
            let rows = entries.map { entry in
                let m = entry.manifest
                return Row(label: entry.label, type: m?.type.rawValue, status: entry.status.rawValue, problem: entry.problem,
                           startedAt: m?.startedAt, stoppedAt: m?.stoppedAt, consistentAt: m?.snapshot.time,
                           durationSeconds: m?.duration, tables: m?.totals.tables, rows: m?.totals.rows,
                           rawBytes: m?.totals.rawBytes, storedBytes: m?.totals.storedBytes,
                           source: m.map { "\($0.source.database) on \($0.source.server)" }, walLSN: m?.snapshot.walLSN,
                           verifiedAt: VerificationRecord.read(repository, label: entry.label)?.verifiedAt,
                           foreignSource: m.flatMap { view.mismatch(of: $0) }, databaseSettings: label == nil ? nil : m?.databaseSettings,
                           encrypted: repository.storage.isEncrypted(repository.backupFolder(entry.label)))
            }
            let verification = try VerificationOverview.read(repository)
            // The slot's health needs the database; without --db / FTBACKUP_DB only the repository is read.
            let configured = global.database ?? ProcessInfo.processInfo.environment["FTBACKUP_DB"]
            let changes = try await ChangeArchiveStatus.read(repository, database: configured == nil ? nil : try global.connectionString())
            let foreign = view.foreign
            if global.output == .json {
                printLine(try JSONOutput.encode(["repository": AnyEncodable(repository.storage.location), "source": AnyEncodable(view.key?.description),
                                                 "backups": AnyEncodable(rows), "changeArchive": AnyEncodable(changes),
                                                 "verification": AnyEncodable(verification), "foreign": AnyEncodable(foreign)], microseconds: true))
                return changes.broken != nil ? .unavailable : foreign.isEmpty ? .success : .dataError
            }
            if let key = view.key { printLine("source: \(key)\(view.recorded ? "" : " (not recorded yet: the next backup records it)")") }
            if let tls = changes.connection { printLine("connection: \(tls.summary)") }
            if rows.isEmpty { printLine("no backups in \(repository.storage.location)") }
            for row in rows {
                printLine("\(row.label)  \(row.type ?? "?")  \(row.status)\(row.encrypted ? "  encrypted" : "")\(row.foreignSource == nil ? "" : "  FOREIGN SOURCE")")
                if let problem = row.problem { printLine("  problem:        \(problem)") }
                if let foreign = row.foreignSource { printLine("  foreign:        \(foreign)") }
                guard let started = row.startedAt, let stopped = row.stoppedAt else { continue }
                printLine("  started:        \(Timestamps.display(started))")
                printLine("  stopped:        \(Timestamps.display(stopped)) (\(String(format: "%.1f", row.durationSeconds ?? 0)) s)")
                printLine("  consistent at:  \(Timestamps.display(row.consistentAt!)) (WAL \(row.walLSN ?? "?"))")
                printLine("  source:         \(row.source ?? "?")")
                let ratio = (row.rawBytes ?? 0) > 0 ? Double(row.storedBytes ?? 0) / Double(row.rawBytes!) : 0
                printLine("  tables:         \(row.tables ?? 0), rows: \(row.rows ?? 0)")
                printLine("  size:           \(ByteCount.format(row.rawBytes ?? 0)) raw, \(ByteCount.format(row.storedBytes ?? 0)) stored (\(String(format: "%.0f", ratio * 100))%)")
                printLine("  verified:       \(row.verifiedAt.map { Timestamps.display($0) } ?? "not verified")")
                if label != nil {
                    let settings = row.databaseSettings
                    printLine("  db settings:    \(settings.map { $0.isEmpty ? "none" : "\($0.count)" } ?? "not recorded (backup taken before ftbackup recorded them)")")
                    for setting in settings ?? [] { printLine("    \(setting)") }
                }
            }
            if changes.segments > 0 || changes.slot?.exists == true {
                printLine("change archive: \(changes.segments) segments, \(changes.transactions) transactions, \(ByteCount.format(changes.storedBytes))")
                if let from = changes.recoverableFrom, let until = changes.recoverableUntil {
                    printLine("  recoverable:    \(Timestamps.displayExact(from)) … \(Timestamps.displayExact(until)) (newest commit \(Int(changes.newestCommitAgeSeconds ?? 0)) s ago)")
                }
                if !changes.ddl.isEmpty {
                    printLine("  recorded DDL:   \(changes.ddl.count) command(s) (restore --at does not replay DDL; a whole-database restore cannot reach a time from each until the next full)")
                    for ddl in changes.ddl { printLine("    \(ddl.line)") }
                }
                if let slot = changes.slot, slot.exists {
                    printLine("  slot:           \(slot.name.map { "\($0), " } ?? "")wal_status \(slot.walStatus ?? "?"), \(ByteCount.format(slot.lagBytes)) of WAL not yet archived\(slot.active ? ", in use by pid \(slot.activePID ?? 0)" : "")")
                    if let note = slot.note { printLine("  slot note:      \(note)") }
                }
            }
            for (title, items) in [("segments", verification.segments), ("archives", verification.archives)] where !items.isEmpty {
                let verified = items.filter { $0.verification == .verified }
                let failed = items.filter { $0.verification == .verifyFailed }
                var line = "\(title) verified: \(verified.count) of \(items.count)"
                if let oldest = verified.compactMap(\.lastVerifiedAt).min() { line += ", oldest check \(Timestamps.display(oldest))" }
                if !failed.isEmpty { line += "; \(failed.count) VERIFY-FAILED" }
                printLine(line)
                for item in failed {
                    printLine("  \(item.kind) \(item.name)  verify-failed  (checked \(item.lastVerifiedAt.map { Timestamps.display($0) } ?? "?")): \(item.problems?.first ?? "")")
                }
            }
            if !foreign.isEmpty {
                printLine("WARNING: \(foreign.count) BACKUP(S) OR SEGMENT(S) OF ANOTHER SOURCE: never restored, replayed or expired")
                for problem in foreign where !problem.hasPrefix("backup ") { printLine("  \(problem)") }
                printError("\(foreign.count) backup(s) or segment(s) of another source in \(repository.storage.location): \(foreign[0]) (hint: move them to a repository of their own)")
                if changes.broken == nil { return .dataError }
            }
            if let broken = changes.broken {
                printLine("WARNING: CHANGE ARCHIVE CHAIN BROKEN: \(broken)")
                printError("change archive chain broken: \(broken)")
                return .unavailable
            }
            return .success
        }
    }
}

/// `ftbackup verify [--backups] [--set LABEL | --newest] [--segments] [--archives] [--evidence]`: reads
/// the whole repository (or the parts named) back; names each bad file.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Read the repository back: backups, change segments, lifecycle archives and evidence; name each bad file.",
        discussion: """
            Without a selector, everything is read. Each selector adds a part: --backups (every backup), \
            --set LABEL or --newest (one backup), --segments, --archives, --evidence. Exit 65 when any file is bad.
            """)

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Every backup.")
    var backups = false

    @Option(name: .customLong("set"), help: "Only this backup (plus any other part named).")
    var label: String?

    @Flag(help: "Only the newest complete backup (what a timer runs after each backup).")
    var newest = false

    @Flag(help: "Every change segment: manifest readable, data file's size, SHA-256 and decompression.")
    var segments = false

    @Flag(help: "Every lifecycle archive: each table file's size, SHA-256, decompression and row count.")
    var archives = false

    @Flag(help: "Every lifecycle run log and evidence file (lifecycle/<kind>/<run>.json) parses as its kind.")
    var evidence = false

    func run() async throws {
        try await reportingFailures {
            let request = try RepositoryVerifier.Request.selecting(backups: backups, set: label, newest: newest, segments: segments,
                                                         archives: archives, evidence: evidence, jobs: global.jobs)
            let path = try global.existingRepositoryPath()
            let lock = try RepositoryLock.acquire(repositoryRoot: path, kind: .read, exclusive: false, command: "verify")
            defer { lock.release() }
            let report = try await RepositoryVerifier.verify(try Repository.open(path), request)
            if global.output == .json {
                printLine(try JSONOutput.encode(report))
            } else {
                printVerifyReport(report)
            }
            return report.ok ? .success : .dataError
        }
    }
}

/// The text form of a verify: one line per backup, a summary per other part with a line for each
/// record that is not plainly ok, and one line per bad file naming it.
func printVerifyReport(_ report: RepositoryVerifier.Report) {
    let everything = report.backups != nil && report.segments != nil && report.archives != nil && report.evidence != nil
    if report.nothingToVerify && everything {
        printLine("nothing to verify in \(report.repository)")
        return
    }
    if let backups = report.backups {
        if backups.isEmpty { printLine("backups: none") }
        for result in backups {
            if result.ok {
                printLine("\(result.label): ok (\(result.files) files, \(ByteCount.format(result.bytes)))")
            } else if let problem = result.problem {
                printLine("\(result.label): BAD: \(result.status.rawValue): \(problem)")
            } else {
                printLine("\(result.label): BAD: \(result.badFiles.count) of \(result.files) files")
                for file in result.badFiles { printLine("  \(file.problem ?? file.path)") }
            }
        }
    }
    for (title, records) in [("segments", report.segments), ("archives", report.archives)] {
        guard let records else { continue }
        let good = records.filter { $0.state == .ok }
        let bad = records.filter { $0.state == .bad }
        var summary = "\(title): \(good.count) ok (\(good.reduce(0) { $0 + $1.files }) files, \(ByteCount.format(good.reduce(0) { $0 + $1.bytes })))"
        if !bad.isEmpty { summary += ", \(bad.count) BAD" }
        printLine(records.isEmpty ? "\(title): none" : summary)
        for record in records where record.state != .ok {
            switch record.state {
            case .pending: printLine("  \(record.name): \(record.problem ?? "pending"); its \(record.files) files are good")
            case .incomplete: printLine("  \(record.name): incomplete: \(record.problem ?? "")")
            default:
                printLine("  \(record.name): BAD: \(record.badFiles.count) of \(max(record.files, record.badFiles.count)) files")
                for file in record.badFiles { printLine("    \(file.problem ?? file.path)") }
            }
        }
    }
    if let evidence = report.evidence {
        let files = evidence.files.values.reduce(0, +)
        let kinds = evidence.files.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        printLine(files == 0 ? "evidence: none"
                  : "evidence: \(files - evidence.badFiles.count) of \(files) files ok (\(kinds))\(evidence.ok ? "" : ", \(evidence.badFiles.count) BAD")")
        for file in evidence.badFiles { printLine("  \(file.problem ?? file.path)") }
    }
    printLine(report.ok ? "all good" : "\(report.badFiles.count) bad file\(report.badFiles.count == 1 ? "" : "s")")
}

struct AnyEncodable: Encodable {
    let encodeValue: (Encoder) throws -> Void
    init<T: Encodable>(_ value: T) { encodeValue = value.encode }
    func encode(to encoder: Encoder) throws { try encodeValue(encoder) }
}

/// Journal-friendly log lines on stderr (progress goes there too, on a terminal).
func makeLogger() -> Logger {
    LoggingSystem.bootstrapOnce()
    return Logger(label: "ftbackup")
}

extension LoggingSystem {
    nonisolated(unsafe) private static var bootstrapped = false
    static func bootstrapOnce() {
        guard !bootstrapped else { return }
        bootstrapped = true
        bootstrap { LineLogHandler(label: $0) }
    }
}
