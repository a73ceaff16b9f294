import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `ftbackup repo cleanup`: removes what killed or failed runs left behind, and nothing else.
///
/// It exists because a run killed with SIGKILL (or a host that lost power) cannot clean up after itself:
/// on S3 its unfinished multipart uploads stay invisible but billed, in a folder its `*.tmp-<pid>` files
/// stay on disk, and a backup folder or change segment it started has no manifest. Backups already remove
/// their own kind at their next run; this command does all of it on demand, and says what it did.
///
/// It works under the repository's locks, the rule backups use: it holds the write lock (no backup,
/// archive or expiry is running, so nothing under it is being written) and, when it is free, the changes
/// lock (no `follow` or incremental pass is writing `changes/`; while one holds it, `changes/` is left
/// alone and the report says so). What it removes is, by construction, never referenced by a manifest:
/// temporary files and unfinished uploads never are, and a backup folder or segment without its manifest
/// is what makes it incomplete. A temporary file whose writer (the pid in its name) is still running on
/// this host is left alone (readers, such as a drill writing its record, hold no exclusive lock).
/// `olderThan` keeps anything younger (by upload initiation, file time, or label time).
public enum RepositoryCleanup {
    public struct Report: Codable, Sendable {
        public var repository: String
        public var dryRun: Bool
        public var olderThanMinutes: Int?
        /// Unfinished multipart uploads aborted (S3).
        public var abortedUploads: [S3Storage.PendingUpload] = []
        /// Temporary files of unfinished writes removed (folders).
        public var removedTemporaryFiles: [String] = []
        /// Backup folders without a manifest removed.
        public var removedIncompleteBackups: [String] = []
        /// Change segment files without a manifest removed.
        public var removedIncompleteSegments: [String] = []
        /// What was left alone, and why.
        public var leftAlone: [String] = []

        public var total: Int { abortedUploads.count + removedTemporaryFiles.count + removedIncompleteBackups.count + removedIncompleteSegments.count }
    }

    public static func run(repositoryPath: String, olderThanMinutes: Int?, dryRun: Bool, now: Date = Date()) throws -> Report {
        if let olderThanMinutes, olderThanMinutes < 0 {
            throw FTBackupError(.usage, "--older-than must be 0 or more minutes (got \(olderThanMinutes))")
        }
        let command = dryRun ? "repo cleanup --dry-run" : "repo cleanup"
        let writeLock = try RepositoryLock.acquire(repositoryRoot: repositoryPath, kind: .write, exclusive: true, command: command)
        defer { writeLock.release() }
        var report = Report(repository: repositoryPath, dryRun: dryRun, olderThanMinutes: olderThanMinutes)
        var changesLock: RepositoryLock?
        do {
            changesLock = try RepositoryLock.acquire(repositoryRoot: repositoryPath, kind: .changes, exclusive: true, command: command)
        } catch let error as FTBackupError where error.status == .locked {
            report.leftAlone.append("\(ChangeSegmentManifest.folder)/: the changes lock is held (\(error.message))")
        }
        defer { changesLock?.release() }
        let cutoff = olderThanMinutes.map { now.addingTimeInterval(-Double($0) * 60) }
        try sweep(try Repository.open(repositoryPath), cutoff: cutoff, mayTouchChanges: changesLock != nil, dryRun: dryRun, now: now, into: &report)
        return report
    }

    /// Removes (or with `dryRun` lists) what killed runs left in `repository`, adding it to `report`. Only call it
    /// holding the repository's write lock, and with `mayTouchChanges` only holding its changes lock too:
    /// `repo cleanup` does, and so does `sync` for its destination (``RepositorySync``), where no backup ever runs
    /// to clear what a killed sync left; it passes as `resumable` the backup folders and segment files it is about to
    /// copy whole, which stay (the copy resumes).
    static func sweep(_ repository: Repository, cutoff: Date?, mayTouchChanges: Bool, dryRun: Bool, now: Date = Date(),
                      resumable: Set<String> = [], into report: inout Report) throws {
        func inChanges(_ path: String) -> Bool { path.hasPrefix("changes/") }
        let younger = report.olderThanMinutes.map { "younger than \($0) min" } ?? "younger than the limit"
        if let s3 = repository.storage.s3Base {
            for upload in try s3.pendingUploads().sorted(by: { $0.path < $1.path }) {
                if inChanges(upload.path) && !mayTouchChanges { continue }
                if let cutoff, (upload.initiated ?? now) > cutoff {
                    report.leftAlone.append("upload of \(upload.path): \(younger)")
                    continue
                }
                if !dryRun { try s3.abort(upload) }
                report.abortedUploads.append(upload)
            }
        }
        if let local = repository.storage.localBase {
            for file in try LeftoverFiles.temporary(in: local) {
                if inChanges(file.path) && !mayTouchChanges { continue }
                if let pid = file.writerPid, pid != getpid(), kill(pid, 0) == 0 || errno == EPERM {
                    report.leftAlone.append("\(file.path): its writer (pid \(pid)) is still running")
                    continue
                }
                if let cutoff, file.modified > cutoff {
                    report.leftAlone.append("\(file.path): \(younger)")
                    continue
                }
                if !dryRun { try local.remove(file.path) }
                report.removedTemporaryFiles.append(file.path)
            }
        }
        for entry in try repository.entries() where entry.status == .incomplete && !resumable.contains(repository.backupFolder(entry.label)) {
            if let cutoff, (RunLabelDate.parse(entry.label) ?? now) > cutoff {
                report.leftAlone.append("\(repository.backupFolder(entry.label)): \(younger)")
                continue
            }
            if !dryRun { try repository.storage.remove(repository.backupFolder(entry.label)) }
            report.removedIncompleteBackups.append(entry.label)
        }
        if mayTouchChanges {
            for path in try LeftoverFiles.segmentsWithoutManifest(repository.storage) where !resumable.contains(path) {
                // `<startLSN>-<UTC time>-<n>.seg.zst`: the time the pass began.
                let name = (path as NSString).lastPathComponent.split(separator: "-")
                if let cutoff, (name.count > 1 ? RunLabelDate.parse(String(name[1])) : nil) ?? now > cutoff {
                    report.leftAlone.append("\(path): \(younger)")
                    continue
                }
                if !dryRun { try repository.storage.remove(path) }
                report.removedIncompleteSegments.append(path)
            }
        }
    }
}

/// Finding what unfinished writes left in a repository.
enum LeftoverFiles {
    struct Temporary {
        var path: String
        var modified: Date
        /// The pid in the name (`name.tmp-<pid>` or `name.tmp-<pid>-<random>`), when there is one.
        var writerPid: Int32?
    }

    /// Every temporary file (`*.tmp-<pid>…`, `.ftbackup-probe-<pid>`) under the folder, `locks/` aside.
    static func temporary(in local: LocalStorage, _ folder: String = "") throws -> [Temporary] {
        var found: [Temporary] = []
        for entry in try local.list(folder) {
            if folder.isEmpty && entry.path == "locks" { continue }
            if entry.isDirectory {
                found += try temporary(in: local, entry.path)
                continue
            }
            let name = (entry.path as NSString).lastPathComponent
            let marker: String
            if let range = name.range(of: ".tmp-") { marker = String(name[range.upperBound...]) } else if name.hasPrefix(".ftbackup-probe-") {
                marker = String(name.dropFirst(".ftbackup-probe-".count))
            } else { continue }
            var info = stat()
            guard stat(local.absolute(entry.path), &info) == 0 else { continue }
            found.append(Temporary(path: entry.path, modified: Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec)),
                                   writerPid: Int32(marker.prefix { $0.isNumber })))
        }
        return found
    }

    /// Change segment data files whose manifest is missing (a pass killed before it sealed them).
    static func segmentsWithoutManifest(_ storage: any RepositoryStorage) throws -> [String] {
        let entries = try storage.list(ChangeSegmentManifest.folder).filter { !$0.isDirectory && !$0.path.contains(".tmp-") }
        let manifests = Set(entries.filter { $0.path.hasSuffix(".json") }.map { String($0.path.dropLast(5)) })
        return entries.filter { $0.path.hasSuffix(".seg.zst") && !manifests.contains(String($0.path.dropLast(8))) }.map(\.path)
    }
}
