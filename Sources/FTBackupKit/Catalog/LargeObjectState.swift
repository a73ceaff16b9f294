import Foundation

/// A fingerprint of the database's large objects at one instant.
///
/// Logical decoding (pgoutput) does not carry large objects, so `restore --at` can only give them the
/// contents of the full it starts from. A full records this reading in its snapshot, and every sealed
/// change segment records one taken after its last commit (`backup --type incr`) or at the follower's
/// newest heartbeat; `LargeObjectRefusal` refuses a time the readings cannot prove unchanged.
/// The digest covers every large object's oid and the `xmin` of its metadata row, and — when the
/// reading role may read `pg_largeobject` (superuser) — every data page's `(loid, pageno, xmin)`, so
/// creating, writing, truncating and unlinking all change it.
public struct LargeObjectState: Codable, Sendable, Equatable {
    /// When the reading was taken (the server's clock, before the catalog was read).
    public var at: Date
    public var count: Int64
    /// `metadata+pages` or `metadata` (without the privilege to read `pg_largeobject`: writes to an
    /// existing object are then not seen). Readings of different scopes never compare equal.
    public var scope: String
    public var digest: String

    /// True when `other` proves the large objects unchanged since this reading.
    public func sameObjects(as other: LargeObjectState) -> Bool {
        scope == other.scope && count == other.count && digest == other.digest
    }

    /// Reads the state as the session's snapshot sees it (inside a full's snapshot transaction: as of that snapshot).
    static func read(_ session: DatabaseSession) async throws -> LargeObjectState {
        let head = try await session.query("""
            SELECT extract(epoch FROM clock_timestamp()) AS at, has_table_privilege('pg_catalog.pg_largeobject', 'SELECT') AS pages
            """).first!
        let at = try head.epochDate("at") ?? Date()
        let pages = try head.bool("pages") ?? false
        let pagesDigest = pages ? """
            || '/' || coalesce((SELECT md5(string_agg(loid::text || ':' || pageno::text || ':' || xmin::text, ',' ORDER BY loid, pageno))
                                FROM pg_catalog.pg_largeobject), '')
            """ : ""
        let row = try await session.query("""
            SELECT count(*) AS n,
                   coalesce(md5(string_agg(oid::text || ':' || xmin::text, ',' ORDER BY oid)), '') \(pagesDigest) AS digest
            FROM pg_catalog.pg_largeobject_metadata
            """).first!
        return LargeObjectState(at: at, count: try row.int64("n"), scope: pages ? "metadata+pages" : "metadata",
                                digest: try row.requiredString("digest"))
    }
}
