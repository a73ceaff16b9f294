import Foundation

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
        if contents.entries.contains(where: { left($0) && $0.type == "INDEX ATTACH" }) { return [] }
        return contents.entries.filter { entry in
            // The tag is "table constraint": a prefix test may also match a longer table name, which only keeps that key
            // in post-data, as before.
            left(entry) && entry.type == "FK CONSTRAINT"
                && !unlogged.contains { $0.schema == entry.schema && entry.tag.hasPrefix($0.name + " ") }
        }
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
