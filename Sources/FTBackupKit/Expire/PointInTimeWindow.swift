import Foundation

/// The full backup and change segments that every instant inside the incremental retention must
/// still be restorable from (the point-in-time window).
///
/// It exists so that expiry never removes the way back to a time the policy promises: `restore --at T`
/// starts from the newest slot-aligned full consistent at or before T and replays every archived
/// commit from that full's consistent point up to T. The oldest instant still inside the window is
/// `now − incremental retention`, so the newest aligned full at or before it (the window's *base*)
/// is kept, and so is every segment that ends after the base's consistent point. When no aligned
/// full is that old, no instant before the oldest aligned full can be restored anyway, and the
/// oldest aligned full is the base.
public struct PointInTimeWindow: Sendable, Equatable {
    /// The oldest instant inside the incremental retention.
    public var start: Date
    /// The full a restore of `start` begins from (nil without any slot-aligned full).
    public var base: BackupManifest?

    /// The window for `fulls` (complete full backups of the repository's own source, any order).
    public init(fulls: [BackupManifest], policy: Policy, now: Date) {
        start = BackupExpiry.cutoff(policy.incremental.retention, before: now)
        let aligned = fulls.filter { $0.type == .full && $0.snapshot.origin == "replication-slot" }
            .sorted { ($0.snapshot.time, $0.label) < ($1.snapshot.time, $1.label) }
        base = aligned.last { $0.snapshot.time <= start } ?? aligned.first
    }

    /// The base's consistent point: segments ending after it are replayed by a restore inside the window.
    public var basePoint: UInt64? { base.flatMap { LSN.parse($0.snapshot.walLSN) } }

    /// True when a restore of some instant inside the window replays part of a segment ending at `endLSN`.
    public func needs(segmentEndingAt endLSN: String) -> Bool {
        guard let basePoint else { return false }
        return (LSN.parse(endLSN) ?? .max) > basePoint
    }
}
