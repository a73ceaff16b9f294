import Foundation

/// `restore --at` does not replay DDL: a time that would replay across recorded DDL (committed at or
/// after the chosen full's consistent point, at or before TIME) is refused before the target is
/// touched (exit 64), naming the DDL and the times that work — before it, or after the consistent
/// point of the next full taken after it. Refusing keeps every restore exact; the hourly pass takes a
/// new full after any DDL, so a time after the DDL is restorable once that full exists. DDL on other
/// schemas does not block a `--schema` restore (their objects are not restored).
enum DDLRefusal {
    static func check(segments: [ChangeSegmentManifest], full: BackupManifest, fulls: [BackupManifest],
                      at target: Date, schemas: [String]) throws {
        let limit = PgOutputDecoder.postgresMicroseconds(from: target)
        let crossed = segments.flatMap { $0.ddl(after: full) }.filter {
            PgOutputDecoder.postgresMicroseconds(from: $0.commitTime) <= limit && $0.affects(schemas: schemas)
        }
        guard let first = crossed.first else { return }
        let firstLSN = LSN.parse(first.commitLSN) ?? 0
        let more = crossed.count > 1 ? " (and \(crossed.count - 1) more DDL command\(crossed.count > 2 ? "s" : "") up to that time)" : ""
        let next = fulls.first { (LSN.parse($0.snapshot.walLSN) ?? 0) > firstLSN }
        let after = next.map { "a time after backup \($0.label)'s consistent point \(Timestamps.displayExact($0.snapshot.time))" }
            ?? "a time after the next full backup (none is taken yet: run ftbackup backup --type incr or --type full)"
        throw FTBackupError(.usage, "cannot restore to \(Timestamps.display(target)) from backup \(full.label): DDL ran after it and restore --at does not replay DDL: \(first.description) committed at \(Timestamps.displayExact(first.commitTime)) (LSN \(first.commitLSN))\(more)",
                            hint: "choose a time before \(Timestamps.displayExact(first.commitTime)), or \(after)")
    }
}
