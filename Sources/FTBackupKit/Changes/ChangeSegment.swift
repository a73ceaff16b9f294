import Foundation
import Logging

/// One sealed piece of the change archive: the slot's decoded transactions between two positions,
/// as `pg_logical_slot_peek_binary_changes` returned them (COPY binary rows of lsn, xid and a
/// pgoutput message), zstd-compressed and checksummed.
///
/// Every segment comes from its own decoding session, so it carries the relation descriptions
/// (`R` messages) its changes need: it can be replayed on its own. Its manifest is written last; a
/// segment without one is incomplete and removed by the next archival run.
public struct ChangeSegmentManifest: Codable, Sendable, Equatable {
    public static let folder = "changes/segments"

    public var formatVersion: Int
    public var label: String
    public var slot: String
    /// The database the slot belongs to (nil in segments written before segments recorded it).
    public var source: DatabaseIdentity?
    /// The slot's confirmed position when this segment was read: it continues the previous segment
    /// only if this is at or before that segment's `endLSN` (otherwise the chain has a gap).
    public var startLSN: String
    /// What the slot was advanced to afterwards: the end of the last transaction in the segment.
    public var endLSN: String
    public var transactions: Int
    public var firstCommitLSN: String?
    public var lastCommitLSN: String?
    public var firstCommitTime: Date?
    public var lastCommitTime: Date?
    /// Tables whose relation description appeared (schema.name).
    public var relations: [String]
    /// Tables whose description differs from the newest full backup's (a schema change since that
    /// full, or a table it does not have): replay across them needs a newer full.
    public var schemaChanges: [String]?
    /// DDL recorded by `setup`'s event trigger (`ftbackup.ddl_log`) in this segment's transactions,
    /// in commit order; nil when none (and in segments written before DDL was recorded).
    public var ddl: [RecordedDDL]?
    public var createdAt: Date
    public var file: BackupManifest.StoredFile
    /// The database encoding the values were decoded in, and the client_encoding replay applies them
    /// with (nil in segments written before it was recorded: UTF8).
    public var encoding: String? = nil
    /// The large objects as read after this segment's last commit (`backup --type incr`) or at the
    /// follower's newest heartbeat; nil when not read (older segments, a follower before its first heartbeat).
    public var largeObjects: LargeObjectState? = nil
    /// The relations this segment names and the rows it changes in each (nil in segments written before
    /// it was recorded, or when a change named a relation no description explained): lets a `--schema`
    /// restore skip the segments that never name its schemas.
    public var index: ChangeSegmentIndex? = nil

    /// True when tuple text is bytes of a non-UTF-8 encoding (decoded with `byteText`).
    public var byteText: Bool { (encoding ?? "UTF8") != "UTF8" }

    public static func dataPath(_ label: String) -> String { "\(folder)/\(label).seg.zst" }
    public static func manifestPath(_ label: String) -> String { "\(folder)/\(label).json" }

    /// Commit times to the microsecond, as PostgreSQL gives them: the newest one is the end of the
    /// recoverable window, and `restore --at` of exactly that time must be accepted.
    public func encoded() throws -> [UInt8] { Array(try JSONOutput.encode(self, microseconds: true).utf8) + [0x0A] }

    /// Writes the manifest of a segment whose data file is sealed: what the stream summary saw, and
    /// any table whose description differs from the newest full backup's (logged as a warning).
    static func seal(label: String, slot: String, source: DatabaseIdentity, startLSN: UInt64, endLSN: UInt64, summary: ChangeStreamSummary,
                     file: BackupManifest.StoredFile, encoding: String = "UTF8", largeObjects: LargeObjectState? = nil,
                     storage: any RepositoryStorage, logger: Logger) throws -> ChangeSegmentManifest {
        let newestFull = try Repository(storage: storage).entries().last {
            $0.manifest?.type == .full && SourceKey(source).mismatch(of: $0.manifest!) == nil
        }?.manifest
        let changes = summary.schemaChanges(comparedWith: newestFull)
        let fullPoint = newestFull.flatMap { LSN.parse($0.snapshot.walLSN) } ?? 0
        let newDDL = summary.ddl.filter { !$0.isRefresh && (LSN.parse($0.commitLSN) ?? 0) >= fullPoint }
        let manifest = ChangeSegmentManifest(
            formatVersion: 1, label: label, slot: slot, source: source, startLSN: LSN.format(startLSN), endLSN: LSN.format(endLSN),
            transactions: summary.transactions, firstCommitLSN: summary.firstCommitLSN.map(LSN.format),
            lastCommitLSN: summary.lastCommitLSN.map(LSN.format),
            firstCommitTime: summary.firstCommitTime.map(PgOutputDecoder.date(fromPostgresMicroseconds:)),
            lastCommitTime: summary.lastCommitTime.map(PgOutputDecoder.date(fromPostgresMicroseconds:)),
            relations: summary.relations.sorted(), schemaChanges: changes.isEmpty ? nil : changes, ddl: summary.ddl.isEmpty ? nil : summary.ddl,
            createdAt: Date(), file: file, encoding: encoding, largeObjects: largeObjects, index: summary.index.index())
        try storage.writeAll(manifestPath(label), try manifest.encoded())
        if !changes.isEmpty {
            logger.warning("schema change detected since the newest full backup: a new full is needed to replay past it",
                           metadata: ["segment": .string(label), "tables": .string(changes.joined(separator: ","))])
        }
        if let full = newestFull?.largeObjects, let now = largeObjects, !full.sameObjects(as: now) {
            logger.warning("large objects changed since the newest full backup: restore --at cannot replay them, a new full is needed",
                           metadata: ["segment": .string(label), "large_objects": .string("\(full.count) then \(now.count)")])
        }
        if !newDDL.isEmpty {
            logger.warning("DDL recorded since the newest full backup: a new full is needed to restore past it",
                           metadata: ["segment": .string(label), "ddl": .string(newDDL.map(\.description).joined(separator: "; "))])
        }
        return manifest
    }

    /// DDL in this segment committed at or after `full`'s consistent point (not in that full);
    /// materialized-view refreshes are not counted (see `refreshes(after:)`).
    public func ddl(after full: BackupManifest) -> [RecordedDDL] {
        let point = LSN.parse(full.snapshot.walLSN) ?? 0
        return (ddl ?? []).filter { !$0.isRefresh && (LSN.parse($0.commitLSN) ?? 0) >= point }
    }

    /// Materialized-view refreshes in this segment committed at or after `full`'s consistent point.
    public func refreshes(after full: BackupManifest) -> [RecordedDDL] {
        let point = LSN.parse(full.snapshot.walLSN) ?? 0
        return (ddl ?? []).filter { $0.isRefresh && (LSN.parse($0.commitLSN) ?? 0) >= point }
    }

    /// A new segment's label: the slot position it starts from (so labels sort in archive order),
    /// the UTC time, and a random suffix against collisions.
    static func newLabel(startingAt start: UInt64) -> String {
        "\(LSN.sortable(start))-\(RunLabel.make())-\(String(UInt16.random(in: 0x1000...0xFFFF), radix: 16))"
    }

    /// Every complete segment, in archive order.
    public static func all(_ storage: any RepositoryStorage) throws -> [ChangeSegmentManifest] {
        let listed = try storage.list(folder).filter { $0.path.hasSuffix(".json") }
        decoded.keepOnly(location: storage.location, paths: listed.map(\.path))
        return try listed.concurrentMap { entry in
            do {
                return try read(storage, path: entry.path)
            } catch let error as FTBackupError {
                throw error
            } catch {
                throw FTBackupError(.dataError, "change segment manifest \(storage.location)/\(entry.path) is unreadable: \(error)",
                                    hint: "the change archive needs a human: keep the file, take a new full backup")
            }
        }.sorted { (LSN.parse($0.startLSN) ?? 0, $0.label) < (LSN.parse($1.startLSN) ?? 0, $1.label) }
    }
}

extension LSN {
    /// Sixteen hex digits, so that text order is LSN order (for labels and file names).
    static func sortable(_ value: UInt64) -> String {
        let hex = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 16 - hex.count)) + hex
    }
}

/// Statistics gathered from a change stream as it passes.
struct ChangeStreamSummary {
    var transactions = 0
    var firstCommitLSN: UInt64?
    var lastCommitLSN: UInt64?
    var lastEndLSN: UInt64?
    var firstCommitTime: Int64?
    var lastCommitTime: Int64?
    var relations: Set<String> = []
    var descriptions: [String: [String]] = [:]
    var maxRowLSN: UInt64 = 0
    /// DDL rows (`ftbackup.ddl_log` inserts) of committed transactions, and of the open one.
    var ddl: [RecordedDDL] = []
    var pendingDDL: [RecordedDDL] = []
    /// The relation description of `ftbackup.ddl_log`, by relid.
    var ddlRelations: [UInt32: RelationDescription] = [:]
    /// The relations named and the rows changed in each (the segment's `index`).
    var index = ChangeSegmentIndexBuilder()

    init() {}

    /// A fresh summary for the next segment of the same stream (a follower's): it keeps the relation
    /// names and the DDL log's description, since the stream does not describe a relation again (without
    /// it, DDL committed in any segment after the stream's first was left out of the manifest).
    init(continuing previous: ChangeStreamSummary) {
        index = ChangeSegmentIndexBuilder(continuing: previous.index)
        ddlRelations = previous.ddlRelations
    }

    /// Tables whose columns differ from `full`'s (ftbackup's own heartbeat excluded).
    func schemaChanges(comparedWith full: BackupManifest?) -> [String] {
        guard let full else { return [] }
        let known = Dictionary(full.tables.map { ("\($0.schema).\($0.name)", $0.columns) }, uniquingKeysWith: { first, _ in first })
        let ignored = Set(full.tablesNotCopied ?? [])
        return descriptions.filter { name, columns in
            !name.hasPrefix("\(ChangeArchivalNames.schema).") && !ignored.contains(name) && known[name] != columns
        }.keys.sorted()
    }

    /// A description a follower carries over from an earlier segment of its stream: the index records it
    /// as described (with no changes); the manifest's relations and schema changes stay what the stream
    /// sent in this segment.
    mutating func carry(_ row: ChangeRow) throws {
        if case .relation(let relation) = try PgOutputDecoder.decode(row.data) { index.describe(relation) }
    }

    mutating func observe(_ row: ChangeRow) throws {
        maxRowLSN = max(maxRowLSN, row.lsn)
        guard let type = row.data.first else { return }
        // Only the messages that describe the stream are decoded here; data changes are counted by relid.
        if row.data.count >= 5, let kind = [UInt8(ascii: "I"), UInt8(ascii: "U"), UInt8(ascii: "D")].firstIndex(of: type) {
            let relid = row.data[1...4].reduce(0) { $0 << 8 | UInt32($1) }
            index.count(relid, kind)
            if kind == 0 { index.inserted(relid, row.data) }
        }
        switch type {
        case UInt8(ascii: "T"):
            if case .truncate(let relids, _, _) = try PgOutputDecoder.decode(row.data) {
                for relid in relids { index.count(relid, 3) }
            }
        case UInt8(ascii: "I"):
            // Only inserts into ftbackup.ddl_log are decoded (the relid is bytes 1...4).
            guard row.data.count >= 5, !ddlRelations.isEmpty,
                  ddlRelations[row.data[1...4].reduce(0) { $0 << 8 | UInt32($1) }] != nil,
                  case .insert(let relid, let new) = try PgOutputDecoder.decode(row.data),
                  let relation = ddlRelations[relid], let recorded = RecordedDDL.fromRow(relation, new) else { return }
            pendingDDL.append(recorded)
        case UInt8(ascii: "B"):
            pendingDDL = []
            index.began()
        case UInt8(ascii: "C"), UInt8(ascii: "R"):
            switch try PgOutputDecoder.decode(row.data) {
            case .commit(_, let commitLSN, let endLSN, let commitTime):
                index.committed(commitLSN, commitTime)
                for var recorded in pendingDDL {
                    recorded.commitLSN = LSN.format(commitLSN)
                    recorded.commitTime = PgOutputDecoder.date(fromPostgresMicroseconds: commitTime)
                    ddl.append(recorded)
                }
                pendingDDL = []
                transactions += 1
                if firstCommitLSN == nil { firstCommitLSN = commitLSN; firstCommitTime = commitTime }
                lastCommitLSN = commitLSN
                lastEndLSN = endLSN
                lastCommitTime = commitTime
            case .relation(let relation):
                index.describe(relation)
                relations.insert("\(relation.namespace).\(relation.name)")
                descriptions["\(relation.namespace).\(relation.name)"] = relation.columns.map(\.name)
                if relation.namespace == ChangeArchivalNames.schema && relation.name == DDLCapture.table {
                    ddlRelations[relation.relid] = relation
                }
            default:
                break
            }
        default:
            break
        }
    }
}
