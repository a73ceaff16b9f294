import Foundation
import Logging

/// Each chained record's SHA-256, written to the source database as the record is written
/// (`ftbackup.record_chain_anchors`), so that a record deleted or edited in the repository shows
/// even when nothing links to it yet.
///
/// It exists because a hash chain kept beside its records protects a record only through its
/// successor: the newest record of a kind can be deleted, and a middle one deleted with its
/// successor relinked, by anyone who can write the repository folder, and the chain still walks
/// intact. The database is a separate place with its own privileges (the role that prunes audit
/// rows, not the backup folder's owner), like CloudTrail's digest files delivered elsewhere. The
/// compliance report (with `--db`) checks every anchor of its repository: the record must be there
/// with the anchored digest. Anchors are keyed by the repository's identity (when its `source.json`
/// was recorded), so another repository of the same database is not mistaken for this one; the
/// `ftbackup` schema is ftbackup's own and is never restored or replayed.
///
/// Anchoring is best effort: a role that cannot create the schema, or a database that cannot be
/// written, leaves the record unanchored with a warning (the report says how many records are
/// anchored), never a failed prune or archive. Records that restores write into their target
/// (`reapplied`, `prune-audit-reapplied`) are not anchored: their database is not the source.
public final class RecordChainAnchor: @unchecked Sendable {
    public static let table = "record_chain_anchors"
    private let thread: ConnectionThread
    private let connection: PGConnection
    private let repositoryID: String
    private let logger: Logger
    private let lock = NSLock()
    private var warned = false

    private init(thread: ConnectionThread, connection: PGConnection, repositoryID: String, logger: Logger) {
        self.thread = thread
        self.connection = connection
        self.repositoryID = repositoryID
        self.logger = logger
    }

    /// The repository's identity for anchors: when its source was recorded (nil before that).
    public static func repositoryID(_ storage: any RepositoryStorage) throws -> String? {
        try RepositorySource.read(storage).map { Timestamps.iso8601UTCMicroseconds($0.recordedAt) }
    }

    /// Connects (on a thread of its own) and makes the anchor table if it is missing; nil, with a
    /// warning, when that cannot be done.
    public static func open(_ database: ConnectionString, storage: any RepositoryStorage, logger: Logger) async -> RecordChainAnchor? {
        let thread = ConnectionThread(name: "ftbackup-anchor")
        do {
            guard let id = try repositoryID(storage) else { thread.shutdown(); return nil }
            let connection = try await thread.run { () -> PGConnection in
                let connection = try PGConnection.connect(database)
                try connection.execute(SessionSettings.qualifiedNames)
                try makeTable(connection)
                return connection
            }
            return RecordChainAnchor(thread: thread, connection: connection, repositoryID: id, logger: logger)
        } catch {
            thread.shutdown()
            logger.warning("records are not anchored in the database: \(Self.describe(error))",
                           metadata: ["hint": .string("the role needs CREATE on the database once (or create schema \(ChangeArchivalNames.schema) for it)")])
            return nil
        }
    }

    static func makeTable(_ connection: PGConnection) throws {
        let schema = try connection.escapeIdentifier(ChangeArchivalNames.schema)
        let exists = try connection.query("SELECT to_regclass($1) IS NOT NULL AS ok", ["\(schema).\(table)"]).first!.bool("ok") == true
        // An existing table keeps its grants: the README has operators grant it to the roles ftbackup runs as, and a
        // revoke at every open took those away (records of a non-owner pruning role went unanchored; adv19).
        guard !exists else { return }
        do {
            try connection.transaction {
                try connection.execute("""
                    CREATE SCHEMA IF NOT EXISTS \(schema);
                    CREATE TABLE IF NOT EXISTS \(schema).\(table) (
                        repository text NOT NULL, kind text NOT NULL, record text NOT NULL, sha256 text NOT NULL,
                        anchored_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (repository, kind, record))
                    """)
                try revokeWritesByOthers(connection, relation: "\(schema).\(table)")
            }
        } catch {
            // Two first writers at once: the other one made it.
            guard try connection.query("SELECT to_regclass($1) IS NOT NULL AS ok", ["\(schema).\(table)"]).first!.bool("ok") == true else { throw error }
        }
    }

    /// Takes every change privilege on the new table from everyone but its owner. `ALTER DEFAULT PRIVILEGES` (say
    /// `GRANT ALL ON TABLES TO app`, set for the role ftbackup runs as) grants them to a table as it is created, and
    /// anchors any role can rewrite protect nothing.
    static func revokeWritesByOthers(_ connection: PGConnection, relation: String) throws {
        // Only at creation: a fresh table has no column grants, and nobody has passed a privilege on yet.
        let grantees = try connection.query("""
            SELECT DISTINCT a.grantee = 0 AS public, coalesce(r.rolname, '') AS role
            FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
            WHERE c.oid = $1::regclass AND a.grantee <> c.relowner
              AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER')
            """, [relation]).rows
        for grantee in grantees {
            let name = try grantee.bool("public") == true ? "PUBLIC" : try connection.escapeIdentifier(try grantee.requiredString("role"))
            try connection.execute("REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON \(relation) FROM \(name)")
        }
    }

    /// Anchors `folder/name` (its bytes as they are now) from a thread that may block (a
    /// connection's own thread); never from the cooperative pool.
    public func recordBlocking(kind: String, folder: String, name: String, storage: any RepositoryStorage) {
        lock.lock()
        defer { lock.unlock() }
        do {
            let digest = RecordChain.sha256(try storage.readAll("\(folder)/\(name)"))
            let schema = try connection.escapeIdentifier(ChangeArchivalNames.schema)
            _ = try connection.query("""
                INSERT INTO \(schema).\(Self.table) (repository, kind, record, sha256) VALUES ($1, $2, $3, $4)
                ON CONFLICT (repository, kind, record) DO UPDATE SET sha256 = excluded.sha256, anchored_at = now()
                """, [repositoryID, kind, name, digest])
        } catch {
            guard !warned else { return }
            warned = true
            logger.warning("record not anchored in the database: \(Self.describe(error))", metadata: ["record": .string("\(folder)/\(name)")])
        }
    }

    /// Anchors `folder/name` from async code (on the anchor's own thread).
    public func record(kind: String, folder: String, name: String, storage: any RepositoryStorage) async {
        _ = try? await thread.run { [self] in recordBlocking(kind: kind, folder: folder, name: name, storage: storage) }
    }

    public func close() { thread.shutdown() }

    /// Opens, anchors one record and closes: for a run that writes its record once, at its end.
    public static func anchorOnce(_ database: ConnectionString, kind: String, folder: String, name: String,
                                  storage: any RepositoryStorage, logger: Logger) async {
        guard let anchor = await open(database, storage: storage, logger: logger) else { return }
        await anchor.record(kind: kind, folder: folder, name: name, storage: storage)
        anchor.close()
    }

    static func describe(_ error: Error) -> String {
        (error as? FTBackupError)?.message ?? (error as? PostgresError)?.description ?? "\(error)"
    }

    /// One anchored record, as the report reads them.
    public struct Anchor: Codable, Sendable, Equatable {
        public var kind: String
        public var record: String
        public var sha256: String
        public var anchoredAt: String
    }

    /// This repository's anchors in the database (nil when the table does not exist).
    static func read(_ connection: PGConnection, repositoryID: String) throws -> [Anchor]? {
        let schema = try connection.escapeIdentifier(ChangeArchivalNames.schema)
        guard try connection.query("SELECT to_regclass($1) IS NOT NULL AS ok", ["\(schema).\(table)"]).first!.bool("ok") == true else { return nil }
        return try connection.query("""
            SELECT kind, record, sha256, to_char(anchored_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS at
            FROM \(schema).\(table) WHERE repository = $1 ORDER BY kind, record
            """, [repositoryID]).rows.map {
            Anchor(kind: try $0.requiredString("kind"), record: try $0.requiredString("record"), sha256: try $0.requiredString("sha256"),
                   anchoredAt: try $0.requiredString("at"))
        }
    }

    /// Records the database should have anchored and did not: once a kind has anchors, every record
    /// of it written after its first anchored one — named after it, or linked (through records that
    /// are) to an anchored record. A chain cannot show a record appended at its head by hand (linked
    /// and sealed as ftbackup would: anyone can compute SHA-256), so such a record would otherwise pass
    /// as evidence (a prune run, a drill); a real run whose anchoring failed warned when it ran, and is
    /// listed the same way.
    static func unanchored(_ anchors: [Anchor], storage: any RepositoryStorage, folder: (String) -> String) throws -> [String] {
        var problems: [String] = []
        for (kind, ofKind) in Dictionary(grouping: anchors, by: \.kind).sorted(by: { $0.key < $1.key }) {
            let anchored = Set(ofKind.map(\.record))
            guard let first = anchored.min() else { continue }
            let place = folder(kind)
            let names = try RecordChain.names(storage, folder: place)
            var previous: [String: String] = [:]
            for name in names where !anchored.contains(name) {
                if let link = RecordChain.link(of: try storage.readAll("\(place)/\(name)")), let before = link.previousRecord { previous[name] = before }
            }
            // Written after anchoring began: named after the first anchored record, or linked to a record that was.
            var after = Set(names.filter { $0 > first })
            var grew = true
            while grew {
                grew = false
                for (name, before) in previous where !after.contains(name) && (anchored.contains(before) || after.contains(before)) {
                    after.insert(name)
                    grew = true
                }
            }
            for name in names where after.contains(name) && !anchored.contains(name) {
                problems.append("\(place)/\(name) is not anchored in the database though its kind's records are from \(place)/\(first) on: added by hand (a forged record links and seals like a real one), or written by a run whose anchoring failed (it warned 'record not anchored')")
            }
        }
        return problems
    }

    /// Problems of the anchors against the repository: an anchored record that is gone or whose
    /// bytes changed after it was anchored.
    static func check(_ anchors: [Anchor], storage: any RepositoryStorage, folder: (String) -> String) -> [String] {
        anchors.compactMap { anchor in
            let path = "\(folder(anchor.kind))/\(anchor.record)"
            let present: Bool
            do { present = try storage.exists(path) } catch {
                return "\(path) cannot be checked against its anchor: \((error as? FTBackupError)?.message ?? "\(error)")"
            }
            guard present else {
                return "\(path) is missing: the database anchored it at \(anchor.anchoredAt) (SHA-256 \(anchor.sha256.prefix(16))…), deleted since"
            }
            guard let bytes = try? storage.readAll(path) else { return "\(path) cannot be read to check it against its anchor" }
            let digest = RecordChain.sha256(bytes)
            guard digest == anchor.sha256 else {
                return "\(path) was changed after the database anchored it at \(anchor.anchoredAt) (SHA-256 \(digest.prefix(16))…, anchored \(anchor.sha256.prefix(16))…)"
            }
            return nil
        }
    }
}
