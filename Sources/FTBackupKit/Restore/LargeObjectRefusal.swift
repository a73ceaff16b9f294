import Foundation
import Logging

/// `restore --at` cannot replay large objects (pgoutput does not carry them): it gives them the
/// contents of the full it starts from. So a time the archive's large-object readings
/// (`LargeObjectState`) do not prove unchanged since that full is refused before the target is
/// touched (exit 64), naming the newest time that is safe and the reading that saw the change; the
/// next `backup --type incr` takes a new full after such a change, and times after it restore exactly.
/// A `--schema` restore is not concerned (it restores no large objects).
enum LargeObjectRefusal {
    /// True when `reading`, taken after `full`'s snapshot, differs from the full's own reading.
    static func changed(full: BackupManifest, reading: LargeObjectState?) -> Bool {
        guard let base = full.largeObjects, let reading, reading.at > full.snapshot.time else { return false }
        return !base.sameObjects(as: reading)
    }

    static func check(segments: [ChangeSegmentManifest], full: BackupManifest, fulls: [BackupManifest], at target: Date,
                      schemas: [String], logger: Logger) throws {
        guard schemas.isEmpty else { return }
        guard let base = full.largeObjects else {
            logger.warning("backup \(full.label) did not record its large objects: restore --at gives them that backup's contents, whatever changed after it")
            return
        }
        let readings = segments.compactMap(\.largeObjects).filter { $0.at > full.snapshot.time }.sorted { $0.at < $1.at }
        var safeUntil = full.snapshot.time
        for reading in readings {
            if base.sameObjects(as: reading) { safeUntil = reading.at; continue }
            guard target > safeUntil else { return }
            let next = fulls.first { $0.snapshot.time > safeUntil && $0.largeObjects.map { $0.sameObjects(as: base) } != true }
            let after = next.map { "a time after backup \($0.label)'s consistent point \(Timestamps.displayExact($0.snapshot.time))" }
                ?? "a time after the next full backup (none is taken yet: run ftbackup backup --type incr or --type full)"
            throw FTBackupError(.usage, "cannot restore to \(Timestamps.display(target)) from backup \(full.label): large objects changed after it (\(base.count) then \(reading.count), between \(Timestamps.displayExact(safeUntil)) and \(Timestamps.displayExact(reading.at))) and restore --at does not replay large objects",
                                hint: "choose a time at or before \(Timestamps.displayExact(safeUntil)), or \(after)")
        }
        if target > safeUntil, base.count > 0 || readings.contains(where: { $0.count > 0 }) {
            logger.warning("large objects are known unchanged since backup \(full.label) only up to \(Timestamps.displayExact(safeUntil)): restore --at gives them that backup's contents")
        }
    }
}
