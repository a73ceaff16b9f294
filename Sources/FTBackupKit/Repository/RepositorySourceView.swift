import Foundation

/// What every reader (restore, `restore --at`, expire, info, verify) knows of the repository's
/// source: the recorded one (``RepositorySource``), or for a repository that records none yet the
/// one its backups and change segments agree on. Readers never record it.
///
/// A backup or segment of another source (copied in by hand, or written by a version that did not
/// check) is never used: restore and `restore --at` leave it out, expiry never counts it as a
/// successor and never removes it, info and verify flag it.
public struct RepositorySourceView: Sendable {
    /// The repository's source; nil for a repository that holds nothing and records nothing.
    public let key: SourceKey?
    /// True when `source.json` names it; false when inferred from what the repository holds.
    public let recorded: Bool
    /// Every source found among the backups and segments, with one record of each as an example.
    let found: [SourceKey: String]
    let backups: [BackupManifest]
    let segments: [ChangeSegmentManifest]

    /// The view readers use. Throws (exit 64) for a repository that records no source and holds
    /// backups or segments of more than one: which one is "the" source is not for a reader to guess.
    public static func load(_ repository: Repository) throws -> RepositorySourceView {
        if let recorded = try RepositorySource.read(repository.storage) {
            let view = try inferred(repository)
            return RepositorySourceView(key: recorded.key, recorded: true, found: view.found, backups: view.backups, segments: view.segments)
        }
        let view = try inferred(repository)
        if view.found.count > 1 {
            let sources = view.found.sorted { $0.value < $1.value }.map { "\($0.key) (\($0.value))" }.joined(separator: "; ")
            throw FTBackupError(.usage, "repository \(repository.storage.location) records no source and holds backups or segments of more than one database: \(sources)",
                                hint: "move each database's backups and segments to a repository of its own")
        }
        return view
    }

    /// From the backups and segments alone (`key` nil unless exactly one source is found).
    static func inferred(_ repository: Repository) throws -> RepositorySourceView {
        let backups = try repository.entries().compactMap(\.manifest)
        let segments = try ChangeSegmentManifest.discover(repository.storage).compactMap { listing -> ChangeSegmentManifest? in
            if case .readable(let segment) = listing { return segment }
            return nil
        }
        var found: [SourceKey: String] = [:]
        for backup in backups { found[SourceKey(backup.source)] = found[SourceKey(backup.source)] ?? "backup \(backup.label)" }
        for segment in segments {
            guard let source = segment.source else { continue }
            found[SourceKey(source)] = found[SourceKey(source)] ?? "segment \(segment.label)"
        }
        return RepositorySourceView(key: found.count == 1 ? found.keys.first : nil, recorded: false, found: found,
                                    backups: backups, segments: segments)
    }

    /// Why `backup` is not the repository's source's, or nil.
    public func mismatch(of backup: BackupManifest) -> String? { key?.mismatch(of: backup) }

    /// Why `segment` is not the repository's source's (source or slot), or nil.
    public func mismatch(of segment: ChangeSegmentManifest) -> String? {
        if let key { return key.mismatch(of: segment) }
        return nil
    }

    /// Every backup and segment that does not belong to `key`, as messages.
    func foreignRecords(for key: SourceKey) -> [String] {
        backups.compactMap { key.mismatch(of: $0) } + segments.compactMap { key.mismatch(of: $0) }
    }

    /// Every backup and segment of another source, as messages (what info and verify flag).
    public var foreign: [String] {
        guard let key else { return [] }
        return foreignRecords(for: key)
    }

    /// `manifests` without those of another source.
    public func own(_ manifests: [BackupManifest]) -> [BackupManifest] { manifests.filter { mismatch(of: $0) == nil } }

    /// `segments` without those of another source or slot.
    public func own(_ segments: [ChangeSegmentManifest]) -> [ChangeSegmentManifest] { segments.filter { mismatch(of: $0) == nil } }
}
