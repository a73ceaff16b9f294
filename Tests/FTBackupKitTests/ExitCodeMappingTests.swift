import Testing
@testable import FTBackupKit

/// Issue 10 item 9: server failures map by SQLSTATE to the documented exit codes, never to 64 (bad usage).
@Suite struct ExitCodeMappingTests {
    @Test(arguments: [
        ("08006", FTBackupKit.ExitStatus.unavailable), ("08001", .unavailable), ("57P01", .unavailable), ("57P03", .unavailable),
        ("3D000", .unavailable), ("53300", .unavailable),
        ("28P01", .permission), ("28000", .permission), ("42501", .permission),
        ("22P02", .dataError), ("22003", .dataError), ("23505", .dataError), ("23503", .dataError), ("XX001", .dataError), ("XX000", .dataError),
        ("53100", .cannotWrite), ("58030", .cannotWrite),
        ("42P01", .failure), ("42601", .failure), ("3F000", .failure), ("40001", .failure), ("55P03", .failure), ("53200", .failure),
        ("57014", .failure),
    ])
    func sqlStateMapsToTheDocumentedCode(sqlState: String, expected: FTBackupKit.ExitStatus) {
        #expect(PostgresError.exitStatus(sqlState: sqlState, connectionLost: false) == expected)
        #expect(PostgresError(sqlState: sqlState, message: "m").exitStatus == expected)
    }

    @Test func noSQLStateIsUnavailableOnlyWhenTheConnectionIsGone() {
        #expect(PostgresError.exitStatus(sqlState: nil, connectionLost: true) == .unavailable)
        #expect(PostgresError.exitStatus(sqlState: nil, connectionLost: false) == .failure)
        #expect(PostgresError.exitStatus(sqlState: "42P01", connectionLost: true) == .unavailable)
    }

    @Test func noServerErrorIsBadUsage() {
        let classes = ["00", "01", "02", "03", "08", "09", "0A", "0B", "0F", "0L", "0P", "0Z", "20", "21", "22", "23", "24", "25", "26", "27",
                       "28", "2B", "2D", "2F", "34", "38", "39", "3B", "3D", "3F", "40", "42", "44", "53", "54", "55", "57", "58", "72",
                       "F0", "HV", "P0", "XX"]
        for code in classes { #expect(PostgresError.exitStatus(sqlState: code + "000", connectionLost: false) != .usage, "\(code)") }
    }

    @Test(arguments: [
        ("pg_restore: error: could not execute query: ERROR:  insert or update on table \"child\" violates foreign key constraint \"child_fk\"", FTBackupKit.ExitStatus.dataError),
        ("pg_restore: error: could not execute query: ERROR:  could not create unique index \"u\"", .dataError),
        ("pg_restore: error: could not execute query: ERROR:  permission denied for schema app", .permission),
        ("pg_dump: error: connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password authentication failed for user \"x\"", .permission),
        ("pg_dump: error: connection to server at \"127.0.0.1\", port 1 failed: Connection refused", .unavailable),
        ("pg_restore: error: could not execute query: ERROR:  could not extend file \"base/1/2\": No space left on device", .cannotWrite),
        ("pg_restore: error: could not execute query: ERROR:  role \"ghost\" does not exist", .failure),
        ("pg_restore: error: could not execute query: ERROR:  syntax error at or near \"x\"", .failure),
    ])
    func toolFailuresMapByTheirErrorText(summary: String, expected: FTBackupKit.ExitStatus) {
        #expect(PostgresTools.exitStatus(ofFailure: summary) == expected)
    }
}
