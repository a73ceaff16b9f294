import Foundation

/// Materialized-view refreshes are not a DDL barrier (`RecordedDDL.isRefresh`): the restore refreshes
/// the views the full held populated once the data is in. A view the full held unpopulated but that
/// was refreshed between the full and TIME was populated at TIME, so `restore --at` populates it too,
/// from the replayed data (as a refresh at TIME would).
enum RefreshedViews {
    /// Refreshes the views recorded as refreshed after `full` and at or before `target` that are not
    /// populated on the target (views of schemas outside `schemas` are left alone).
    static func populate(_ segments: [ChangeSegmentManifest], full: BackupManifest, until target: Date,
                         schemas: [String], options: RestoreOptions) async throws {
        let limit = PgOutputDecoder.postgresMicroseconds(from: target)
        let refreshed = Set(segments.flatMap { $0.refreshes(after: full) }
            .filter { PgOutputDecoder.postgresMicroseconds(from: $0.commitTime) <= limit }
            .compactMap(\.objectIdentity))
        guard !refreshed.isEmpty else { return }
        let session = try await DatabaseSession.connect(options.target, name: "ftbackup-refresh")
        defer { session.close() }
        // In place, beside the application's event triggers: quiet as the rest of the restore (`RestoreRunner`).
        if try await RestoreRunner.applicationEventTriggersWouldFire(session) {
            try await session.execute("SET session_replication_role = replica")
        }
        let views = try await session.query("""
            SELECT n.nspname AS schema, c.relname AS name FROM unnest($1::text[]) AS v(identity)
            JOIN pg_class c ON c.oid = to_regclass(v.identity) JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'm' AND NOT c.relispopulated ORDER BY 1, 2
            """, [PostgresArray.text(refreshed.sorted())]).rows.map { (try $0.requiredString("schema"), try $0.requiredString("name")) }
        for (schema, name) in views where schemas.isEmpty || schemas.contains(schema) {
            try await session.execute("REFRESH MATERIALIZED VIEW \(try session.qualifiedName(schema, name))")
        }
    }
}
