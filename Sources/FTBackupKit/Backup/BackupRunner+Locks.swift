import Foundation

extension BackupRunner {
    /// Holds ACCESS SHARE on every table until the end, as pg_dump does, so no DROP, ALTER or TRUNCATE
    /// can slip in. Always NOWAIT: a backup that waited for a lock could complete a deadlock in which
    /// the application's transaction is the victim; on a conflict it releases what it took (savepoint)
    /// and tries again, for at most a minute, then names who holds the lock.
    static func lockTables(_ tables: [TableToCopy], coordinator: DatabaseSession) async throws {
        let names = try tables.map { try coordinator.qualifiedName($0.schema, $0.name) }
        guard !names.isEmpty else { return }
        let deadline = Date().addingTimeInterval(60)
        while true {
            do {
                try await coordinator.execute("SAVEPOINT ftbackup_locks")
                for batch in stride(from: 0, to: names.count, by: 200) {
                    try await coordinator.execute("LOCK TABLE \(names[batch..<min(batch + 200, names.count)].joined(separator: ", ")) IN ACCESS SHARE MODE NOWAIT")
                }
                try await coordinator.execute("RELEASE SAVEPOINT ftbackup_locks")
                return
            } catch let error as PostgresError where error.sqlState == "55P03" {
                try await coordinator.execute("ROLLBACK TO SAVEPOINT ftbackup_locks")
                if Date() > deadline {
                    throw FTBackupError(.locked, "could not lock every table for the backup within 60 s: \(error.message)",
                                        hint: "a session holds an ACCESS EXCLUSIVE lock (ALTER, TRUNCATE, VACUUM FULL …); let it finish and retry")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }
}
