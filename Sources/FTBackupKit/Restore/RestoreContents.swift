import Foundation

/// The schema dump's table of contents (`pg_restore --list`), as the restore uses it: ftbackup's own
/// objects taken out, and the entries pg_restore would create outside what `--clean` drops checked
/// against the target before anything is dropped.
///
/// ftbackup's own objects (publication `ftbackup`, schema `ftbackup`, its event triggers) belong to the
/// target's own archival and are never restored: a backup taken after `setup` holds
/// `CREATE PUBLICATION ftbackup`, which fails on any target that has it.
struct RestoreContents {
    struct Entry {
        var line: String
        var type: String      // "FUNCTION", "FOREIGN DATA WRAPPER", …
        var schema: String?   // nil for "-"
        var tag: String
    }
    /// Every line of the listing (comments included), ftbackup's own entries left out.
    var lines: [String]
    var entries: [Entry]

    /// Entry types, longest first so "PUBLICATION TABLE" wins over "PUBLICATION".
    static let types = ["FOREIGN DATA WRAPPER", "PUBLICATION TABLES IN SCHEMA", "PUBLICATION TABLE", "EVENT TRIGGER", "USER MAPPING",
                        "FK CONSTRAINT", "TABLE DATA", "SEQUENCE SET", "SEQUENCE OWNED BY", "DEFAULT ACL", "TEXT SEARCH CONFIGURATION",
                        "TEXT SEARCH DICTIONARY", "MATERIALIZED VIEW DATA", "MATERIALIZED VIEW", "FOREIGN TABLE", "OPERATOR CLASS",
                        "OPERATOR FAMILY", "ROW SECURITY", "PUBLICATION", "SERVER", "FUNCTION", "PROCEDURE", "AGGREGATE", "DOMAIN",
                        "TYPE", "SCHEMA", "EXTENSION", "CONSTRAINT", "CHECK CONSTRAINT", "INDEX", "INDEX ATTACH", "TABLE", "VIEW", "SEQUENCE",
                        "TRIGGER", "POLICY", "RULE", "DEFAULT", "STATISTICS", "COLLATION", "CONVERSION", "OPERATOR", "COMMENT", "ACL", "CAST"]
        .sorted { $0.count > $1.count }
    /// Each of `types` with the space that follows it in a listing line, made once (not per line and type).
    static let typePrefixes = types.map { ($0, $0 + " ") }

    /// Reads the listing of `dumpFile`, whose names are in `encoding` (the source database's, which
    /// pg_dump wrote them in): a LATIN1 database's `élèves` must read as itself, or the entries the
    /// data phase built already are not recognised and post-data creates them a second time.
    /// `schemas` and `roles` (the manifest's) let names with spaces be read whole (see `entry`).
    static func read(_ pgRestore: String, dumpFile: String, encoding: String, schemas: [String] = [], roles: [String] = []) throws -> RestoreContents {
        var listing: [UInt8] = []
        try PostgresTools.run(pgRestore, ["--list", dumpFile]) { listing.append(contentsOf: $0) }
        // LATIN1's bytes are exactly the first 256 Unicode scalars; other encodings are read as UTF-8
        // (pg_restore --use-list reads only each line's entry number, so a lenient read loses nothing it needs).
        if encoding == "LATIN1" { return parse(String(String.UnicodeScalarView(listing.map { Unicode.Scalar($0) })), schemas: schemas, roles: roles) }
        return parse(String(decoding: listing, as: UTF8.self), schemas: schemas, roles: roles)
    }

    static func parse(_ text: String, schemas: [String] = [], roles: [String] = []) -> RestoreContents {
        let schemas = schemas.sorted { $0.count > $1.count }, roles = roles.sorted { $0.count > $1.count }
        var lines: [String] = []
        var entries: [Entry] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            guard let entry = entry(line, schemas: schemas, roles: roles) else { lines.append(line); continue }
            if isOwn(entry) { continue }
            lines.append(line)
            entries.append(entry)
        }
        return RestoreContents(lines: lines, entries: entries)
    }

    /// "<id>; <classid> <oid> <TYPE> <schema> <tag> <owner>". The listing does not quote names, so a
    /// schema or owner with a space in it is matched against the known ones (longest first): split on
    /// spaces, `my schema` read as schema `my`, and its indexes were not found (built late, with a
    /// warning that they were invalid at the source).
    static func entry(_ line: String, schemas: [String] = [], roles: [String] = []) -> Entry? {
        // The first "; " (a byte search: Foundation's range(of:) compares Unicode-aware, and was most of a listing's parse).
        guard !line.hasPrefix(";"), let semicolon = line.utf8.indices.first(where: {
            line.utf8[$0] == UInt8(ascii: ";") && line.utf8.index(after: $0) < line.utf8.endIndex && line.utf8[line.utf8.index(after: $0)] == UInt8(ascii: " ")
        }) else { return nil }
        let fields = line[line.utf8.index(semicolon, offsetBy: 2)...].split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3 else { return nil }
        let rest = fields[2]
        guard let type = typePrefixes.first(where: { rest.hasPrefix($0.1) })?.0 else { return nil }
        let afterType = rest.dropFirst(type.count + 1)
        if let schema = schemas.first(where: { $0.contains(" ") && afterType.hasPrefix($0 + " ") }) {
            let remainder = afterType.dropFirst(schema.count + 1)
            let owner = roles.first { remainder.hasSuffix(" " + $0) }
            guard let tagEnd = owner.map({ remainder.index(remainder.endIndex, offsetBy: -($0.count + 1)) }) ?? remainder.lastIndex(of: " ") else { return nil }
            return Entry(line: line, type: type, schema: schema, tag: String(remainder[..<tagEnd]))
        }
        if let owner = roles.first(where: { $0.contains(" ") && afterType.hasSuffix(" " + $0) }),
           let schemaEnd = afterType.firstIndex(of: " ") {
            let tagEnd = afterType.index(afterType.endIndex, offsetBy: -(owner.count + 1))
            guard schemaEnd < tagEnd else { return nil }
            let schema = afterType[..<schemaEnd]
            return Entry(line: line, type: type, schema: schema == "-" ? nil : String(schema),
                         tag: String(afterType[afterType.index(after: schemaEnd)..<tagEnd]))
        }
        let parts = afterType.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, let ownerStart = parts[1].lastIndex(of: " ") else { return nil }
        let schema = parts[0] == "-" ? nil : String(parts[0])
        return Entry(line: line, type: type, schema: schema, tag: String(parts[1][..<ownerStart]))
    }

    /// ftbackup's own objects: never restored.
    static func isOwn(_ entry: Entry) -> Bool {
        let own = ChangeArchivalNames.schema, publication = ChangeArchivalNames.publication
        if entry.schema == own { return true }
        switch entry.type {
        case "SCHEMA": return entry.tag == own
        case "PUBLICATION": return entry.tag == publication
        case "PUBLICATION TABLE", "PUBLICATION TABLES IN SCHEMA": return entry.tag.hasPrefix(publication + " ")
        case "EVENT TRIGGER": return entry.tag.hasPrefix("ftbackup")
        case "COMMENT", "ACL":
            return ["SCHEMA \(own)", "PUBLICATION \(publication)"].contains(entry.tag) || entry.tag.hasPrefix("EVENT TRIGGER ftbackup")
        default: return false
        }
    }

    /// Whether pg_restore's data section has anything to do beyond the sequence values the restore sets
    /// itself (`sequences`: "schema.name" of every sequence it sets): large objects' data, or an entry it
    /// cannot read (then it runs, as before). Skipping it saves a pg_restore run, about 50 ms.
    func dataSectionNeeded(settingSequencesItself sequences: Set<String>) -> Bool {
        let dataTypes: Set<String> = ["TABLE DATA", "SEQUENCE SET", "MATERIALIZED VIEW DATA"]
        let parsed = Dictionary(entries.map { ($0.line, $0) }, uniquingKeysWith: { first, _ in first })
        for line in lines where !line.hasPrefix(";") && !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let entry = parsed[line] else { return true }
            if !dataTypes.contains(entry.type) { continue }
            if entry.type == "SEQUENCE SET", let schema = entry.schema, sequences.contains("\(schema).\(entry.tag)") { continue }
            return true
        }
        return false
    }

    /// Writes the listing (optionally without some entries) to a private temporary file for `--use-list`.
    func writeList(excluding: (Entry) -> Bool = { _ in false }) throws -> String {
        let excluded = Set(entries.filter(excluding).map(\.line))
        return try write(lines.filter { !excluded.contains($0) })
    }

    /// Writes only the entries `including` selects (a line not read as an entry is left out: a type this
    /// parser does not know belongs to `writeList(excluding:)`'s list of the rest, run once).
    func writeList(including: (Entry) -> Bool) throws -> String {
        try write(entries.filter(including).map(\.line))
    }

    private func write(_ kept: [String]) throws -> String {
        let path = try TemporaryFiles.path("\(UUID().uuidString).list")
        guard FileManager.default.createFile(atPath: path, contents: Data(kept.joined(separator: "\n").utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw FTBackupError(.cannotWrite, "cannot write \(path)", hint: "check free space in the temporary folder (TMPDIR)")
        }
        return path
    }

    /// What pg_restore would create that `--clean` does not drop first, and the target already has:
    /// objects without a schema (servers, wrappers, publications, event triggers, casts) and, in
    /// `public` (where `--clean` drops only relations), functions, types, domains, collations,
    /// operators, operator classes and families, text search configurations and dictionaries. For a `--schema` restore
    /// pg_restore creates only the named schemas' objects, so only `public`'s can clash.
    func clashes(_ target: DatabaseSession, plan: RestorePlan) async throws -> [String] {
        var found: [String] = []
        for (name, sql, parameters) in outsideCleanedSchemas(plan) where try await target.query(sql, parameters).count > 0 {
            found.append(name)
        }
        return found
    }

    /// What pg_restore creates outside the schemas `--clean` drops (see `clashes`): each object's name and
    /// the query finding it in a target. Event triggers are left out: the restore creates them last.
    func outsideCleanedSchemas(_ plan: RestorePlan, eventTriggers: Bool = true) -> [(name: String, sql: String, parameters: [String])] {
        var found: [(name: String, sql: String, parameters: [String])] = []
        for entry in entries {
            let inPublic = entry.schema == "public" && plan.schemas.contains("public")
            guard inPublic || (entry.schema == nil && plan.wholeDatabase) else { continue }
            let sql: String
            let parameters = [entry.tag]
            switch entry.type {
            case "FUNCTION" where inPublic, "PROCEDURE" where inPublic, "AGGREGATE" where inPublic:
                sql = "SELECT 1 FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.proname || '(' || oidvectortypes(p.proargtypes) || ')' = $1"
            case "TYPE" where inPublic, "DOMAIN" where inPublic:
                sql = "SELECT 1 FROM pg_type t WHERE t.typnamespace = 'public'::regnamespace AND t.typname = $1"
            case "COLLATION" where inPublic:
                sql = "SELECT 1 FROM pg_collation WHERE collnamespace = 'public'::regnamespace AND collname = $1"
            // The listing names an operator, operator class or family without its arguments or access
            // method: any of that name in public clashes (pg_restore may still fail on it).
            case "OPERATOR" where inPublic:
                sql = "SELECT 1 FROM pg_operator WHERE oprnamespace = 'public'::regnamespace AND oprname = $1"
            case "OPERATOR CLASS" where inPublic:
                sql = "SELECT 1 FROM pg_opclass WHERE opcnamespace = 'public'::regnamespace AND opcname = $1"
            case "OPERATOR FAMILY" where inPublic:
                sql = "SELECT 1 FROM pg_opfamily WHERE opfnamespace = 'public'::regnamespace AND opfname = $1"
            case "TEXT SEARCH CONFIGURATION" where inPublic:
                sql = "SELECT 1 FROM pg_ts_config WHERE cfgnamespace = 'public'::regnamespace AND cfgname = $1"
            case "TEXT SEARCH DICTIONARY" where inPublic:
                sql = "SELECT 1 FROM pg_ts_dict WHERE dictnamespace = 'public'::regnamespace AND dictname = $1"
            case "CAST":
                // Tagged "CAST (source AS target)" with pg_dump's type names: built-in types bare, others schema-qualified.
                sql = """
                    SELECT 1 FROM pg_cast c,
                        LATERAL (SELECT CASE WHEN n.nspname = 'pg_catalog' THEN format_type(t.oid, NULL)
                                             ELSE quote_ident(n.nspname) || '.' || quote_ident(t.typname) END AS name
                                 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = c.castsource) s,
                        LATERAL (SELECT CASE WHEN n.nspname = 'pg_catalog' THEN format_type(t.oid, NULL)
                                             ELSE quote_ident(n.nspname) || '.' || quote_ident(t.typname) END AS name
                                 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = c.casttarget) d
                    WHERE c.oid >= 16384 AND 'CAST (' || s.name || ' AS ' || d.name || ')' = $1
                    """
            case "SERVER": sql = "SELECT 1 FROM pg_foreign_server WHERE srvname = $1"
            case "FOREIGN DATA WRAPPER": sql = "SELECT 1 FROM pg_foreign_data_wrapper WHERE fdwname = $1"
            case "PUBLICATION": sql = "SELECT 1 FROM pg_publication WHERE pubname = $1"
            case "EVENT TRIGGER" where eventTriggers: sql = "SELECT 1 FROM pg_event_trigger WHERE evtname = $1"
            case "SCHEMA" where entry.tag != "public" && !plan.schemas.contains(entry.tag):
                sql = "SELECT 1 FROM pg_namespace WHERE nspname = $1"
            default: continue
            }
            let name = entry.type == "CAST" ? String(entry.tag.dropFirst("CAST ".count)) : entry.tag
            found.append(("\(entry.type.lowercased()) \(entry.schema.map { "\($0)." } ?? "")\(name)", sql, parameters))
        }
        return found
    }
}
