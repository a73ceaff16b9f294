import Foundation

/// Every role a schema dump names, read from the SQL pg_restore would run (`pg_restore -f -` with the
/// restore's own list and schemas), before the target is touched.
///
/// It exists because a role missing on the target fails the restore midway: in pre-data, or in
/// post-data after all the data is loaded. Owners (`OWNER TO`), grantees and grantors of every ACL
/// (table, column, sequence, function, type, schema, large object, foreign server, default privileges
/// `FOR ROLE … GRANT … TO …`), policy roles and user mappings are all found; `--no-owner` restores
/// (`--no-privileges` too) still need the roles of policies and user mappings.
struct DumpRoles: Equatable {
    /// Roles named as owners, grantors or grantees: not needed with `--no-owner`.
    var ownership: Set<String> = []
    /// Roles named by policies and user mappings: needed by every restore.
    var always: Set<String> = []

    /// The roles a restore with (`noOwner`) or without ownership and privileges needs.
    func needed(noOwner: Bool) -> Set<String> { noOwner ? always : ownership.union(always) }

    /// Runs pg_restore to print the script it would run and reads the roles from it.
    static func read(_ pgRestore: String, dumpFile: String, listFile: String, schemas: [String]?) throws -> DumpRoles {
        var script: [UInt8] = []
        var arguments = ["--file=-", "--use-list=\(listFile)"]
        if let schemas { arguments += schemas.flatMap { ["--schema", $0] } }
        try PostgresTools.run(pgRestore, arguments + [dumpFile]) { script.append(contentsOf: $0) }
        return parse(String(decoding: script, as: UTF8.self))
    }

    static let notRoles: Set<String> = ["PUBLIC", "CURRENT_USER", "SESSION_USER", "CURRENT_ROLE", "GROUP"]

    static func parse(_ script: String) -> DumpRoles {
        var roles = DumpRoles()
        for statement in SQLScriptTokens.statements(script) {
            // Only tokens outside parentheses: column lists, expressions and options are not role lists.
            var depth = 0
            var top: [SQLScriptTokens.Token] = []
            for token in statement {
                if token == .openParen { depth += 1; continue }
                if token == .closeParen { depth -= 1; continue }
                if depth == 0 { top.append(token) }
            }
            read(top, into: &roles)
        }
        return roles
    }

    private static func read(_ tokens: [SQLScriptTokens.Token], into roles: inout DumpRoles) {
        let words = tokens.map(\.keyword)
        func roleList(after index: Int, until stops: Set<String>) -> [String] {
            var names: [String] = []
            var i = index
            while i < tokens.count {
                if let keyword = words[i], stops.contains(keyword) { break }
                if tokens[i] != .comma, let name = tokens[i].identifier, !(words[i].map(notRoles.contains) ?? false) { names.append(name) }
                i += 1
            }
            return names
        }
        func index(of keyword: String, from start: Int = 0) -> Int? {
            guard start < words.count else { return nil }
            return words[start...].firstIndex(of: keyword)
        }
        // ALTER … OWNER TO role (tables, functions, types, schemas, servers, event triggers, large objects, …).
        for i in tokens.indices where words[i] == "OWNER" && i + 2 < tokens.count && words[i + 1] == "TO" {
            if let name = tokens[i + 2].identifier, !(words[i + 2].map(notRoles.contains) ?? false) { roles.ownership.insert(name) }
        }
        guard let first = words.first ?? nil else { return }
        var grantStart: Int?
        switch first {
        case "GRANT", "REVOKE":
            grantStart = 0
        case "ALTER" where words.count > 2 && words[1] == "DEFAULT" && words[2] == "PRIVILEGES":
            if let forIndex = index(of: "FOR"), forIndex + 2 < tokens.count, words[forIndex + 1] == "ROLE" || words[forIndex + 1] == "USER" {
                roles.ownership.formUnion(roleList(after: forIndex + 2, until: ["IN", "GRANT", "REVOKE"]))
            }
            grantStart = words.firstIndex { $0 == "GRANT" || $0 == "REVOKE" }
        case "SET" where words.count > 3 && words[1] == "SESSION" && words[2] == "AUTHORIZATION":
            if let name = tokens[3].identifier, !(words[3].map(notRoles.contains) ?? false) { roles.ownership.insert(name) }
        case "CREATE" where words.count > 1 && words[1] == "POLICY":
            if let to = index(of: "TO") { roles.always.formUnion(roleList(after: to + 1, until: ["USING", "WITH"])) }
        case "CREATE" where words.count > 3 && words[1] == "USER" && words[2] == "MAPPING" && words[3] == "FOR":
            if tokens.count > 4, let name = tokens[4].identifier, !(words[4].map(notRoles.contains) ?? false) { roles.always.insert(name) }
        default:
            break
        }
        if let start = grantStart {
            let isGrant = words[start] == "GRANT"
            // GRANT … ON … TO roles [WITH GRANT OPTION] [GRANTED BY role]; REVOKE … ON … FROM roles [GRANTED BY role] [CASCADE].
            let on = index(of: "ON", from: start) ?? start
            if let target = index(of: isGrant ? "TO" : "FROM", from: on) {
                roles.ownership.formUnion(roleList(after: target + 1, until: ["WITH", "GRANTED", "CASCADE", "RESTRICT"]))
            }
            if let grantedBy = index(of: "GRANTED", from: start), grantedBy + 2 < tokens.count, words[grantedBy + 1] == "BY",
               let name = tokens[grantedBy + 2].identifier, !(words[grantedBy + 2].map(notRoles.contains) ?? false) {
                roles.ownership.insert(name)
            }
        }
    }
}
