import Foundation
import Testing
@testable import FTBackupKit

/// The schema dump's listing as the restore reads it.
@Suite struct RestoreContentsTests {
    static let listing = """
        ;
        ; Archive created at 2026-11-28 22:18:21 UTC
        ;
        215; 2615 16390 SCHEMA - audit postgres
        230; 1259 16500 TABLE audit log postgres
        3411; 2606 16600 CONSTRAINT audit log log_pkey postgres
        """

    /// pg_restore's data section runs only when it has something the restore does not do itself: a
    /// listing without data entries, or whose sequence values the restore sets, skips it (a pg_restore
    /// run less); an unknown sequence, large objects' data or an entry it cannot read keep it.
    @Test func theDataSectionRunsOnlyForWhatTheRestoreDoesNotSetItself() {
        #expect(!RestoreContents.parse(Self.listing).dataSectionNeeded(settingSequencesItself: []))
        let sequences = Self.listing + "\n3500; 0 0 SEQUENCE SET audit log_id_seq postgres"
        #expect(!RestoreContents.parse(sequences).dataSectionNeeded(settingSequencesItself: ["audit.log_id_seq"]))
        #expect(RestoreContents.parse(sequences).dataSectionNeeded(settingSequencesItself: ["audit.other_seq"]))
        #expect(RestoreContents.parse(Self.listing + "\n3600; 2613 0 BLOBS - BLOBS postgres").dataSectionNeeded(settingSequencesItself: []))
        #expect(RestoreContents.parse(Self.listing + "\n3700; 0 16700 TABLE DATA audit log postgres").dataSectionNeeded(settingSequencesItself: []))
    }
}
