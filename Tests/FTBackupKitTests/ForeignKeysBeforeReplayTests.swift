import Foundation
import Testing
@testable import FTBackupKit

/// Which foreign keys a whole-database restore --at adds before its replay (`ForeignKeysBeforeReplay`).
@Suite struct ForeignKeysBeforeReplayTests {
    static let listing = """
        230; 1259 16500 TABLE app parent postgres
        231; 1259 16501 TABLE app child postgres
        232; 1259 16502 TABLE app cache postgres
        233; 1259 16503 TABLE app cache_wide postgres
        234; 1259 16504 TABLE other cache postgres
        3411; 2606 16600 CONSTRAINT app parent parent_pkey postgres
        3500; 2606 16700 FK CONSTRAINT app child child_parent_id_fkey postgres
        3501; 2606 16701 FK CONSTRAINT app cache cache_parent_id_fkey postgres
        3502; 2606 16702 FK CONSTRAINT app cache_wide cache_wide_parent_id_fkey postgres
        3600; 2620 16800 TRIGGER app child child_audit postgres
        """

    static func names(_ entries: [RestoreContents.Entry]) -> [String] { entries.map(\.tag) }

    /// Every key left for post-data moves but those on an unlogged table (the replay brings none of its rows):
    /// `app.cache` is unlogged, `app.cache_wide` is not and keeps its key in the early pass; triggers never move.
    @Test func keysMoveButThoseOfUnloggedTables() {
        let contents = RestoreContents.parse(Self.listing)
        let all = ForeignKeysBeforeReplay.entries(contents, left: { _ in true }, unlogged: [])
        #expect(Self.names(all) == ["child child_parent_id_fkey", "cache cache_parent_id_fkey", "cache_wide cache_wide_parent_id_fkey"])
        let unlogged = [ForeignKeysBeforeReplay.Unlogged(schema: "app", name: "cache", inHierarchy: false)]
        // An unlogged table the listing does not name as the catalog does (a newline listed as a space): nothing moves.
        let misnamed = [ForeignKeysBeforeReplay.Unlogged(schema: "app", name: "cache\nwide", inHierarchy: false)]
        #expect(ForeignKeysBeforeReplay.entries(contents, left: { _ in true }, unlogged: misnamed).isEmpty)
        #expect(Self.names(ForeignKeysBeforeReplay.entries(contents, left: { _ in true }, unlogged: unlogged))
                == ["child child_parent_id_fkey", "cache_wide cache_wide_parent_id_fkey"])
        // The same name in another schema is another table.
        let elsewhere = [ForeignKeysBeforeReplay.Unlogged(schema: "other", name: "cache", inHierarchy: false)]
        #expect(ForeignKeysBeforeReplay.entries(contents, left: { _ in true }, unlogged: elsewhere).count == 3)
        // What post-data no longer has to run (built or run ahead already) is not run twice.
        #expect(Self.names(ForeignKeysBeforeReplay.entries(contents, left: { !$0.tag.hasPrefix("child ") }, unlogged: []))
                == ["cache cache_parent_id_fkey", "cache_wide cache_wide_parent_id_fkey"])
    }

    /// Nothing moves when an unlogged table is in a partition hierarchy (a key on the hierarchy covers rows the replay
    /// does not bring), nor while partitions' indexes are left for post-data to attach (they come first).
    @Test func nothingMovesWithAnUnloggedPartitionOrAnAttachmentLeft() {
        let contents = RestoreContents.parse(Self.listing)
        let partition = [ForeignKeysBeforeReplay.Unlogged(schema: "app", name: "cache", inHierarchy: true)]
        #expect(ForeignKeysBeforeReplay.entries(contents, left: { _ in true }, unlogged: partition).isEmpty)
        let attaching = RestoreContents.parse(Self.listing + "\n3700; 0 16900 INDEX ATTACH app events_2020_pkey postgres")
        #expect(ForeignKeysBeforeReplay.entries(attaching, left: { _ in true }, unlogged: []).isEmpty)
        // An attachment the restore did itself is no reason to keep the keys back.
        #expect(ForeignKeysBeforeReplay.entries(attaching, left: { $0.type != "INDEX ATTACH" }, unlogged: []).count == 3)
    }
}
