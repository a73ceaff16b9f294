import Foundation

/// The names of what change archival creates on the source, in one place.
public enum ChangeArchivalNames {
    public static let publication = "ftbackup"
    public static let slotPrefix = "ftbackup_archive_"

    /// The permanent slot of one database. Slot names are cluster-wide and allow only `[a-z0-9_]`
    /// (at most 63 bytes), so the readable part (the name lowercased, anything else as `_`, cut to
    /// fit) is followed by 8 hex digits of a hash of the exact name: `rev_c-1` and `rev_c_1` get
    /// different slots. The name, not the oid, so the name can be worked out from the name alone
    /// (runbooks, monitoring) and stays the same after a dump and reload of the cluster.
    public static func slot(database: String) -> String {
        let readable = String(cleaned(database).prefix(63 - slotPrefix.count - 9))
        return slotPrefix + readable + "_" + hex8(fnv1a(Array(database.utf8)))
    }

    /// The name ftbackup gave a database's slot before names carried a hash (up to 0.x): two databases
    /// whose names differ only in punctuation or case shared it. Still used when such a slot exists and
    /// belongs to the database at hand (see `ArchivalSlot.resolve`).
    public static func legacySlot(database: String) -> String {
        let name = slotPrefix + cleaned(database)
        guard name.count > 63 else { return name }
        let digest = database.unicodeScalars.reduce(UInt32(2166136261)) { ($0 ^ $1.value) &* 16777619 }
        return String(name.prefix(54)) + "_" + String(digest, radix: 16)
    }

    /// The permanent slot of the database `session` is connected to: its own, checked (see `ArchivalSlot`).
    public static func slot(_ session: DatabaseSession) async throws -> String {
        try await ArchivalSlot.resolve(session).name
    }
    public static let schema = "ftbackup"
    public static let heartbeat = "heartbeat"

    static func cleaned(_ database: String) -> String {
        String(database.lowercased().map { ($0.isASCII && ($0.isLetter || $0.isNumber)) ? $0 : "_" })
    }

    static func fnv1a(_ bytes: [UInt8]) -> UInt32 {
        bytes.reduce(UInt32(2166136261)) { ($0 ^ UInt32($1)) &* 16777619 }
    }

    static func hex8(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }
}

/// The archival slot of the database a session is connected to, found and checked.
///
/// A slot is used only if `pg_replication_slots` says it is a logical `pgoutput` slot of this very
/// database: a slot under this database's name that belongs to another database (or is physical,
/// or uses another plugin) is refused with a clear error, never read, advanced or dropped. A slot
/// under the name older versions gave (`legacySlot`) is used when it belongs to this database, so
/// existing deployments keep their chain; one that belongs to another database is not this
/// database's and is ignored.
public struct ArchivalSlot: Sendable, Equatable {
    /// The slot to use (or, when it does not exist, to create).
    public var name: String
    /// The slot carries the name of ftbackup versions before per-database names (still used).
    public var legacy: Bool
    public var exists: Bool

    public static func resolve(_ session: DatabaseSession) async throws -> ArchivalSlot {
        let database = try await session.query("SELECT current_database() AS d").first!.requiredString("d")
        let current = ChangeArchivalNames.slot(database: database)
        let legacy = ChangeArchivalNames.legacySlot(database: database)
        let rows = try await session.query("""
            SELECT slot_name::text AS name, slot_type AS type, coalesce(plugin::text, '') AS plugin,
                   database::text AS database, temporary
            FROM pg_replication_slots WHERE slot_name IN ($1, $2)
            """, [current, legacy])
        func row(_ name: String) throws -> (type: String, plugin: String, database: String?)? {
            guard let found = try rows.rows.first(where: { try $0.requiredString("name") == name }) else { return nil }
            return (try found.requiredString("type"), try found.requiredString("plugin"), try found.string("database"))
        }
        if let slot = try row(current) {
            guard slot.database == database else {
                throw FTBackupError(.configuration, "replication slot \(current) belongs to \(slot.database.map { "database \($0)" } ?? "no database (a \(slot.type) slot)"), not to \(database), on \(session.target)",
                                    hint: "ftbackup will not read, advance or drop another database's slot; find who created it (pg_replication_slots) and drop it there if it is not needed, then run ftbackup setup")
            }
            guard slot.type == "logical", slot.plugin == "pgoutput" else {
                throw FTBackupError(.configuration, "replication slot \(current) of \(database) is a \(slot.type) slot\(slot.plugin.isEmpty ? "" : " with plugin \(slot.plugin)"), not ftbackup's pgoutput slot, on \(session.target)",
                                    hint: "drop it (SELECT pg_drop_replication_slot('\(current)')) if nothing else uses it, then run ftbackup setup")
            }
            return ArchivalSlot(name: current, legacy: false, exists: true)
        }
        if let slot = try row(legacy), slot.database == database, slot.type == "logical", slot.plugin == "pgoutput" {
            return ArchivalSlot(name: legacy, legacy: true, exists: true)
        }
        return ArchivalSlot(name: current, legacy: false, exists: false)
    }

    /// What `setup` and `info` say about a slot under the old name.
    public var legacyNote: String? {
        legacy ? "slot \(name) has the name older ftbackup versions gave; it belongs to this database and is still used (ftbackup teardown, setup and a new full backup move to the per-database name)" : nil
    }
}

/// `ftbackup setup` and `teardown`: prepares the source for change archival and removes it again.
///
/// Setup checks `wal_level` and slot limits, creates the publication for all tables, the `ftbackup`
/// schema with its heartbeat table (sequences are not decoded: each archival pass writes their values
/// there), the event triggers that record DDL into `ftbackup.ddl_log` (`DDLCapture`), and the permanent slot — in that order, since a slot only decodes publications that
/// existed when it was created. It is idempotent. Tables without a primary key or replica identity
/// would make UPDATE and DELETE fail once the publication exists: they are reported, and fixed only
/// when asked (`REPLICA IDENTITY FULL`).
public enum ChangeArchivalSetup {
    public struct Report: Codable, Sendable {
        public var dryRun: Bool
        public var walLevel: String
        /// What was (or, dry, would be) done, in order.
        public var actions: [String]
        /// Tables without a primary key or replica identity.
        public var tablesWithoutReplicaIdentity: [String]
        public var fixedReplicaIdentity: [String]
    }

    public static func setup(_ database: ConnectionString, dryRun: Bool, fixReplicaIdentity: Bool,
                             slotWaitSeconds: Double? = nil) async throws -> Report {
        let slotWaitSeconds = try slotWaitSeconds ?? SlotCreation.configuredWaitSeconds(default: 30)
        let session = try await DatabaseSession.connect(database, name: "ftbackup-setup")
        defer { session.close() }
        let archivalSlot = try await ArchivalSlot.resolve(session)
        let slotName = archivalSlot.name
        let settings = try await session.query("""
            SELECT current_setting('wal_level') AS wal, current_setting('max_replication_slots')::int AS slots,
                   current_setting('max_wal_senders')::int AS senders,
                   (SELECT count(*) FROM pg_replication_slots) AS used,
                   (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
                   (SELECT rolreplication FROM pg_roles WHERE rolname = current_user) AS replication
            """).first!
        let wal = try settings.requiredString("wal")
        guard wal == "logical" else {
            throw FTBackupError(.configuration, "wal_level is \(wal) on \(session.target); change archival needs logical",
                                hint: "run ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL (also keep max_replication_slots and max_wal_senders >= 4)")
        }
        guard try settings.requiredInt("senders") > 0 else {
            throw FTBackupError(.configuration, "max_wal_senders is 0 on \(session.target)",
                                hint: "ALTER SYSTEM SET max_wal_senders = 10; and restart PostgreSQL")
        }
        var actions: [String] = []
        let publication = try await session.query("SELECT puballtables FROM pg_publication WHERE pubname = $1", [ChangeArchivalNames.publication]).first
        let slotExists = archivalSlot.exists
        if !slotExists, try settings.requiredInt("used") >= settings.requiredInt("slots") {
            throw FTBackupError(.configuration, "all \(try settings.requiredInt("slots")) replication slots are in use on \(session.target)",
                                hint: "raise max_replication_slots (restart needed) or drop an unused slot")
        }
        if publication == nil, try settings.bool("superuser") != true {
            throw FTBackupError(.permission, "creating a publication FOR ALL TABLES needs a superuser on PostgreSQL 15",
                                hint: "run ftbackup setup once as a superuser; later runs need only the REPLICATION attribute")
        }
        let missing = try await tablesWithoutReplicaIdentity(session)

        if publication == nil { actions.append("create publication \(ChangeArchivalNames.publication) for all tables") }
        else if try publication!.bool("puballtables") != true {
            throw FTBackupError(.configuration, "publication \(ChangeArchivalNames.publication) exists but is not FOR ALL TABLES",
                                hint: "drop it (ftbackup teardown) and run setup again")
        }
        actions.append("create schema \(ChangeArchivalNames.schema) and table \(ChangeArchivalNames.schema).\(ChangeArchivalNames.heartbeat) if missing")
        let triggers = try await DDLCapture.existingTriggers(session)
        let triggersMissing = triggers.count < DDLCapture.triggers.count
        // An installation by an older version (triggers that skip replica sessions, or an older
        // function) is brought up to date, which needs a superuser as creating it did.
        let triggersOutdated = triggersMissing ? false : !(try await DDLCapture.isCurrent(session))
        if triggersMissing || triggersOutdated, try settings.bool("superuser") != true {
            throw FTBackupError(.permission, "\(triggersMissing ? "creating" : "upgrading") the event triggers that record DDL needs a superuser",
                                hint: "run ftbackup setup once as a superuser; later runs need only the REPLICATION attribute")
        }
        actions.append("\(triggersMissing ? "create" : triggersOutdated ? "upgrade" : "keep") event triggers \(DDLCapture.triggers.joined(separator: ", ")) recording DDL into \(ChangeArchivalNames.schema).\(DDLCapture.table)")
        if !slotExists { actions.append("create logical replication slot \(slotName) (pgoutput)") }
        else if let note = archivalSlot.legacyNote { actions.append("use existing \(note)") }
        if fixReplicaIdentity { actions += missing.map { "ALTER TABLE \($0) REPLICA IDENTITY FULL" } }
        if dryRun {
            return Report(dryRun: true, walLevel: wal, actions: actions, tablesWithoutReplicaIdentity: missing, fixedReplicaIdentity: [])
        }

        if publication == nil {
            try await session.execute("CREATE PUBLICATION \(try session.escapeIdentifier(ChangeArchivalNames.publication)) FOR ALL TABLES")
        }
        try await session.execute("""
            CREATE SCHEMA IF NOT EXISTS \(ChangeArchivalNames.schema);
            CREATE TABLE IF NOT EXISTS \(ChangeArchivalNames.schema).\(ChangeArchivalNames.heartbeat) (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                at timestamptz NOT NULL DEFAULT clock_timestamp(),
                sequences jsonb NOT NULL
            );
            COMMENT ON SCHEMA \(ChangeArchivalNames.schema) IS 'ftbackup change archival: heartbeat written on every archival pass (ftbackup teardown removes it)'
            """)
        var fixed: [String] = []
        if fixReplicaIdentity {
            for table in missing {
                try await session.execute("ALTER TABLE \(table) REPLICA IDENTITY FULL")
                fixed.append(table)
            }
        }
        // After the replica identity fixes, so setup's own ALTERs are not recorded as DDL. A re-run by a
        // non-superuser keeps the existing function (CREATE OR REPLACE needs its owner).
        let superuser = try settings.bool("superuser") == true
        if triggersMissing || triggersOutdated || superuser {
            try await session.execute(try DDLCapture.installSQL(session, existing: triggers))
        }
        if !slotExists {
            _ = try await SlotCreation.boundedWait(session, seconds: slotWaitSeconds, what: "creating slot \(slotName)") {
                try await session.query("SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')", [slotName])
            }
        }
        return Report(dryRun: false, walLevel: wal, actions: actions, tablesWithoutReplicaIdentity: missing, fixedReplicaIdentity: fixed)
    }

    /// Removes the slot first (so WAL stops being pinned), then the publication and the schema.
    public static func teardown(_ database: ConnectionString, dryRun: Bool) async throws -> [String] {
        let session = try await DatabaseSession.connect(database, name: "ftbackup-teardown")
        defer { session.close() }
        // Resolving refuses a slot under this database's name that belongs to another database.
        let archivalSlot = try await ArchivalSlot.resolve(session)
        let slotName = archivalSlot.name
        var actions: [String] = []
        if archivalSlot.exists {
            actions.append("drop replication slot \(slotName)\(archivalSlot.legacy ? " (the name older versions gave; it belongs to this database)" : "")")
            if !dryRun { try await session.query("SELECT pg_drop_replication_slot($1)", [slotName]) }
        }
        for trigger in try await DDLCapture.existingTriggers(session) {
            actions.append("drop event trigger \(trigger)")
            if !dryRun { try await session.execute("DROP EVENT TRIGGER IF EXISTS \(try session.escapeIdentifier(trigger))") }
        }
        if try await session.query("SELECT 1 FROM pg_publication WHERE pubname = $1", [ChangeArchivalNames.publication]).count > 0 {
            actions.append("drop publication \(ChangeArchivalNames.publication)")
            if !dryRun { try await session.execute("DROP PUBLICATION \(try session.escapeIdentifier(ChangeArchivalNames.publication))") }
        }
        if try await session.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [ChangeArchivalNames.schema]).count > 0 {
            actions.append("drop schema \(ChangeArchivalNames.schema) (heartbeat, DDL log)")
            if !dryRun { try await session.execute("DROP SCHEMA \(ChangeArchivalNames.schema) CASCADE") }
        }
        return actions
    }

    /// Ordinary tables whose UPDATE and DELETE a FOR ALL TABLES publication would refuse.
    static func tablesWithoutReplicaIdentity(_ session: DatabaseSession) async throws -> [String] {
        try await session.query("""
            SELECT c.oid::regclass::text AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND \(CatalogSQL.userSchemaFilter)
              AND (c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS
                   (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))
            ORDER BY 1
            """).rows.map { try $0.requiredString("name") }
    }
}

/// Creating a logical slot waits for every transaction that holds a transaction id, and
/// `statement_timeout` does not stop it: this bounds the wait on the client side and names the
/// sessions that block it.
enum SlotCreation {
    /// How long creating a slot waits when no `--slot-wait` is given: `FTBACKUP_SLOT_WAIT` (seconds) for a busy server
    /// whose long transactions (a batch job, a big restore into another database) outlast the default. Unset or empty:
    /// `fallback`. Anything but a number of seconds from 1 to ``longestWaitSeconds`` (`600s`, `abc`, `inf`, `0`) is a
    /// configuration error (78), not a silent default: the operator who set it believes the bound is raised.
    static func configuredWaitSeconds(default fallback: Double) throws -> Double {
        guard let text = ProcessInfo.processInfo.environment["FTBACKUP_SLOT_WAIT"], !text.isEmpty else { return fallback }
        guard let seconds = Double(text), seconds.isFinite, (1...longestWaitSeconds).contains(seconds) else {
            throw FTBackupError(.configuration, "FTBACKUP_SLOT_WAIT is \(text): it must be a number of seconds from 1 to \(Int(longestWaitSeconds))",
                                hint: "unset it for the defaults (30 s for setup, 60 s for a full backup's slot)")
        }
        return seconds
    }

    /// The longest wait: a day. `Task.sleep` traps on a duration it cannot represent (`inf`, `1e30` seconds), and a
    /// bound of years is no bound.
    static let longestWaitSeconds: Double = 86_400

    /// `seconds` held to 1 s…``longestWaitSeconds``; nil when it is not a finite number.
    static func bounded(_ seconds: Double) -> Double? {
        seconds.isFinite ? min(max(1, seconds), longestWaitSeconds) : nil
    }

    /// Runs `body` (which waits on `waiting`); after `seconds` cancels it and reports, through
    /// `inspector` (or `waiting` itself), the sessions that hold transaction ids open.
    static func boundedWait<T: Sendable>(_ waiting: DatabaseSession, inspector: DatabaseSession? = nil, seconds: Double, what: String,
                                         _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let seconds = bounded(seconds) ?? longestWaitSeconds
        let watchdog = Task {
            try await Task.sleep(for: .seconds(seconds))
            waiting.cancel()
        }
        do {
            let value = try await body()
            watchdog.cancel()
            return value
        } catch let error as PostgresError where error.sqlState == "57014" {
            watchdog.cancel()
            // Cancelled by the watchdog: find who holds a transaction id open. A prepared transaction
            // has no session (pg_stat_activity does not show it) and no pid to terminate.
            let checker = inspector ?? waiting
            let prepared = try await preparedTransactions(checker)
            let blockers = try await blockingSessions(checker)
            guard prepared.isEmpty else {
                let gids = prepared.map(\.gid)
                let first = try checker.escapeLiteral(gids[0])
                throw FTBackupError(.unavailable, "\(what) waited \(Int(seconds)) s for open transactions to finish: \(prepared.count == 1 ? "a prepared transaction is" : "\(prepared.count) prepared transactions are") still pending: \((prepared.map(\.description) + blockers).joined(separator: "; "))",
                                    hint: "a prepared transaction (PREPARE TRANSACTION, two-phase commit) holds its transaction id until it is resolved, whatever happens to sessions; check with its owner (or the transaction manager that prepared it) whether it should commit, then, connected to its database, run COMMIT PREPARED \(first) or ROLLBACK PREPARED \(first)\(gids.count > 1 ? " (and the same for each one listed)" : ""), and run again")
            }
            throw FTBackupError(.unavailable, "\(what) waited \(Int(seconds)) s for open transactions to finish: \(blockers.isEmpty ? "none still open" : blockers.joined(separator: "; "))",
                                hint: "let those transactions finish (or end them with pg_terminate_backend) and run again")
        } catch {
            watchdog.cancel()
            throw error
        }
    }

    struct PreparedTransaction: Sendable {
        var gid: String
        var owner: String
        var database: String
        var prepared: String
        var description: String { "prepared transaction '\(gid)' (owner \(owner), database \(database), prepared \(prepared))" }
    }

    /// Every pending prepared transaction of the cluster: each holds a transaction id, so each blocks
    /// the creation of a logical slot in any database.
    static func preparedTransactions(_ session: DatabaseSession) async throws -> [PreparedTransaction] {
        try await session.query("""
            SELECT gid, owner::text AS owner, database::text AS database,
                   to_char(prepared AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' AS prepared
            FROM pg_prepared_xacts ORDER BY prepared
            """).rows.map {
            PreparedTransaction(gid: try $0.requiredString("gid"), owner: try $0.requiredString("owner"),
                                database: try $0.requiredString("database"), prepared: try $0.requiredString("prepared"))
        }
    }

    static func blockingSessions(_ session: DatabaseSession) async throws -> [String] {
        try await session.query("""
            SELECT pid, coalesce(application_name, '') AS app, coalesce(usename, '') AS usr, state,
                   to_char(xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' AS since, left(query, 60) AS query
            FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() ORDER BY xact_start
            """).rows.map {
            "pid \(try $0.requiredString("pid")) (\(try $0.requiredString("usr"))/\(try $0.requiredString("app")), \(try $0.string("state") ?? "?") since \(try $0.string("since") ?? "?"): \(try $0.string("query") ?? ""))"
        }
    }
}
