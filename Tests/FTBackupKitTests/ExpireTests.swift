import Foundation
import Testing
@testable import FTBackupKit

/// Expiry against a repository in a temporary folder, filled with fabricated backups (real
/// compressed files and manifests, times in the past): no server needed.
@Suite struct ExpireTests {
    static let day: TimeInterval = 86_400
    /// The clock every test plans against.
    let now = Date(timeIntervalSince1970: 1_795_000_000)
    let policy: Policy
    let root: String
    var repository: Repository { Repository.local(root) }

    init() throws {
        policy = try PolicyLoader.parse(PolicyLoader.builtInDefault, source: "(test)")  // full 30d, incremental 7d
        root = NSTemporaryDirectory() + "ftbackup-expire-\(UUID().uuidString)/repo"
        try LocalStorage.makeDirectories(root)
    }

    // MARK: Fixtures

    func removeRoot() { try? FileManager.default.removeItem(atPath: (root as NSString).deletingLastPathComponent) }

    func storedFile(_ path: String, folder: String, text: String) throws -> BackupManifest.StoredFile {
        let writer = try CompressedFileWriter(storage: repository.storage, path: "\(folder)/\(path)", compression: policy.compression)
        try Array(text.utf8).withUnsafeBytes { try writer.write($0) }
        var file = try writer.finish()
        file.path = path  // the manifest records paths relative to the backup's folder
        return file
    }

    /// A complete backup that stopped `daysAgo` days before `now`: schema dump, one data file, manifest last.
    @discardableResult
    func makeBackup(daysAgo: Double, type: BackupManifest.BackupType = .full, verified: Bool = false) throws -> String {
        let stoppedAt = now.addingTimeInterval(-daysAgo * Self.day)
        let startedAt = stoppedAt.addingTimeInterval(-600)
        let label = try repository.newLabel(type: type, at: startedAt)
        let folder = repository.backupFolder(label)
        let schemaDump = try storedFile("schema.pgdump.zst", folder: folder, text: "-- schema of \(label)\n")
        let data = try storedFile("data/0.copy.zst", folder: folder, text: String(repeating: "1\tcoach\t2026-01-01\n", count: 100))
        let manifest = BackupManifest(
            formatVersion: BackupManifest.currentFormatVersion, label: label, type: type, toolVersion: FTBackupVersion.current,
            source: .init(server: "host=test", serverVersion: "17.0", serverVersionNumber: 170000, systemIdentifier: nil,
                          database: "fasttrack", encoding: "UTF8"),
            startedAt: startedAt, stoppedAt: stoppedAt,
            snapshot: .init(origin: "pg_export_snapshot", id: "00000003-1", time: startedAt, walLSN: "0/1000000"),
            copyFormat: "text", policySource: policy.source, compression: policy.compression, schemaDump: schemaDump,
            schemas: ["users"], roles: [], tables: [.init(schema: "users", name: "users", indexes: [], columns: ["id", "name", "created_at"],
                                                          rows: 100, file: data)],
            sequences: [], materializedViews: [],
            totals: .init(tables: 1, rows: 100, rawBytes: schemaDump.rawBytes + data.rawBytes,
                          storedBytes: schemaDump.storedBytes + data.storedBytes))
        try repository.storage.writeAll(repository.manifestPath(label), try manifest.encoded())
        if verified {
            try VerificationRecord(label: label, verifiedAt: stoppedAt.addingTimeInterval(3600), files: manifest.files.count,
                                   bytes: manifest.totals.storedBytes).write(to: repository)
        }
        return label
    }

    /// A folder a backup started `hoursAgo` hours before `now` and never finished (no manifest).
    func makeIncomplete(hoursAgo: Double) throws -> String {
        let label = try repository.newLabel(type: .full, at: now.addingTimeInterval(-hoursAgo * 3600))
        try repository.storage.writeAll("\(repository.backupFolder(label))/data/0.copy.zst", [1, 2, 3])
        return label
    }

    /// A sealed change segment whose last commit was `daysAgo` days before `now`, ending at `endLSN`.
    @discardableResult
    func makeSegment(daysAgo: Double, endLSN: UInt64) throws -> String {
        let last = now.addingTimeInterval(-daysAgo * Self.day)
        let label = "\(LSN.sortable(endLSN - 1))-\(Int(daysAgo * 1000))"
        let writer = try CompressedFileWriter(storage: repository.storage, path: ChangeSegmentManifest.dataPath(label), compression: policy.compression)
        try ChangeRowCopyWriter.header().withUnsafeBytes { try writer.write($0) }
        var file = try writer.finish()
        file.path = "\(label).seg.zst"
        let manifest = ChangeSegmentManifest(formatVersion: 1, label: label, slot: ChangeArchivalNames.slot(database: "fasttrack"), startLSN: LSN.format(endLSN - 1), endLSN: LSN.format(endLSN),
                                             transactions: 1, firstCommitLSN: LSN.format(endLSN - 1), lastCommitLSN: LSN.format(endLSN - 1),
                                             firstCommitTime: last, lastCommitTime: last, relations: [], schemaChanges: nil, createdAt: last, file: file)
        try repository.storage.writeAll(ChangeSegmentManifest.manifestPath(label), try manifest.encoded())
        return label
    }

    func expire(dryRun: Bool = false) throws -> ExpiryReport {
        try BackupExpiry.run(repositoryPath: root, policy: policy, dryRun: dryRun, now: now)
    }

    func item(_ label: String, in report: ExpiryReport) -> ExpiryPlan.Item? { report.plan.items.first { $0.label == label } }
    func exists(_ label: String) throws -> Bool { try repository.storage.exists(repository.backupFolder(label)) }

    // MARK: Rules

    @Test func oldFullWithVerifiedSuccessorIsRemoved() throws {
        defer { removeRoot() }
        let old = try makeBackup(daysAgo: 40)
        let newest = try makeBackup(daysAgo: 1, verified: true)
        let report = try expire()
        #expect(report.removed == [old])
        #expect(item(old, in: report)?.reason == "older than 30d retention")
        #expect(try !exists(old))
        #expect(try exists(newest))
        #expect(try repository.entries().map(\.label) == [newest])
    }

    @Test func newestFullIsKeptHoweverOld() throws {
        defer { removeRoot() }
        let older = try makeBackup(daysAgo: 400, verified: true)
        let newest = try makeBackup(daysAgo: 365, verified: true)
        let report = try expire()
        #expect(report.removed == [older])
        #expect(item(newest, in: report)?.action == .keep)
        #expect(item(newest, in: report)?.reason == "newest full")
        #expect(try exists(newest))
    }

    @Test func fullWhoseSuccessorIsUnverifiedIsKept() throws {
        defer { removeRoot() }
        let old = try makeBackup(daysAgo: 50)
        let unverified = try makeBackup(daysAgo: 45)
        let newest = try makeBackup(daysAgo: 1, verified: true)
        let report = try expire()
        #expect(item(old, in: report)?.action == .keep)
        #expect(item(old, in: report)?.reason == "successor \(unverified) not verified")
        #expect(try exists(old))
        // The unverified one itself goes: its own successor verified OK.
        #expect(report.removed == [unverified])
        #expect(try exists(newest))
    }

    @Test func verificationRecordThatDoesNotMatchTheManifestDoesNotCount() throws {
        defer { removeRoot() }
        let old = try makeBackup(daysAgo: 40)
        let newest = try makeBackup(daysAgo: 1)
        // A record naming other contents (as left by some other backup) proves nothing about this one.
        try VerificationRecord(label: newest, verifiedAt: now, files: 2, bytes: 1).write(to: repository)
        let report = try expire()
        #expect(report.removed.isEmpty)
        #expect(item(old, in: report)?.reason == "successor \(newest) not verified")
    }

    @Test func fullWithinRetentionIsKept() throws {
        defer { removeRoot() }
        let recent = try makeBackup(daysAgo: 29)
        let newest = try makeBackup(daysAgo: 1, verified: true)
        let report = try expire()
        #expect(report.removed.isEmpty)
        #expect(item(recent, in: report)?.reason == "within 30d retention")
        #expect(try exists(recent) && exists(newest))
    }

    @Test func incompleteFolderOlderThanAnHourIsRemovedYoungerIsKept() throws {
        defer { removeRoot() }
        let newest = try makeBackup(daysAgo: 1)
        let old = try makeIncomplete(hoursAgo: 2)
        let young = try makeIncomplete(hoursAgo: 0.5)
        let report = try expire()
        #expect(report.removed == [old])
        #expect(item(old, in: report)?.status == .incomplete)
        #expect(item(old, in: report)?.reason.hasPrefix("incomplete (no manifest), started more than 1h ago") == true)
        #expect(item(young, in: report)?.action == .keep)
        #expect(try !exists(old))
        #expect(try exists(young) && exists(newest))
    }

    @Test func incrementalsExpireOnTheirOwnRetentionAndKeepTheirBase() throws {
        defer { removeRoot() }
        let base = try makeBackup(daysAgo: 40)
        let expiredIncremental = try makeBackup(daysAgo: 39, type: .incr)
        let keptIncremental = try makeBackup(daysAgo: 5, type: .incr)  // its base: the newest full before it
        let newest = try makeBackup(daysAgo: 1, verified: true)
        let report = try expire()
        #expect(item(expiredIncremental, in: report)?.reason == "older than 7d retention")
        #expect(item(keptIncremental, in: report)?.reason == "within 7d retention")
        #expect(item(base, in: report)?.reason == "base of kept incremental \(keptIncremental)")
        #expect(report.removed == [expiredIncremental])
        #expect(try exists(base) && exists(keptIncremental) && exists(newest))
    }

    @Test func dryRunRemovesNothingAndReportsExactlyWhatARealRunRemoves() throws {
        defer { removeRoot() }
        try makeBackup(daysAgo: 60, verified: true)
        try makeBackup(daysAgo: 50)
        try makeBackup(daysAgo: 45, verified: true)
        try makeBackup(daysAgo: 10, verified: true)
        try makeBackup(daysAgo: 1, verified: true)
        _ = try makeIncomplete(hoursAgo: 3)
        let before = try repository.entries().map(\.label)

        let dry = try expire(dryRun: true)
        #expect(dry.dryRun)
        #expect(dry.removed.isEmpty)
        #expect(try repository.entries().map(\.label) == before)
        #expect(dry.plan.removals.count == 3)  // the 50- and 45-day fulls (successors verified), the incomplete folder; the 60-day full's successor is unverified

        let real = try expire()
        #expect(real.plan == dry.plan)
        #expect(real.removed == dry.plan.removals.map(\.label))
        #expect(try repository.entries().map(\.label) == before.filter { !real.removed.contains($0) })
    }

    // MARK: Safety

    @Test func manifestIsRemovedFirstSoAnInterruptedExpiryLeavesNothingComplete() throws {
        defer { removeRoot() }
        let old = try makeBackup(daysAgo: 40)
        let newest = try makeBackup(daysAgo: 1, verified: true)
        let storage = InterruptingStorage(base: LocalStorage(root: root), failOn: repository.backupFolder(old))
        #expect(throws: FTBackupError.self) {
            _ = try BackupExpiry.run(Repository(storage: storage), lockRoot: root, policy: policy, dryRun: false, now: now)
        }
        #expect(storage.log.paths == [repository.manifestPath(old), repository.backupFolder(old)])

        // Interrupted between the two steps: the folder is left, with its data, but never as a complete backup.
        #expect(try repository.storage.exists("\(repository.backupFolder(old))/data/0.copy.zst"))
        let entries = try repository.entries()
        #expect(entries.first { $0.label == old }?.status == .incomplete)
        #expect(entries.filter { $0.status == .complete }.map(\.label) == [newest])
        #expect(try repository.backup(label: nil).label == newest)

        // The next run finishes the job.
        let again = try expire()
        #expect(again.removed == [old])
        #expect(try !exists(old))
    }

    /// A backup (write lock) or a verify (shared read lock) in progress: expire refuses at once and removes nothing.
    @Test(arguments: [(RepositoryLock.Kind.write, true), (.read, false)])
    func heldLockMakesExpireFailWithLocked(kind: RepositoryLock.Kind, exclusive: Bool) throws {
        defer { removeRoot() }
        let old = try makeBackup(daysAgo: 40)
        try makeBackup(daysAgo: 1, verified: true)
        let held = try RepositoryLock.acquire(repositoryRoot: root, kind: kind, exclusive: exclusive, command: "test holder")
        defer { held.release() }
        for dryRun in [false, true] {
            let error = #expect(throws: FTBackupError.self) { _ = try expire(dryRun: dryRun) }
            #expect(error?.status == .locked)
        }
        #expect(try exists(old))
        held.release()
        #expect(try expire().removed == [old])
    }

    // MARK: Verification records

    @Test func verifyWritesARecordThatEntriesIgnoreAndAFailedVerifyRemovesIt() async throws {
        defer { removeRoot() }
        let label = try makeBackup(daysAgo: 1)
        #expect(VerificationRecord.read(repository, label: label) == nil)

        let good = try await BackupVerifier.verify(repository, label: nil, jobs: 1)
        #expect(good.map(\.ok) == [true])
        let record = try #require(VerificationRecord.read(repository, label: label))
        #expect(record.confirms(try repository.backup(label: label)))
        #expect(record.toolVersion == FTBackupVersion.current)
        let entries = try repository.entries()
        #expect(entries.map(\.label) == [label])
        #expect(entries.map(\.status) == [.complete])

        // Damage the data file (same size, other bytes): verify fails and the stale record goes.
        let path = "\(repository.backupFolder(label))/data/0.copy.zst"
        let size = try repository.storage.size(of: path)
        try repository.storage.writeAll(path, [UInt8](repeating: 0x55, count: Int(size)))
        let bad = try await BackupVerifier.verify(repository, label: label, jobs: 1)
        #expect(bad.map(\.ok) == [false])
        #expect(VerificationRecord.read(repository, label: label) == nil)
        #expect(try !repository.storage.exists(VerificationRecord.path(repository, label: label)))
    }

    /// A segment's verification result lives outside the segments folder: segment listing and the
    /// incremental pass's cleanup never see it, expiry removes it with its segment, and a verify
    /// removes one whose segment is gone.
    @Test func segmentVerificationRecordsStayOutOfTheSegmentsFolderAndGoWithTheirSegment() async throws {
        defer { removeRoot() }
        let old = try makeSegment(daysAgo: 9, endLSN: 0x100)
        let recent = try makeSegment(daysAgo: 2, endLSN: 0x200)
        let results = try await SegmentVerifier.verify(repository, jobs: 2, now: now)
        #expect(results.map(\.state) == [.ok, .ok])
        for label in [old, recent] {
            let record = try #require(VerificationResultRecord.read(ChangeSegmentManifest.self, name: label, storage: repository.storage))
            #expect(record.outcome == .ok && record.verifiedAt == now && record.files == 1)
        }
        #expect(try ChangeSegmentManifest.all(repository.storage).map(\.label) == [old, recent])
        #expect(try ChangeArchiver.removeIncompleteSegments(repository.storage).isEmpty)
        #expect(try VerificationOverview.read(repository).segments.map(\.verification) == [.verified, .verified])

        // The old segment expires (no aligned full needs it): its record goes with it.
        #expect(try expire().removedSegments == [old])
        #expect(try !repository.storage.exists(ChangeSegmentManifest.verificationPath(name: old)))
        // A segment removed by hand: the next verify drops its orphaned record.
        try repository.storage.remove(ChangeSegmentManifest.manifestPath(recent))
        try repository.storage.remove(ChangeSegmentManifest.dataPath(recent))
        #expect(try await SegmentVerifier.verify(repository, jobs: 1).isEmpty)
        #expect(try repository.storage.list(SegmentVerifier.verificationFolder).isEmpty)
    }

    /// The command line's selectors: none means everything; each adds a part; --set/--newest pick one backup.
    @Test func verifySelectorsCombineIntoParts() throws {
        typealias R = RepositoryVerifier.Request
        #expect(try R.selecting().parts == .everything)
        #expect(try R.selecting(backups: false).parts == .everything)
        #expect(try R.selecting(archives: true).parts == [.archives])
        #expect(try R.selecting(segments: true, archives: true).parts == [.segments, .archives])
        let newest = try R.selecting(newest: true, segments: true)
        #expect(newest.parts == [.backups, .segments] && newest.backups == .newest)
        let one = try R.selecting(set: "X")
        #expect(one.parts == [.backups] && one.backups == .label("X"))
        #expect(try R.selecting(backups: true).backups == .all)
        #expect(throws: FTBackupError.self) { try R.selecting(set: "X", newest: true) }
        #expect(throws: FTBackupError.self) { try R.selecting(backups: true, newest: true) }
    }

    // MARK: Planning without a repository

    /// Change segments older than the incremental retention go, manifest first; those a restore from the
    /// newest aligned full still replays stay however old.
    @Test func changeSegmentsExpireOnTheIncrementalRetentionButNeverThoseTheNewestFullNeeds() throws {
        defer { removeRoot() }
        let old = try makeSegment(daysAgo: 9, endLSN: 0x100)
        let recent = try makeSegment(daysAgo: 2, endLSN: 0x200)
        // An aligned full at LSN 0x50, 12 days old: the 9-day-old segment ends after it, so it is needed.
        let label = try makeBackup(daysAgo: 12)
        var manifest = try BackupManifest.decode(try repository.storage.readAll(repository.manifestPath(label)), path: "m")
        manifest.snapshot.origin = "replication-slot"
        manifest.snapshot.walLSN = "0/50"
        try repository.storage.writeAll(repository.manifestPath(label), try manifest.encoded())
        let needed = try expire(dryRun: true)
        #expect(needed.segments.first { $0.label == old }?.action == .keep)
        #expect(needed.segments.first { $0.label == old }?.reason.contains("newest full") == true)

        // A newer aligned full past both segments: now the old one is only history, and goes.
        manifest.snapshot.walLSN = "0/300"
        try repository.storage.writeAll(repository.manifestPath(label), try manifest.encoded())
        let report = try expire()
        #expect(report.removedSegments == [old])
        #expect(report.segments.first { $0.label == recent }?.action == .keep)
        #expect(try !repository.storage.exists(ChangeSegmentManifest.manifestPath(old)))
        #expect(try !repository.storage.exists(ChangeSegmentManifest.dataPath(old)))
        #expect(try ChangeSegmentManifest.all(repository.storage).map(\.label) == [recent])
    }

    @Test func planIsAPureFunctionOfItsInputs() throws {
        defer { removeRoot() }
        try makeBackup(daysAgo: 40)
        try makeBackup(daysAgo: 1, verified: true)
        let entries = try repository.entries()
        let records = Dictionary(uniqueKeysWithValues: entries.compactMap { entry in
            VerificationRecord.read(repository, label: entry.label).map { (entry.label, $0) }
        })
        removeRoot()  // the plan needs nothing from the repository
        let plan = BackupExpiry.plan(entries: entries, verifications: records, policy: policy, now: now)
        #expect(plan.items.map(\.action) == [.remove, .keep])
        let unverified = BackupExpiry.plan(entries: entries, verifications: [:], policy: policy, now: now)
        #expect(unverified.items.map(\.action) == [.keep, .keep])
        let later = BackupExpiry.plan(entries: entries, verifications: records, policy: policy, now: now.addingTimeInterval(-20 * Self.day))
        #expect(later.items.map(\.reason) == ["within 30d retention", "newest full"])
    }
}

/// Records removals and fails the one at `failOn`, as if the process died between two steps.
struct InterruptingStorage: RepositoryStorage {
    final class Log: @unchecked Sendable {
        private let lock = NSLock()
        private var removed: [String] = []
        var paths: [String] { lock.withLock { removed } }
        func append(_ path: String) { lock.withLock { removed.append(path) } }
    }

    let base: LocalStorage
    let failOn: String
    let log = Log()

    var location: String { base.location }
    func list(_ folder: String) throws -> [StorageEntry] { try base.list(folder) }
    func exists(_ path: String) throws -> Bool { try base.exists(path) }
    func size(of path: String) throws -> Int64 { try base.size(of: path) }
    func openRead(_ path: String) throws -> any StorageReader { try base.openRead(path) }
    func openWrite(_ path: String) throws -> any StorageWriter { try base.openWrite(path) }
    func makeFolder(_ path: String) throws { try base.makeFolder(path) }
    func remove(_ path: String) throws {
        log.append(path)
        if path == failOn { throw FTBackupError(.failure, "simulated interruption removing \(path)") }
        try base.remove(path)
    }
}
