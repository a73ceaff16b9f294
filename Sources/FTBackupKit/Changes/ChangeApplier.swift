import Foundation

/// Applies decoded transactions to a restored database, as they were applied at the source.
///
/// INSERT from the new tuple; UPDATE sets only the columns that are not unchanged-TOAST markers,
/// keyed by the old key (`K`), the old full row (`O`, replica identity full: one row holding exactly
/// those values, by `ctid`), or the new tuple's key columns; DELETE likewise; TRUNCATE with RESTART
/// IDENTITY and CASCADE as flagged. UPDATE and DELETE reach only the table itself (`ONLY`), never
/// the children of an inheritance parent. A `GENERATED ALWAYS` identity column is never SET to a
/// value: left out when unchanged, set to DEFAULT from its sequence positioned at the source's value
/// when the source changed it. Statements are prepared once per table, operation and column set.
/// Every UPDATE and DELETE must touch exactly one row: anything else means the restored database and
/// the archive disagree, and replay stops rather than diverge silently. Statements go through
/// `ReplayPipeline` (libpq pipeline mode), which checks each result as it comes back. INSERTs, and
/// UPDATEs and DELETEs by key, are held back per table and sent as multi-row statements (`HeldChanges`):
/// the caller flushes before each target COMMIT.
final class ChangeApplier {
    private let connection: PGConnection
    let pipeline: ReplayPipeline
    /// The source transaction and change being applied, for naming a failure.
    private var source = ReplaySource()
    private let schemas: Set<String>?
    private var relations: [UInt32: RelationDescription] = [:]
    /// Changes held back to go as multi-row statements, per table.
    private var held = HeldChanges()
    private var statements: [String: String] = [:]
    /// Names are never reused, so a statement deallocated and prepared again is a new name.
    private var statementsPrepared = 0
    private let statementLimit: Int
    /// The target's columns of each relation checked against its description (see `ReplayColumn`).
    private var targetColumns: [UInt32: [ReplayColumn]] = [:]
    /// Each relation's quoted, qualified name, quoted column names and key columns, made once per description.
    private var quotedNames: [UInt32: (table: String, columns: [String], keys: [Int])] = [:]
    /// Bumped when a relation's description changes, so statements prepared for the old one are not reused.
    private var generations: [UInt32: Int] = [:]
    /// The newest heartbeat's sequence values (schema.name → [last_value, is_called]).
    private(set) var sequences: [String: [String]] = [:]
    private(set) var changesApplied = 0
    /// Tuple text holds bytes in a non-UTF-8 database encoding (decoded with `byteText`).
    var byteText = false

    /// Tables the full did not copy (policy exclusions, extension tables): their changes are skipped.
    private let ignored: Set<String>

    init(connection: PGConnection, schemas: Set<String>?, ignoring ignored: Set<String> = [], grouping: ReplayGrouping = .standard) {
        self.connection = connection
        self.pipeline = ReplayPipeline(connection: connection, grouping: grouping)
        self.statementLimit = max(1, grouping.preparedStatements)
        self.schemas = schemas
        self.ignored = ignored
    }

    /// The source transaction whose changes follow (its commit LSN and time, PostgreSQL microseconds).
    func begin(commitLSN: UInt64, commitTime: Int64) {
        source = ReplaySource(commitLSN: commitLSN, commitTime: commitTime)
    }

    /// Sends every held-back change: call before a target COMMIT, or before the session's encoding changes.
    func flush() throws {
        for run in held.takeAll() { try send(run) }
    }

    /// Applies one message of a transaction (begin and commit are handled by the caller).
    func apply(_ message: PgOutputMessage, at lsn: UInt64) throws {
        source.changeLSN = lsn
        switch message {
        case .relation(let relation):
            if let known = relations[relation.relid], known != relation {
                try flush()  // held changes are sent as the description they came under says
                targetColumns[relation.relid] = nil
                quotedNames[relation.relid] = nil
                generations[relation.relid, default: 0] += 1
            }
            relations[relation.relid] = relation
        case .insert(let relid, let new):
            guard let relation = try target(relid, tuples: [new]) else {
                if let heartbeat = try heartbeatSequences(relid, new) { sequences = heartbeat }
                return
            }
            if relation.columns.isEmpty {
                // A row of a table without (published) columns: `() VALUES ()` is a syntax error.
                try send(held.take(relid))
                source.what = "INSERT into \(relation.namespace).\(relation.name)"
                let name = try statement("I\(relid)") { ("INSERT INTO \(try qualified(relation)) DEFAULT VALUES", 0) }
                try pipeline.send(name, [], byteText: byteText, expecting: .rows(1), source: source)
                changesApplied += 1
                return
            }
            try hold(relation, .insert, values: new.map(text))
            changesApplied += 1
        case .update(let relid, let oldKey, let oldFull, let new):
            guard let relation = try target(relid, tuples: [oldKey, oldFull, new]), let columns = targetColumns[relid] else { return }
            source.what = "UPDATE on \(relation.namespace).\(relation.name)"
            // Unchanged TOAST values are left alone; so are key columns when no old key came (the key did
            // not change), and, with an old full row, columns whose value did not change.
            var set = relation.columns.indices.filter { index in
                guard new[index] != .unchangedToast else { return false }
                if let oldFull { return oldFull[index] != new[index] }
                return oldKey != nil || !relation.columns[index].isKey
            }
            // A GENERATED ALWAYS identity column can only be "updated" to DEFAULT: known unchanged, it is left
            // out; known changed, it is set to DEFAULT from its sequence positioned at the source's value; not
            // known (only the key came), the row must still hold the value, or else it changed.
            var identity: (index: Int, mode: IdentityMode)?
            if let index = columns.firstIndex(where: \.isAlwaysIdentity), let position = set.firstIndex(of: index) {
                set.remove(at: position)
                if oldFull != nil { identity = (index, .setDefault) }  // (with the old row, `set` holds changed columns only)
                else if let oldKey, relation.columns[index].isKey { identity = oldKey[index] != new[index] ? (index, .setDefault) : nil }
                else { identity = (index, .assertUnchanged) }
            }
            guard !set.isEmpty || identity != nil else { changesApplied += 1; return }
            if oldFull == nil, oldKey == nil, identity == nil, set.allSatisfy({ !columns[$0].isUniquelyIndexed }),
               let key = try heldKey(relation, new) {
                try hold(relation, .update, set, values: set.map { text(new[$0]) } + key, key: key)
                changesApplied += 1
                return
            }
            try send(held.take(relid))
            let (whereSQL, whereValues, whereMask) = try match(relation, oldKey: oldKey, oldFull: oldFull, new: new, first: set.count + 1)
            func update(_ mode: IdentityMode?, now: Bool) throws -> Int {
                let key = "U\(relid):\(set.map(String.init).joined(separator: ",")):\(whereMask):\(mode.map { "\($0)" } ?? "")"
                let name = try statement(key) {
                    var assignments = try set.enumerated().map { "\(try connection.escapeIdentifier(relation.columns[$1].name)) = $\($0 + 1)" }
                    var condition = whereSQL
                    if let identity, let mode {
                        let column = try connection.escapeIdentifier(relation.columns[identity.index].name)
                        switch mode {
                        case .setDefault: assignments.append("\(column) = DEFAULT")
                        case .assertUnchanged: condition += " AND t.\(column) = $\(set.count + whereValues.count + 1)"
                        }
                        if assignments.isEmpty, let key = relation.columns.firstIndex(where: \.isKey) {
                            // Nothing else changed: a no-op assignment, so the statement can still find the row.
                            let keyColumn = try connection.escapeIdentifier(relation.columns[key].name)
                            assignments.append("\(keyColumn) = t.\(keyColumn)")
                        }
                    }
                    let extra = mode == .assertUnchanged ? 1 : 0
                    return ("UPDATE ONLY \(try qualified(relation)) t SET \(assignments.joined(separator: ", ")) WHERE \(condition)",
                            set.count + whereValues.count + extra)
                }
                var values = set.map { text(new[$0]) } + whereValues
                if let identity, mode == .assertUnchanged { values.append(text(new[identity.index])) }
                if let identity, mode == .setDefault {
                    // The next value the sequence gives is the source's (replay sets every sequence at the end).
                    try pipeline.query("SELECT setval($1::regclass, $2::bigint, false)", [columns[identity.index].identitySequence, text(new[identity.index])],
                                       source: source)
                }
                guard now else {
                    try pipeline.send(name, values, byteText: byteText, expecting: .rows(1), source: source)
                    return 1
                }
                return try pipeline.executeNow(name, values, byteText: byteText, source: source)
            }
            if identity?.mode == .assertUnchanged {
                // Whether the source changed the identity column shows only in this result: run it now.
                let affected = try update(.assertUnchanged, now: true)
                if affected == 0 { _ = try update(.setDefault, now: false) }  // the source changed it
                else if affected != 1 { throw pipeline.diverged(source, affected) }
            } else {
                _ = try update(identity?.mode, now: false)
            }
            changesApplied += 1
        case .delete(let relid, let oldKey, let oldFull):
            guard let relation = try target(relid, tuples: [oldKey, oldFull]) else { return }
            if oldFull == nil, let oldKey, let key = try heldKey(relation, oldKey) {
                try hold(relation, .delete, values: key, key: key)
                changesApplied += 1
                return
            }
            try send(held.take(relid))
            source.what = "DELETE on \(relation.namespace).\(relation.name)"
            let (whereSQL, whereValues, whereMask) = try match(relation, oldKey: oldKey, oldFull: oldFull, new: nil, first: 1)
            let name = try statement("D\(relid):\(whereMask)") {
                ("DELETE FROM ONLY \(try qualified(relation)) t WHERE \(whereSQL)", whereValues.count)
            }
            try pipeline.send(name, whereValues, byteText: byteText, expecting: .rows(1), source: source)
            changesApplied += 1
        case .truncate(let relids, let cascade, let restartIdentity):
            let names = try relids.compactMap { try target($0) }.map(qualified)
            guard !names.isEmpty else { return }
            try flush()  // (with CASCADE it reaches other tables too)
            source.what = "TRUNCATE of \(names.joined(separator: ", "))"
            try pipeline.query("TRUNCATE ONLY \(names.joined(separator: ", "))\(restartIdentity ? " RESTART IDENTITY" : "")\(cascade ? " CASCADE" : "")", source: source)
            if restartIdentity { try forgetRestartedSequences(names) }
            changesApplied += 1
        case .begin, .commit, .origin, .type, .logicalMessage:
            break
        }
    }

    /// Holds a change back in its table's run, first sending the run if it cannot take the change, and sends
    /// the run once full (every run once too much is held).
    private func hold(_ relation: RelationDescription, _ kind: HeldChanges.Kind, _ setColumns: [Int] = [], values: [String?], key: [String?]? = nil) throws {
        let relid = relation.relid
        try send(held.closing(relid, unlessItAccepts: kind, setColumns, key: key, row: values))
        if held.append(relid, kind, setColumns, values: values, key: key, keyColumns: try quoted(relation).keys, source: source) { try send(held.take(relid)) }
        if held.heldBytes >= HeldChanges.maxHeldBytes { try flush() }
    }

    /// The key of a change that can be held back: the values of the relation's key columns in `tuple`, when
    /// it has key columns and every one came as a value (NULL or unchanged-TOAST keys go alone, as before).
    private func heldKey(_ relation: RelationDescription, _ tuple: [TupleValue]) throws -> [String?]? {
        let keys = try quoted(relation).keys
        guard !keys.isEmpty else { return nil }
        var values: [String?] = []
        for index in keys {
            guard case .text(let value) = tuple[index] else { return nil }
            values.append(value)
        }
        return values
    }

    /// Sends a run as multi-row statements, each of which must touch exactly its number of rows: its DELETEs,
    /// then its INSERTs, then its UPDATEs (see `HeldChanges`).
    private func send(_ run: HeldChanges.Run?) throws {
        guard let run else { return }
        guard let relation = relations[run.relid], let columns = targetColumns[run.relid] else {
            throw FTBackupError(.failure, "internal error: \(run.count) held-back changes of relation \(run.relid) lost its description")
        }
        let (table, names, keyIndices) = try quoted(relation)
        let keys = keyIndices.map { (column: names[$0], type: columns[$0].castType) }
        var source = run.first
        source.throughCommitLSN = run.lastCommitLSN
        func send(_ rows: [[String?]], _ kind: HeldChanges.Kind, _ setColumns: [Int] = [], parameters: Int, _ sql: (Int) -> String) throws {
            let (noun, preposition) = kind == .insert ? ("INSERT", "into") : kind == .update ? ("UPDATE", "on") : ("DELETE", "on")
            source.what = rows.count == 1 ? "\(noun) \(preposition) \(relation.namespace).\(relation.name)"
                : "one of \(rows.count) \(noun)s \(preposition) \(relation.namespace).\(relation.name) (through LSN \(LSN.format(run.lastChangeLSN)))"
            let shape = setColumns.map(String.init).joined(separator: ",")
            var start = 0
            for size in HeldChanges.chunks(rows.count, parameters: parameters) {
                let name = try statement("\(kind.rawValue)\(run.relid)x\(size):\(shape)") { (sql(size), size * parameters) }
                try pipeline.send(name, Array(rows[start..<(start + size)].joined()), byteText: byteText, expecting: .rows(size), source: source)
                start += size
            }
        }
        try send(run.deletes, .delete, parameters: keys.count) { HeldChanges.deleteSQL(table: table, keys: keys, rows: $0) }
        try send(run.inserts, .insert, parameters: names.count) { HeldChanges.insertSQL(table: table, columns: names, rows: $0) }
        for (setColumns, rows) in run.updates {
            let set = setColumns.map { (column: names[$0], type: columns[$0].castType) }
            try send(rows, .update, setColumns, parameters: set.count + keys.count) { HeldChanges.updateSQL(table: table, set: set, keys: keys, rows: $0) }
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
        if targetColumns[relid] == nil {
            // A relation description that no longer matches the restored table means DDL happened after the full.
            let columns = try pipeline.synchronously { try ReplayColumn.load($0, schema: relation.namespace, table: relation.name) }
            guard columns.map(\.name) == relation.columns.map(\.name) else {
                throw FTBackupError(.dataError, "schema change detected: \(relation.namespace).\(relation.name) has columns \(columns.map(\.name)) in the restored full but \(relation.columns.map(\.name)) in the change archive",
                                    hint: "restore to a time after the next full backup taken since the change")
            }
            targetColumns[relid] = columns
        }
        return relation
    }

    /// RESTART IDENTITY restarted the sequences the truncated tables' columns own, here as at the source:
    /// an older heartbeat's values no longer hold for them (a later heartbeat's do again), so the
    /// restarted value stays and `SequenceFloor` moves it past the rows inserted since.
    private func forgetRestartedSequences(_ tables: [String]) throws {
        let owned = try pipeline.synchronously { try $0.query("""
            SELECT n.nspname || '.' || c.relname AS name
            FROM pg_depend d JOIN pg_class c ON c.oid = d.objid AND c.relkind = 'S' JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
              AND d.refobjsubid > 0 AND d.refobjid = ANY($1::regclass[])
            """, [PostgresArray.text(tables)]) }
        for row in owned.rows { sequences[try row.requiredString("name")] = nil }
    }

    private func heartbeatSequences(_ relid: UInt32, _ new: [TupleValue]) throws -> [String: [String]]? {
        try heartbeat(relid, new)?.sequences
    }

    /// A heartbeat row's sequence values and `at`: when the pass began reading them (older heartbeats:
    /// when the row was inserted). Nil for any other row.
    func heartbeat(_ relid: UInt32, _ new: [TupleValue]) throws -> (at: String?, sequences: [String: [String]])? {
        guard let relation = relations[relid], relation.namespace == ChangeArchivalNames.schema, relation.name == ChangeArchivalNames.heartbeat,
              let index = relation.columns.firstIndex(where: { $0.name == "sequences" }), index < new.count,
              case .text(let json) = new[index] else { return nil }
        var at: String?
        if let atIndex = relation.columns.firstIndex(where: { $0.name == "at" }), atIndex < new.count, case .text(let text) = new[atIndex] { at = text }
        return (at, try JSONDecoder().decode([String: [String]].self, from: Data(json.utf8)))
    }

    /// The WHERE clause that finds the one row an UPDATE or DELETE touched at the source.
    private func match(_ relation: RelationDescription, oldKey: [TupleValue]?, oldFull: [TupleValue]?, new: [TupleValue]?,
                       first: Int) throws -> (String, [String?], String) {
        if let oldFull, let columns = targetColumns[relation.relid] {
            // Replica identity full: the row holding exactly the old values (see ReplayColumn.exactMatch). NULLs
            // are matched with IS NULL, so the statement's shape records which columns were NULL.
            let used = relation.columns.indices.filter { oldFull[$0] != .unchangedToast }
            var conditions: [String] = []
            var values: [String?] = []
            for index in used {
                let column = try connection.escapeIdentifier(relation.columns[index].name)
                if case .text(let value) = oldFull[index] {
                    values.append(value)
                    conditions.append(columns[index].exactMatch(column, parameter: first + values.count - 1))
                } else {
                    conditions.append("s.\(column) IS NULL")
                }
            }
            let sql = "t.ctid = (SELECT s.ctid FROM ONLY \(try qualified(relation)) s WHERE \(conditions.isEmpty ? "true" : conditions.joined(separator: " AND ")) LIMIT 1)"
            let mask = used.map { "\($0)\(oldFull[$0] == .null ? "n" : "")" }.joined(separator: ",")
            return (sql, values, "O" + mask)
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
        if statements.count >= statementLimit {
            // Queued behind every statement already sent, so whatever used the old ones has run first; each
            // statement is used right after it is looked up here, before the next lookup can deallocate it.
            try pipeline.query("DEALLOCATE ALL", source: source)
            statements.removeAll(keepingCapacity: true)
        }
        let name = "ftb_\(statementsPrepared)"
        statementsPrepared += 1
        let (sql, count) = try make()
        try pipeline.prepare(name, sql, parameterCount: count, source: source)
        statements[key] = name
        return name
    }

    /// How an UPDATE treats a `GENERATED ALWAYS` identity column whose new value came.
    private enum IdentityMode: String, CustomStringConvertible {
        /// The source changed it: SET it to DEFAULT after positioning its sequence at the new value.
        case setDefault = "d"
        /// Not known whether it changed: match only a row that still holds the new value.
        case assertUnchanged = "a"
        var description: String { rawValue }
    }

    private func quoted(_ relation: RelationDescription) throws -> (table: String, columns: [String], keys: [Int]) {
        if let known = quotedNames[relation.relid] { return known }
        let names = (table: try qualified(relation), columns: try relation.columns.map { try connection.escapeIdentifier($0.name) },
                     keys: relation.columns.indices.filter { relation.columns[$0].isKey })
        quotedNames[relation.relid] = names
        return names
    }

    private func qualified(_ relation: RelationDescription) throws -> String {
        try connection.qualifiedName(relation.namespace, relation.name)
    }

    private func text(_ value: TupleValue) -> String? {
        if case .text(let text) = value { return text }
        return nil
    }
}
