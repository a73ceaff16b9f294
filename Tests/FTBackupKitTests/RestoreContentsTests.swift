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

    /// The listing reader as it was before its byte search for "; " (Foundation's `range(of:)`), kept to compare with.
    static func referenceEntry(_ line: String, schemas: [String], roles: [String]) -> (String, String?, String)? {
        guard !line.hasPrefix(";"), let separator = line.range(of: "; ") else { return nil }
        let fields = line[separator.upperBound...].split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3 else { return nil }
        let rest = String(fields[2])
        guard let type = RestoreContents.types.first(where: { rest.hasPrefix($0 + " ") }) else { return nil }
        let afterType = rest.dropFirst(type.count + 1)
        if let schema = schemas.first(where: { $0.contains(" ") && afterType.hasPrefix($0 + " ") }) {
            let remainder = afterType.dropFirst(schema.count + 1)
            let owner = roles.first { remainder.hasSuffix(" " + $0) }
            guard let tagEnd = owner.map({ remainder.index(remainder.endIndex, offsetBy: -($0.count + 1)) }) ?? remainder.lastIndex(of: " ") else { return nil }
            return (type, schema, String(remainder[..<tagEnd]))
        }
        if let owner = roles.first(where: { $0.contains(" ") && afterType.hasSuffix(" " + $0) }), let schemaEnd = afterType.firstIndex(of: " ") {
            let tagEnd = afterType.index(afterType.endIndex, offsetBy: -(owner.count + 1))
            guard schemaEnd < tagEnd else { return nil }
            let schema = afterType[..<schemaEnd]
            return (type, schema == "-" ? nil : String(schema), String(afterType[afterType.index(after: schemaEnd)..<tagEnd]))
        }
        let parts = afterType.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, let ownerStart = parts[1].lastIndex(of: " ") else { return nil }
        return (type, parts[0] == "-" ? nil : String(parts[0]), String(parts[1][..<ownerStart]))
    }

    /// The listing reader reads every line as the old one did: the same entries (type, schema, tag) on 20,000
    /// random lines built from a listing's pieces, odd ones among them (a "; " or ";" inside a name, no space after
    /// the id, names with spaces, non-ASCII and combining characters, a line that is only a comment). Lines with a
    /// combining mark right after "; " are left out (see below).
    @Test func everyListingLineReadsAsBefore() {
        let schemas = ["my schema", "audit", "élèves"].sorted { $0.count > $1.count }
        let roles = ["app owner", "postgres", "rôle"].sorted { $0.count > $1.count }
        let pieces = ["215", ";", "; ", " ", "2615", "16390", "SCHEMA", "TABLE", "TABLE DATA", "INDEX ATTACH", "PUBLICATION TABLE",
                      "-", "audit", "my schema", "élèves", "log", "a; b", "e\u{301}", "\u{301}", "postgres", "app owner", "rôle",
                      "FK CONSTRAINT", "COMMENT", "x;y", ";;", "naïve"]
        var generator = SystemRandomNumberGenerator()
        var lines = Self.listing.split(separator: "\n").map(String.init)
        for _ in 0..<20_000 {
            var line = Bool.random(using: &generator) ? "\(Int.random(in: 1...9999, using: &generator)); 1259 16500 " : ""
            for _ in 0..<Int.random(in: 1...8, using: &generator) {
                line += pieces.randomElement(using: &generator)! + (Bool.random(using: &generator) ? " " : "")
            }
            // Where "; " is followed by a combining mark, Foundation's search saw no "; " (" \u{301}" is one character),
            // the byte search does: such a line is not pg_restore's (the first "; " follows the entry's number and precedes
            // its class's), and pg_restore itself reads bytes.
            let scalars = Array(line.unicodeScalars)
            if scalars.indices.contains(where: { $0 + 2 < scalars.count && scalars[$0] == ";" && scalars[$0 + 1] == " " && scalars[$0 + 2] == "\u{301}" }) {
                continue  // (by scalars: `contains` on String compares characters, and " \u{301}\u{301}" is not " \u{301}")
            }
            lines.append(line)
        }
        var entries = 0
        for line in lines {
            let new = RestoreContents.entry(line, schemas: schemas, roles: roles).map { ($0.type, $0.schema, $0.tag) }
            let old = Self.referenceEntry(line, schemas: schemas, roles: roles)
            #expect(new?.0 == old?.0 && new?.1 == old?.1 && new?.2 == old?.2, "\(line)")
            if new != nil { entries += 1 }
        }
        #expect(entries > 1_000)
    }
}
