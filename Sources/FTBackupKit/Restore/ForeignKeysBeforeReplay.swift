import Foundation
import Logging

/// Which foreign keys a whole-database `restore --at` adds before its replay rather than after it: a key is checked
/// on the rows as the full left them (frozen, all-visible, their pages in cache), where after the replay its check
/// read pages the replay had just changed. On the bench database the 77 keys' checks took 0.58 s of the server's
/// time on the full's rows against 1.0 s after a replay of 26,000 changes (`audit.events`'s key 0.10 s against 0.23 s).
///
/// The replay runs as a replica (`session_replication_role = replica`): a key's triggers do not fire during it, and
/// what it applies is the source's own history, so the keys hold at T as they held at the full. That is so only for
/// tables the replay brings up to T. So a key stays in post-data (checked after the replay, as before) when its table
/// is unlogged (logical decoding carries none of an unlogged table's changes; a permanent table cannot reference one),
/// and no key moves when:
/// - the restore is of some schemas (a key into another schema meets that schema's rows as they are now, which the
///   replay does not change: rows deleted there since the full fail the check until the replay deletes theirs);
/// - a table's data is not in the backup (`tablesNotCopied`): its changes are not replayed, and any key may reference it;
/// - an unlogged table is a partition or partitioned: a key on a hierarchy covers rows the replay does not bring;
/// - a table's indexes and ANALYZE wait for the replay: its keys would be checked without statistics, which was slower;
/// - partitions' indexes are left for post-data to attach (`PostDataSteps.isIndexWork`): they must come first.
///
/// The keys are added in one transaction (`add`), all or none. When it fails, they all wait for the replay, as before: a
/// key whose referenced key the restore did not recognise in the dump's listing (and so left to post-data), or rows of
/// the full that broke a key and that the replay mends (rows written as a replica, which checks no key). Listing names
/// can differ from the catalog's (a newline in a name is listed as a space; names of a database in another encoding than
/// UTF8 or LATIN1 are misread), so no key moves unless the listing names every unlogged table as the catalog does, and
/// whether a key reaches an unlogged table is checked again in the catalog once they are in (a safety net): if one does,
/// all of them are dropped and wait for the replay too.
///
/// A source whose own rows break one of its keys after the full (written as a replica) is restored as it is at T, keys
/// included: after the replay they are not checked again. A restore that checks them only after the replay fails then.
enum ForeignKeysBeforeReplay {
    /// An unlogged table of the target, and whether it is in a partition hierarchy.
    struct Unlogged: Equatable {
        var schema: String
        var name: String
        var inHierarchy: Bool
    }

    /// The post-data entries to run before the replay: every `FK CONSTRAINT` left for post-data whose table is not
    /// unlogged. Empty when nothing may move (`Unlogged.inHierarchy`, an attachment left); the caller checks the rest.
    static func entries(_ contents: RestoreContents, left: (RestoreContents.Entry) -> Bool, unlogged: [Unlogged]) -> [RestoreContents.Entry] {
        if unlogged.contains(where: \.inHierarchy) { return [] }
        // The listing must name each unlogged table as the catalog does, or its keys could not be told apart: a newline
        // is listed as a space, and another encoding's letters are misread (adv28 D2). Nothing moves then.
        let listed = Set(contents.entries.filter { $0.type == "TABLE" }.map { "\($0.schema ?? "")\u{0}\($0.tag)" })
        // (A test switches this check off to reach the catalog's, `add`, which it otherwise backs up.)
        if !Failpoint.isActive("restore.keys-trust-listing"), unlogged.contains(where: { !listed.contains("\($0.schema)\u{0}\($0.name)") }) {
            return []
        }
        if contents.entries.contains(where: { left($0) && $0.type == "INDEX ATTACH" }) { return [] }
        return contents.entries.filter { entry in
            // The tag is "table constraint": a prefix test may also match a longer table name, which only keeps that key
            // in post-data, as before.
            left(entry) && entry.type == "FK CONSTRAINT"
                && !unlogged.contains { $0.schema == entry.schema && entry.tag.hasPrefix($0.name + " ") }
        }
    }

    /// Adds `entries` (from `PostDataSteps.runAhead`) in one transaction. False, with nothing of them left, when they must
    /// wait for the replay: the pass failed, or a key it added reaches an unlogged table (see the type's comment).
    static func add(_ entries: [RestoreContents.Entry], postData: PostDataSteps, target: DatabaseSession, logger: Logger) async throws -> Bool {
        let before = try await foreignKeys(target)
        do {
            try await postData.runAhead(entries)
        } catch {
            // An interrupt's echo (pg_restore stopped by the handler) is no reason to go on.
            TemporaryFiles.yieldToInterrupt()
            try Task.checkCancellation()
            logger.info("foreign keys wait for the replay: adding them before it failed", metadata: ["error": .string("\(error)")])
            return false
        }
        let added = try await foreignKeys(target).subtracting(before)
        let addedArray = "{" + added.map(String.init).joined(separator: ",") + "}"
        let unloggedReach = try await target.query("""
            SELECT count(*) AS n FROM pg_constraint c
            WHERE c.oid = ANY($1::oid[])
              AND EXISTS (SELECT 1 FROM pg_class r
                          WHERE r.relpersistence = 'u'
                            AND (r.oid IN (c.conrelid, c.confrelid)  -- pg_partition_tree lists nothing for a plain table
                                 OR r.oid IN (SELECT relid FROM pg_partition_tree(c.conrelid))
                                 OR r.oid IN (SELECT relid FROM pg_partition_tree(c.confrelid))))
            """, [addedArray]).first?.int64("n") ?? 0
        guard unloggedReach > 0 else { return true }
        try await target.withConnection { connection in
            try connection.transaction {
                // Never reached while the listing names every unlogged table (`entries`): a safety net. Its DROP waits
                // for every reader of the tables; a bounded wait fails the restore rather than hang it (adv29 D1).
                try connection.execute("SET LOCAL lock_timeout = '30s'")
                // Only the keys this pass added; a partition's copy of a key goes with its parent's.
                let keys = try connection.query("""
                    SELECT c.conrelid::regclass::text AS relation, c.conname FROM pg_constraint c
                    WHERE c.oid = ANY($1::oid[]) AND c.conparentid = 0
                    """, [addedArray]).rows
                for key in keys {
                    try connection.execute("ALTER TABLE \(try key.requiredString("relation")) DROP CONSTRAINT \(try connection.escapeIdentifier(try key.requiredString("conname")))")
                }
            }
        }
        logger.info("foreign keys wait for the replay: one reaches an unlogged table", metadata: ["keys": .string("\(added.count)")])
        return false
    }

    /// The OIDs of the target's foreign keys.
    static func foreignKeys(_ target: DatabaseSession) async throws -> Set<Int64> {
        Set(try await target.query("SELECT oid::int8 AS oid FROM pg_constraint WHERE contype = 'f'").rows.map { try $0.int64("oid") })
    }

    /// The target's unlogged tables (after pre-data: the backup's own).
    static func unlogged(_ target: DatabaseSession) async throws -> [Unlogged] {
        try await target.query("""
            SELECT n.nspname AS schema, c.relname AS name, c.relispartition OR c.relkind = 'p' AS in_hierarchy
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relpersistence = 'u' AND c.relkind IN ('r', 'p')
            """).rows.map { try Unlogged(schema: $0.requiredString("schema"), name: $0.requiredString("name"), inHierarchy: $0.bool("in_hierarchy") == true) }
    }
}
