import Foundation

/// How many more sessions the server would accept from this role into this database now: the tightest of the server's
/// free slots (`max_connections` less the superuser reserve, for a role that is not a superuser), the database's
/// `CONNECTION LIMIT` and the role's (neither binds a superuser). The role is the one that logged in (`session_user`),
/// whose limits the server counts, not one the connection's options `SET ROLE` to (adv31 D2).
///
/// It exists for `SessionsAhead`: a session connected ahead holds a slot while another step (a `pg_restore`) still
/// needs its own, so connecting ahead raises a command's peak by one or two sessions. On a server with that little room
/// the command connects on time instead, with the peak it always had (adv30 D1: with three free slots a restore failed
/// in pre-data, after `--clean` had dropped the schema).
enum ConnectionHeadroom {
    static func free(_ session: DatabaseSession) async throws -> Int {
        let row = try await session.query("""
            SELECT current_setting('max_connections')::int
                   - CASE WHEN r.rolsuper THEN 0 ELSE current_setting('superuser_reserved_connections')::int END
                   - (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend') AS server,
                   CASE WHEN d.datconnlimit < 0 OR r.rolsuper THEN NULL
                        ELSE d.datconnlimit - (SELECT count(*)::int FROM pg_stat_activity WHERE datid = d.oid AND backend_type = 'client backend') END AS database,
                   CASE WHEN r.rolconnlimit < 0 OR r.rolsuper THEN NULL
                        ELSE r.rolconnlimit - (SELECT count(*)::int FROM pg_stat_activity WHERE usesysid = r.oid AND backend_type = 'client backend') END AS role
            FROM pg_database d, pg_roles r
            WHERE d.datname = current_database() AND r.rolname = session_user
            """).first
        guard let row else { return 0 }
        return [try row.int("server"), try row.int("database"), try row.int("role")].compactMap { $0 }.min() ?? 0
    }
}
