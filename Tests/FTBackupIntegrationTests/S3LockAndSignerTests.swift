import Foundation
import Testing
@testable import FTBackupKit

/// Runs on two hosts kept apart by lock objects, and the signer checked against botocore.
@Suite struct S3LockAndSignerTests {
    /// Waits until `key` exists in the store (a run has reached its lock).
    static func waitFor(_ key: String, in store: S3TestStore) async throws -> Bool {
        try await Eventually.holds(every: .milliseconds(100)) { try store.keys().contains(key) }
    }

    @Test func twoConcurrentBackupsOnOneS3RepositoryOneIsRefusedAndADeadHoldersLockIsTakenOver() async throws {
        try await TestServer.withDatabase { db in
            try await S3TestStore.with { store in
                // A first backup holds the write lock (paused right after taking it).
                let (first, _, _) = try FTBackupBinary.start(["backup", "--type", "full", "--repo", store.url, "--db", db.connectionString.raw],
                                                             environment: store.environment.merging(["FTBACKUP_FAILPOINT": "backup.holding-write-lock"]) { $1 })
                defer { if first.isRunning { kill(first.processIdentifier, SIGKILL) } }
                #expect(try await Self.waitFor("repo/locks/write.lock", in: store))
                let second = try await store.run(["backup", "--type", "full"], database: db)
                #expect(second.status == 75, "\(second.stderr)")
                #expect(second.stderr.split(separator: "\n").count == 1 && second.stderr.contains("pid=\(first.processIdentifier)"), "\(second.stderr)")
                // The holder dies without releasing: its lock (same host, pid gone) is taken over at once.
                kill(first.processIdentifier, SIGKILL)
                await FTBackupBinary.waitForExit(first)
                let third = try await store.run(["backup", "--type", "full"], database: db)
                #expect(third.status == 0, "\(third.stderr)")
                #expect(!(try store.keys()).contains("repo/locks/write.lock"))

                // A holder on another host: refused while its lease runs, taken over once it has ended.
                let storage = try store.storage
                var other = S3LeaseLock.Holder(id: "x", pid: 1, host: "other-host.example", command: "backup --type full",
                                               started: "2026-01-01T00:00:00Z", leaseUntil: Date().timeIntervalSince1970 + 600)
                try storage.writeAll("locks/write.lock", S3LeaseLock.encode(other))
                let refused = try await store.run(["backup", "--type", "full"], database: db)
                #expect(refused.status == 75 && refused.stderr.contains("other-host.example"), "\(refused.stderr)")
                // The lease is judged on the store's clock (Last-Modified vs Date): a 1 s lease not renewed for 4 s is over.
                other.leaseSeconds = 1
                try storage.writeAll("locks/write.lock", S3LeaseLock.encode(other))
                try await Task.sleep(for: .seconds(4))
                let takeover = try await store.run(["backup", "--type", "full"], database: db)
                #expect(takeover.status == 0, "\(takeover.stderr)")
            }
        }
    }

    @Test func onlyOneOfSeveralRacingConditionalCreatesWins() async throws {
        try await S3TestStore.with { store in
            let storage = try store.storage
            let locks = try await withThrowingTaskGroup(of: S3LeaseLock?.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        if case .acquired(let lock) = try S3LeaseLock.tryExclusive(storage: storage, path: "locks/race.lock", command: "test") { return lock }
                        return nil
                    }
                }
                return try await group.reduce(into: [S3LeaseLock?]()) { $0.append($1) }
            }
            #expect(locks.compactMap { $0 }.count == 1, "\(locks)")
            locks.forEach { $0?.release() }
        }
    }

    @Test func theSignerGivesTheSameAuthorizationAsBotocore() throws {
        let python = try S3TestStore.variable("FTBACKUP_TEST_S3_PYTHON")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/sigv4-botocore.py").path
        let credentials = S3Credentials(accessKey: "AKIAEXAMPLE", secretKey: "secret/Key+example", region: "eu-central-1",
                                        endpoint: URL(string: "http://127.0.0.1:9000")!, pathStyle: true, caBundle: nil, partSize: 5 << 20)
        let client = S3Client(credentials: credentials, bucket: "bkt")
        let cases: [(String, String, [(String, String)], [(String, String)], String)] = [
            ("PUT", "repo/backups/20261128T101657Z-F/data/a b+c.copy.zst", [("partNumber", "3"), ("uploadId", "x/y=z")],
             [("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==")], "part body"),
            ("GET", "", [("list-type", "2"), ("prefix", "repo/backups/"), ("delimiter", "/")], [], ""),
            ("PUT", "repo/locks/write.lock", [], [("if-none-match", "*")], "{\"pid\":1}"),
            ("GET", "repo/ü/manifest.json", [], [("range", "bytes=0-99")], ""),
        ]
        for (method, key, query, headers, body) in cases {
            let amzDate = "20261128T103000Z"
            let payload = Array(body.utf8).withUnsafeBytes { S3Signer.payloadHash($0) }
            let signed = headers + [("host", client.hostHeader), ("x-amz-date", amzDate), ("x-amz-content-sha256", payload)]
            let ours = S3Signer(accessKey: credentials.accessKey, secretKey: credentials.secretKey, region: credentials.region)
                .authorization(method: method, path: client.path(key), query: query, headers: signed, payloadHash: payload, amzDate: amzDate)
            let queryText = query.map { "\(S3Signer.uriEncode($0.0, keepSlash: false))=\(S3Signer.uriEncode($0.1, keepSlash: false))" }.joined(separator: "&")
            let spec: [String: Any] = ["method": method, "url": "http://127.0.0.1:9000\(client.path(key))\(queryText.isEmpty ? "" : "?\(queryText)")",
                                       "headers": Dictionary(uniqueKeysWithValues: headers), "body": body, "amzDate": amzDate,
                                       "accessKey": credentials.accessKey, "secretKey": credentials.secretKey, "region": credentials.region]
            let process = Process()
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = [script]
            let input = Pipe(), output = Pipe(), errors = Pipe()
            process.standardInput = input
            process.standardOutput = output
            process.standardError = errors
            try process.run()
            input.fileHandleForWriting.write(try JSONSerialization.data(withJSONObject: spec))
            try input.fileHandleForWriting.close()
            let theirs = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let problem = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "\(problem)")
            #expect(ours == theirs, "\(method) \(key)")
        }
    }
}
