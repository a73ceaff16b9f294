import Foundation

/// Makes a session's row counts (`n_mod_since_analyze`, `n_live_tup`) reach the server's statistics before the
/// session's next statement.
///
/// PostgreSQL 15 flushes a backend's counts when it goes idle, at most once a second, else up to 10 s later. A table
/// loaded and analyzed within that second on one connection had its load counted after its ANALYZE: every restored
/// table showed all its rows as modified since, and autovacuum analyzed each again after the restore (adv26 D4). The
/// replay's counts, flushed as its session ended, could likewise land after the ANALYZE of the phase that follows it.
enum StatisticsCounts {
    /// `pg_stat_force_next_flush()` (PostgreSQL 15+): the flush happens before the server answers, so the counts are in
    /// once this returns. Best effort: counts are never worth failing a restore for.
    static func reportNow(_ connection: PGConnection) {
        guard connection.serverVersionNumber >= 150000 else { return }
        _ = try? connection.execute("SELECT pg_stat_force_next_flush()")
    }
}
