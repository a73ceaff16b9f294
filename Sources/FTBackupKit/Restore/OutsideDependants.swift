import Foundation
import Logging

/// What `DROP SCHEMA … CASCADE` would take from *other* schemas when `--clean` drops the schemas being
/// restored: foreign keys that point into them (`organizations.featured_canvases` → a tool's
/// `tool_data`), views or materialized views built on them (`organizations.tool_usage_summary`), and
/// row-security policies on other schemas' tables whose expressions name their tables, functions or types.
///
/// They are saved from the target before the drop and put back once the restored schemas are whole,
/// so `--clean` drops exactly the schemas being restored. Views are saved with `pg_dump --schema-only`
/// (definition, indexes, owner, grants, comments) and refreshed if they were populated; foreign keys
/// are re-added as they were, and validated: restored rows that no longer satisfy one leave it
/// `NOT VALID` (still enforced for new rows) with a warning naming it, rather than failing the restore.
/// A key that was `NOT VALID` in the target stays so, and comments on keys and policies come back with them.
struct OutsideDependants: Sendable {
    struct ForeignKey: Sendable, Codable, Equatable {
        var table: String       // qualified, quoted
        var name: String
        var definition: String  // pg_get_constraintdef with every name qualified
        var partitioned: Bool
        /// `COMMENT ON CONSTRAINT`'s text (nil in records of runs before comments were kept).
        var comment: String? = nil

        /// Whether the target held it `NOT VALID` on purpose (pg_get_constraintdef ends so): put back as it was,
        /// not validated.
        var isNotValid: Bool { definition.hasSuffix(" NOT VALID") }
    }
    struct View: Sendable, Codable, Equatable {
        var schema: String
        var name: String
        var materialized: Bool
        var populated: Bool
    }

    struct Policy: Sendable, Codable, Equatable {
        var table: String       // qualified, quoted
        var name: String
        var create: String      // the whole CREATE POLICY, every name qualified
        /// `COMMENT ON POLICY`'s text (nil in records of runs before comments were kept).
        var comment: String? = nil
    }

    var foreignKeys: [ForeignKey] = []
    var views: [View] = []
    var policies: [Policy] = []
    /// `pg_dump -Fc --schema-only` of the views, when there are any.
    var viewDump: String?
    /// Views dumps an earlier, killed restore into this target saved and never put back (`adopt`).
    var adoptedViewDumps: [String] = []
    /// Once `persist` wrote them: the script, views dump and record kept outside the process's temporary
    /// folder until the dependants are back (a SIGKILL or an OOM kill leaves them for the rerun), and the
    /// files of earlier killed runs adopted by this one (removed with these once everything is back).
    var persisted: [String] = []
    var script: String?
    /// What the catalog held when `capture` read it (nil for dependants not read from the catalog).
    var capturedState: CatalogState?

    var isEmpty: Bool { foreignKeys.isEmpty && views.isEmpty && policies.isEmpty }

    /// Reads the dependants of `schemas` that live outside them, and dumps the views. What was read is kept
    /// (`capturedState`): the drop checks it is still what the catalog holds (`checkUnchanged`), so the capture
    /// may run ahead of the drop, while the backup's files are verified.
    ///
    /// The read and the views' `pg_dump` see one snapshot (exported by the read's transaction, on a session of the
    /// capture's own, and imported by pg_dump): a change made after the read and undone before the drop's check (a
    /// REVOKE then a GRANT) would otherwise be in the dump and pass the check. `beforeDump` is a test's hook. `session`:
    /// the capture's session, connected ahead (`captureSession`); nil connects it now.
    static func capture(_ target: DatabaseSession, schemas: [String], options: RestoreOptions, session ahead: SessionsAhead? = nil,
                        beforeDump: (@Sendable () async throws -> Void)? = nil) async throws -> OutsideDependants {
        let session = try await (ahead ?? captureSession(options.target)).take()
        defer { session.close() }
        var (found, snapshot) = try await session.withConnection { connection -> (OutsideDependants, String) in
            try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            do {
                let snapshot = try connection.query("SELECT pg_export_snapshot() AS snapshot").first?.requiredString("snapshot") ?? ""
                return (try read(connection, schemas: schemas), snapshot)
            } catch {
                try? connection.execute("ROLLBACK")
                throw error
            }
        }
        guard !found.views.isEmpty else {
            try await session.execute("COMMIT")
            return found
        }
        if let beforeDump { try await beforeDump() }
        let pgDump = try PostgresTools.path(of: "pg_dump", serverVersionNumber: target.serverVersionNumber)
        let path = try TemporaryFiles.path("dependants-\(UUID().uuidString).pgdump")
        let child = options.target.forChildProcess()
        var arguments = ["--format=custom", "--schema-only", "--no-password", "--file=\(path)", "--snapshot=\(snapshot)"]
        if !child.conninfo.isEmpty { arguments.append("--dbname=\(child.conninfo)") }
        // Double-quoted pattern parts match literally.
        arguments += found.views.map { "--table=\(patternPart($0.schema)).\(patternPart($0.name))" }
        let dumpArguments = arguments
        let thread = ConnectionThread(name: "ftbackup-pg_dump")
        defer { thread.shutdown() }
        do {
            try await thread.run { try PostgresTools.run(pgDump, dumpArguments, environment: child.environment, secrets: options.target) }
            // A restore that failed before its drop no longer wants it (its capture ran ahead, while it verified).
            try Task.checkCancellation()
            try await session.execute("COMMIT")  // the snapshot pg_dump imported is no longer needed
        } catch {
            unlink(path)
            throw error
        }
        found.viewDump = path
        return found
    }

    /// The capture's own session to `target`, not yet connecting.
    static func captureSession(_ target: ConnectionString) -> SessionsAhead {
        SessionsAhead(1, target: target, name: "ftbackup-dependants", setup: "")
    }

    /// Drops the saved dependants (inside `CleanDrop`'s transaction), so the schemas' drop takes nothing of theirs.
    func drop(_ connection: PGConnection) throws {
        for key in foreignKeys {
            try connection.execute("ALTER TABLE \(key.table) DROP CONSTRAINT IF EXISTS \(try connection.escapeIdentifier(key.name))")
        }
        for policy in policies {
            try connection.execute("DROP POLICY IF EXISTS \(try connection.escapeIdentifier(policy.name)) ON \(policy.table)")
        }
        for view in views.reversed() {
            try connection.execute("DROP \(view.materialized ? "MATERIALIZED VIEW" : "VIEW") IF EXISTS \(try connection.qualifiedName(view.schema, view.name)) CASCADE")
        }
    }

    /// Puts the saved dependants back: views (refreshed if they were populated), policies, then foreign keys.
    /// Returns a warning per foreign key the restored rows do not satisfy.
    func putBack(_ target: DatabaseSession, options: RestoreOptions) async throws -> (warnings: [String], notBack: KeysNotPutBack?) {
        for viewDump in [viewDump].compactMap({ $0 }) + adoptedViewDumps {
            let pgRestore = try PostgresTools.path(of: "pg_restore", serverVersionNumber: target.serverVersionNumber)
            let child = options.target.forChildProcess()
            var arguments = ["--exit-on-error", "--no-password", "--single-transaction"]
            if !child.conninfo.isEmpty { arguments.append("--dbname=\(child.conninfo)") }
            if options.noOwner { arguments += ["--no-owner", "--no-privileges"] }
            try await RestoreRunner.runTool(pgRestore, arguments + [viewDump], child.environment, options.target)
        }
        for view in views where view.materialized && view.populated {
            try await target.execute("REFRESH MATERIALIZED VIEW \(try target.qualifiedName(view.schema, view.name))")
        }
        for policy in policies {
            try await target.execute(policy.create)
            if let comment = try Self.commentStatement(policy, target) { try await target.execute(comment) }
        }
        var warnings: [String] = []
        var notBack: [ForeignKey] = []
        for key in foreignKeys {
            let name = try target.escapeIdentifier(key.name)
            let comment = try Self.commentStatement(key, target)
            // Each key with its comment in one transaction, checked as it is added: an interrupt leaves it either absent
            // (the rerun adds it from the saved record) or whole. Added NOT VALID first and validated after, an interrupt in
            // between left a valid key NOT VALID, which the rerun then kept as if the target had held it so.
            func add(_ notValid: Bool) async throws {
                try await target.withConnection { connection in
                    try connection.transaction {
                        try connection.execute("ALTER TABLE \(key.table) ADD CONSTRAINT \(name) \(key.definition)\(notValid ? " NOT VALID" : "")")
                        if let comment { try connection.execute(comment) }
                    }
                }
            }
            // One the target held NOT VALID on purpose says so in its definition (nothing is checked), and stays so.
            do {
                try await add(false)
            } catch let error as PostgresError where error.sqlState == "23503" {
                // A partitioned table cannot take a NOT VALID foreign key (PostgreSQL 15): the others are still put back,
                // the restore goes on to its end, then fails naming it (`KeysNotPutBack`).
                guard !key.partitioned else { notBack.append(key); continue }
                try await add(true)
                let warning = "foreign key \(key.name) on \(key.table) is not satisfied by the restored rows; it was re-added NOT VALID (enforced for new rows)"
                options.logger.warning("\(warning)")
                warnings.append(warning)
            }
            Failpoint.pause(Self.failpointKeyPutBack)
        }
        return (warnings, notBack.isEmpty ? nil : KeysNotPutBack(keys: notBack))
    }

    /// Foreign keys of other schemas' partitioned tables that the restored rows do not satisfy: PostgreSQL 15 cannot add
    /// one `NOT VALID`, so they are not back, everything else is, and the restore runs to its end before it fails (65)
    /// naming them. Before, the first such key failed the restore as "only partly restored" (it was whole), and nothing
    /// after it was done: other keys, event triggers, the database's settings (adv24 D4).
    struct KeysNotPutBack: Error, CustomStringConvertible {
        var keys: [ForeignKey]
        /// The script that adds them (only them), kept outside the temporary folder once `keepOnly` wrote it.
        var script: String? = nil
        var description: String {
            let names = keys.map { "\($0.name) on \($0.table)" }.joined(separator: ", ")
            return "foreign key(s) \(names) not satisfied by the restored rows (rows there reference rows the restored schemas no longer hold), and a partitioned table cannot take a foreign key NOT VALID"
        }
    }

    /// After a failed restore: writes the foreign keys and policies as a SQL script and keeps the views'
    /// dump (no longer removed), so they can be put back by hand. Nil if the script cannot be written.
    mutating func keepForLater(_ target: DatabaseSession) -> (script: String, views: String?)? {
        if let script {
            // Written before the drop (`persist`): kept as they are, for the rerun and for the operator.
            defer { persisted = []; adoptedViewDumps = []; viewDump = nil }
            return (script, viewDump)
        }
        // Each statement replaces what may be there already, so the script is right however far the
        // restore got before it stopped (an interrupt can land while they are being put back).
        // Kept outside the process's temporary folder, which goes when the process ends.
        let base = FileManager.default.temporaryDirectory, stamp = UUID().uuidString
        let path = base.appendingPathComponent("ftbackup-dependants-\(stamp).sql").path
        guard FileManager.default.createFile(atPath: path, contents: Data(scriptText(target).utf8),
                                             attributes: [.posixPermissions: 0o600]) else { return nil }
        var views: String?
        if let viewDump {
            let kept = base.appendingPathComponent("ftbackup-dependants-\(stamp).pgdump").path
            _ = chmod(viewDump, 0o600)
            views = (try? FileManager.default.moveItem(atPath: viewDump, toPath: kept)) != nil ? kept : viewDump
        }
        viewDump = nil
        return (path, views)
    }

    func removeFiles() {
        if let viewDump { try? FileManager.default.removeItem(atPath: viewDump) }
        for file in persisted { try? FileManager.default.removeItem(atPath: file) }
    }

    /// What `persist` writes next to the script: enough for a later restore into the same database to put
    /// the dependants back itself (`adopt`).
    struct Record: Codable {
        var identity: DatabaseIdentity
        var schemas: [String]
        var pid: Int32
        var foreignKeys: [ForeignKey]
        var policies: [Policy]
        var views: [View]
        var viewDumps: [String]
        var files: [String]
        /// The oids the dropped schemas had before the drop (`public` is never dropped): a record whose schemas
        /// all still have them is of a run whose drop never committed, and is discarded rather than adopted.
        var schemaOids: [String: Int64]? = nil
    }

    /// The SQL script that puts the foreign keys and policies back. Each statement replaces what may be there
    /// already, so the script is right however far the restore got before it stopped (an interrupt can land
    /// while they are being put back).
    func scriptText(_ target: DatabaseSession) -> String {
        let quoted = { (name: String) in (try? target.escapeIdentifier(name)) ?? name }
        let comment = { (statement: String?) in statement.map { "\n\($0);" } ?? "" }
        let statements = policies.map {
            "DROP POLICY IF EXISTS \(quoted($0.name)) ON \($0.table);\n\($0.create);" + comment((try? Self.commentStatement($0, target)) ?? nil)
        } + foreignKeys.map {
            // A valid key is added NOT VALID then validated: under psql -f, rows it no longer holds for fail only the
            // VALIDATE, and the key is still there (enforced for new rows), as the restore itself leaves it.
            let checked = !$0.isNotValid && !$0.partitioned
            return "ALTER TABLE \($0.table) DROP CONSTRAINT IF EXISTS \(quoted($0.name));\nALTER TABLE \($0.table) ADD CONSTRAINT \(quoted($0.name)) \($0.definition)\(checked ? " NOT VALID" : "");"
                + comment((try? Self.commentStatement($0, target)) ?? nil)
                + (checked ? "\nALTER TABLE \($0.table) VALIDATE CONSTRAINT \(quoted($0.name));" : "")
        }
        return statements.joined(separator: "\n") + "\n"
    }

    /// `COMMENT ON CONSTRAINT` for a key that had a comment, else nil.
    static func commentStatement(_ key: ForeignKey, _ target: DatabaseSession) throws -> String? {
        guard let comment = key.comment else { return nil }
        return "COMMENT ON CONSTRAINT \(try target.escapeIdentifier(key.name)) ON \(key.table) IS \(try target.escapeLiteral(comment))"
    }

    /// `COMMENT ON POLICY` for a policy that had a comment, else nil.
    static func commentStatement(_ policy: Policy, _ target: DatabaseSession) throws -> String? {
        guard let comment = policy.comment else { return nil }
        return "COMMENT ON POLICY \(try target.escapeIdentifier(policy.name)) ON \(policy.table) IS \(try target.escapeLiteral(comment))"
    }

    /// Before `--clean` drops anything: writes the script and the record and moves the views' dump out of
    /// the process's temporary folder (which a SIGKILL leaves behind and the next run removes), so what other
    /// schemas held on the dropped ones outlives any end of this run; removed once they are back.
    ///
    /// Until the drop starts, nothing needs these files: an interrupt before it (a SIGINT while they are written)
    /// removes them, temporary names included, and so does a failure here. An interrupt used to leave the script,
    /// the views dump and a `.ftbackup-UUID.tmp` holding the whole record that no rerun ever adopted or removed.
    /// Returns that interrupt action's key: the caller cancels it once the drop's own action (which keeps them) is
    /// registered.
    @discardableResult
    mutating func persist(_ target: DatabaseSession, identity: DatabaseIdentity, schemas: [String]) async throws -> UUID? {
        guard !isEmpty else { return nil }
        let oids = try await Self.schemaOids(target, schemas: schemas)
        let base = FileManager.default.temporaryDirectory, stamp = UUID().uuidString
        let path = { (suffix: String) in base.appendingPathComponent("ftbackup-dependants-\(stamp).\(suffix)").path }
        let temporary = { (suffix: String) in base.appendingPathComponent(".ftbackup-\(stamp)-\(suffix).tmp").path }
        let written = ["pgdump", "sql", "json"].map(path) + ["sql", "json"].map(temporary)
        let untilDrop = TemporaryFiles.onInterrupt {
            for file in written { unlink(file) }
            return nil
        }
        do {
            try await persistFiles(target, identity: identity, schemas: schemas, oids: oids, base: base, path: path, temporary: temporary)
        } catch {
            TemporaryFiles.cancelInterruptAction(untilDrop)
            for file in written { unlink(file) }
            if viewDump.map(written.contains) == true { viewDump = nil }
            throw error
        }
        return untilDrop
    }

    /// Once everything else is back: the saved files (script, record, views dump) are removed and a script adding only
    /// `notBack`'s keys, with their comments, is written in their place, without a record. The operator runs it once the
    /// rows are fixed; no later `--clean` restore adopts a record that would put back what the operator may have dropped
    /// since, nor calls this run killed, and a failure later in this run names those keys alone (adv25 D1, D2).
    /// The new script is written before the saved files go: if it cannot be, they stay (the message names the keys).
    mutating func keepOnly(_ notBack: inout KeysNotPutBack, target: DatabaseSession) {
        var keys = OutsideDependants()
        keys.foreignKeys = notBack.keys
        let base = FileManager.default.temporaryDirectory.path
        let path = "\(base)/ftbackup-keys-not-back-\(UUID().uuidString).sql"
        guard (try? Self.writePrivately(path, Array(keys.scriptText(target).utf8), folder: base)) != nil else { return }
        notBack.script = path
        removeFiles()
        self = OutsideDependants()
    }

    /// A test's window in `putBack`: after each foreign key is back.
    static let failpointKeyPutBack = "restore.after-key-put-back"

    /// A test's window inside `persist`: the views dump and the script written, the record not yet.
    static let failpointPersisting = "restore.persisting-dependants"

    private mutating func persistFiles(_ target: DatabaseSession, identity: DatabaseIdentity, schemas: [String], oids: [String: Int64],
                                       base: URL, path: (String) -> String, temporary: (String) -> String) async throws {
        var files: [String] = []
        // Written to survive a power loss, not only a kill: once the drop commits, these files are the only copy of
        // what other schemas held. The dump is fsynced in place, the script and the record are written under a
        // temporary name, fsynced and renamed, the record last (its presence is what a rerun adopts).
        func durable(_ suffix: String, _ bytes: [UInt8], _ what: String) throws {
            do {
                try Self.writePrivately(path(suffix), bytes, folder: base.path, temporary: temporary(suffix))
            } catch {
                // Its own message only: its hint (the repository's filesystem) is not this file's.
                throw FTBackupError(.cannotWrite, "cannot write \(path(suffix)) (\(what)); nothing was dropped: \((error as? FTBackupError)?.message ?? "\(error)")",
                                    hint: "check TMPDIR, its permissions and free space")
            }
        }
        if let viewDump {
            // pg_dump wrote it under the umask (often 0644) in the private temporary folder: private before it leaves it.
            guard chmod(viewDump, 0o600) == 0 else {
                throw FTBackupError(.cannotWrite, "cannot make \(viewDump) private (the views other schemas hold); nothing was dropped",
                                    hint: "check TMPDIR and its permissions")
            }
            try FileManager.default.moveItem(atPath: viewDump, toPath: path("pgdump"))
            self.viewDump = path("pgdump")
            files.append(path("pgdump"))
            let fd = open(path("pgdump"), O_RDONLY | O_CLOEXEC)
            // pg_dump wrote it under the umask (often 0644): private like every other file, then fsynced.
            guard fd >= 0, fchmod(fd, 0o600) == 0, fsync(fd) == 0 else {
                if fd >= 0 { close(fd) }
                throw FTBackupError(.cannotWrite, "cannot fsync \(path("pgdump")) (the views other schemas hold); nothing was dropped",
                                    hint: "check TMPDIR, its permissions and free space")
            }
            close(fd)
        }
        try durable("sql", Array(scriptText(target).utf8), "what other schemas hold on the schemas --clean drops")
        files.append(path("sql"))
        Failpoint.pause(Self.failpointPersisting)
        let record = Record(identity: identity, schemas: schemas, pid: getpid(), foreignKeys: foreignKeys, policies: policies, views: views,
                            viewDumps: [viewDump].compactMap { $0 } + adoptedViewDumps, files: files + persisted, schemaOids: oids)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try durable("json", Array(try encoder.encode(record)), "the record a rerun takes over")
        files.append(path("json"))
        persisted += files
        script = path("sql")
    }

    /// Writes `bytes` to `final` in `folder` (TMPDIR, often a shared /tmp) so that it survives a power loss and no other
    /// local user can have a hand in it: a temporary name nobody can guess, created new (O_EXCL) and never through a
    /// link (O_NOFOLLOW), 0600, fsynced, renamed into place, the folder fsynced. (`LocalStorage.writeAll` uses a fixed
    /// `NAME.tmp-PID`, opened with O_TRUNC: in /tmp a link planted at that name had the record written wherever it
    /// pointed, and the record renamed into place was the link, never adopted.)
    static func writePrivately(_ final: String, _ bytes: [UInt8], folder: String, temporary: String? = nil) throws {
        let temporary = temporary ?? "\(folder)/.ftbackup-\(UUID().uuidString).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LocalStorage.failure("cannot create", temporary, errno) }
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                let code = errno
                close(fd)
                unlink(temporary)
                throw LocalStorage.failure("cannot write", temporary, code)
            }
            written += count
        }
        guard fsync(fd) == 0 else {
            let code = errno
            close(fd)
            unlink(temporary)
            throw LocalStorage.failure("cannot fsync", temporary, code)
        }
        close(fd)
        guard rename(temporary, final) == 0 else {
            let code = errno
            unlink(temporary)
            throw LocalStorage.failure("cannot rename into place", final, code)
        }
        LocalStorage.syncDirectory(folder)
    }

    /// The oids of `schemas` other than `public` (which `--clean` never drops) that exist.
    static func schemaOids(_ target: DatabaseSession, schemas: [String]) async throws -> [String: Int64] {
        let rows = try await target.query("SELECT nspname, oid::int8 AS oid FROM pg_namespace WHERE nspname = ANY($1::text[]) AND nspname <> 'public'",
                                          [PostgresArray.text(schemas)]).rows
        return Dictionary(try rows.map { (try $0.requiredString("nspname"), try $0.int64("oid")) }, uniquingKeysWith: { first, _ in first })
    }

    /// True when `path` is a regular file owned by this process's user that neither group nor others can write.
    static func isOwnPrivateFile(_ path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0 else { return false }
        return (info.st_mode & S_IFMT) == S_IFREG && info.st_uid == getuid() && info.st_mode & (S_IWGRP | S_IWOTH) == 0
    }

    /// Takes over what earlier restores into this very database saved and never put back (killed after
    /// their drop: their record is still in `$TMPDIR` and their process is gone), for the schemas this one
    /// restores: it is put back at the end with this run's own, and their files removed then. A foreign key,
    /// policy or view that exists again (put back by hand) is left to this run's own capture.
    mutating func adopt(_ target: DatabaseSession, identity: DatabaseIdentity, schemas: [String], logger: Logger) async throws {
        let base = FileManager.default.temporaryDirectory.path
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: base) else { return }
        for name in names.sorted() where name.hasPrefix("ftbackup-dependants-") && name.hasSuffix(".json") {
            let path = "\(base)/\(name)"
            // Only a record this user wrote and nobody else can change: its SQL runs as the restoring role, and TMPDIR may be a
            // shared /tmp where another local user could plant one.
            guard Self.isOwnPrivateFile(path) else {
                logger.warning("ignored a dependants record that is not this user's own private file", metadata: ["record": .string(path)])
                continue
            }
            guard let data = FileManager.default.contents(atPath: path), let record = try? JSONDecoder().decode(Record.self, from: data),
                  record.identity.isSame(as: identity), !Set(record.schemas).isDisjoint(with: schemas) else { continue }
            if kill(record.pid, 0) == 0 || errno == EPERM { continue }  // still running
            if let recorded = record.schemaOids, !recorded.isEmpty,
               try await Self.schemaOids(target, schemas: Array(recorded.keys)) == recorded {
                // Its drop never committed (interrupted while it waited): nothing of it to put back.
                for file in record.files + [path] { try? FileManager.default.removeItem(atPath: file) }
                logger.info("removed the record of an earlier restore into this database whose drop never happened", metadata: ["record": .string(path)])
                continue
            }
            var taken: [String] = []
            for key in record.foreignKeys where !foreignKeys.contains(where: { $0.table == key.table && $0.name == key.name }) {
                foreignKeys.append(key)
                taken.append("foreign key \(key.name) on \(key.table)")
            }
            for policy in record.policies where !policies.contains(where: { $0.table == policy.table && $0.name == policy.name }) {
                policies.append(policy)
                taken.append("policy \(policy.name) on \(policy.table)")
            }
            // A views dump comes back whole: only when none of its views exists again.
            var viewsThere = false
            for view in record.views {
                let regclass = try await target.query("SELECT to_regclass($1) IS NOT NULL AS there", [try target.qualifiedName(view.schema, view.name)])
                if try regclass.first?.bool("there") == true { viewsThere = true }
            }
            if !viewsThere {
                for dump in record.viewDumps where !adoptedViewDumps.contains(dump) && FileManager.default.fileExists(atPath: dump) {
                    // pg_restore runs it as the restoring role: like the record, only this user's own private file (once
                    // the killed run's dump is gone, another local user could have put an archive of theirs at its path).
                    guard Self.isOwnPrivateFile(dump) else {
                        logger.warning("ignored a views dump that is not this user's own private file", metadata: ["dump": .string(dump), "record": .string(path)])
                        continue
                    }
                    adoptedViewDumps.append(dump)
                }
                for view in record.views where !views.contains(view) {
                    views.append(view)
                    taken.append("view \(view.schema).\(view.name)")
                }
            }
            persisted += record.files.filter { !persisted.contains($0) } + [path]
            logger.warning("an earlier restore into \(target.target) was killed after --clean dropped \(record.schemas.joined(separator: ", ")) (\(path)): this run puts back what it had saved from other schemas: \(taken.isEmpty ? "nothing left to put back" : taken.joined(separator: ", "))")
        }
    }

    private static func patternPart(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
