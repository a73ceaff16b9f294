import Foundation
import Testing
@testable import FTBackupKit

/// Runs the real `ftbackup` binary (built by `make test` before the tests).
struct FTBackupBinary {
    /// `.build/debug/ftbackup`, or `FTBACKUP_TEST_BINARY` (to run the tests against another build, such as main's
    /// before a fix).
    static var path: String {
        get throws {
            if let other = ProcessInfo.processInfo.environment["FTBACKUP_TEST_BINARY"], !other.isEmpty { return other }
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let path = root.appendingPathComponent(".build/debug/ftbackup").path
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw FTBackupError(.usage, "\(path) is missing", hint: "run `swift build` first (make test does)")
            }
            return path
        }
    }

    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func start(_ arguments: [String], environment: [String: String] = [:], in folder: String? = nil,
                      executable: String? = nil) throws -> (Process, Pipe, Pipe) {
        let process = Process()
        if let folder { process.currentDirectoryURL = URL(fileURLWithPath: folder) }
        process.executableURL = URL(fileURLWithPath: try executable ?? path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        return (process, out, err)
    }

    /// Runs the binary to its end. The waiting happens on a thread of its own, never on the cooperative pool: on a
    /// 2-core machine that pool has two threads, and tests blocking them while their children waited for a lock held
    /// by another test's (unscheduled) task made whole suites time out. Both pipes are drained at once, so a child
    /// that fills one pipe before writing the other cannot deadlock the test.
    static func run(_ arguments: [String], environment: [String: String] = [:], in folder: String? = nil,
                    executable: String? = nil) async throws -> Outcome {
        let (process, out, err) = try start(arguments, environment: environment, in: folder, executable: executable)
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(returning: collect(process, out, err))
            }
        }
    }

    /// Waits for a started binary on a thread of its own (see `run`).
    static func waitForExit(_ process: Process) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                process.waitUntilExit()
                continuation.resume()
            }
        }
    }

    /// Reads a started binary's pipe to its end (the child's exit or closing of it) on a thread of its own.
    static func text(of pipe: Pipe) async -> String {
        await withCheckedContinuation { (continuation: CheckedContinuation<String, Never>) in
            Thread.detachNewThread {
                continuation.resume(returning: String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
            }
        }
    }

    /// Reads both pipes to their ends concurrently, then waits for the exit.
    private static func collect(_ process: Process, _ out: Pipe, _ err: Pipe) -> Outcome {
        final class Box: @unchecked Sendable { var data = Data() }
        let stderr = Box()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            stderr.data = err.fileHandleForReading.readDataToEndOfFile()
            done.signal()
        }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        done.wait()
        process.waitUntilExit()
        return Outcome(status: process.terminationReason == .uncaughtSignal ? -process.terminationStatus : process.terminationStatus,
                       stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr.data, as: UTF8.self))
    }
}

@Suite struct CommandLineTests {
    @Test func checkFailuresExitWithStableCodesAndOneLine() async throws {
        let dsn = try TestServer.dsn
        let cases: [(String, Int32)] = [
            ("\(dsn) password=wrong-secret", 77),
            ("\(dsn) dbname=no_such_database", 69),
            ("host=127.0.0.1 port=1 connect_timeout=3", 69),
            ("host=x password=wrong-secret junk", 64),
        ]
        for (conninfo, status) in cases {
            let outcome = try await FTBackupBinary.run(["check", "--db", conninfo])
            #expect(outcome.status == status, "\(outcome.stderr)")
            #expect(outcome.stderr.split(separator: "\n").count == 1, "\(outcome.stderr)")
            #expect(outcome.stderr.hasPrefix("ftbackup: error: "))
            #expect(!outcome.stderr.contains("wrong-secret"))
        }
        let unwritable = try await FTBackupBinary.run(["check", "--db", dsn, "--repo", "/proc/ftbackup-repo"])
        #expect(unwritable.status == 73)
    }

    @Test func checkPrintsJSON() async throws {
        try await TestServer.withDatabase { db in
            let outcome = try await FTBackupBinary.run(["check", "--db", "\(try TestServer.dsn) dbname=\(db.name)", "--output", "json"])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: Any]
            #expect(object?["walLevel"] as? String == "logical")
            #expect((object?["schemas"] as? [[String: Any]])?.count ?? 0 >= 34)
        }
    }

    @Test func badPolicyFileStopsTheCommandNamingKeyAndFile() async throws {
        let file = NSTemporaryDirectory() + "bad-policy-\(UUID()).yaml"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try PolicyLoader.builtInDefault.replacingOccurrences(of: "rpo: 1h", with: "rpo: 1h, rpq: 2h").write(toFile: file, atomically: true, encoding: .utf8)
        let outcome = try await FTBackupBinary.run(["check", "--db", try TestServer.dsn, "--policy", file])
        #expect(outcome.status == 78)
        #expect(outcome.stderr.contains(file))
        #expect(outcome.stderr.contains("objectives.rpq"))
    }

    /// SIGKILL halfway through a backup: nothing usable-looking is left, and the next backup succeeds
    /// and removes the remains.
    @Test func backupKilledHalfwayLeavesNoUsableBackup() async throws {
        try await TestServer.withDatabase(seeded: false) { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute("CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 6) AS v FROM generate_series(1, 1500000) g")
            try await TestRepository.with { repo in
                let (process, _, _) = try FTBackupBinary.start(["backup", "--db", "\(try TestServer.dsn) dbname=\(db.name)",
                                                                "--repo", repo.path, "-j", "1"])
                var killed = false
                // Until its first data file is being written, however long a loaded machine takes to get there.
                let deadline = Date().addingTimeInterval(600)
                while process.isRunning && Date() < deadline {
                    let folders = (try? FileManager.default.contentsOfDirectory(atPath: repo.path + "/backups")) ?? []
                    let files = folders.flatMap { (try? FileManager.default.contentsOfDirectory(atPath: "\(repo.path)/backups/\($0)/data")) ?? [] }
                    if files.contains(where: { $0.contains(".tmp-") }) {
                        kill(process.processIdentifier, SIGKILL)
                        killed = true
                        break
                    }
                    try await Task.sleep(for: .microseconds(2_000))
                }
                await FTBackupBinary.waitForExit(process)
                #expect(killed, "the backup finished before it could be killed")
                #expect(process.terminationReason == .uncaughtSignal)
                let entries = try repo.repository.entries()
                #expect(entries.count == 1)
                #expect(entries.first?.status == .incomplete)
                #expect(throws: FTBackupError.self) { _ = try repo.repository.backup(label: nil) }
                let info = try await FTBackupBinary.run(["info", "--repo", repo.path])
                #expect(info.stdout.contains("incomplete"))

                let manifest = try await BackupRunner.runFull(try .test(db, repo))
                let after = try repo.repository.entries()
                #expect(after.map(\.label) == [manifest.label])
                #expect(after.first?.status == .complete)
            }
        }
    }

    /// `verify` reads the whole repository: an empty one has nothing to verify (exit 0); one that
    /// holds only an archive is verified (exit 0), and exit 65 names the file once a byte of it flips.
    @Test func verifyCoversArchivesWithStableExitCodes() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                try LocalStorage.makeDirectories(repo.path)
                let empty = try await FTBackupBinary.run(["verify", "--repo", repo.path])
                #expect(empty.status == 0)
                #expect(empty.stdout == "nothing to verify in \(repo.path)\n")
                _ = try await ToolDataArchiver.run(ArchiveOptions(database: db.connectionString, repositoryPath: repo.path,
                                                                  policy: try testPolicy(), schemas: ["sprint_03_purpose"]))
                let good = try await FTBackupBinary.run(["verify", "--repo", repo.path])
                #expect(good.status == 0, "\(good.stdout)")
                #expect(good.stdout.contains("archives: 1 ok") && good.stdout.hasSuffix("all good\n"))
                let (name, manifest) = try ArchiveStore(storage: repo.repository.storage).all()[0]
                let file = "\(repo.path)/archive/\(name)/\(manifest!.tables[0].file.path)"
                try flipByte(file)
                let bad = try await FTBackupBinary.run(["verify", "--repo", repo.path])
                #expect(bad.status == 65)
                #expect(bad.stdout.contains("repository file \(file) is bad"), "\(bad.stdout)")
                #expect(bad.stdout.hasSuffix("1 bad file\n"))
            }
        }
    }

    @Test func backupInfoVerifyRestoreThroughTheBinary() async throws {
        try await TestServer.withDatabase { source in
            try await TestRepository.with { repo in
                let db = "\(try TestServer.dsn) dbname=\(source.name)"
                let backup = try await FTBackupBinary.run(["backup", "--type", "full", "--db", db, "--repo", repo.path, "-j2"])
                #expect(backup.status == 0, "\(backup.stderr)")
                let label = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(label.hasSuffix("Z-F"))
                let info = try await FTBackupBinary.run(["info", "--repo", repo.path, "--output", "json"])
                let object = try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any]
                let backups = object?["backups"] as? [[String: Any]]
                #expect(backups?.first?["label"] as? String == label)
                #expect(backups?.first?["status"] as? String == "complete")
                #expect((backups?.first?["rows"] as? Int ?? 0) > 1000)
                let verify = try await FTBackupBinary.run(["verify", "--repo", repo.path, "--set", label])
                #expect(verify.status == 0)
                #expect(verify.stdout.contains("\(label): ok"))
                try await TestServer.withDatabase(seeded: false) { target in
                    let t = "\(try TestServer.dsn) dbname=\(target.name)"
                    let dryRun = try await FTBackupBinary.run(["restore", "--repo", repo.path, "--target", t, "--dry-run", "--output", "json"])
                    #expect(dryRun.status == 0, "\(dryRun.stderr)")
                    #expect(dryRun.stdout.contains("\"label\" : \"\(label)\""))
                    let restore = try await FTBackupBinary.run(["restore", "--repo", repo.path, "--target", t, "-j", "2"])
                    #expect(restore.status == 0, "\(restore.stderr)")
                    let compare = try await FTBackupBinary.run(["dev", "compare", "--db", db, "--target", t])
                    #expect(compare.status == 0, "\(compare.stdout)")
                    #expect(compare.stdout.hasPrefix("match:"))
                }
            }
        }
    }
}
