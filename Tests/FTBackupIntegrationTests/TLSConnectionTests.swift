import Foundation
import Testing
@testable import FTBackupKit

/// TLS to the database (issue 13): the scratch server has ssl = on with a certificate from a throwaway CA
/// (`FTBACKUP_TEST_CA`), and its role `ftbackup_tls` is refused by pg_hba.conf without TLS — so a command
/// run as that role that succeeds proves every connection it made, its pg_dump and pg_restore children's too,
/// was encrypted.
@Suite struct TLSConnectionTests {
    static var caFile: String {
        get throws {
            guard let file = ProcessInfo.processInfo.environment["FTBACKUP_TEST_CA"], FileManager.default.fileExists(atPath: file) else {
                throw FTBackupError(.usage, "FTBACKUP_TEST_CA is not set", hint: "run the tests with `make test` (scripts/scratch-pg.sh makes the CA)")
            }
            return file
        }
    }

    static func verifiedTLS(_ database: TestDatabase) throws -> String {
        "\(database.connectionString.raw) user=ftbackup_tls sslmode=verify-full sslrootcert=\(try caFile)"
    }

    static func requireTLSPolicy() throws -> String {
        let file = NSTemporaryDirectory() + "tls-policy-\(UUID()).yaml"
        try (PolicyLoader.builtInDefault + "\ndatabase: { require_tls: true }\n").write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    @Test func backupAndRestoreOverVerifiedTLSAsARoleThatOnlyTLSAdmits() async throws {
        try await TestServer.withDatabase { source in
            let s = try await source.connect()
            defer { s.close() }
            try await TestRepository.with { repo in
                let policy = try Self.requireTLSPolicy()
                let backup = try await FTBackupBinary.run(["backup", "--type", "full", "--db", try Self.verifiedTLS(source), "--repo", repo.path,
                                                     "--policy", policy])
                #expect(backup.status == 0, "\(backup.stderr)")
                try await TestServer.withDatabase(seeded: false) { target in
                    let restore = try await FTBackupBinary.run(["restore", "--target", try Self.verifiedTLS(target), "--db", try Self.verifiedTLS(source),
                                                          "--repo", repo.path, "--policy", policy])
                    #expect(restore.status == 0, "\(restore.stderr)")
                    let t = try await target.connect()
                    defer { t.close() }
                    #expect(TableFingerprint.differences(source: try await TableFingerprint.compute(s),
                                                         restored: try await TableFingerprint.compute(t)) == [])
                }
            }
        }
    }

    @Test func checkReportsTheConnectionsEncryptionAndVerification() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let verified = try await FTBackupBinary.run(["check", "--db", try Self.verifiedTLS(db), "--output", "json"])
            #expect(verified.status == 0, "\(verified.stderr)")
            let report = try JSONSerialization.jsonObject(with: Data(verified.stdout.utf8)) as? [String: Any]
            let tls = report?["tls"] as? [String: Any]
            #expect(tls?["encrypted"] as? Bool == true)
            #expect((tls?["protocol"] as? String)?.hasPrefix("TLSv1.") == true)
            #expect(tls?["hostVerified"] as? Bool == true)
            #expect(tls?["sslmode"] as? String == "verify-full")

            try await TestRepository.with { repo in
                try FileManager.default.createDirectory(atPath: repo.path, withIntermediateDirectories: true)
                let info = try await FTBackupBinary.run(["info", "--db", try Self.verifiedTLS(db), "--repo", repo.path])
                #expect(info.stdout.contains("connection: TLS TLSv1."), "\(info.stdout) \(info.stderr)")
                #expect(info.stdout.contains("host name verified (sslmode=verify-full)"), "\(info.stdout)")
            }

            let plain = try await FTBackupBinary.run(["check", "--db", "\(db.connectionString.raw) sslmode=disable"])
            #expect(plain.status == 0, "\(plain.stderr)")
            #expect(plain.stdout.contains("connection: not encrypted (sslmode=disable)"))
        }
    }

    /// The policy requires TLS: a mode that allows plain text is refused before connecting (exit 77, one
    /// line naming it); with no mode given, `require` is added.
    @Test func requiredTLSRefusesPlainTextModesAndAddsRequireWhenNoneIsGiven() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let policy = try Self.requireTLSPolicy()
            for (conninfo, environment) in [("\(db.connectionString.raw) sslmode=disable", [String: String]()),
                                            ("\(db.connectionString.raw) sslmode=prefer", [:]),
                                            (db.connectionString.raw, ["PGSSLMODE": "allow"])] {
                let outcome = try await FTBackupBinary.run(["check", "--db", conninfo, "--policy", policy], environment: environment)
                #expect(outcome.status == 77, "\(conninfo): \(outcome.stderr)")
                #expect(outcome.stderr.split(separator: "\n").count == 1, "\(outcome.stderr)")
                #expect(outcome.stderr.contains("TLS is required"), "\(outcome.stderr)")
            }
            let added = try await FTBackupBinary.run(["check", "--db", db.connectionString.raw, "--policy", policy, "--output", "json"])
            #expect(added.status == 0, "\(added.stderr)")
            let report = try JSONSerialization.jsonObject(with: Data(added.stdout.utf8)) as? [String: Any]
            let tls = report?["tls"] as? [String: Any]
            #expect(tls?["sslmode"] as? String == "require")
            #expect(tls?["encrypted"] as? Bool == true)
            #expect(report?["tlsRequired"] as? Bool == true)
        }
    }

    /// A server certificate that the given root did not sign is refused with one line (exit 77).
    @Test func verifyFullWithAnotherCAIsRefused() async throws {
        let folder = NSTemporaryDirectory() + "other-ca-\(UUID())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        openssl.arguments = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
                             "-keyout", folder + "/ca.key", "-out", folder + "/ca.crt"]
        openssl.standardError = FileHandle.nullDevice
        openssl.standardOutput = FileHandle.nullDevice
        try openssl.run()
        await FTBackupBinary.waitForExit(openssl)
        #expect(openssl.terminationStatus == 0)
        let outcome = try await FTBackupBinary.run(["check", "--db", "\(try TestServer.dsn) sslmode=verify-full sslrootcert=\(folder)/ca.crt"])
        #expect(outcome.status == 77, "\(outcome.stderr)")
        #expect(outcome.stderr.split(separator: "\n").count == 1, "\(outcome.stderr)")
        #expect(outcome.stderr.contains("certificate"), "\(outcome.stderr)")
    }
}
