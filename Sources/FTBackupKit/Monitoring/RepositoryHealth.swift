import Foundation

/// What `ftbackup status` and the metrics files say about the whole suite, read from the repository
/// (and, with a database, the slot): the newest full, incremental and change segment, the restorable
/// window and its age (the live RPO), the slot and follower, the last drill and lifecycle runs.
public struct RepositoryHealth: Codable, Sendable {
    public struct Backup: Codable, Sendable {
        public var label: String
        public var finishedAt: Date
        public var rows: Int64
        public var storedBytes: Int64
    }
    public struct Drill: Codable, Sendable {
        public var label: String
        public var finishedAt: Date
        public var passed: Bool
        public var rtoSeconds: Double
        public var rpoSeconds: Double
        public var reasons: [String]
    }
    public struct LifecycleRun: Codable, Sendable {
        public var kind: String
        public var run: String
        public var at: Date?
        public var rows: Int64?
        /// Rows removed over every run log of this kind kept in the repository.
        public var rowsTotal: Int64
        public var runs: Int
    }

    public var checkedAt: Date
    public var newestFull: Backup?
    /// When the newest change segment (an incremental pass's or the follower's) was sealed.
    public var newestSegmentAt: Date?
    public var segments: Int
    public var restorableFrom: Date?
    public var restorableUntil: Date?
    /// Seconds between the newest restorable point and now: what a loss of the source now would cost.
    public var recoveryPointAgeSeconds: Double?
    public var changeArchiveBroken: String?
    public var slot: SlotHealth?
    /// A follower streams the slot (the slot is held by a live process); nil without a database.
    public var followerAlive: Bool?
    public var lastDrill: Drill?
    public var lifecycle: [LifecycleRun]
    /// The second repository the scheduler keeps in step (the policy's `repository.second`), as its state records it.
    public var secondRepository: SchedulerState.SecondRepositoryState? = nil
    /// Seconds the second repository has been behind (0: in step; nil: none configured).
    public var secondRepositoryLagSeconds: Double? {
        secondRepository.map { second in second.behindSince.map { checkedAt.timeIntervalSince($0) } ?? (second.lastSyncAt == nil ? .infinity : 0) }
    }

    public static func read(_ repository: Repository, database: ConnectionString?, policy: Policy, now: Date = Date()) async throws -> RepositoryHealth {
        let view = try RepositorySourceView.load(repository)
        let entries = try repository.entries()
        if let unreadable = entries.first(where: { $0.status == .unreadable }) {
            throw FTBackupError(.dataError, "backup \(unreadable.label) has an unreadable manifest: \(unreadable.problem ?? "")",
                                hint: "ftbackup verify --set \(unreadable.label); move the backup aside if it cannot be repaired")
        }
        let manifests = view.own(entries.compactMap(\.manifest))
        let newestFull = manifests.filter { $0.type == .full }.max { $0.stoppedAt < $1.stoppedAt }.map {
            Backup(label: $0.label, finishedAt: $0.stoppedAt, rows: $0.totals.rows, storedBytes: $0.totals.storedBytes)
        }
        let changes = try await ChangeArchiveStatus.read(repository, database: database)
        let segments = view.own(try ChangeSegmentManifest.all(repository.storage))
        let newestSegment = segments.map(\.createdAt).max()
        // Without change archival the newest restorable point is the newest full's consistent time.
        let newestPoint = changes.recoverableUntil ?? manifests.filter { $0.type == .full }.map(\.snapshot.time).max()
        let follower: Bool? = changes.slot.map { $0.exists && $0.active }
        let drill = try DrillRecord.all(repository).max { $0.finishedAt < $1.finishedAt }.map {
            Drill(label: $0.label, finishedAt: $0.finishedAt, passed: $0.passed, rtoSeconds: $0.rto.measuredSeconds,
                  rpoSeconds: $0.rpo.measuredSeconds, reasons: $0.reasons)
        }
        // Configured but never synced by a tick yet: behind since ever.
        let second = policy.repository.second.map { location in
            ((try? SchedulerState.read(repository))?.secondRepository).flatMap { $0.location == location ? $0 : nil } ?? .init(location: location)
        }
        return RepositoryHealth(
            checkedAt: now, newestFull: newestFull, newestSegmentAt: newestSegment,
            segments: segments.count, restorableFrom: changes.recoverableFrom ?? manifests.filter { $0.type == .full }.map(\.snapshot.time).min(),
            restorableUntil: newestPoint, recoveryPointAgeSeconds: newestPoint.map { now.timeIntervalSince($0) },
            changeArchiveBroken: changes.broken, slot: changes.slot, followerAlive: follower, lastDrill: drill,
            lifecycle: try ["archive", "prune-audit", "unarchive"].compactMap { try lifecycleRuns(repository.storage, kind: $0) },
            secondRepository: second)
    }

    /// The newest run log of a kind and the rows of all of them, each log read as its kind's report
    /// (prune-audit: rows per table; archive: rows per schema; unarchive: rows per table put back).
    /// A log that cannot be read is an error naming it: `status` must say UNKNOWN, not count it as 0.
    static func lifecycleRuns(_ storage: any RepositoryStorage, kind: String) throws -> LifecycleRun? {
        let names = try RecordChain.names(storage, folder: "lifecycle/\(kind)")
        guard let last = names.last else { return nil }
        var total: Int64 = 0
        var lastRows: Int64 = 0
        for name in names {
            let path = "lifecycle/\(kind)/\(name)"
            let rows: Int64
            do {
                rows = try Self.rows(kind: kind, Data(try storage.readAll(path)))
            } catch {
                throw FTBackupError(.dataError, "lifecycle run log \(storage.location)/\(path) is unreadable: \((error as? FTBackupError)?.message ?? EvidenceVerifier.describe(error))",
                                    hint: "ftbackup verify names every bad file; restore it from a copy of the repository")
            }
            total += rows
            if name == last { lastRows = rows }
        }
        let run = String(last.dropLast(5))
        return LifecycleRun(kind: kind, run: run, at: RunLabelDate.parse(run), rows: lastRows, rowsTotal: total, runs: names.count)
    }

    /// Rows a run log of `kind` says its run removed or put back.
    static func rows(kind: String, _ data: Data) throws -> Int64 {
        let decoder = BackupManifest.decoder()
        switch kind {
        case "prune-audit": return try decoder.decode(AuditPruner.Report.self, from: data).rows
        case "archive": return try decoder.decode(ArchiveReport.self, from: data).rows
        case "unarchive": return try decoder.decode(Unarchiver.Report.self, from: data).rows.values.reduce(0, +)
        default: throw FTBackupError(.dataError, "unknown lifecycle kind \(kind)")
        }
    }

    /// Gauges for node_exporter (`ftbackup_status.prom`).
    public var metricFamilies: [MetricFamily] {
        var families: [MetricFamily] = []
        if let full = newestFull {
            families.append(MetricFamily("ftbackup_newest_full_timestamp_seconds", help: "When the newest complete full backup finished (Unix time).",
                                         value: full.finishedAt.timeIntervalSince1970))
            families.append(MetricFamily("ftbackup_newest_full_rows", help: "Rows in the newest full backup.", value: Double(full.rows)))
            families.append(MetricFamily("ftbackup_newest_full_stored_bytes", help: "Stored (compressed) bytes of the newest full backup.",
                                         value: Double(full.storedBytes)))
        }
        if let sealed = newestSegmentAt {
            families.append(MetricFamily("ftbackup_newest_segment_timestamp_seconds", help: "When the newest change segment was sealed (Unix time).",
                                         value: sealed.timeIntervalSince1970))
        }
        if let until = restorableUntil {
            families.append(MetricFamily("ftbackup_recovery_point_timestamp_seconds", help: "The newest point restore can reach (Unix time).",
                                         value: until.timeIntervalSince1970))
        }
        if let age = recoveryPointAgeSeconds {
            families.append(MetricFamily("ftbackup_recovery_point_age_seconds", help: "Age of the newest restorable point when measured (the live RPO).",
                                         value: age))
        }
        families.append(MetricFamily("ftbackup_change_archive_broken", help: "1 when the change archive cannot advance (slot gone or lost, source recreated).",
                                     value: changeArchiveBroken == nil ? 0 : 1))
        if let slot, slot.exists {
            families.append(MetricFamily("ftbackup_slot_retained_wal_bytes", help: "WAL the replication slot keeps that is not archived yet.",
                                         value: Double(slot.lagBytes)))
            families.append(MetricFamily("ftbackup_slot_wal_status", help: "The slot's wal_status (1 for the current one).",
                                         [.init([("status", slot.walStatus ?? "unknown")], 1)]))
        }
        if let followerAlive {
            families.append(MetricFamily("ftbackup_follower_up", help: "1 when a follower streams the slot.",
                                         value: followerAlive ? 1 : 0))
        }
        if let drill = lastDrill {
            families.append(MetricFamily("ftbackup_drill_last_timestamp_seconds", help: "When the last restore drill finished (Unix time).",
                                         value: drill.finishedAt.timeIntervalSince1970))
            families.append(MetricFamily("ftbackup_drill_last_success", help: "1 when the last drill met its objectives and checks.",
                                         value: drill.passed ? 1 : 0))
            families.append(MetricFamily("ftbackup_drill_last_rto_seconds", help: "The last drill's measured RTO.", value: drill.rtoSeconds))
            families.append(MetricFamily("ftbackup_drill_last_rpo_seconds", help: "The last drill's measured RPO.", value: drill.rpoSeconds))
        }
        if !lifecycle.isEmpty {
            families.append(MetricFamily("ftbackup_lifecycle_rows_total", .counter, help: "Rows archived, pruned or put back, over the run logs kept.",
                                         lifecycle.map { .init([("kind", $0.kind)], Double($0.rowsTotal)) }))
            let dated = lifecycle.filter { $0.at != nil }
            if !dated.isEmpty {
                families.append(MetricFamily("ftbackup_lifecycle_last_run_timestamp_seconds", help: "When the newest run of each lifecycle kind started (Unix time).",
                                             dated.map { .init([("kind", $0.kind)], $0.at!.timeIntervalSince1970) }))
            }
        }
        if let lag = secondRepositoryLagSeconds {
            families.append(MetricFamily("ftbackup_second_repository_lag_seconds",
                                         help: "Seconds the second repository (policy repository.second) has been behind: 0 in step, +Inf never synced.",
                                         value: lag))
            if let synced = secondRepository?.lastSyncAt {
                families.append(MetricFamily("ftbackup_second_repository_last_sync_timestamp_seconds",
                                             help: "When a scheduler tick last brought the second repository in step (Unix time).", value: synced.timeIntervalSince1970))
            }
        }
        return families
    }
}

/// A run or backup label (`20261125T140501Z`, with or without a suffix) read back as its time.
enum RunLabelDate {
    static func parse(_ label: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = .gmt
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.date(from: String(label.prefix(16)))
    }
}
