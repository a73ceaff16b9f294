import Foundation

/// Generates the Fast Track demo database: the reference design's shared and thirty tool schemas,
/// filled with nine years of data that has what real data has (NULL beside '', tabs, newlines,
/// backslashes, quotes, non-ASCII, TOASTed JSONB, bytea, arrays, numeric, timestamptz).
///
/// It also has the shapes a production database grows: `audit.events` partitioned by year with a
/// DEFAULT partition holding future-dated rows; application triggers (BEFORE INSERT OR UPDATE
/// rewriting columns, AFTER INSERT writing the tool's audit_log), created after the data; foreign
/// keys that cascade (audit_log → tool_data, two levels deep, two-column, across schemas) and one
/// from a shared schema that blocks (`organizations.featured_canvases` → old completed canvases);
/// a STORED generated column, an identity GENERATED ALWAYS, an UNLOGGED table and a populated
/// materialized view. `fasttrack_schema.sql`'s header lists them.
///
/// It exists so that `make demo`, the integration tests and `make bench` all exercise ftbackup
/// against the same realistic database at the size they need: scale 1 is a few MB, scale 200
/// about 1 GB. The SQL lives in `Dev/SQL/` and is embedded in the binary.
public enum FastTrackSeeder {
    public struct Report: Codable, Sendable {
        public var database: String
        public var scale: Int
        public var bytes: Int64
        public var seconds: Double
    }

    public static var schemaSQL: String { String(decoding: PackageResources.fasttrack_schema_sql, as: UTF8.self) }
    public static var dataSQL: String { String(decoding: PackageResources.fasttrack_data_sql, as: UTF8.self) }

    /// Creates the schemas and loads data at `scale` into an empty database.
    public static func seed(_ database: ConnectionString, scale: Int) async throws -> Report {
        guard (1...10_000).contains(scale) else {
            throw FTBackupError(.usage, "seed scale \(scale) is out of range", hint: "use 1 (a few MB) to 200 (about 1 GB)")
        }
        let started = Date()
        let session = try await DatabaseSession.connect(database, name: "ftbackup-seed")
        defer { session.close() }
        let existing = try await session.query(
            "SELECT count(*) AS n FROM pg_namespace WHERE nspname = 'users' OR nspname LIKE 'sprint\\_%'")
        if try existing.first?.requiredInt("n") ?? 0 > 0 {
            throw FTBackupError(.usage, "database \(session.target) already holds Fast Track schemas",
                                hint: "seed into a new, empty database")
        }
        try await session.execute(schemaSQL)
        try await session.execute("SET ftbackup.seed_scale = \(scale)")
        try await session.execute(dataSQL)
        let size = try await session.query("SELECT pg_database_size(current_database()) AS bytes, current_database() AS db")
        return Report(database: try size.first!.requiredString("db"), scale: scale,
                      bytes: try size.first!.int64("bytes"), seconds: Date().timeIntervalSince(started))
    }
}
