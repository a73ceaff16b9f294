import Foundation
import Testing
@testable import FTBackupKit

/// Sessions connected ahead of the restore step that uses them (`SessionsAhead`): what they hand out must be what
/// connecting on time would have given, whatever happened to them while they waited.
@Suite struct SessionsAheadTests {
    /// The setup of every session ahead ran, and each is handed out once.
    @Test func sessionsAheadAreSetUpAndHandedOutOnce() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let ahead = SessionsAhead(2, target: db.connectionString, name: "test-ahead", setup: "SET work_mem = '7MB'")
            ahead.start()
            let first = try await ahead.take(), second = try await ahead.take()
            defer { first.close(); second.close() }
            #expect(first.backendPID != second.backendPID)
            for session in [first, second] {
                #expect(try await session.query("SELECT current_setting('work_mem') AS m").first!.string("m") == "7MB")
            }
            // A third is connected then, set up the same.
            let third = try await ahead.take()
            defer { third.close() }
            #expect(![first.backendPID, second.backendPID].contains(third.backendPID))
            #expect(try await third.query("SELECT current_setting('work_mem') AS m").first!.string("m") == "7MB")
        }
    }

    /// A session the server ended while it waited (idle_session_timeout, pg_terminate_backend) is replaced, not
    /// handed out dead.
    @Test func aSessionEndedWhileWaitingIsReplaced() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let admin = try await db.connect("admin")
            defer { admin.close() }
            let ahead = SessionsAhead(1, target: db.connectionString, name: "test-ahead", setup: "SET work_mem = '7MB'")
            ahead.start()
            // Wait until it is connected and set up, then end it from outside.
            var waiting: Int32 = 0
            #expect(try await Eventually.holds {
                let row = try await admin.query("""
                    SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
                      AND backend_type = 'client backend' AND query LIKE 'SET work_mem%'
                    """).first
                waiting = Int32(try row?.int("pid") ?? 0)
                return waiting != 0
            })
            #expect(try await admin.query("SELECT pg_terminate_backend($1::int) AS t", [Int(waiting)]).first!.bool("t") == true)
            #expect(try await Eventually.holds {
                try await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1::int", [Int(waiting)]).first!.int("n") == 0
            })
            let session = try await ahead.take()
            defer { session.close() }
            #expect(session.backendPID != waiting)
            #expect(try await session.query("SELECT current_setting('work_mem') AS m").first!.string("m") == "7MB")
        }
    }

    /// adv30 D2, D3: a connection ahead that failed was tried again on time: a server that accepts and never answers
    /// cost twice the connect timeout, and a wrong password twice the failed logins. Now its own error fails `take()`,
    /// after one attempt (a listener that never answers counts them).
    @Test func aFailedConnectionAheadIsNotTriedAgain() async throws {
        let listener = try SilentListener()
        defer { listener.stop() }
        let target = try ConnectionString("host=127.0.0.1 port=\(listener.port) dbname=x user=x sslmode=disable gssencmode=disable connect_timeout=2")
        let ahead = SessionsAhead(1, target: target, name: "test-ahead", setup: "")
        ahead.start()
        await #expect(throws: (any Error).self) { _ = try await ahead.take() }
        #expect(listener.accepted == 1)
    }

    /// adv31: `restore --at --clean` connected its own session and the capture's ahead at once, so a wrong password cost
    /// one failed login more than before. The capture's connects only once the restore's own did: against a server
    /// that never answers, one connection is made in all.
    @Test func aSessionStartedAfterAnotherDoesNotConnectWhenThatOneFailed() async throws {
        let listener = try SilentListener()
        defer { listener.stop() }
        let target = try ConnectionString("host=127.0.0.1 port=\(listener.port) dbname=x user=x sslmode=disable gssencmode=disable connect_timeout=2")
        let first = SessionsAhead(1, target: target, name: "test-first", setup: "")
        let second = SessionsAhead(1, target: target, name: "test-second", setup: "")
        first.start()
        second.start(after: first)
        await #expect(throws: (any Error).self) { _ = try await first.take() }
        await second.finish()
        #expect(listener.accepted == 1)
    }

    /// A connection ahead that fails (a wrong database) fails `take()` with the error connecting on time gives.
    @Test func aFailedConnectionAheadFailsTakeWithTheSameError() async throws {
        let wrong = try TestServer.connectionString(database: "no_such_database_\(UInt32.random(in: 0...UInt32.max))")
        let ahead = SessionsAhead(1, target: wrong, name: "test-ahead", setup: "")
        ahead.start()
        let aheadError = await #expect(throws: (any Error).self) { _ = try await ahead.take() }
        let onTime = await #expect(throws: (any Error).self) { _ = try await DatabaseSession.connect(wrong) }
        #expect(aheadError.map { "\($0)" } == onTime.map { "\($0)" })
        #expect(aheadError.map { "\($0)" }?.contains("no_such_database_") == true)
    }

    /// Sessions never taken end with `finish()`: none is left on the server.
    @Test func sessionsNeverTakenAreClosed() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let admin = try await db.connect("admin")
            defer { admin.close() }
            let ahead = SessionsAhead(2, target: db.connectionString, name: "test-ahead", setup: "SET work_mem = '7MB'")
            ahead.start()
            let count = { try await admin.query("""
                SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
                  AND backend_type = 'client backend'
                """).first!.int("n") ?? -1 }
            #expect(try await Eventually.holds { try await count() == 2 })
            let taken = try await ahead.take()
            defer { taken.close() }
            await ahead.finish()
            #expect(try await Eventually.holds { try await count() == 1 })
            #expect(try await taken.query("SELECT 1 AS one").first!.int("one") == 1)
        }
    }
    /// A role's `CONNECTION LIMIT` is what `ConnectionHeadroom` reads for it (the server's free slots bind a superuser).
    @Test func headroomIsTheTightestLimitThatBindsTheRole() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let admin = try await db.connect("admin")
            defer { admin.close() }
            let role = "ftb_headroom_\(UInt32.random(in: 0...UInt32.max))"
            try await admin.execute("CREATE ROLE \(role) LOGIN PASSWORD 'headroom-secret' CONNECTION LIMIT 5")
            defer { Task { try? await TestServer.admin().execute("DROP ROLE IF EXISTS \(role)") } }
            let limited = try await DatabaseSession.connect(try ConnectionString("\(try TestServer.dsn) dbname=\(db.name) user=\(role) password=headroom-secret"))
            #expect(try await ConnectionHeadroom.free(limited) == 4)
            limited.close()
            let free = try await ConnectionHeadroom.free(admin)
            let server = try await admin.query("""
                SELECT current_setting('max_connections')::int - (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend') AS n
                """).first!.int("n")!
            #expect(abs(free - server) <= 20, "\(free) against \(server): other suites connect meanwhile")
        }
    }

    /// adv30 D1: the load workers' sessions connected ahead held their slots beside pre-data's pg_restore, so a restore
    /// needed one connection more than it always had: a role limited to what a restore -j2 had needed (its own session,
    /// the capture's and its pg_dump, or its own and two load workers) failed in pre-data, with --clean after the drop.
    /// Sessions connect ahead only where the server has room for them; both restores below succeed and are exact.
    @Test func aRestoreWithinTheConnectionsItAlwaysNeededStillSucceeds() async throws {
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute("""
                CREATE SCHEMA lim;
                CREATE TABLE lim.a (id int PRIMARY KEY, v text, n int);
                CREATE TABLE lim.b (id int PRIMARY KEY, a_id int REFERENCES lim.a, w text);
                CREATE TABLE lim.c (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, t text);
                CREATE INDEX a_n ON lim.a (n);
                INSERT INTO lim.a SELECT g, 'v' || g, g % 11 FROM generate_series(1, 3000) g;
                INSERT INTO lim.b SELECT g, 1 + g % 3000, repeat('w', g % 50) FROM generate_series(1, 4000) g;
                INSERT INTO lim.c (t) SELECT 't' || g FROM generate_series(1, 2000) g
                """)
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                var options = try await Self.limitedTarget(connections: 3, repo: repo)
                defer { Self.dropLimitedTarget(options) }
                options.jobs = 2
                _ = try await RestoreRunner.run(options)
                options.schemas = ["lim"]
                options.clean = true
                _ = try await RestoreRunner.run(options)
                let t = try await DatabaseSession.connect(options.target)
                defer { t.close() }
                #expect(TableFingerprint.differences(source: try await TableFingerprint.compute(s), restored: try await TableFingerprint.compute(t)) == [])
            }
        }
    }

    /// adv30 D4: when pre-data's pg_restore (one transaction) failed, here because the role's CONNECTION LIMIT left it no
    /// connection, the error said the target was "left half-built" and sent the user to --clean; nothing had been created.
    @Test func aPreDataThatFailedSaysTheTargetIsAsItWas() async throws {
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute("CREATE SCHEMA lim; CREATE TABLE lim.a (id int PRIMARY KEY); INSERT INTO lim.a SELECT generate_series(1, 10)")
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                let options = try await Self.limitedTarget(connections: 1, repo: repo)
                defer { Self.dropLimitedTarget(options) }
                let error = await #expect(throws: FTBackupError.self) { _ = try await RestoreRunner.run(options) }
                let message = error.map { "\($0)" } ?? ""
                #expect(message.contains("too many connections"), "\(message)")
                #expect(message.contains("none of the backup's objects was created: the target is as it was"), "\(message)")
                #expect(!message.contains("half-built"), "\(message)")
                #expect(error?.hint?.contains("--clean") == false, "\(error?.hint ?? "")")
                let t = try await DatabaseSession.connect(try TestServer.connectionString(database: options.target.option("dbname")!))
                defer { t.close() }
                #expect(try await t.query("SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'lim'").first!.int("n") == 0)
            }
        }
    }

    /// adv30: a target database's idle timeouts (`idle_session_timeout`, `idle_in_transaction_session_timeout`, set to
    /// end an application's forgotten sessions) ended the restore's own session while its data phase ran, and the
    /// restore failed in its sequences phase. ftbackup's sessions and the tools it runs set both off.
    @Test func aTargetsIdleTimeoutsDoNotEndTheRestoresSessions() async throws {
        try await TestServer.withDatabase { source in
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                try await TestServer.withDatabase(seeded: false) { target in
                    let admin = try await TestServer.admin()
                    defer { admin.close() }
                    try await admin.execute("ALTER DATABASE \(target.name) SET idle_session_timeout = '100ms'")
                    try await admin.execute("ALTER DATABASE \(target.name) SET idle_in_transaction_session_timeout = '100ms'")
                    var options = RestoreOptions(target: target.connectionString, repositoryPath: repo.path, showProgress: false)
                    options.jobs = 2
                    _ = try await RestoreRunner.run(options)
                    let s = try await source.connect(), t = try await target.connect()
                    defer { s.close(); t.close() }
                    #expect(TableFingerprint.differences(source: try await TableFingerprint.compute(s), restored: try await TableFingerprint.compute(t)) == [])
                }
            }
        }
    }

    /// adv31 D3: the backup's snapshot holder (the replication connection that exported the slot's snapshot) sits idle
    /// in its transaction for the whole copy, and a source's `idle_in_transaction_session_timeout` ended it: the full
    /// failed "invalid snapshot identifier" when a copy worker imported the snapshot later. It takes the idle timeouts
    /// off before its first command; a worker importing after three times the timeout still finds the snapshot.
    @Test func aSourcesIdleTimeoutsDoNotEndTheBackupsSnapshotHolder() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let admin = try await TestServer.admin()
            defer { admin.close() }
            try await admin.execute("ALTER DATABASE \(db.name) SET idle_in_transaction_session_timeout = '300ms'")
            try await admin.execute("ALTER DATABASE \(db.name) SET idle_session_timeout = '300ms'")
            let coordinator = try await db.connect("coordinator")
            defer { coordinator.close() }
            let holder = ReplicationSlotSnapshotSource(database: db.connectionString, waitSeconds: 30)
            let exported = try await holder.export(on: coordinator)
            #expect(exported.origin == "replication-slot")
            try await Task.sleep(for: .milliseconds(900))
            let worker = try await db.connect("worker")
            defer { worker.close() }
            try await worker.withConnection { try $0.beginTransaction(importingSnapshot: exported.id) }
            try await worker.execute("COMMIT")
            await holder.release(on: coordinator)
        }
    }

    /// adv31 D2: the headroom was read for `current_user`, and a DSN whose options `SET ROLE` to a superuser made a limited
    /// login role look unlimited; sessions connected ahead and pre-data's pg_restore found no slot. The server counts the
    /// login role's limit, and so does the headroom now.
    @Test func headroomCountsTheLoginRoleNotTheRoleItSetsTo() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let admin = try await db.connect("admin")
            defer { admin.close() }
            let suffix = UInt32.random(in: 0...UInt32.max)
            let (login, boss) = ("ftb_login_\(suffix)", "ftb_boss_\(suffix)")
            try await admin.execute("CREATE ROLE \(boss) SUPERUSER NOLOGIN; CREATE ROLE \(login) LOGIN PASSWORD 'login-secret' CONNECTION LIMIT 5 IN ROLE \(boss)")
            defer { Task { try? await TestServer.admin().execute("DROP ROLE IF EXISTS \(login); DROP ROLE IF EXISTS \(boss)") } }
            let session = try await DatabaseSession.connect(try ConnectionString("\(try TestServer.dsn) dbname=\(db.name) user=\(login) password=login-secret options='-c role=\(boss)'"))
            defer { session.close() }
            #expect(try await session.query("SELECT current_user::text AS u").first!.string("u") == boss)
            #expect(try await ConnectionHeadroom.free(session) == 4)
        }
    }

    /// adv31 D1: a command that ended while a session ahead was still connecting exited with that connection inside
    /// libpq and OpenSSL, and the process crashed (exit 139, 4 runs in 40 of a refused `restore --at`). Here the
    /// restore refuses after its load workers' sessions started connecting (a whole-database --clean whose backup
    /// would create a function in `public` the target already has): every run exits 64, none crashes.
    @Test func aRestoreRefusedWhileSessionsConnectAheadExitsCleanly() async throws {
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute("""
                CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1';
                CREATE SCHEMA k; CREATE TABLE k.a (id int PRIMARY KEY); CREATE TABLE k.b (id int PRIMARY KEY);
                CREATE TABLE k.c (id int PRIMARY KEY); CREATE TABLE k.d (id int PRIMARY KEY)
                """)
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                try await TestServer.withDatabase(seeded: false) { target in
                    let t = try await target.connect()
                    defer { t.close() }
                    try await t.execute("CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 2'")
                    for _ in 1...12 {
                        let run = try await FTBackupBinary.run(["restore", "--clean", "--yes", "-j", "4", "--repo", repo.path, "--target", target.connectionString.raw])
                        #expect(run.status == 64, "\(run.stderr)")
                        #expect(run.stderr.contains("already has"), "\(run.stderr)")
                        #expect(!run.stderr.contains("crashed"), "\(run.stderr)")
                    }
                }
            }
        }
    }

    /// Restore options (`--no-owner`) into a new database owned by a new login role limited to `connections` sessions.
    static func limitedTarget(connections: Int, repo: TestRepository) async throws -> RestoreOptions {
        let admin = try await TestServer.admin()
        defer { admin.close() }
        let suffix = UInt32.random(in: 0...UInt32.max)
        let (role, database) = ("ftb_limited_\(suffix)", "ftb_limited_target_\(suffix)")
        try await admin.execute("CREATE ROLE \(role) LOGIN PASSWORD 'limited-secret' CONNECTION LIMIT \(connections)")
        try await admin.execute("CREATE DATABASE \(database) OWNER \(role)")
        var options = RestoreOptions(target: try ConnectionString("\(try TestServer.dsn) dbname=\(database) user=\(role) password=limited-secret"),
                                     repositoryPath: repo.path, showProgress: false)
        options.noOwner = true
        return options
    }

    static func dropLimitedTarget(_ options: RestoreOptions) {
        let (database, role) = (options.target.option("dbname")!, options.target.option("user")!)
        Task {
            let cleanup = try await TestServer.admin()
            defer { cleanup.close() }
            try? await TestServer.drop(database, admin: cleanup)
            try? await cleanup.execute("DROP ROLE IF EXISTS \(role)")
        }
    }
}

/// A TCP listener on loopback that accepts connections, counts them, and never answers (a server that hangs).
final class SilentListener: @unchecked Sendable {
    let port: Int
    private let fd: Int32
    private let lock = NSLock()
    private var count = 0
    private var held: [Int32] = []

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0, listen(fd, 16) == 0 else { throw FTBackupError(.failure, "cannot listen on loopback") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [weak self] in
            while true {
                let client = accept(fd, nil, nil)
                guard client >= 0, let self else { return }
                self.lock.withLock { self.count += 1; self.held.append(client) }
            }
        }
    }

    var accepted: Int { lock.withLock { count } }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        lock.withLock { for client in held { close(client) } }
    }
}
