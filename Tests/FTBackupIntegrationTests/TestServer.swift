import Foundation
import Testing
@testable import FTBackupKit

/// The scratch server `make test` started (scripts/scratch-pg.sh): its DSN and the seeded template.
enum TestServer {
    static var dsn: String {
        get throws {
            guard let value = ProcessInfo.processInfo.environment["FTBACKUP_TEST_DSN"], !value.isEmpty else {
                throw FTBackupError(.usage, "FTBACKUP_TEST_DSN is not set", hint: "run the tests with `make test`")
            }
            return value
        }
    }

    static var template: String { ProcessInfo.processInfo.environment["FTBACKUP_TEST_TEMPLATE"] ?? "fasttrack_template" }

    static func connectionString(database: String) throws -> ConnectionString {
        try ConnectionString("\(try dsn) dbname=\(database)")
    }

    static func admin() async throws -> DatabaseSession {
        try await DatabaseSession.connect(try ConnectionString(try dsn), name: "test-admin")
    }

    /// Creates a fresh database (a copy of the seeded Fast Track template, or empty), runs `body`,
    /// and drops it afterwards whatever happened.
    /// `options` (with `seeded: false`) are appended to CREATE DATABASE (a template, an encoding).
    static func withDatabase<T>(seeded: Bool = true, options: String = "", _ body: (TestDatabase) async throws -> T) async throws -> T {
        let name = "t_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))"
        let admin = try await admin()
        defer { admin.close() }
        try await admin.execute("CREATE DATABASE \(name)\(seeded ? " TEMPLATE \(template)" : "")\(options.isEmpty ? "" : " \(options)")")
        let database = TestDatabase(name: name, connectionString: try connectionString(database: name))
        do {
            let value = try await body(database)
            try await drop(name, admin: admin)
            return value
        } catch {
            try? await drop(name, admin: admin)
            throw error
        }
    }

    /// Drops a test's database. A replication slot in it blocks `DROP DATABASE` even `WITH (FORCE)`, and a test's
    /// archival slot can still be held for a moment by a walsender that is going away (a killed follower's, or a
    /// teardown still running): its session is ended and the slot dropped first, retrying until the drop goes through.
    static func drop(_ name: String, admin: DatabaseSession) async throws {
        var failure: (any Error)?
        let dropped = try await Eventually.holds(every: .milliseconds(200)) {
            do {
                try await admin.query("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL", [name])
                try await admin.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active", [name])
                try await admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
                return true
            } catch {
                failure = error
                return false
            }
        }
        if !dropped, let failure { throw failure }
    }
}

struct TestDatabase {
    let name: String
    let connectionString: ConnectionString

    func connect(_ label: String = "test") async throws -> DatabaseSession {
        try await DatabaseSession.connect(connectionString, name: label)
    }
}
