import Foundation
import Logging

/// `ftbackup restore --at TIME`: the database (or chosen schemas) as it was at TIME, to the transaction.
///
/// Picks the newest full backup aligned with the change archive (its snapshot came from a replication
/// slot) whose snapshot is at or before TIME, restores it, then replays the archived transactions in
/// commit-LSN order from its consistent point and stops before the first commit whose time is after
/// TIME — PostgreSQL's own `recovery_target_time` rule. It refuses a TIME the archive does not
/// provably reach (no commit after it) and a chain with a gap, naming the newest recoverable time,
/// and a TIME past recorded DDL that no later full covers (`DDLRefusal`).
public enum PointInTimeRestore {
    public struct Plan: Codable, Sendable {
        public var at: Date
        public var full: String
        public var consistentPoint: String
        public var fullConsistentAt: Date
        public var segments: [String]
        public var segmentBytes: Int64
        /// With `--schema`: the segments left unread because their index names none of the schemas
        /// (`SegmentSelection`); nil when every segment is read.
        public var segmentsSkipped: [String]? = nil
        /// Segments before the full's first one read only for relation descriptions its segments need (a
        /// follower's stream describes a relation once, possibly before this full); nil when none.
        public var describers: [String]? = nil
        /// Transactions that will be replayed, and the last of them.
        public var transactions: Int
        public var lastCommitLSN: String?
        public var lastCommitTime: Date?
        public var newestRecoverable: Date?
        public var estimatedSeconds: Double
        public var restore: RestorePlan
    }

    public struct Report: Codable, Sendable {
        public var plan: Plan
        public var fullRestore: RestoreReport?
        public var transactionsApplied: Int
        public var changesApplied: Int
        public var replaySeconds: Double
        public var seconds: Double
        /// Sequences whose state at TIME is not known exactly, and what was done (see `SequencesAtTime`).
        public var sequenceWarnings: [String] = []
    }

    public static func run(_ options: RestoreOptions, at target: Date) async throws -> Report {
        try await run(options, at: target, grouping: .standard)
    }

    static func run(_ given: RestoreOptions, at target: Date, grouping: ReplayGrouping) async throws -> Report {
        var maintenance = given
        maintenance.target = given.target.addingServerOptions(RestoreRunner.maintenanceSessionOptions)
        let options = maintenance
        let started = Date()
        let repository = try Repository.open(options.repositoryPath)
        // Held for the whole run (the full's restore takes its own shared lock too: shared locks coexist),
        // so expiry cannot remove the full or a segment between planning and replay.
        let lock = try RepositoryLock.acquire(repositoryRoot: options.repositoryPath, kind: .read, exclusive: false, command: "restore --at")
        defer { lock.release() }
        let (plan, segments) = try await makePlan(repository, options: options, at: target)
        if options.dryRun { return Report(plan: plan, fullRestore: nil, transactionsApplied: 0, changesApplied: 0, replaySeconds: 0, seconds: 0) }
        // The restore's sessions connect while the rest of the plan is read, the replay's as the data phase ends (only
        // once the plan stands: a refused one ends the command at once, with no connection under way).
        let ahead = RestoreRunner.SessionsConnectedAhead()
        ahead.target = ahead.scope.adopt(RestoreRunner.targetSession(options.target))
        ahead.capture = options.clean ? ahead.scope.adopt(OutsideDependants.captureSession(options.target)) : nil
        ahead.afterData = ahead.scope.adopt(replaySession(options))
        ahead.target?.start()
        ahead.capture?.start(after: ahead.target)
        PostgresTools.probeAhead()
        return try await ahead.scope.closing {
            try await restore(options, at: target, plan: plan, segments: segments, repository: repository, ahead: ahead,
                              grouping: grouping, started: started)
        }
    }

    /// The full's restore and the replay, once the plan stands.
    private static func restore(_ options: RestoreOptions, at target: Date, plan: Plan, segments: [ChangeSegmentManifest], repository: Repository,
                                ahead: RestoreRunner.SessionsConnectedAhead, grouping: ReplayGrouping, started: Date) async throws -> Report {

        var fullOptions = options
        fullOptions.label = plan.full
        let consistentPoint = LSN.parse(plan.consistentPoint) ?? 0
        let storage = repository.storage
        let replayed = ReplayTally()
        let fullManifest = try repository.backup(label: plan.full)
        let ignoredTables = Self.ignored(fullManifest, schemas: options.schemas)
        let own = try ownSegments(repository)
        let following = followingSegments(own, after: segments)
        let selection = SegmentSelection.make(segments, following: following, preceding: precedingSegments(own, before: segments),
                                              schemas: options.schemas)
        let full = try await RestoreRunner.run(fullOptions, replayFootprint: ReplayFootprint.make(segments), ahead: ahead) {
            let started = Date()
            let (transactions, changes, warnings) = try await replay(segments, following: following, selection: selection,
                                                                     storage: storage, options: options,
                                                                     from: consistentPoint, until: target, schemas: plan.restore.schemas,
                                                                     ignoring: ignoredTables, grouping: grouping, session: ahead.afterData)
            try await RefreshedViews.populate(segments, full: fullManifest, until: target, schemas: plan.restore.schemas, options: options)
            for warning in warnings { options.logger.warning("\(warning)") }
            replayed.set(transactions: transactions, changes: changes, seconds: Date().timeIntervalSince(started), warnings: warnings)
        }
        let (transactions, changes, replaySeconds) = replayed.value
        let sequenceWarnings = replayed.warnings
        options.logger.info("point-in-time replay done", metadata: [
            "transactions": .string("\(transactions)"), "changes": .string("\(changes)"),
            "seconds": .string(String(format: "%.2f", replaySeconds)),
        ])
        return Report(plan: plan, fullRestore: full, transactionsApplied: transactions, changesApplied: changes,
                      replaySeconds: replaySeconds, seconds: Date().timeIntervalSince(started), sequenceWarnings: sequenceWarnings)
    }

    /// The repository's own segments (another database's are never merged in), in archive order.
    static func ownSegments(_ repository: Repository) throws -> [ChangeSegmentManifest] {
        try RepositorySourceView.load(repository).own(try ChangeSegmentManifest.all(repository.storage))
    }

    /// The segments of `all` before `used`: where a follower's stream may have described a relation that
    /// `used` changes (see `SegmentSelection.describers`).
    static func precedingSegments(_ all: [ChangeSegmentManifest], before used: [ChangeSegmentManifest]) -> [ChangeSegmentManifest] {
        guard let first = used.first else { return [] }
        return Array(all.prefix { $0.label != first.label })
    }

    /// The segments of `all` that follow `used` without a gap: read only for the first heartbeat after
    /// TIME (the sequences' upper bound), never replayed.
    static func followingSegments(_ all: [ChangeSegmentManifest], after used: [ChangeSegmentManifest]) -> [ChangeSegmentManifest] {
        guard let last = used.last else { return [] }
        guard let index = all.firstIndex(where: { $0.label == last.label }) else { return [] }
        var following: [ChangeSegmentManifest] = []
        var end = LSN.parse(last.endLSN) ?? 0
        for segment in all[(index + 1)...] {
            guard (LSN.parse(segment.startLSN) ?? .max) <= end else { break }
            following.append(segment)
            end = max(end, LSN.parse(segment.endLSN) ?? 0)
        }
        return following
    }

    static func makePlan(_ repository: Repository, options: RestoreOptions, at target: Date) async throws -> (Plan, [ChangeSegmentManifest]) {
        // Only the repository's own source: another database's fulls and segments are never merged in.
        let view = try RepositorySourceView.load(repository)
        let fulls = view.own(try repository.entries().compactMap(\.manifest)).filter { $0.type == .full && $0.snapshot.origin == "replication-slot" }
        guard let full = fulls.last(where: { $0.snapshot.time <= target }) else {
            let oldest = fulls.first.map { "the oldest is \($0.label), consistent at \(Timestamps.display($0.snapshot.time))" } ?? "there is none"
            throw FTBackupError(.usage, "no full backup aligned with the change archive is at or before \(Timestamps.display(target)): \(oldest)",
                                hint: "choose a later time (ftbackup info shows the recoverable window)")
        }
        guard let consistentPoint = LSN.parse(full.snapshot.walLSN) else {
            throw FTBackupError(.dataError, "backup \(full.label) records an unreadable consistent point \(full.snapshot.walLSN)")
        }
        let stored = try ChangeSegmentManifest.all(repository.storage)
        let foreign = stored.compactMap { view.mismatch(of: $0) }
        for problem in foreign { options.logger.warning("change segment left out: \(problem)") }
        let all = view.own(stored)
        let newest = all.compactMap(\.lastCommitTime).max()
        // From the first segment that reaches the consistent point, up to the first one that reaches past the target.
        guard let firstIndex = all.firstIndex(where: { (LSN.parse($0.endLSN) ?? 0) >= consistentPoint }) else {
            throw FTBackupError(.usage, "the change archive does not reach past \(Timestamps.display(target)): nothing archived after backup \(full.label)",
                                hint: "run ftbackup backup --type incr and try again; newest recoverable time: \(newest.map { Timestamps.displayExact($0) } ?? "none")")
        }
        var used: [ChangeSegmentManifest] = []
        var reached = false
        for segment in all[firstIndex...] {
            if let previous = used.last, (LSN.parse(segment.startLSN) ?? .max) > (LSN.parse(previous.endLSN) ?? 0) {
                throw FTBackupError(.dataError, "the change archive has a gap between segments \(previous.label) (ends \(previous.endLSN)) and \(segment.label) (starts \(segment.startLSN))",
                                    hint: "the newest recoverable time is \(previous.lastCommitTime.map { Timestamps.display($0) } ?? "unknown"); take a new full backup")
            }
            if used.isEmpty, (LSN.parse(segment.startLSN) ?? .max) > consistentPoint {
                throw FTBackupError(.dataError, "the change archive starts at \(segment.startLSN), after backup \(full.label)'s consistent point \(full.snapshot.walLSN)",
                                    hint: "choose a later full backup (ftbackup info)")
            }
            used.append(segment)
            // Compared in PostgreSQL's microseconds: a time equal to the newest archived commit (the
            // end of info's recoverable window) is reached, since replay includes a commit at TIME.
            if let last = segment.lastCommitTime,
               PgOutputDecoder.postgresMicroseconds(from: last) >= PgOutputDecoder.postgresMicroseconds(from: target) { reached = true; break }
        }
        guard reached else {
            throw FTBackupError(.usage, "the change archive does not reach past \(Timestamps.display(target)): the newest archived commit is at \(newest.map { Timestamps.displayExact($0) } ?? "none")",
                                hint: "run ftbackup backup --type incr first, or choose a time at or before the newest archived commit")
        }
        // Recorded DDL between the full and TIME is not replayed: refuse now, before the target is touched.
        try DDLRefusal.check(segments: used, full: full, fulls: fulls, at: target, schemas: options.schemas)
        // Large objects are not decoded either: a time the readings do not prove them unchanged at is refused too.
        try LargeObjectRefusal.check(segments: all, full: full, fulls: fulls, at: target, schemas: options.schemas, logger: options.logger)
        // Read the segments up to the stop point: count what will be replayed, find the last transaction,
        // and refuse now, before the target is touched, if a replayed change hits a table whose
        // description differs from the full's (a schema change or a table created after the full).
        var transactions = 0
        var lastLSN: UInt64?
        var lastTime: Int64?
        var lastApplied: UInt64 = 0
        var applying = false
        var descriptions: [UInt32: RelationDescription] = [:]
        var checked: Set<String> = []
        // Relations checked under their current description: most changes are of one already seen, and
        // the check's name-and-columns key is costly to build (a new description ("R") is checked again).
        var checkedRelations: Set<UInt32> = []
        let known = Dictionary(full.tables.map { ("\($0.schema).\($0.name)", $0.columns) }, uniquingKeysWith: { first, _ in first })
        let ignored = Self.ignored(full, schemas: options.schemas)
        let selected = options.schemas.isEmpty ? nil : Set(options.schemas)
        let limit = PgOutputDecoder.postgresMicroseconds(from: target)
        // With --schema, only the segments that can matter to the schemas are opened (`SegmentSelection`);
        // a change of another schema's relation described in a skipped segment is not checked.
        let selection = SegmentSelection.make(used, following: followingSegments(all, after: used), preceding: Array(all[..<firstIndex]),
                                              schemas: options.schemas)
        // Descriptions from before the full's first segment (its changes are not replayed).
        for segment in selection.describers {
            try forEachRow(segment, storage: repository.storage) { row in
                guard row.data.first == UInt8(ascii: "R"), case .relation(let relation) = try PgOutputDecoder.decode(row.data, byteText: segment.byteText) else { return }
                descriptions[relation.relid] = relation
            }
        }
        func check(_ relid: UInt32, at lsn: UInt64) throws {
            guard !checkedRelations.contains(relid) else { return }
            guard let relation = descriptions[relid] else {
                if selection.skipsAny { return }
                throw FTBackupError(.dataError, "a change at LSN \(LSN.format(lsn)) names relation \(relid) without its description",
                                    hint: "the change archive is damaged; restore to a time after the next full backup")
            }
            checkedRelations.insert(relid)  // (a throw below ends the plan: no change is passed unchecked)
            let name = "\(relation.namespace).\(relation.name)"
            let columns = relation.columns.map(\.name)
            guard !checked.contains("\(name):\(columns)") else { return }
            checked.insert("\(name):\(columns)")
            if relation.namespace == ChangeArchivalNames.schema || ignored.contains(name) { return }
            if let selected, !selected.contains(relation.namespace) { return }
            guard let expected = known[name] else {
                throw FTBackupError(.usage, "cannot restore to \(Timestamps.display(target)) from backup \(full.label): table \(name) was created after it (first change at LSN \(LSN.format(lsn)))",
                                    hint: "choose a time after the next full backup (ftbackup info lists them)")
            }
            guard expected == columns else {
                throw FTBackupError(.usage, "cannot restore to \(Timestamps.display(target)) from backup \(full.label): table \(name) changed after it (columns \(expected) then \(columns), at LSN \(LSN.format(lsn)))",
                                    hint: "choose a time after the next full backup (ftbackup info lists them)")
            }
        }
        scan: for segment in used {
            guard selection.reads(segment) else {
                // Wholly before TIME (only the last segment reaches past it, and it is read).
                if let commit = segment.lastCommitLSN.flatMap(LSN.parse), commit >= consistentPoint {
                    lastApplied = max(lastApplied, commit)
                    lastLSN = commit
                    lastTime = segment.lastCommitTime.map(PgOutputDecoder.postgresMicroseconds(from:))
                }
                continue
            }
            var stop = false
            try forEachRow(segment, storage: repository.storage) { row in
                guard !stop, let kind = row.data.first else { return }
                switch kind {
                case UInt8(ascii: "B"):
                    guard case .begin(let final, let time, _) = try PgOutputDecoder.decode(row.data) else { return }
                    if final < consistentPoint || final <= lastApplied {
                        applying = false
                    } else if time > limit {
                        stop = true
                    } else {
                        applying = true
                        transactions += 1
                        lastApplied = final
                        lastLSN = final
                        lastTime = time
                    }
                case UInt8(ascii: "R"):
                    if case .relation(let relation) = try PgOutputDecoder.decode(row.data) {
                        descriptions[relation.relid] = relation
                        checkedRelations.remove(relation.relid)
                    }
                case UInt8(ascii: "I"), UInt8(ascii: "U"), UInt8(ascii: "D"):
                    if applying, row.data.count >= 5 {
                        try check(row.data[1...4].reduce(0) { $0 << 8 | UInt32($1) }, at: row.lsn)
                    }
                case UInt8(ascii: "T"):
                    if applying, case .truncate(let relids, _, _) = try PgOutputDecoder.decode(row.data, byteText: segment.byteText) {
                        for relid in relids { try check(relid, at: row.lsn) }
                    }
                default:
                    break
                }
            }
            if stop { break scan }
        }
        let (restorePlan, _) = try RestorePlan.make(manifest: full, schemas: options.schemas, target: options.target.redacted,
                                                    jobs: options.jobs, clean: options.clean, noOwner: options.noOwner)
        let segmentBytes = used.reduce(0) { $0 + $1.file.storedBytes }
        // Rates measured on two cores (~60 MiB/s of COPY text restored, ~40,000 changes/s replayed), rounded down.
        let estimate = Double(restorePlan.rawBytes) / 60e6 + Double(segmentBytes) * 8 / 40_000 / 100 + 5
        let plan = Plan(at: target, full: full.label, consistentPoint: full.snapshot.walLSN, fullConsistentAt: full.snapshot.time,
                        segments: used.map(\.label), segmentBytes: segmentBytes,
                        segmentsSkipped: selection.skipsAny ? selection.skipped : nil,
                        describers: selection.describers.isEmpty ? nil : selection.describers.map(\.label), transactions: transactions,
                        lastCommitLSN: lastLSN.map(LSN.format), lastCommitTime: lastTime.map(PgOutputDecoder.date(fromPostgresMicroseconds:)),
                        newestRecoverable: newest, estimatedSeconds: estimate, restore: restorePlan)
        return (plan, used)
    }

    /// Tables whose changes replay skips: those the full did not copy, and with `--schema` extensions'
    /// configuration tables (a `--schema` restore leaves them alone, see `RestorePlan`).
    static func ignored(_ full: BackupManifest, schemas: [String]) -> Set<String> {
        let configuration = schemas.isEmpty ? [] : full.tables.filter { $0.extensionFilter != nil }.map { "\($0.schema).\($0.name)" }
        return Set((full.tablesNotCopied ?? []) + configuration)
    }

    /// Streams one segment's rows, checking its digest as it goes (a damaged segment is an error, never a short replay).
    static func forEachRow(_ segment: ChangeSegmentManifest, storage: any RepositoryStorage, _ body: (ChangeRow) throws -> Void) throws {
        var parser = ChangeRowCopyParser()
        try StoredFileReader.read(storage, folder: ChangeSegmentManifest.folder, file: segment.file) { chunk in
            try parser.feed(chunk, row: body)
        }
        try parser.finish()
    }
}
