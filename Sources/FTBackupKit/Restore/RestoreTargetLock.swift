import Foundation

/// One restore at a time into a database. Two runs into the same target (two on-call engineers, a timer
/// and a hand run) would drop and load the same tables under each other: the second failed halfway with
/// whatever error its statements met ("relation does not exist"), not saying that another restore was
/// the cause. The restore's own session holds a session-level advisory lock on the target database for
/// the whole run; the server releases it when that session ends, however the run ends (a kill included).
enum RestoreTargetLock {
    /// 'ftbr'. Advisory locks are per database, so restores into other databases of the server do not wait.
    static let key: Int64 = 0x6674_6272

    /// How long a run waits for the lock before it refuses: the session of a run killed a moment ago ends as soon as
    /// the server notices (a rerun right after a kill is not refused for it), a running restore does not.
    static let wait = "5s"

    /// Takes the lock on `target`'s session, or refuses (exit 75) naming the session that holds it.
    static func acquire(_ target: DatabaseSession) async throws {
        let got: Bool = try await target.withConnection { connection in
            do {
                try connection.transaction {
                    // The wait is the lock timeout's alone: a role's shorter statement_timeout cancelled it (exit 1, no holder named).
                    try connection.execute("SET LOCAL lock_timeout = '\(wait)'; SET LOCAL statement_timeout = 0")
                    try connection.query("SELECT pg_advisory_lock($1::int8)", [key])
                }
                return true
            } catch let error as PostgresError where error.sqlState == "55P03" {
                return false  // lock_not_available: still held when the wait ran out
            }
        }
        if got { return }
        let holder = try? await target.query("""
            SELECT l.pid, a.application_name AS app, to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"') AS since
            FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = $1::int8 AND l.objsubid = 1
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """, [key & 0xFFFF_FFFF]).first
        var who = "its lock, advisory key \(key), is held"
        if let holder, let pid = try? holder.int64("pid") {
            who += " by server pid \(pid)" + ((try? holder.string("app")).flatMap { $0 }.map { " \($0)" } ?? "")
                + ((try? holder.string("since")).flatMap { $0 }.map { ", connected since \($0)" } ?? "")
        }
        throw FTBackupError(.locked, "another ftbackup restore is writing into \(target.target) (\(who)); nothing was changed",
                            hint: "wait for it to finish and run this one again")
    }
}
