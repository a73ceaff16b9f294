import Foundation

/// `ftbackup verify`: reads the whole repository back, or the parts asked for — backups
/// (``BackupVerifier``), change segments (``SegmentVerifier``), lifecycle archives
/// (``ArchiveVerifier``) and lifecycle evidence (``EvidenceVerifier``) — and names every bad file.
///
/// It exists because every part of the repository is somebody's only copy of something: a backup
/// of the database, the changes after it, archived rows that left the database, the evidence of
/// what was deleted. Each part records the result of its check where `info` can show it.
public enum RepositoryVerifier {
    /// The parts of the repository to read.
    public struct Parts: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public static let backups = Parts(rawValue: 1)
        public static let segments = Parts(rawValue: 2)
        public static let archives = Parts(rawValue: 4)
        public static let evidence = Parts(rawValue: 8)
        public static let everything: Parts = [.backups, .segments, .archives, .evidence]
    }

    /// Which backups to read when backups are part of the request.
    public enum BackupSelection: Sendable, Equatable {
        case all
        case label(String)
        /// The newest complete backup (what a timer runs after each backup).
        case newest
    }

    public struct Request: Sendable {
        public var parts: Parts
        public var backups: BackupSelection
        public var jobs: Int

        public init(parts: Parts = .everything, backups: BackupSelection = .all, jobs: Int = 2) {
            self.parts = parts
            self.backups = backups
            self.jobs = jobs
        }

        /// The command line's selectors: each one adds a part; none means the whole repository.
        /// `--set LABEL` and `--newest` choose the backups part's one backup; `--backups` means all of
        /// them, so it cannot be combined with either.
        public static func selecting(backups allBackups: Bool = false, set label: String? = nil, newest: Bool = false,
                                     segments: Bool = false, archives: Bool = false, evidence: Bool = false,
                                     jobs: Int = 2) throws -> Request {
            if label != nil && newest { throw FTBackupError(.usage, "--newest and --set cannot be combined") }
            if allBackups && (label != nil || newest) {
                throw FTBackupError(.usage, "--backups (every backup) cannot be combined with --set or --newest (one backup)")
            }
            var parts: Parts = []
            if allBackups || label != nil || newest { parts.insert(.backups) }
            if segments { parts.insert(.segments) }
            if archives { parts.insert(.archives) }
            if evidence { parts.insert(.evidence) }
            return Request(parts: parts.isEmpty ? .everything : parts,
                           backups: label.map { .label($0) } ?? (newest ? .newest : .all), jobs: jobs)
        }
    }

    /// One bad file, named, with what is wrong with it.
    public struct BadFile: Codable, Sendable, Equatable {
        /// `backup`, `segment`, `archive` or `evidence`.
        public var kind: String
        /// The backup label, segment label or archive name it belongs to (nil for evidence).
        public var record: String?
        public var path: String
        public var problem: String
    }

    /// Everything one verify found. Parts not asked for are nil.
    public struct Report: Codable, Sendable {
        public var repository: String
        public var ok: Bool
        /// True when the parts asked for hold nothing at all.
        public var nothingToVerify: Bool
        public var backups: [BackupVerifier.BackupResult]?
        public var segments: [RecordVerification]?
        public var archives: [RecordVerification]?
        public var evidence: EvidenceVerifier.Result?
        /// Every bad file, one entry each.
        public var badFiles: [BadFile]
    }

    public static func verify(_ repository: Repository, _ request: Request) async throws -> Report {
        let now = Date()
        var report = Report(repository: repository.storage.location, ok: true, nothingToVerify: false, backups: nil, segments: nil,
                            archives: nil, evidence: nil, badFiles: [])
        if request.parts.contains(.backups) {
            var label: String?
            switch request.backups {
            case .all: label = nil
            case .label(let chosen): label = chosen
            case .newest:
                label = try repository.entries().last { $0.status == .complete }?.label
                guard label != nil else { throw FTBackupError(.usage, "no complete backup in \(repository.storage.location)") }
            }
            let backups = try await BackupVerifier.verify(repository, label: label, jobs: request.jobs)
            report.backups = backups
            for backup in backups where !backup.ok {
                if backup.badFiles.isEmpty {
                    report.badFiles.append(.init(kind: "backup", record: backup.label,
                                                 path: "\(repository.storage.location)/\(repository.backupFolder(backup.label))",
                                                 problem: backup.status == .complete ? backup.problem ?? "bad"
                                                    : "backup \(backup.label) is \(backup.status.rawValue): \(backup.problem ?? "")"))
                }
                for file in backup.badFiles {
                    report.badFiles.append(.init(kind: "backup", record: backup.label, path: file.path, problem: file.problem ?? file.path))
                }
            }
        }
        func collect(_ records: [RecordVerification]) {
            for record in records {
                for file in record.badFiles {
                    report.badFiles.append(.init(kind: record.kind, record: record.name, path: file.path, problem: file.problem ?? file.path))
                }
            }
        }
        if request.parts.contains(.segments) {
            report.segments = try await SegmentVerifier.verify(repository, jobs: request.jobs, now: now)
            collect(report.segments!)
            // A segment of another database (or slot) is never replayed: it is bad here whatever its files hold.
            let view = try RepositorySourceView.load(repository)
            for segment in view.segments {
                guard let problem = view.mismatch(of: segment) else { continue }
                report.badFiles.append(.init(kind: "segment", record: segment.label,
                                             path: "\(repository.storage.location)/\(ChangeSegmentManifest.manifestPath(segment.label))",
                                             problem: problem))
            }
        }
        if request.parts.contains(.archives) {
            report.archives = try await ArchiveVerifier.verify(repository, jobs: request.jobs, now: now)
            collect(report.archives!)
        }
        if request.parts.contains(.evidence) {
            let evidence = try EvidenceVerifier.verify(repository.storage)
            report.evidence = evidence
            report.badFiles += evidence.badFiles.map { .init(kind: "evidence", record: nil, path: $0.path, problem: $0.problem ?? $0.path) }
        }
        report.ok = report.badFiles.isEmpty
        report.nothingToVerify = (report.backups ?? []).isEmpty && (report.segments ?? []).isEmpty
            && (report.archives ?? []).isEmpty && (report.evidence?.files.values.reduce(0, +) ?? 0) == 0
        return report
    }
}
