import Foundation
import Logging

/// The database a drill restores into: a scratch database `ftbackup_drill_<UTC time>` created with
/// `CREATE DATABASE … TEMPLATE template0` (the source's encoding and locale) on the source's server,
/// or on the server `--target` names.
///
/// It exists so that a drill restores as on-call would, into a fresh database, without ever touching
/// the source: a `--target` that is the source database itself is refused. While the drill runs, one
/// connection to the scratch database holds an advisory lock; a scratch database whose lock is free
/// belongs to a drill that was killed, and the next drill drops it: only a database of ftbackup's own
/// name pattern that also carries the comment `scratchComment`, set once the lock is held, so a user's
/// database that merely looks like a scratch one, or one a running drill is still creating, is never dropped.
final class DrillTarget: @unchecked Sendable {
    static let prefix = "ftbackup_drill_"
    static let pattern = "^ftbackup_drill_[0-9]{8}T[0-9]{6}Z(_[0-9]+)?$"
    /// The advisory lock a running drill holds in its scratch database ('ftbd').
    static let lockKey: Int64 = 0x6674_6264
    /// The comment every scratch database gets right after `CREATE DATABASE`: what marks it as ftbackup's.
    static let scratchComment = "ftbackup drill scratch database: dropped by the drill, or by the next one if this one was killed"

    let name: String
    let connectionString: ConnectionString
    let serverVersion: String
    private let maintenance: DatabaseSession
    private var holder: DatabaseSession?

    private init(name: String, connectionString: ConnectionString, serverVersion: String, maintenance: DatabaseSession, holder: DatabaseSession) {
        self.name = name
        self.connectionString = connectionString
        self.serverVersion = serverVersion
        self.maintenance = maintenance
        self.holder = holder
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = .gmt
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.string(from: date)
    }

    /// `conninfo` with another database name (the password, if any, kept).
    static func connectionString(_ base: ConnectionString, database: String) throws -> ConnectionString {
        let child = base.forChildProcess(overriding: ["dbname": database])
        var text = child.conninfo
        if let password = base.option("password") {
            text += " password='\(password.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'"))'"
        }
        return try ConnectionString(text).requiringTLS(base.tlsRequirement)
    }

    /// The server the scratch database goes on: `--target`, or the source's server. A `--target`
    /// that is the source database is refused before anything is created.
    static func openServer(source: DatabaseSession, sourceIdentity: DatabaseIdentity, sourceConnection: ConnectionString,
                           explicit: ConnectionString?) async throws -> (DatabaseSession, ConnectionString) {
        guard let explicit else {
            let session = try await DatabaseSession.connect(sourceConnection, name: "ftbackup-drill-admin")
            return (session, sourceConnection)
        }
        let session = try await DatabaseSession.connect(explicit, name: "ftbackup-drill-admin")
        let identity = try await session.withConnection { try DatabaseIdentity.of($0) }
        if identity.isSame(as: sourceIdentity) {
            session.close()
            throw FTBackupError(.usage, "drill target \(explicit.redacted) is the source database itself (\(sourceIdentity)); refusing",
                                hint: "leave out --target for a scratch database on the source's server, or name a separate drill server")
        }
        return (session, explicit)
    }

    /// Drops the scratch databases of killed drills (their advisory lock is free) and returns their names.
    static func removeLeftovers(_ server: DatabaseSession, connection: ConnectionString, logger: Logger) async throws -> [String] {
        // Only ftbackup's own: the name pattern and the scratch comment. One kept with --keep carries another comment
        // (the operator's); one without the comment is not ftbackup's (or was created by a drill killed before marking it).
        let candidates = try await server.query("""
            SELECT datname AS name, coalesce(shobj_description(d.oid, 'pg_database'), '') AS comment FROM pg_database d
            WHERE datname ~ $1 ORDER BY 1
            """, [pattern]).rows.map { (try $0.requiredString("name"), try $0.requiredString("comment")) }
        var names: [String] = []
        for (name, comment) in candidates {
            if comment == scratchComment {
                names.append(name)
            } else if !comment.hasPrefix("ftbackup drill ") {
                logger.warning("database \(name) looks like a drill's scratch database but is not marked as ftbackup's: left alone")
            }
        }
        var removed: [String] = []
        for name in names {
            let free: Bool
            do {
                let probe = try await DatabaseSession.connect(try connectionString(connection, database: name), name: "ftbackup-drill-probe")
                defer { probe.close() }
                free = try await probe.query("SELECT pg_try_advisory_lock($1::int8) AS free", [lockKey]).first?.bool("free") ?? false
            } catch {
                logger.warning("scratch database \(name) left as it is: cannot look at it (\((error as? FTBackupError)?.message ?? "\(error)"))")
                continue
            }
            guard free else {
                logger.info("scratch database in use by a running drill, left alone", metadata: ["database": .string(name)])
                continue
            }
            try await server.execute("DROP DATABASE IF EXISTS \(try server.escapeIdentifier(name)) WITH (FORCE)")
            logger.warning("removed scratch database \(name) left by a drill that did not finish")
            removed.append(name)
        }
        return removed
    }

    /// Creates the scratch database with the source's encoding and locale and takes its advisory lock.
    static func create(on server: DatabaseSession, connection: ConnectionString, source: DatabaseSession, at date: Date) async throws -> DrillTarget {
        let row = try await source.query("""
            SELECT pg_encoding_to_char(encoding) AS encoding, datcollate AS collate, datctype AS ctype,
                   datlocprovider::text AS provider, daticulocale AS icu
            FROM pg_database WHERE datname = current_database()
            """).first!
        var options = " TEMPLATE template0 ENCODING \(try server.escapeLiteral(try row.requiredString("encoding")))"
        if try row.string("provider") == "i", let icu = try row.string("icu") {
            options += " LOCALE_PROVIDER icu ICU_LOCALE \(try server.escapeLiteral(icu))"
        }
        options += " LC_COLLATE \(try server.escapeLiteral(try row.requiredString("collate"))) LC_CTYPE \(try server.escapeLiteral(try row.requiredString("ctype")))"
        // The name is the one CREATE DATABASE accepts: one taken (a drill started in the same second, or a
        // kept one) gives duplicate_database and the next suffix is tried. Looking the names up first left a
        // window in which two drills picked the same one and the second failed.
        var suffix = 1
        var name = prefix + timestamp(date)
        while true {
            do {
                try await server.execute("CREATE DATABASE \(try server.escapeIdentifier(name))" + options)
                break
            } catch let error as PostgresError where ["42P04", "23505"].contains(error.sqlState ?? "") && suffix < 100 {
                suffix += 1
                name = "\(prefix)\(timestamp(date))_\(suffix)"
            }
        }
        do {
            // The lock first, the comment that marks the database as a drill's second: another drill removing
            // leftovers meanwhile sees no comment (left alone) or the lock held (left alone), never the marked
            // database with a free lock that only a killed drill leaves (it used to, while this one connected).
            let target = try connectionString(connection, database: name)
            let holder = try await DatabaseSession.connect(target, name: "ftbackup-drill-holder")
            do {
                _ = try await holder.query("SELECT pg_advisory_lock($1::int8)", [lockKey])
                Failpoint.pause("drill.creating-target", detail: "database=\(name)")
                try await server.execute("COMMENT ON DATABASE \(try server.escapeIdentifier(name)) IS \(try server.escapeLiteral(scratchComment))")
                let version = try await holder.query("SHOW server_version").first?.string("server_version") ?? "?"
                return DrillTarget(name: name, connectionString: target, serverVersion: version, maintenance: server, holder: holder)
            } catch {
                holder.close()
                throw error
            }
        } catch {
            try? await server.execute("DROP DATABASE IF EXISTS \(try server.escapeIdentifier(name)) WITH (FORCE)")
            throw error
        }
    }

    /// Drops the scratch database (every connection to it closed first).
    func drop() async throws {
        holder?.close()
        holder = nil
        try await maintenance.execute("DROP DATABASE IF EXISTS \(try maintenance.escapeIdentifier(name)) WITH (FORCE)")
    }

    /// Keeps the scratch database (`--keep`): marked by a comment so that later drills leave it alone;
    /// it is the operator's to drop (its name is in the record).
    func keep(label: String) async throws {
        try await maintenance.execute("COMMENT ON DATABASE \(try maintenance.escapeIdentifier(name)) IS \(try maintenance.escapeLiteral(Self.keptComment(label)))")
        holder?.close()
        holder = nil
    }

    static func keptComment(_ label: String) -> String { "ftbackup drill \(label): kept (--keep)" }
}
