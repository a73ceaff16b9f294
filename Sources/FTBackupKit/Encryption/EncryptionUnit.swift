/// Which data key a repository file is encrypted with: the unit it belongs to.
///
/// It exists so that one key covers what is written and removed together (a backup folder, a change
/// segment's data and manifest, an archive batch, a partition export) and every other file gets its
/// own. Lock files, key records and `encryption.json` belong to no unit: they stay plain, because a
/// refused run must name a lock's holder and a key record is what the key opens.
public enum EncryptionUnit {
    public static let keysFolder = "keys"

    /// The unit of `path`, or nil for a file that is never encrypted.
    public static func of(_ path: String) -> String? {
        let parts = path.split(separator: "/").map(String.init)
        guard let first = parts.first else { return nil }
        switch first {
        case "locks", keysFolder: return nil
        case RepositoryEncryptionMarker.fileName where parts.count == 1: return nil
        case Repository.backupsFolder, ArchiveStore.folder:
            return parts.count >= 2 ? "\(first)/\(parts[1])" : nil
        default: break
        }
        let partitions = PartitionExportStore.folder.split(separator: "/").map(String.init)
        if parts.count > partitions.count, Array(parts.prefix(partitions.count)) == partitions {
            return parts.prefix(partitions.count + 1).joined(separator: "/")
        }
        if path.hasPrefix(ChangeSegmentManifest.folder + "/"), parts.count == 3 {
            for suffix in [".seg.zst", ".json"] where path.hasSuffix(suffix) {
                return String(path.dropLast(suffix.count))
            }
        }
        return path
    }

    /// How a unit lies in the repository: a folder of files, a segment's two files, or one file.
    enum Shape { case folder, segment, file }

    static func shape(of unit: String) -> Shape {
        let first = unit.split(separator: "/").first.map(String.init)
        if first == Repository.backupsFolder || first == ArchiveStore.folder || unit.hasPrefix(PartitionExportStore.folder + "/") { return .folder }
        if unit.hasPrefix(ChangeSegmentManifest.folder + "/") && !unit.hasSuffix(".json") && !unit.hasSuffix(".seg.zst") { return .segment }
        return .file
    }

    /// The files of a segment unit.
    static func segmentFiles(_ unit: String) -> [String] { [unit + ".seg.zst", unit + ".json"] }

    /// `keys/<unit with % and / escaped>.json`.
    public static func recordPath(_ unit: String) -> String {
        let escaped = unit.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "/", with: "%2F")
        return "\(keysFolder)/\(escaped).json"
    }
}
