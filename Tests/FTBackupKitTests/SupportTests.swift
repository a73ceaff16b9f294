import Foundation
import Testing
@testable import FTBackupKit

@Suite struct ConnectionStringTests {
    @Test func redactedFormNeverShowsThePassword() throws {
        let keyValue = try ConnectionString("host=db1 port=5433 dbname=fasttrack user=ops password=s3cr3t sslmode=require")
        #expect(keyValue.redacted == "host=db1 port=5433 dbname=fasttrack user=ops sslmode=require")
        #expect(!keyValue.description.contains("s3cr3t"))
        let uri = try ConnectionString("postgresql://ops:s3cr3t@db1:5433/fasttrack?application_name=x")
        #expect(!uri.redacted.contains("s3cr3t"))
        #expect(uri.redacted.contains("dbname=fasttrack"))
        #expect(uri.scrub("failed for s3cr3t") == "failed for ********")
    }

    @Test func malformedStringIsRefusedWithoutEchoingIt() throws {
        let error = #expect(throws: FTBackupError.self) { _ = try ConnectionString("host=db password=s3cr3t oops") }
        #expect(error?.status == .usage)
        #expect(error?.description.contains("s3cr3t") == false)
        #expect(error?.description.contains("oops") == false)
    }

    @Test func emptyStringMeansLibpqDefaults() throws {
        #expect(try ConnectionString("").redacted == "(libpq defaults)")
    }
}

@Suite struct SchemaKindTests {
    @Test func classifiesByNamingConvention() {
        #expect(SchemaKind(schemaName: "users") == .shared)
        #expect(SchemaKind(schemaName: "audit") == .shared)
        #expect(SchemaKind(schemaName: "sprint_00_woop") == .tool)
        #expect(SchemaKind(schemaName: "sprint_29_digital_heart") == .tool)
        #expect(SchemaKind(schemaName: "sprint_5_short") == .other)
        #expect(SchemaKind(schemaName: "sprint_05_") == .other)
        #expect(SchemaKind(schemaName: "sprint_05_Upper") == .other)
        #expect(SchemaKind(schemaName: "public") == .other)
    }
}

@Suite struct LocalStorageTests {
    func temporaryRoot() -> String {
        let path = NSTemporaryDirectory() + "ftbackup-storage-\(UUID().uuidString)"
        return path + "/repo"
    }

    @Test func fileAppearsOnlyOnCommitWithPrivateModes() throws {
        let storage = LocalStorage(root: temporaryRoot())
        defer { try? FileManager.default.removeItem(atPath: (storage.root as NSString).deletingLastPathComponent) }
        let writer = try storage.openWrite("backups/b1/data.zst")
        try Array("hello".utf8).withUnsafeBytes { try writer.write($0) }
        #expect(try !storage.exists("backups/b1/data.zst"))
        try writer.commit()
        #expect(try storage.exists("backups/b1/data.zst"))
        #expect(try storage.readAll("backups/b1/data.zst") == Array("hello".utf8))
        #expect(try storage.list("backups/b1").map(\.path) == ["backups/b1/data.zst"])
        let fileMode = try FileManager.default.attributesOfItem(atPath: storage.root + "/backups/b1/data.zst")[.posixPermissions] as? Int
        let folderMode = try FileManager.default.attributesOfItem(atPath: storage.root + "/backups/b1")[.posixPermissions] as? Int
        #expect(fileMode == 0o600)
        #expect(folderMode == 0o700)
    }

    @Test func abortLeavesNothingBehind() throws {
        let storage = LocalStorage(root: temporaryRoot())
        defer { try? FileManager.default.removeItem(atPath: (storage.root as NSString).deletingLastPathComponent) }
        let writer = try storage.openWrite("x/partial")
        try Array("half".utf8).withUnsafeBytes { try writer.write($0) }
        writer.abort()
        #expect(try storage.list("x").isEmpty)
    }

    @Test func readOnlyLocationIsACannotWriteError() throws {
        let storage = LocalStorage(root: "/proc/ftbackup-repo")
        let error = #expect(throws: FTBackupError.self) { _ = try storage.openWrite("f") }
        #expect(error?.status == .cannotWrite || error?.status == .dataError)
    }

    /// A full filesystem, simulated by pointing the temporary file at /dev/full (writes fail with ENOSPC).
    @Test func fullDiskIsACannotWriteErrorAndLeavesNothingLookingComplete() throws {
        let storage = LocalStorage(root: temporaryRoot())
        defer { try? FileManager.default.removeItem(atPath: (storage.root as NSString).deletingLastPathComponent) }
        try storage.makeFolder("b")
        try FileManager.default.createSymbolicLink(atPath: "\(storage.root)/b/file.zst.tmp-\(getpid())", withDestinationPath: "/dev/full")
        let writer = try storage.openWrite("b/file.zst")
        let error = #expect(throws: FTBackupError.self) {
            try [UInt8](repeating: 7, count: 1 << 20).withUnsafeBytes { try writer.write($0) }
            try writer.commit()
        }
        writer.abort()
        #expect(error?.status == .cannotWrite)
        #expect(error?.message.contains("No space left on device") == true)
        #expect(error?.hint?.contains("free space") == true)
        #expect(try !storage.exists("b/file.zst"))
    }

    @Test func removeDeletesFoldersRecursively() throws {
        let storage = LocalStorage(root: temporaryRoot())
        defer { try? FileManager.default.removeItem(atPath: (storage.root as NSString).deletingLastPathComponent) }
        try storage.writeAll("a/b/c", [1, 2, 3])
        try storage.remove("a")
        #expect(try !storage.exists("a"))
    }
}

@Suite struct OutputTests {
    @Test func timesAreShownWithTheirZone() {
        let date = Date(timeIntervalSince1970: 1_795_000_000)
        #expect(Timestamps.display(date).hasSuffix(" UTC"))
        #expect(Timestamps.iso8601UTC(date).hasSuffix("Z"))
        #expect(Timestamps.display(date, timeZone: TimeZone(identifier: "Europe/Berlin")!).hasSuffix("+01:00"))
    }

    @Test func byteCountsUseBinaryUnits() {
        #expect(ByteCount.format(512) == "512 B")
        #expect(ByteCount.format(1536) == "1.5 KiB")
        #expect(ByteCount.format(3 << 30) == "3.0 GiB")
    }
}

@Suite struct RecoveryTargetTests {
    @Test func acceptsISOTimesWithAnOffsetOrAZone() throws {
        let utc = try RecoveryTarget.parse("2026-11-20T13:32:00Z")
        #expect(try RecoveryTarget.parse("2026-11-20T14:32:00+01:00") == utc)
        #expect(try RecoveryTarget.parse("2026-11-20 13:32 UTC") == utc)
        #expect(try RecoveryTarget.parse("2026-11-20 14:32 Europe/Berlin") == utc)
        #expect(try RecoveryTarget.parse("2026-11-20T08:32:00-0500") == utc)
        #expect(try RecoveryTarget.parse("2026-11-20T13:32:00.250Z") == utc.addingTimeInterval(0.25))
    }

    @Test(arguments: ["2026-11-20 14:32", "2026-11-20T14:32:00", "yesterday", "2026-02-30 10:00 UTC", "2026-11-20 25:00 UTC",
                      "2026-13-01 10:00 UTC", "2026-00-15T10:00:00Z", "2026-12-32 10:00 UTC", "2026-11-00 10:00 UTC",
                      "2026-11-20 14:32 Mars/Olympus", "14:32 UTC", ""])
    func refusesTimesWithoutAZoneOrThatDoNotParse(text: String) throws {
        let error = #expect(throws: FTBackupError.self) { _ = try RecoveryTarget.parse(text) }
        #expect(error?.status == .usage)
        #expect(error?.hint?.contains("2026-11-20T14:32:00+01:00") == true)
    }
}

/// Issue 9, item 11: `--at` never reads a time it cannot tell exactly.
@Suite struct RecoveryTargetStrictnessTests {
    @Test(arguments: ["2026-11-20T14:32:00+00:60", "2026-11-20T14:32:00+00:99", "2026-11-20T14:32:00+01:75",
                      "2026-11-20T14:32:00-0260", "2026-11-20T14:32:00+15:00", "2026-11-20T14:32:00+2400"])
    func refusesOffsetsOutOfRange(text: String) throws {
        let error = #expect(throws: FTBackupError.self) { _ = try RecoveryTarget.parse(text) }
        #expect(error?.status == .usage)
        #expect(error?.message.contains("not a UTC offset") == true, "\(String(describing: error))")
    }

    @Test func acceptsOffsetsInRange() throws {
        let utc = try RecoveryTarget.parse("2026-11-20T13:32:00Z")
        #expect(try RecoveryTarget.parse("2026-11-20T14:31:00+00:59") == utc)
        #expect(try RecoveryTarget.parse("2026-11-21T03:32:00+14:00") == utc)
        #expect(try RecoveryTarget.parse("2026-11-20T19:02:00+05:30") == utc)
    }

    /// 2026-10-25 02:30 happened twice in Berlin (clocks back from 03:00 CEST to 02:00 CET).
    @Test func refusesAnAmbiguousLocalTimeNamingBothCandidates() throws {
        let error = #expect(throws: FTBackupError.self) { _ = try RecoveryTarget.parse("2026-10-25 02:30 Europe/Berlin") }
        #expect(error?.status == .usage)
        #expect(error?.message.contains("ambiguous") == true, "\(String(describing: error))")
        #expect(error?.message.contains("2026-10-25T02:30:00+02:00 (2026-10-25T00:30:00.000Z)") == true, "\(String(describing: error))")
        #expect(error?.message.contains("2026-10-25T02:30:00+01:00 (2026-10-25T01:30:00.000Z)") == true, "\(String(describing: error))")
        // Either candidate, given with its offset, is accepted.
        #expect(try RecoveryTarget.parse("2026-10-25T02:30:00+02:00") == RecoveryTarget.parse("2026-10-25T00:30:00Z"))
        // Just outside the overlap, the zone name is enough.
        #expect(try RecoveryTarget.parse("2026-10-25 01:59:59 Europe/Berlin") == RecoveryTarget.parse("2026-10-24T23:59:59Z"))
        #expect(try RecoveryTarget.parse("2026-10-25 03:00 Europe/Berlin") == RecoveryTarget.parse("2026-10-25T02:00:00Z"))
    }

    /// 2026-03-29 02:30 never happened in Berlin (clocks forward from 02:00 CET to 03:00 CEST).
    @Test func refusesANonexistentLocalTime() throws {
        let error = #expect(throws: FTBackupError.self) { _ = try RecoveryTarget.parse("2026-03-29 02:30 Europe/Berlin") }
        #expect(error?.status == .usage)
        #expect(error?.message.contains("does not exist in Europe/Berlin") == true, "\(String(describing: error))")
        #expect(try RecoveryTarget.parse("2026-03-29 03:00 Europe/Berlin") == RecoveryTarget.parse("2026-03-29T01:00:00Z"))
        #expect(try RecoveryTarget.parse("2026-03-29 01:59 Europe/Berlin") == RecoveryTarget.parse("2026-03-29T00:59:00Z"))
    }

    /// The recoverable window's end is shown (and stored) to the microsecond and read back exactly.
    @Test func microsecondTimesRoundTrip() throws {
        let commit = PgOutputDecoder.date(fromPostgresMicroseconds: 848_000_000_123_457)
        let written = Timestamps.iso8601UTCMicroseconds(commit)
        #expect(written.hasSuffix(".123457Z"), "\(written)")
        #expect(PgOutputDecoder.postgresMicroseconds(from: Timestamps.parseISO8601(written)!) == 848_000_000_123_457)
        let shown = Timestamps.displayExact(commit)
        #expect(shown.hasSuffix(".123457 UTC"), "\(shown)")
        #expect(PgOutputDecoder.postgresMicroseconds(from: try RecoveryTarget.parse(shown)) == 848_000_000_123_457)
        // Millisecond records read exactly as before.
        #expect(Timestamps.parseISO8601("2026-11-20T13:32:00.250Z") == (try RecoveryTarget.parse("2026-11-20T13:32:00.250Z")))
    }
}

/// The fast reading of manifest dates gives Foundation's `Date` bit for bit, and leaves what it does not take to it.
@Suite struct CanonicalISO8601Tests {
    @Test func everyCanonicalFormReadsAsFoundationReadsIt() {
        var generator = SystemRandomNumberGenerator()
        let offsets = ["Z", "+00:00", "+02:00", "-05:30", "+14:00", "-12:00"]
        var checked = 0
        for _ in 0..<20_000 {
            // From before 1970 to past 2100 (leap days, century years and 2000 among them).
            let seconds = Int64.random(in: -2_208_988_800..<4_200_000_000, using: &generator)
            let whole = Date(timeIntervalSince1970: Double(seconds)).formatted(Date.ISO8601FormatStyle(timeZone: .gmt)).dropLast()
            let digits = Int.random(in: 0...9, using: &generator)
            let fraction = digits == 0 ? "" : "." + String((0..<digits).map { _ in Character(String(Int.random(in: 0...9, using: &generator))) })
            let text = String(whole) + fraction + offsets.randomElement(using: &generator)!
            // The fast reader takes UTC with 4 to 9 fraction digits (what manifests hold); the public reading gives
            // Foundation's Date for every text, whichever path it takes.
            let fast = CanonicalISO8601.parse(text), foundation = Timestamps.parseISO8601WithFoundation(text)
            #expect((fast != nil) == (digits >= 4 && text.hasSuffix("Z")), "\(text)")
            let read = Timestamps.parseISO8601(text)
            #expect(read != nil && read?.timeIntervalSinceReferenceDate.bitPattern == foundation?.timeIntervalSinceReferenceDate.bitPattern,
                    "\(text): \(String(describing: read?.timeIntervalSinceReferenceDate)) against \(String(describing: foundation?.timeIntervalSinceReferenceDate))")
            checked += 1
        }
        #expect(checked == 20_000)
        // What ftbackup writes comes back as written.
        for date in [Date(timeIntervalSince1970: 1_795_946_400.123456), Date(timeIntervalSince1970: 951_782_400.5), Date(timeIntervalSince1970: -1)] {
            #expect(CanonicalISO8601.parse(Timestamps.iso8601UTCMicroseconds(date)) == Timestamps.parseISO8601WithFoundation(Timestamps.iso8601UTCMicroseconds(date)))
            #expect(Timestamps.parseISO8601(Timestamps.iso8601UTC(date)) == Timestamps.parseISO8601WithFoundation(Timestamps.iso8601UTC(date)))
        }
        // Found by this test: Foundation's millisecond arithmetic is not whole second + Double("0.99") here (one bit apart).
        let text = "2000-12-31T17:08:47.99Z"
        #expect(CanonicalISO8601.parse(text) == nil)
        #expect(Timestamps.parseISO8601(text)?.timeIntervalSinceReferenceDate.bitPattern == 13_895_883_041_279_511_102)
    }

    @Test(arguments: ["2026-02-29T10:00:00Z", "2026-02-30T10:00:00.000Z", "2026-11-29T24:00:00Z", "2026-11-29T10:00:60.000Z",
                      "2026-11-29T10:00:00.1234567890Z", "2026-11-29 10:00:00Z", "2026-11-29T10:00:00.123+0200", "2026-11-29T10:00:00.123z",
                      "2026-11-29T10:00:00.Z", "2026-11-29T10:00:00", "+2026-11-29T10:00:00Z", "2026-11-29T10:00:00+24:00", "", "garbage"])
    func aFormItDoesNotTakeIsLeftToFoundation(_ text: String) {
        #expect(CanonicalISO8601.parse(text) == nil)
        #expect(Timestamps.parseISO8601(text) == Timestamps.parseISO8601WithFoundation(text))
    }

    @Test func aLeapDayIsRead() {
        #expect(CanonicalISO8601.parse("2024-02-29T12:00:00.0000Z") == Date(timeIntervalSince1970: 1_709_208_000))
        #expect(CanonicalISO8601.parse("2000-02-29T00:00:00.500000Z") == Date(timeIntervalSince1970: 951_782_400.5))
    }

    /// adv20: Foundation's calendar is Julian before 1582-10-15 (the Gregorian reform), so a date before it reads
    /// days apart from the proleptic Gregorian reckoning; the fast reader must leave those to Foundation.
    @Test(arguments: ["1500-03-01T00:00:00Z", "1582-10-04T00:00:00Z", "1582-10-14T23:30:00-01:00", "1000-01-01T00:00:00.12345Z",
                      "0400-02-29T00:00:00Z", "0001-01-01T00:00:00Z", "0000-01-01T00:00:00Z"])
    func aDateBeforeTheGregorianReformReadsAsFoundationReadsIt(_ text: String) {
        #expect(Timestamps.parseISO8601(text)?.timeIntervalSinceReferenceDate.bitPattern
                    == Timestamps.parseISO8601WithFoundation(text)?.timeIntervalSinceReferenceDate.bitPattern,
                "\(text): \(String(describing: Timestamps.parseISO8601(text)?.timeIntervalSinceReferenceDate)) against \(String(describing: Timestamps.parseISO8601WithFoundation(text)?.timeIntervalSinceReferenceDate))")
    }

    /// adv20: Foundation refuses an offset beyond 18 hours (`+18:01`, `+23:59`): the fast reader must not accept it.
    @Test(arguments: ["2026-11-29T10:00:00+18:01", "2026-11-29T10:00:00-18:01", "2026-11-29T10:00:00+23:59", "2026-11-29T10:00:00.5-19:00",
                      "2026-11-29T10:00:00+18:00", "2026-11-29T10:00:00-18:00"])
    func anOffsetBeyondEighteenHoursReadsAsFoundationReadsIt(_ text: String) {
        #expect(Timestamps.parseISO8601(text) == Timestamps.parseISO8601WithFoundation(text), "\(text)")
    }

    /// adv20: a fraction of 4 to 9 digits that are not ASCII (Arabic-Indic, full-width) matched the Foundation path's
    /// `\d` and then crashed on `Double("0.…")!`: a damaged or hostile manifest date stopped the process instead of
    /// being refused as unreadable.
    @Test(arguments: ["2026-11-29T10:00:00.\u{661}\u{662}\u{663}\u{664}Z", "2026-11-29T10:00:00.12345\u{666}Z",
                      "2026-11-29T10:00:00.\u{FF11}\u{FF12}\u{FF13}\u{FF14}+01:00", "\u{662}\u{660}\u{662}\u{666}-11-29T10:00:00.1234Z"])
    func aDateWithNonASCIIDigitsIsRefusedWithoutACrash(_ text: String) {
        #expect(Timestamps.parseISO8601(text) == nil, "\(text)")
    }
}

/// Issue 9, item 7: one slot per database, whatever punctuation or case the names differ in.
@Suite struct SlotNameTests {
    @Test func namesAreUniqueValidAndShortEnough() {
        let names = ["rev_c-1", "rev_c_1", "Rev_C_1", "rev c 1", "fasttrack", String(repeating: "ä", count: 63), String(repeating: "x", count: 63),
                     String(repeating: "x", count: 62) + "y"]
        let slots = names.map { ChangeArchivalNames.slot(database: $0) }
        #expect(Set(slots).count == names.count, "\(slots)")
        for slot in slots {
            #expect(slot.utf8.count <= 63, "\(slot)")
            #expect(slot.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }, "\(slot)")
            #expect(slot.hasPrefix("ftbackup_archive_"))
        }
        #expect(ChangeArchivalNames.slot(database: "rev_c-1") == ChangeArchivalNames.slot(database: "rev_c-1"))
    }
}

/// Children are started through `setpriv --pdeathsig TERM` only where setpriv knows the option.
@Suite struct DeathSignalWrapperTests {
    @Test func setprivIsUsedOnlyWhenItAcceptsPdeathsig() throws {
        #expect(PostgresTools.setsDeathSignal("/usr/bin/setpriv"), "this machine's util-linux has --pdeathsig")
        #expect(PostgresTools.deathSignalWrapper == "/usr/bin/setpriv")
        // An older setpriv (util-linux before 2.33, RHEL 8) refuses the option: not used, tools start directly.
        let old = NSTemporaryDirectory() + "setpriv-\(UUID().uuidString)"
        try "#!/bin/sh\necho \"setpriv: unrecognized option '$1'\" >&2\nexit 1\n".write(toFile: old, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: old) }
        chmod(old, 0o700)
        #expect(!PostgresTools.setsDeathSignal(old))
    }
}
