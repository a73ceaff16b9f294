import Foundation
import Logging
import Testing
@testable import FTBackupKit

/// A full backup racing DDL that commits after its snapshot was taken (issue 10, item 1): the backup
/// either holds every table as of its snapshot, or is taken again on a new snapshot; never a
/// complete-looking backup with an emptied table.
@Suite(.serialized) struct SnapshotRaceTests {
    enum Rewrite: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case addVolatileColumn, alterColumnType, vacuumFull, cluster, truncate

        var sql: String {
            switch self {
            case .addVolatileColumn: "ALTER TABLE users.profiles ADD COLUMN seen timestamptz DEFAULT clock_timestamp()"
            case .alterColumnType: "ALTER TABLE users.profiles ALTER COLUMN score TYPE bigint"
            case .vacuumFull: "VACUUM FULL users.profiles"
            case .cluster: "CLUSTER users.profiles USING profiles_pkey"
            case .truncate: "TRUNCATE users.profiles"
            }
        }

        /// VACUUM FULL cannot run in a transaction block: it commits in the hook, before discovery.
        /// The others hold their ACCESS EXCLUSIVE lock while the backup discovers its tables and commit 1 s later.
        var holdsLock: Bool { self != .vacuumFull }
        var testDescription: String { rawValue }
    }

    static let sourceSQL = """
        CREATE SCHEMA users;
        CREATE TABLE users.profiles (id int PRIMARY KEY, name text NOT NULL, score int, bio text);
        INSERT INTO users.profiles SELECT g, 'user ' || g, g % 97, repeat(md5(g::text), 1 + g % 3) FROM generate_series(1, 6000) g;
        DELETE FROM users.profiles WHERE id % 10 = 0;
        CREATE TABLE users.logins (id int PRIMARY KEY, profile_id int, at timestamptz);
        INSERT INTO users.logins SELECT g, g % 5400, timestamptz '2026-01-01' + g * interval '1 minute' FROM generate_series(1, 3000) g;
        """

    @Test(arguments: Rewrite.allCases, [false, true])
    func rewriteCommittedAfterTheSnapshotIsNeverBackedUpEmpty(rewrite: Rewrite, archival: Bool) async throws {
        try await ServerWideResource.replicationSlots.shared { try await TestServer.withDatabase(seeded: false) { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute(Self.sourceSQL)
            if archival { _ = try await ChangeArchivalSetup.setup(db.connectionString, dryRun: false, fixReplicaIdentity: true) }
            do {
                try await race(rewrite, db: db, session: session)
            } catch {
                if archival { _ = try? await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false) }
                throw error
            }
            if archival { _ = try await ChangeArchivalSetup.teardown(db.connectionString, dryRun: false) }
        } }
    }

    func race(_ rewrite: Rewrite, db: TestDatabase, session: DatabaseSession) async throws {
        let before = try await TableFingerprint.compute(session, schemas: ["users"])
        #expect(before.first { $0.table == "profiles" }?.rows == 5400)

        let ddl = try await db.connect("ddl")
        defer { ddl.close() }
        let committer = Committer()
        let log = RecordingLog()
        var options = try BackupOptions.test(db, repo: nil)
        options.logger = log.logger
        options.afterSnapshot = { attempt in
            guard attempt == 1 else { return }
            if rewrite.holdsLock {
                // The same transaction also adds a login: the snapshot sees neither change, a retaken backup both.
                try await committer.start(db.connectionString, "BEGIN; INSERT INTO users.logins VALUES (100000, 1, now()); \(rewrite.sql)",
                                          commitAfter: 1)
            } else {
                try await ddl.execute(rewrite.sql)
            }
        }
        try await TestRepository.with { repo in
            options.repositoryPath = repo.path
            let manifest = try await BackupRunner.runFull(options)
            try await committer.wait()
            let after = try await TableFingerprint.compute(session, schemas: ["users"])
            let retaken = log.events.contains { $0.message.hasPrefix("backup taken again") && $0.metadata["reason"] == "table_changed_after_snapshot" }
            // The backup holds the source as of its snapshot: before the DDL, or after it when it was taken again.
            let expected = retaken ? after : before
            #expect(retaken, "a table rewritten after the snapshot must make the backup take a new one")
            let line = log.events.first { $0.message.hasPrefix("backup taken again") }
            #expect(line?.metadata["tables"]?.description.contains("users.profiles: rewritten") == true, "\(log.events)")
            #expect(manifest.tables.first { $0.name == "profiles" }?.rows == expected.first { $0.table == "profiles" }?.rows)
            try await TestServer.withDatabase(seeded: false) { target in
                _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, jobs: 2, showProgress: false))
                let restored = try await target.connect()
                defer { restored.close() }
                #expect(TableFingerprint.differences(source: expected, restored: try await TableFingerprint.compute(restored, schemas: ["users"])) == [])
                // DDL and data come from the same instant: the restored definition is the source's now.
                #expect(try usersDDL(target.connectionString) == usersDDL(db.connectionString))
            }
        }
    }

    /// A table dropped after the snapshot cannot be read by it (its file is gone); the backup is taken
    /// again without it. A table created after the snapshot is in neither the data nor the DDL.
    @Test func tableDroppedOrCreatedAfterTheSnapshotGivesAConsistentBackup() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute(Self.sourceSQL)
            let ddl = try await db.connect("ddl")
            defer { ddl.close() }
            let log = RecordingLog()
            var options = try BackupOptions.test(db, repo: nil)
            options.logger = log.logger
            options.afterSnapshot = { attempt in
                if attempt == 1 { try await ddl.execute("DROP TABLE users.logins") }
                if attempt == 2 { try await ddl.execute("CREATE TABLE users.late AS SELECT g AS id FROM generate_series(1, 100) g") }
            }
            try await TestRepository.with { repo in
                options.repositoryPath = repo.path
                let manifest = try await BackupRunner.runFull(options)
                #expect(log.events.contains { $0.metadata["reason"] == "table_changed_after_snapshot" && $0.metadata["tables"]?.description.contains("dropped") == true })
                #expect(manifest.tables.map(\.name).sorted() == ["profiles"])
                try await TestServer.withDatabase(seeded: false) { target in
                    _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path, jobs: 2, showProgress: false))
                    let restored = try await target.connect()
                    defer { restored.close() }
                    let source = try await TableFingerprint.compute(session, schemas: ["users"]).filter { $0.table != "late" }
                    #expect(TableFingerprint.differences(source: source, restored: try await TableFingerprint.compute(restored, schemas: ["users"])) == [])
                    #expect(try await restored.query("SELECT to_regclass('users.late') IS NULL AS absent").first?.bool("absent") == true)
                }
            }
        }
    }

    /// DDL that keeps committing after every snapshot: after the last attempt, one line, exit 75, no backup written.
    @Test func tablesChangingOnEveryAttemptFailWithoutWritingABackup() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute(Self.sourceSQL)
            let ddl = try await db.connect("ddl")
            defer { ddl.close() }
            let log = RecordingLog()
            var options = try BackupOptions.test(db, repo: nil)
            options.logger = log.logger
            options.afterSnapshot = { _ in try await ddl.execute("TRUNCATE users.logins") }
            try await TestRepository.with { repo in
                options.repositoryPath = repo.path
                do {
                    _ = try await BackupRunner.runFull(options)
                    Issue.record("the backup should have failed")
                } catch let error as FTBackupError {
                    #expect(error.status == .locked)
                    #expect(error.message.contains("users.logins: rewritten"))
                }
                #expect(log.events.filter { $0.metadata["reason"] == "table_changed_after_snapshot" }.count == BackupRunner.maxAttempts - 1)
                #expect(try repo.repository.entries().isEmpty)
            }
        }
    }

    /// `pg_dump --schema-only --schema=users` text without its random \restrict keys.
    func usersDDL(_ database: ConnectionString) throws -> String {
        let pgDump = try PostgresTools.path(of: "pg_dump", serverVersionNumber: 150000)
        let child = database.forChildProcess()
        var output: [UInt8] = []
        try PostgresTools.run(pgDump, ["--schema-only", "--schema=users", "--no-password", "--dbname=\(child.conninfo)"],
                              environment: child.environment) { output.append(contentsOf: $0) }
        return String(decoding: output, as: UTF8.self).split(separator: "\n")
            .filter { !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }
            // Restores do not yet keep CLUSTER ON (issue 10, item 3: another branch's).
            .filter { !$0.contains(" CLUSTER ON ") }.joined(separator: "\n")
    }
}

extension BackupOptions {
    static func test(_ db: TestDatabase, repo: String?) throws -> BackupOptions {
        BackupOptions(database: db.connectionString, repositoryPath: repo ?? "",
                      policy: try PolicyLoader.parse(PolicyLoader.builtInDefault, source: "(test)"), jobs: 2, showProgress: false)
    }
}

/// Runs a transaction's statements and, a moment later, its COMMIT, on a thread of its own with a
/// connection of its own, and lets the test wait for it.
///
/// Not a Task: the full suite runs many tests at once on a 2-thread cooperative pool, and tests that
/// run the CLI wait for it synchronously; a sleeping Task could then wake minutes late, leaving the
/// transaction open and every other test's slot creation waiting for it.
final class Committer: @unchecked Sendable {
    private let lock = NSLock()
    private var done: [CheckedContinuation<Void, Error>] = []
    private var outcome: Result<Void, Error>?
    private var started = false

    /// Returns once `sql` has run (its locks held); the COMMIT follows `commitAfter` seconds later.
    func start(_ connectionString: ConnectionString, _ sql: String, commitAfter seconds: Double) async throws {
        lock.withLock { started = true }
        try await withCheckedThrowingContinuation { (started: CheckedContinuation<Void, Error>) in
            let thread = Thread { [self] in
                var startedResumed = false
                do {
                    let connection = try PGConnection.connect(connectionString)
                    try connection.execute(sql)
                    started.resume()
                    startedResumed = true
                    Thread.sleep(forTimeInterval: seconds)
                    try connection.execute("COMMIT")
                    finish(.success(()))
                } catch {
                    if !startedResumed { started.resume(throwing: error) }
                    finish(.failure(error))
                }
            }
            thread.start()
        }
    }

    private func finish(_ result: Result<Void, Error>) {
        let waiting = lock.withLock { () -> [CheckedContinuation<Void, Error>] in
            outcome = result
            defer { done = [] }
            return done
        }
        for continuation in waiting { continuation.resume(with: result) }
    }

    /// Waits for the COMMIT (at once when there was no transaction).
    func wait() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            let result = lock.withLock { () -> Result<Void, Error>?? in
                if let outcome { return .some(outcome) }
                if !started { return .some(nil) }
                done.append(continuation)
                return nil
            }
            switch result {
            case .some(.some(let outcome)): continuation.resume(with: outcome)
            case .some(.none): continuation.resume()
            case .none: break
            }
        }
    }
}

/// Keeps every log event of a run, to assert what was logged and why.
final class RecordingLog: @unchecked Sendable {
    struct Event: Sendable, CustomStringConvertible {
        var message: String
        var metadata: [String: String]
        var description: String { "\(message) \(metadata)" }
    }

    private let lock = NSLock()
    private var stored: [Event] = []

    var events: [Event] { lock.withLock { stored } }

    var logger: Logger {
        Logger(label: "test") { _ in Handler(log: self) }
    }

    func append(_ event: Event) { lock.withLock { stored.append(event) } }

    struct Handler: LogHandler {
        let log: RecordingLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            log.append(Event(message: event.message.description, metadata: all.mapValues(\.description)))
        }
    }
}
