import Foundation
import Testing
@testable import FTBackupKit

/// Hostile-operator findings on S3 repositories and `sync` (review of issue 15), each on the real server and moto.
@Suite struct AdversarialS3Tests {
    /// The largest table data file of the newest backup in a local repository (repository-relative path).
    static func largestDataFile(in repo: String) throws -> String {
        let backups = try FileManager.default.contentsOfDirectory(atPath: "\(repo)/backups").sorted()
        let label = try #require(backups.last)
        let folder = "\(repo)/backups/\(label)/data"
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".zst") }
        let sized = try files.map { ($0, (try FileManager.default.attributesOfItem(atPath: "\(folder)/\($0)")[.size] as? Int) ?? 0) }
        let name = try #require(sized.max { $0.1 < $1.1 }?.0)
        return "backups/\(label)/data/\(name)"
    }

    /// A data file that rotted in the source (same size, other bytes) must not reach the copy as if it were good:
    /// sync checks what it reads against the manifest's SHA-256, fails with the data-error code, and copies no
    /// manifest that would make the bad backup look complete in the destination.
    @Test func aSyncRefusesToCopyASourceDataFileThatNoLongerMatchesItsManifest() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                try await S3TestStore.with { store in
                    let full = try await FTBackupBinary.run(["backup", "--type", "full", "--repo", repo.path, "--db", db.connectionString.raw])
                    #expect(full.status == 0, "\(full.stderr)")
                    let rotted = try Self.largestDataFile(in: repo.path)
                    let handle = try #require(FileHandle(forUpdatingAtPath: "\(repo.path)/\(rotted)"))
                    try handle.seek(toOffset: 40)
                    let byte = try #require(try handle.read(upToCount: 1)?.first)
                    try handle.seek(toOffset: 40)
                    try handle.write(contentsOf: Data([byte ^ 0xFF]))
                    try handle.close()

                    let sync = try await FTBackupBinary.run(["sync", "--repo", repo.path, "--to", store.url], environment: store.environment)
                    #expect(sync.status == 65, "status \(sync.status): \(sync.stdout)\(sync.stderr)")
                    #expect(sync.stderr.contains(rotted), "\(sync.stderr)")
                    let keys = try store.keys()
                    #expect(!keys.contains("repo/\(rotted)"), "\(keys)")
                    let label = rotted.split(separator: "/")[1]
                    #expect(!keys.contains("repo/backups/\(label)/manifest.json"), "\(keys)")
                }
            }
        }
    }
}

/// Endpoint configuration that would silently send requests elsewhere, or print a secret.
@Suite struct AdversarialS3EndpointTests {
    /// `AWS_ENDPOINT_URL_S3=http://host:port/sub` used to drop `/sub` and write to the store's root; now it is one line, exit 78.
    @Test func anEndpointWithAPathIsRefusedWithOneLineInsteadOfBeingDroppedSilently() async throws {
        try await TestServer.withDatabase { db in
            try await S3TestStore.with { store in
                let endpoint = try S3TestStore.variable("FTBACKUP_TEST_S3_ENDPOINT")
                let backup = try await store.run(["backup", "--type", "full"], database: db, environment: ["AWS_ENDPOINT_URL_S3": endpoint + "/sub/path"])
                #expect(backup.status == 78, "status \(backup.status): \(backup.stderr)")
                #expect(backup.stderr.contains("has a path"), "\(backup.stderr)")
                #expect(try store.keys().isEmpty)
            }
        }
    }

    /// `http://KEY:SECRET@host` never runs and the secret is not echoed in the error.
    @Test func anEndpointWithUserInformationIsRefusedWithoutEchoingTheSecret() async throws {
        try await S3TestStore.with { store in
            let endpoint = try S3TestStore.variable("FTBACKUP_TEST_S3_ENDPOINT")
            let withSecret = endpoint.replacingOccurrences(of: "://", with: "://someone:Sup3rSecretValue@")
            let info = try await store.run(["info"], environment: ["AWS_ENDPOINT_URL_S3": withSecret])
            #expect(info.status == 78, "status \(info.status): \(info.stderr)")
            #expect(!info.stderr.contains("Sup3rSecretValue") && !info.stdout.contains("Sup3rSecretValue"), "\(info.stderr)")
        }
    }
}

/// Locks between hosts whose clocks disagree.
@Suite struct AdversarialS3LockTests {
    /// `FTBACKUP_S3_LOCK_LEASE` that is not a number of seconds from 1 to a day is refused in one line (exit 78) before
    /// any lock object is written: it used to fall back to 300 s in silence (`600s`, `abc`), or make a lease that
    /// never ends (`inf`: a dead run's lock could never be taken over).
    @Test(arguments: ["inf", "1e30", "600s", "abc", "0", "-5"])
    func aBadLockLeaseIsRefusedInOneLineBeforeAnyLock(_ value: String) async throws {
        try await TestServer.withDatabase { db in
            try await S3TestStore.with { store in
                let outcome = try await store.run(["backup", "--type", "full"], database: db, environment: ["FTBACKUP_S3_LOCK_LEASE": value])
                #expect(outcome.status == 78, "\(value): exit \(outcome.status): \(outcome.stderr)")
                #expect(outcome.stderr.contains("FTBACKUP_S3_LOCK_LEASE is \(value)"), "\(outcome.stderr)")
                #expect(outcome.stderr.split(separator: "\n").count == 1, "\(outcome.stderr)")
                let keys = try store.keys()
                #expect(!keys.contains { $0.contains("locks/") }, "\(keys)")
                let fine = try await store.run(["info"], environment: ["FTBACKUP_S3_LOCK_LEASE": "30"])
                #expect(fine.status != 78, "\(fine.stderr)")
            }
        }
    }

    /// A live holder on a host whose clock is 10 minutes behind wrote a lease end already past by ours: it is still
    /// refused (its object was just written, by the store's clock); a dead holder whose clock was an hour ahead is
    /// taken over once the store says its lease ran out, not an hour later.
    @Test func aLockHolderOnAHostWithAnotherClockIsJudgedByTheStoresClock() async throws {
        try await TestServer.withDatabase { db in
            try await S3TestStore.with { store in
                let storage = try store.storage
                let now = Date().timeIntervalSince1970
                let behind = S3LeaseLock.Holder(id: "b", pid: 1, host: "slow-clock.example", command: "backup --type full",
                                                started: "2026-01-01T00:00:00Z", leaseUntil: now - 600 + 300, leaseSeconds: 300)
                try storage.writeAll("locks/write.lock", S3LeaseLock.encode(behind))
                let refused = try await store.run(["backup", "--type", "full"], database: db)
                #expect(refused.status == 75 && refused.stderr.contains("slow-clock.example"), "status \(refused.status): \(refused.stderr)")
                #expect(!(try store.keys()).contains { $0.hasSuffix("/manifest.json") })

                let ahead = S3LeaseLock.Holder(id: "a", pid: 1, host: "fast-clock.example", command: "backup --type full",
                                               started: "2026-01-01T00:00:00Z", leaseUntil: now + 3600 + 1, leaseSeconds: 1)
                try storage.writeAll("locks/write.lock", S3LeaseLock.encode(ahead))
                try await Task.sleep(for: .seconds(4))
                let takeover = try await store.run(["backup", "--type", "full"], database: db)
                #expect(takeover.status == 0, "status \(takeover.status): \(takeover.stderr)")
            }
        }
    }
}
