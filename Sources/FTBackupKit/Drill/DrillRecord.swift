import Foundation

/// What one restore drill measured and found: `drills/<label>.json` in the repository.
///
/// It exists so that "can we restore within the RTO, and how much would we lose" is answered by a
/// real restore's record, kept beside the backups it used, instead of by an estimate. An on-call lead
/// reads from it whether the objectives are met today and at what size or change volume they stop being met.
public struct DrillRecord: Codable, Sendable {
    public static let folder = "drills"

    public struct Phase: Codable, Sendable, Equatable {
        public var name: String
        public var seconds: Double
    }

    /// The recovery time objective against the drill's wall time from its start to a validated database.
    public struct RTO: Codable, Sendable {
        public var objectiveSeconds: Double
        public var measuredSeconds: Double
        public var met: Bool
    }

    /// The recovery point objective against what the repository really delivered.
    public struct RPO: Codable, Sendable {
        public var objectiveSeconds: Double
        /// The newest point the repository could restore when the drill started.
        public var newestPointAt: Date?
        /// Its age then: what would have been lost had the source died at the drill's start.
        public var ageAtStartSeconds: Double?
        /// The longest the newest restorable point lagged behind the clock over the history window.
        public var worstGapSeconds: Double
        public var worstGapEndedAt: Date?
        public var historyDays: Int
        /// max(age at start, worst gap): what the objective is met or missed by.
        public var measuredSeconds: Double
        public var met: Bool
    }

    /// The measured rates and the size and change volume at which the RTO would be missed at those rates.
    public struct Headroom: Codable, Sendable {
        public var databaseBytes: Int64
        public var restoredRawBytes: Int64
        /// MiB/s of COPY data loaded (the data phase).
        public var dataMiBPerSecond: Double?
        /// Seconds of every phase that grows with the database's size, per GiB of database.
        public var sizeSecondsPerGiB: Double?
        public var replayChangesPerSecond: Double?
        /// Change volume over the history window: stored segment bytes and (estimated) changes per day.
        public var dailyChangeBytes: Int64
        public var dailyChanges: Double?
        /// The changes a restore replays at worst: one full-backup interval's worth.
        public var worstReplayChanges: Double?
        public var worstReplaySeconds: Double?
        /// The database size at which the RTO is missed (with the worst replay), and the daily change
        /// volume at which it is missed (at today's size); nil when a rate could not be measured.
        public var rtoMissedAtDatabaseBytes: Int64?
        public var rtoMissedAtDailyChanges: Double?
        public var statement: String
    }

    /// One table: the rows the backup and the replayed changes say it must hold, and what it holds.
    public struct TableCount: Codable, Sendable, Equatable {
        public var schema: String
        public var table: String
        public var expectedRows: Int64
        public var rows: Int64
        public var ok: Bool
        public var note: String?
    }

    /// One validation: `kind` is rows, sequence, schema, policy or compare.
    public struct Check: Codable, Sendable, Equatable {
        public var kind: String
        public var name: String
        public var ok: Bool
        public var detail: String?
    }

    public var label: String
    public var ftbackupVersion: String
    public var startedAt: Date
    public var finishedAt: Date
    public var passed: Bool
    /// Why it failed (each missed objective and failed check), empty when it passed.
    public var reasons: [String]
    /// The instant restored, and how: `point-in-time` (full + replay, as `restore --at`) or `full`.
    public var point: Date
    public var method: String
    public var backup: String
    public var segments: [String]
    public var transactionsReplayed: Int
    public var changesReplayed: Int
    /// nil: the whole database.
    public var schemas: [String]?
    public var source: String
    public var sourceServerVersion: String
    /// The restore's target, without password.
    public var target: String
    public var targetServerVersion: String
    /// The scratch database created for the drill (dropped unless kept).
    public var scratchDatabase: String?
    public var kept: Bool
    /// Scratch databases of drills that were killed, removed before this one started.
    public var leftoversRemoved: [String]
    public var phases: [Phase]
    public var rto: RTO
    public var rpo: RPO
    public var headroom: Headroom
    public var tables: [TableCount]
    public var checks: [Check]

    public static func path(_ label: String) -> String { "\(folder)/\(label).json" }

    /// Written atomically (temporary name, fsync, rename; 0600), like every repository file, chained
    /// to the previous drill record (``RecordChain``, kind `drill`).
    public func write(to repository: Repository) throws {
        try RecordChain.write(self, kind: Self.chainKind, folder: Self.folder, name: "\(label).json", storage: repository.storage,
                              microseconds: true)
    }

    public static let chainKind = "drill"

    /// Every drill record, oldest first; an unreadable one is an error naming it.
    public static func all(_ repository: Repository) throws -> [DrillRecord] {
        let storage = repository.storage
        return try storage.list(folder).filter { !$0.isDirectory && $0.path.hasSuffix(".json") && !$0.path.contains(".tmp-") }
            .sorted { $0.path < $1.path }
            .map { entry in
                do {
                    return try BackupManifest.decoder().decode(DrillRecord.self, from: Data(try storage.readAll(entry.path)))
                } catch {
                    throw FTBackupError(.dataError, "drill record \(storage.location)/\(entry.path) is unreadable: \((error as? FTBackupError)?.message ?? "\(error)")",
                                        hint: "move it aside; the next drill writes a new one")
                }
            }
    }

    /// A new label for a drill started at `date`: its UTC time, unique in the repository.
    static func newLabel(_ repository: Repository, at date: Date) throws -> String {
        let base = DrillTarget.timestamp(date)
        var label = base
        var suffix = 1
        while try repository.storage.exists(path(label)) {
            suffix += 1
            label = "\(base)-\(suffix)"
        }
        return label
    }
}
