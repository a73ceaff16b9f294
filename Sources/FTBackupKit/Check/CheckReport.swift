import Foundation

/// What `ftbackup check` found: can we reach the database, what is in it, can we write the repository.
///
/// It exists so that an operator (or a timer's pre-flight) learns about a wrong DSN, a missing
/// `wal_level = logical` or an unwritable repository before a backup fails at 3 a.m.
public struct CheckReport: Codable, Sendable {
    public struct SchemaSummary: Codable, Sendable {
        public var name: String
        public var kind: SchemaKind
        public var tables: Int
        public var bytes: Int64
    }

    public struct RepositoryStatus: Codable, Sendable {
        public var path: String
        public var exists: Bool
        public var writable: Bool
        public var problem: String?
    }

    /// An index a failed `CREATE INDEX CONCURRENTLY` (or `REINDEX CONCURRENTLY`) left invalid: no query
    /// uses it, yet writes maintain it. Backups leave it out, as pg_dump does.
    public struct InvalidIndex: Codable, Sendable {
        public var schema: String
        public var table: String
        public var index: String
        public var definition: String
    }

    public var server: String
    /// The connection's encryption (from libpq), and whether the policy requires it for this host.
    public var tls: TLSStatus
    public var tlsRequired: Bool
    public var serverVersion: String
    public var serverVersionNumber: Int
    public var database: String
    public var walLevel: String
    public var logicalDecodingReady: Bool
    public var maxReplicationSlots: Int
    public var maxWalSenders: Int
    public var databaseBytes: Int64
    public var schemas: [SchemaSummary]
    public var invalidIndexes: [InvalidIndex]
    public var repository: RepositoryStatus?
    /// The policy's `repository.second`, probed the way sync reaches it (its own S3 settings, if any).
    public var secondRepository: RepositoryStatus? = nil
    public var checkedAt: Date

    public var toolSchemaCount: Int { schemas.filter { $0.kind == .tool }.count }
    public var missingSharedSchemas: [String] {
        SchemaKind.sharedSchemas.subtracting(schemas.map(\.name)).sorted()
    }
}

/// Runs the checks behind `ftbackup check`.
public enum Checker {
    public static func run(database: ConnectionString, repositoryPath: String?, secondRepositoryPath: String? = nil) async throws -> CheckReport {
        let session = try await DatabaseSession.connect(database, name: "ftbackup-check")
        defer { session.close() }
        let settings = try await session.query("""
            SELECT current_setting('server_version') AS version, current_setting('server_version_num') AS version_num,
                   current_database() AS database, current_setting('wal_level') AS wal_level,
                   current_setting('max_replication_slots') AS slots, current_setting('max_wal_senders') AS senders,
                   pg_database_size(current_database()) AS size
            """)
        guard let row = settings.first else { throw PostgresError(message: "the server returned no settings") }
        let schemas = try await session.query("""
            SELECT n.nspname AS name,
                   count(c.oid) FILTER (WHERE c.relkind IN ('r', 'p')) AS tables,
                   coalesce(sum(pg_total_relation_size(c.oid)) FILTER (WHERE c.relkind IN ('r', 'm')), 0) AS bytes
            FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid
            WHERE \(CatalogSQL.userSchemaFilter)
            GROUP BY n.nspname ORDER BY n.nspname
            """)
        // A partitioned table's index is invalid only until every partition has one attached; pg_dump keeps those.
        let invalid = try await session.query("""
            SELECT n.nspname AS schema, c.relname AS table, ci.relname AS index, pg_get_indexdef(i.indexrelid) AS definition
            FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE NOT (i.indisvalid AND i.indisready) AND c.relkind <> 'p' AND \(CatalogSQL.userSchemaFilter)
            ORDER BY 1, 2, 3
            """)
        let walLevel = try row.requiredString("wal_level")
        let tls = try await session.withConnection { $0.tlsStatus }
        let slots = try row.requiredInt("slots")
        let senders = try row.requiredInt("senders")
        return CheckReport(
            server: session.target,
            tls: tls,
            tlsRequired: database.mustUseTLS,
            serverVersion: try row.requiredString("version"),
            serverVersionNumber: try row.requiredInt("version_num"),
            database: try row.requiredString("database"),
            walLevel: walLevel,
            logicalDecodingReady: walLevel == "logical" && slots > 0 && senders > 0,
            maxReplicationSlots: slots,
            maxWalSenders: senders,
            databaseBytes: try row.int64("size"),
            schemas: try schemas.rows.map { schema in
                let name = try schema.requiredString("name")
                return CheckReport.SchemaSummary(name: name, kind: SchemaKind(schemaName: name),
                                                 tables: try schema.requiredInt("tables"), bytes: try schema.int64("bytes"))
            },
            invalidIndexes: try invalid.rows.map {
                CheckReport.InvalidIndex(schema: try $0.requiredString("schema"), table: try $0.requiredString("table"),
                                         index: try $0.requiredString("index"), definition: try $0.requiredString("definition"))
            },
            repository: repositoryPath.map(probe),
            secondRepository: secondRepositoryPath.map(probe),
            checkedAt: Date())
    }

    static func probe(_ path: String) -> CheckReport.RepositoryStatus {
        S3Location.isS3(path) ? S3Storage.probe(url: path) : LocalStorage.probe(path: path)
    }
}
