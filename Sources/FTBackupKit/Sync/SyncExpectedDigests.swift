import Foundation

/// The SHA-256 each data file should have, as the source's own records (backup, change segment, archive and
/// partition manifests) recorded it when the file was written.
///
/// `sync` checks what it reads from the source against these before a copy is committed, so a file that rotted
/// in the source fails the sync instead of reaching the off-site copy under a manifest that calls it good.
enum SyncExpectedDigests {
    /// Repository path → lowercase hex SHA-256, for every `{ "path": …, "sha256": … }` any JSON record under
    /// in `records` (path → bytes) names (a path is relative to its record's folder, or to the repository root).
    static func collect(records: [String: [UInt8]], dataPaths: Set<String>) -> [String: String] {
        var digests: [String: String] = [:]
        for (path, bytes) in records where path.hasSuffix(".json") {
            guard let json = try? JSONSerialization.jsonObject(with: Data(bytes)) else { continue }
            let folder = (path as NSString).deletingLastPathComponent
            visit(json) { path, sha256 in
                for candidate in [folder.isEmpty ? path : "\(folder)/\(path)", path] where dataPaths.contains(candidate) {
                    digests[candidate] = sha256.lowercased()
                    break
                }
            }
        }
        return digests
    }

    private static func visit(_ value: Any, _ found: (String, String) -> Void) {
        if let object = value as? [String: Any] {
            if let path = object["path"] as? String, let sha256 = object["sha256"] as? String { found(path, sha256) }
            for child in object.values { visit(child, found) }
        } else if let array = value as? [Any] {
            for child in array { visit(child, found) }
        }
    }
}
