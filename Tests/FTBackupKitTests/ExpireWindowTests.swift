import Foundation
import Testing
@testable import FTBackupKit

/// The point-in-time window's rule (issue 9, item 8): every instant inside the incremental retention
/// stays restorable, so the newest aligned full at or before the window's start is kept and so is
/// every segment from its consistent point on. Seconds-long retentions, as the reproduction used.
extension ExpireTests {
    /// The policy with the given retentions.
    func policy(full: Period, incremental: Period) -> Policy {
        var policy = self.policy
        policy.full.retention = full
        policy.incremental.retention = incremental
        return policy
    }

    /// A slot-aligned full consistent `secondsAgo` before `now` at `point`.
    @discardableResult
    func makeAlignedFull(secondsAgo: Double, point: UInt64, verified: Bool = true) throws -> String {
        let label = try makeBackup(daysAgo: (secondsAgo - 5) / Self.day, verified: false)
        var manifest = try BackupManifest.decode(try repository.storage.readAll(repository.manifestPath(label)), path: "m")
        manifest.snapshot.origin = "replication-slot"
        manifest.snapshot.walLSN = LSN.format(point)
        manifest.snapshot.time = now.addingTimeInterval(-secondsAgo)
        try repository.storage.writeAll(repository.manifestPath(label), try manifest.encoded())
        if verified {
            try VerificationRecord(label: label, verifiedAt: now, files: manifest.files.count,
                                   bytes: manifest.totals.storedBytes).write(to: repository)
        }
        return label
    }

    /// A sealed segment from `start` to `end` whose commits ran from `firstAgo` to `lastAgo` seconds before `now`.
    @discardableResult
    func makeSegment(start: UInt64, end: UInt64, firstAgo: Double, lastAgo: Double) throws -> String {
        let label = "\(LSN.sortable(start))-\(Int(firstAgo))"
        let writer = try CompressedFileWriter(storage: repository.storage, path: ChangeSegmentManifest.dataPath(label), compression: policy.compression)
        try ChangeRowCopyWriter.header().withUnsafeBytes { try writer.write($0) }
        var file = try writer.finish()
        file.path = "\(label).seg.zst"
        let manifest = ChangeSegmentManifest(
            formatVersion: 1, label: label, slot: ChangeArchivalNames.slot(database: "fasttrack"), startLSN: LSN.format(start),
            endLSN: LSN.format(end), transactions: 2, firstCommitLSN: LSN.format(start + 1), lastCommitLSN: LSN.format(end - 1),
            firstCommitTime: now.addingTimeInterval(-firstAgo), lastCommitTime: now.addingTimeInterval(-lastAgo), relations: [],
            schemaChanges: nil, createdAt: now.addingTimeInterval(-lastAgo), file: file)
        try repository.storage.writeAll(ChangeSegmentManifest.manifestPath(label), try manifest.encoded())
        return label
    }

    func expire(_ policy: Policy) throws -> ExpiryReport {
        try BackupExpiry.run(repositoryPath: root, policy: policy, dryRun: false, now: now)
    }

    /// The reproduction: retention 40 s, fulls 30 s apart (65 s and 35 s old). A time 36 s old restores
    /// from the older full, so it and every segment from its consistent point stay — even one whose
    /// last commit is older than the window, and even with a full retention shorter than the window.
    @Test func theWindowsOldestInstantKeepsItsFullAndEverySegmentFromIt() throws {
        defer { removeRoot() }
        let older = try makeAlignedFull(secondsAgo: 65, point: 0x100)
        let newer = try makeAlignedFull(secondsAgo: 35, point: 0x300)
        let before = try makeSegment(start: 0x80, end: 0x100, firstAgo: 80, lastAgo: 70)
        let straddlingFull = try makeSegment(start: 0xF0, end: 0x140, firstAgo: 69, lastAgo: 60)
        let between = try makeSegment(start: 0x140, end: 0x180, firstAgo: 59, lastAgo: 50)
        let straddlingWindow = try makeSegment(start: 0x180, end: 0x300, firstAgo: 45, lastAgo: 36)
        let after = try makeSegment(start: 0x300, end: 0x400, firstAgo: 34, lastAgo: 5)

        let report = try expire(policy(full: Period(20, .seconds), incremental: Period(40, .seconds)))
        #expect(report.removedSegments == [before])
        #expect(report.removed.isEmpty)
        #expect(item(older, in: report)?.action == .keep)
        #expect(item(older, in: report)?.reason.contains("point-in-time window") == true)
        #expect(item(newer, in: report)?.reason == "newest full")
        for label in [straddlingFull, between] {
            #expect(report.segments.first { $0.label == label }?.reason == "replayed from full \(older), the base of the 40s point-in-time window")
        }
        #expect(report.segments.first { $0.label == before }?.reason.contains("before the window's base full") == true)
        #expect(try ChangeSegmentManifest.all(repository.storage).map(\.label) == [straddlingFull, between, straddlingWindow, after])
    }

    /// No full inside the window: the newest full (older than the window) is the base; segments before
    /// it go, even those after an older full.
    @Test func withNoFullInsideTheWindowTheNewestFullIsTheBase() throws {
        defer { removeRoot() }
        try makeAlignedFull(secondsAgo: 120, point: 0x100)
        let newest = try makeAlignedFull(secondsAgo: 90, point: 0x300)
        let afterOlder = try makeSegment(start: 0x100, end: 0x200, firstAgo: 110, lastAgo: 100)
        let straddling = try makeSegment(start: 0x200, end: 0x380, firstAgo: 95, lastAgo: 80)
        let recent = try makeSegment(start: 0x380, end: 0x400, firstAgo: 30, lastAgo: 10)
        let report = try expire(policy(full: Period(30, .days), incremental: Period(40, .seconds)))
        #expect(report.removedSegments == [afterOlder])
        #expect(report.segments.first { $0.label == straddling }?.reason == "replayed from the newest full \(newest)")
        #expect(report.segments.first { $0.label == recent }?.action == .keep)
    }

    /// Every full is younger than the window's start: nothing before the oldest full can be restored,
    /// so it is the base; a segment before it stays only while its commits are inside the retention.
    @Test func withEveryFullInsideTheWindowTheOldestIsTheBase() throws {
        defer { removeRoot() }
        let oldest = try makeAlignedFull(secondsAgo: 30, point: 0x300)
        try makeAlignedFull(secondsAgo: 10, point: 0x500)
        let stale = try makeSegment(start: 0x100, end: 0x200, firstAgo: 60, lastAgo: 50)
        let young = try makeSegment(start: 0x200, end: 0x300, firstAgo: 45, lastAgo: 35)
        let fromOldest = try makeSegment(start: 0x300, end: 0x500, firstAgo: 29, lastAgo: 12)
        let report = try expire(policy(full: Period(30, .days), incremental: Period(40, .seconds)))
        #expect(report.removedSegments == [stale])
        #expect(report.segments.first { $0.label == young }?.reason == "within 40s retention")
        #expect(report.segments.first { $0.label == fromOldest }?.reason == "replayed from full \(oldest), the base of the 40s point-in-time window")
    }
}
