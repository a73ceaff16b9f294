import Foundation

/// Manifests already decoded in this process, by where they are stored and what their bytes are.
///
/// One `restore --at` reads every backup and change segment manifest in several places (the source view, the plan,
/// the backup it restores), and decoding the JSON is nearly all of that time: with 5,000 segments, 0.35 ms each per
/// reading. The file is still read every time, and decoded again unless its size and hash match what was decoded,
/// so a rewritten or damaged file is never answered from memory; a file that does not decode is never kept. A full
/// listing drops the entries of files no longer there, so the cache holds at most one repository's manifests.
final class DecodedManifestCache<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [String: (size: Int, hash: Int, value: Value)] = [:]

    /// `decode(bytes)`, or the value decoded earlier from the same bytes at the same place.
    func value(location: String, path: String, bytes: [UInt8], decode: ([UInt8]) throws -> Value) throws -> Value {
        let key = Self.key(location, path)
        var hasher = Hasher()
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
        let hash = hasher.finalize()
        if let hit = lock.withLock({ entries[key] }), hit.size == bytes.count, hit.hash == hash { return hit.value }
        let value = try decode(bytes)
        lock.withLock { entries[key] = (bytes.count, hash, value) }
        return value
    }

    /// Forgets what was decoded at `location` outside `paths` (the files a listing found).
    func keepOnly(location: String, paths: [String]) {
        let kept = Set(paths.map { Self.key(location, $0) }), prefix = location + "\u{0}"
        lock.withLock { entries = entries.filter { !$0.key.hasPrefix(prefix) || kept.contains($0.key) } }
    }

    private static func key(_ location: String, _ path: String) -> String { location + "\u{0}" + path }
}

extension ChangeSegmentManifest {
    static let decoded = DecodedManifestCache<ChangeSegmentManifest>()

    /// The segment manifest at `path`, decoded (or as decoded before from the same bytes).
    static func read(_ storage: any RepositoryStorage, path: String) throws -> ChangeSegmentManifest {
        try decoded.value(location: storage.location, path: path, bytes: try storage.readAll(path)) {
            try BackupManifest.decoder().decode(ChangeSegmentManifest.self, from: Data($0))
        }
    }
}

extension BackupManifest {
    static let decoded = DecodedManifestCache<BackupManifest>()
}
