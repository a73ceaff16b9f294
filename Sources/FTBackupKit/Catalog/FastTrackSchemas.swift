/// How Fast Track's schemas are told apart: the four shared schemas and the tool schemas named
/// `sprint_{NN}_{tool_slug}`. Tool schemas are discovered at run time, never configured, so a new
/// tool is backed up from the day it appears.
public enum SchemaKind: String, Sendable, Codable {
    case shared
    case tool
    case other

    public static let sharedSchemas: Set<String> = ["users", "organizations", "tool_access", "audit"]

    public init(schemaName name: String) {
        if Self.sharedSchemas.contains(name) {
            self = .shared
        } else if Self.isToolSchema(name) {
            self = .tool
        } else {
            self = .other
        }
    }

    /// `sprint_` + two digits + `_` + a lowercase slug of letters, digits and underscores.
    public static func isToolSchema(_ name: String) -> Bool {
        let scalars = Array(name.unicodeScalars)
        guard name.hasPrefix("sprint_"), scalars.count > 10 else { return false }
        let digits = scalars[7...8]
        guard digits.allSatisfy({ ("0"..."9").contains($0) }), scalars[9] == "_" else { return false }
        return scalars[10...].allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }
}

/// The SQL that lists the schemas ftbackup looks after: everything but the system's own and
/// ftbackup's own `ftbackup` schema (the change-archival heartbeat, recreated by `setup`).
enum CatalogSQL {
    static let userSchemaFilter = """
        n.nspname NOT IN ('pg_catalog', 'information_schema', 'ftbackup') AND n.nspname NOT LIKE 'pg\\_toast%' \
        AND n.nspname NOT LIKE 'pg\\_temp\\_%'
        """
}
