import Foundation

/// Applies decoded transactions to a restored database, as they were applied at the source.
///
/// INSERT from the new tuple; UPDATE sets only the columns that are not unchanged-TOAST markers,
/// keyed by the old key (`K`), the old full row (`O`, replica identity full: one matching row by
/// `ctid`), or the new tuple's key columns; DELETE likewise; TRUNCATE with RESTART IDENTITY and
/// CASCADE as flagged. Statements are prepared once per table, operation and column set. Every
/// UPDATE and DELETE must touch exactly one row: anything else means the restored database and the
/// archive disagree, and replay stops rather than diverge silently.
final class ChangeApplier {
    private let connection: PGConnection
    private let schemas: Set<String>?
    private var relations: [UInt32: RelationDescription] = [:]
    private var statements: [String: String] = [:]
    private var checkedRelations: Set<UInt32> = []
    /// Bumped when a relation's description changes, so statements prepared for the old one are not reused.
    private var generations: [UInt32: Int] = [:]
    /// The newest heartbeat's sequence values (schema.name → [last_value, is_called]).
    private(set) var sequences: [String: [String]] = [:]
    private(set) var changesApplied = 0

    /// Tables the full did not copy (policy exclusions, extension tables): their changes are skipped.
    private let ignored: Set<String>

    init(connection: PGConnection, schemas: Set<String>?, ignoring ignored: Set<String> = []) {
        self.connection = connection
        self.schemas = schemas
        self.ignored = ignored
    }

    /// Applies one message of a transaction (begin and commit are handled by the caller).
    func apply(_ message: PgOutputMessage, at lsn: UInt64) throws {
        switch message {
        case .relation(let relation):
            if let known = relations[relation.relid], known != relation {
                checkedRelations.remove(relation.relid)
                generations[relation.relid, default: 0] += 1
            }
            relations[relation.relid] = relation
        case .insert(let relid, let new):
            guard let relation = try target(relid, tuples: [new]) else {
                if let heartbeat = try heartbeatSequences(relid, new) { sequences = heartbeat }
                return
            }
            let columns = relation.columns.indices
            let key = "I\(relid)"
            let name = try statement(key) {
                let list = try columns.map { try connection.escapeIdentifier(relation.columns[$0].name) }.joined(separator: ", ")
                let values = columns.map { "$\($0 + 1)" }.joined(separator: ", ")
                // OVERRIDING SYSTEM VALUE: identity values come from the source, as COPY restores them.
                return ("INSERT INTO \(try qualified(relation)) (\(list)) OVERRIDING SYSTEM VALUE VALUES (\(values))", columns.count)
            }
            try run(name, columns.map { text(new[$0]) }, expect: nil, relation, "INSERT", lsn)
        case .update(let relid, let oldKey, let oldFull, let new):
            guard let relation = try target(relid, tuples: [oldKey, oldFull, new]) else { return }
            // Unchanged TOAST values are left alone; so are key columns when no old key came (the key did
            // not change), and, with an old full row, columns whose value did not change (an identity
            // column GENERATED ALWAYS may only be "updated" to what it already is by leaving it out).
            let set = relation.columns.indices.filter { index in
                guard new[index] != .unchangedToast else { return false }
                if let oldFull { return oldFull[index] != new[index] }
                return oldKey != nil || !relation.columns[index].isKey
            }
            guard !set.isEmpty else { changesApplied += 1; return }
            let (whereSQL, whereValues, whereMask) = try match(relation, oldKey: oldKey, oldFull: oldFull, new: new, first: set.count + 1)
            let name = try statement("U\(relid):\(set.map(String.init).joined(separator: ",")):\(whereMask)") {
                let assignments = try set.enumerated().map { "\(try connection.escapeIdentifier(relation.columns[$1].name)) = $\($0 + 1)" }
                return ("UPDATE \(try qualified(relation)) t SET \(assignments.joined(separator: ", ")) WHERE \(whereSQL)", set.count + whereValues.count)
            }
            try run(name, set.map { text(new[$0]) } + whereValues, expect: 1, relation, "UPDATE", lsn)
        case .delete(let relid, let oldKey, let oldFull):
            guard let relation = try target(relid, tuples: [oldKey, oldFull]) else { return }
            let (whereSQL, whereValues, whereMask) = try match(relation, oldKey: oldKey, oldFull: oldFull, new: nil, first: 1)
            let name = try statement("D\(relid):\(whereMask)") {
                ("DELETE FROM \(try qualified(relation)) t WHERE \(whereSQL)", whereValues.count)
            }
            try run(name, whereValues, expect: 1, relation, "DELETE", lsn)
        case .truncate(let relids, let cascade, let restartIdentity):
            let names = try relids.compactMap { try target($0) }.map(qualified)
            guard !names.isEmpty else { return }
            try connection.execute("TRUNCATE ONLY \(names.joined(separator: ", "))\(restartIdentity ? " RESTART IDENTITY" : "")\(cascade ? " CASCADE" : "")")
            changesApplied += 1
        case .begin, .commit, .origin, .type, .logicalMessage:
            break
        }
    }

    /// The relation if its changes are to be applied here; nil for skipped schemas and ftbackup's own.
    private func target(_ relid: UInt32, tuples: [[TupleValue]?] = []) throws -> RelationDescription? {
        guard let relation = relations[relid] else {
            throw FTBackupError(.dataError, "change for relation \(relid) arrived without its description",
                                hint: "the segment is damaged; run ftbackup verify and take a new full backup")
        }
        for tuple in tuples.compactMap({ $0 }) where tuple.count != relation.columns.count {
            throw FTBackupError(.dataError, "a change on \(relation.namespace).\(relation.name) has \(tuple.count) values for \(relation.columns.count) columns",
                                hint: "the segment is damaged; take a new full backup")
        }
        if relation.namespace == ChangeArchivalNames.schema || ignored.contains("\(relation.namespace).\(relation.name)") { return nil }
        if let schemas, !schemas.contains(relation.namespace) { return nil }
        if !checkedRelations.contains(relid) {
            // A relation description that no longer matches the restored table means DDL happened after the full.
            let columns = try connection.query("""
                SELECT a.attname AS name FROM pg_attribute a
                WHERE a.attrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                ORDER BY a.attnum
                """, [relation.namespace, relation.name]).rows.map { try $0.requiredString("name") }
            guard columns == relation.columns.map(\.name) else {
                throw FTBackupError(.dataError, "schema change detected: \(relation.namespace).\(relation.name) has columns \(columns) in the restored full but \(relation.columns.map(\.name)) in the change archive",
                                    hint: "restore to a time after the next full backup taken since the change")
            }
            checkedRelations.insert(relid)
        }
        return relation
    }

    private func heartbeatSequences(_ relid: UInt32, _ new: [TupleValue]) throws -> [String: [String]]? {
        guard let relation = relations[relid], relation.namespace == ChangeArchivalNames.schema, relation.name == ChangeArchivalNames.heartbeat,
              let index = relation.columns.firstIndex(where: { $0.name == "sequences" }), index < new.count,
              case .text(let json) = new[index] else { return nil }
        return try JSONDecoder().decode([String: [String]].self, from: Data(json.utf8))
    }

    /// The WHERE clause that finds the one row an UPDATE or DELETE touched at the source.
    private func match(_ relation: RelationDescription, oldKey: [TupleValue]?, oldFull: [TupleValue]?, new: [TupleValue]?,
                       first: Int) throws -> (String, [String?], String) {
        if let oldFull {
            // Replica identity full: compare every column that was sent, as text (json has no equality).
            let used = relation.columns.indices.filter { oldFull[$0] != .unchangedToast }
            let conditions = try used.enumerated().map {
                "s.\(try connection.escapeIdentifier(relation.columns[$1].name))::text IS NOT DISTINCT FROM $\(first + $0)::text"
            }
            let sql = "t.ctid = (SELECT s.ctid FROM \(try qualified(relation)) s WHERE \(conditions.joined(separator: " AND ")) LIMIT 1)"
            return (sql, used.map { text(oldFull[$0]) }, "O" + used.map(String.init).joined(separator: ","))
        }
        let keys = relation.columns.indices.filter { relation.columns[$0].isKey }
        guard !keys.isEmpty else {
            throw FTBackupError(.dataError, "\(relation.namespace).\(relation.name) has no replica identity: its UPDATE and DELETE cannot be replayed",
                                hint: "run ftbackup setup --fix-replica-identity, then take a new full backup")
        }
        guard let source = oldKey ?? new else {
            throw FTBackupError(.dataError, "DELETE on \(relation.namespace).\(relation.name) arrived without its key")
        }
        let conditions = try keys.enumerated().map { "t.\(try connection.escapeIdentifier(relation.columns[$1].name)) = $\(first + $0)" }
        return (conditions.joined(separator: " AND "), keys.map { text(source[$0]) }, "K")
    }

    private func statement(_ key: String, _ make: () throws -> (String, Int)) throws -> String {
        let relid = UInt32(key.dropFirst().prefix { $0.isNumber }) ?? 0
        let key = "\(key)#\(generations[relid] ?? 0)"
        if let name = statements[key] { return name }
        let name = "ftb_\(statements.count)"
        let (sql, count) = try make()
        try connection.prepare(name, sql, parameterCount: count)
        statements[key] = name
        return name
    }

    private func run(_ name: String, _ values: [String?], expect: Int?, _ relation: RelationDescription, _ what: String, _ lsn: UInt64) throws {
        let affected = try connection.executePrepared(name, values)
        if let expect, affected != expect {
            throw FTBackupError(.dataError, "replay diverged: \(what) on \(relation.namespace).\(relation.name) at LSN \(LSN.format(lsn)) touched \(affected) rows, expected \(expect)",
                                hint: "the restored full and the change archive disagree; restore from another full backup")
        }
        changesApplied += 1
    }

    private func qualified(_ relation: RelationDescription) throws -> String {
        try connection.qualifiedName(relation.namespace, relation.name)
    }

    private func text(_ value: TupleValue) -> String? {
        if case .text(let text) = value { return text }
        return nil
    }
}
