import Foundation

/// The second repository's `encryption.json`: the source's key id, and as plain units the source's plus the
/// second's own.
///
/// It exists because the marker lists the units that may stay plain (those there when encryption was turned on),
/// and the second may hold plain backups the first no longer has (expired there first, or the second kept more):
/// copied as is, the first's marker would make those unreadable in the second (exit 65 "a plain file where an
/// encrypted one is expected"). When the union is the source's list the source's bytes are copied (both
/// repositories then hold the same file); otherwise the marker is written sealed by the same master key.
extension SyncEncryption {
    func copyMarker(from sourceStored: any RepositoryStorage, to destinationStored: any RepositoryStorage,
                    report: inout RepositorySync.Report) throws {
        guard let marker, let master else { return }
        let theirs = try RepositoryEncryptionMarker.read(destinationStored)
        // Authenticated by ``check``; without one, every unit the second holds now is plain.
        let own = try theirs.map { Set($0.plainUnits) } ?? plainUnits(in: destinationStored)
        let plain = own.union(marker.plainUnits)
        if let theirs, Set(theirs.plainUnits) == plain, theirs.masterKeyId == marker.masterKeyId, theirs.rotatingFrom == nil {
            report.keptFiles += 1
            return
        }
        if plain == Set(marker.plainUnits) {
            let bytes = try sourceStored.readAll(RepositoryEncryptionMarker.fileName)
            try destinationStored.writeAll(RepositoryEncryptionMarker.fileName, bytes)
            report.copiedBytes += Int64(bytes.count)
        } else {
            try RepositoryEncryptionMarker(masterKeyId: master.id, plainUnits: plain.sorted()).write(destinationStored, sealedBy: master)
        }
        report.copiedFiles += 1
    }

    /// The units of every file a repository without a marker holds (all plain).
    func plainUnits(in stored: any RepositoryStorage) throws -> Set<String> {
        var files: [StorageEntry] = [], skipped: [String] = []
        try RepositorySync.collect("", in: stored, into: &files, skipped: &skipped)
        return Set(files.compactMap { EncryptionUnit.of($0.path) })
    }
}
