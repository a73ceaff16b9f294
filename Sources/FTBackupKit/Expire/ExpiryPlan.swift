import Foundation

/// What expiry decided about every backup folder, and why.
///
/// It exists so that a decision to delete a backup is never silent: each folder is listed with
/// keep or remove and the one rule that settled it, and `--dry-run` shows exactly the plan a real
/// run would carry out.
public struct ExpiryPlan: Codable, Sendable, Equatable {
    public enum Action: String, Codable, Sendable { case keep, remove }

    /// One backup folder and the decision about it.
    public struct Item: Codable, Sendable, Equatable {
        public var label: String
        /// Nil when the manifest is missing or unreadable.
        public var type: BackupManifest.BackupType?
        public var status: Repository.Entry.Status
        public var stoppedAt: Date?
        /// Bytes in the repository, as the manifest recorded them (nil without a manifest).
        public var storedBytes: Int64?
        public var action: Action
        /// The rule that decided, e.g. "newest full" or "older than 30d retention".
        public var reason: String
    }

    /// The clock the plan was made against.
    public var evaluatedAt: Date
    /// Every backup folder, oldest first.
    public var items: [Item]

    public var removals: [Item] { items.filter { $0.action == .remove } }
    public var kept: [Item] { items.filter { $0.action == .keep } }
}

/// The outcome of one `ftbackup expire` run, for people and for `--output json`.
///
/// It exists so that a scheduled expiry leaves a record of what it removed and what it kept on
/// purpose; on a dry run `removed` is empty and the plan's `remove` items are what a real run would remove.
public struct ExpiryReport: Codable, Sendable, Equatable {
    public var repository: String
    public var dryRun: Bool
    /// The policy's retention periods, as written there (`30d`).
    public var fullRetention: String
    public var incrementalRetention: String
    public var plan: ExpiryPlan
    /// Labels actually removed, oldest first.
    public var removed: [String]
    /// Change segments and the decision about each.
    public var segments: [SegmentItem]
    /// Change segments actually removed.
    public var removedSegments: [String]

    /// One change segment and the decision about it.
    public struct SegmentItem: Codable, Sendable, Equatable {
        public var label: String
        public var lastCommitTime: Date?
        public var storedBytes: Int64
        public var action: ExpiryPlan.Action
        public var reason: String
    }
}
