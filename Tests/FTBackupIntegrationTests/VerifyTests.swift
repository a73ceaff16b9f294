import Foundation
import Testing
@testable import FTBackupKit

/// Flips one byte in the middle of a repository file (same size, other content).
func flipByte(_ path: String) throws {
    let handle = try #require(FileHandle(forUpdatingAtPath: path))
    defer { try? handle.close() }
    let size = try handle.seekToEnd()
    try handle.seek(toOffset: size / 2)
    let byte = try #require(try handle.read(upToCount: 1)).first!
    try handle.seek(toOffset: size / 2)
    try handle.write(contentsOf: Data([byte ^ 0x5A]))
}

func fileMode(_ path: String) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

func jsonObject(_ text: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
}

@Suite struct VerifyTests {
    /// Real archives: a clean repository verifies (exit 0) and gets records; a flipped byte in one
    /// archive file makes `verify` and `verify --archives` exit 65 naming that file, and `info` and
    /// `lifecycle list` show the archive as verify-failed; a wrong row count, a pending archive and
    /// unreadable evidence are each reported as what they are.
    @Test func archivesAreVerifiedRecordedAndADamagedOneIsNamedEverywhere() async throws {
        try await TestServer.withDatabase { db in
            try await TestRepository.with { repo in
                let report = try await ToolDataArchiver.run(ArchiveOptions(database: db.connectionString, repositoryPath: repo.path,
                                                                           policy: try testPolicy(), schemas: ["sprint_15_value_proposition"],
                                                                           batchSize: 3))
                let store = ArchiveStore(storage: repo.repository.storage)
                let archives = try store.all().map { ($0.name, $0.manifest!) }
                #expect(archives.count >= 3, "\(report.rows) rows")
                let manifestsBefore = try archives.map { try store.storage.readAll(store.manifestPath($0.0)) }

                // Clean: everything good, a record beside each archive, none in what the manifests list.
                let clean = try await RepositoryVerifier.verify(repo.repository, .init())
                #expect(clean.ok && !clean.nothingToVerify && clean.badFiles.isEmpty)
                #expect(clean.archives?.count == archives.count)
                #expect(clean.archives?.allSatisfy { $0.state == .ok } == true)
                #expect(clean.archives?.map(\.rows) == archives.map { $0.1.rows })
                #expect(clean.evidence?.files["archive"] == 1)
                #expect(clean.backups?.isEmpty == true && clean.segments?.isEmpty == true)
                for (name, manifest) in archives {
                    let record = try #require(VerificationResultRecord.read(ArchiveManifest.self, name: name, storage: store.storage))
                    #expect(record.outcome == .ok && record.files == manifest.tables.count && record.bytes == manifest.storedBytes)
                    let path = "\(repo.path)/\(ArchiveManifest.verificationPath(name: name))"
                    #expect(try fileMode(path) == 0o600)
                    #expect(!manifest.tables.map(\.file.path).contains(ArchiveManifest.verificationFileName))
                }
                #expect(try fileMode("\(repo.path)/archive") == 0o700)
                #expect(try archives.map { try store.storage.readAll(store.manifestPath($0.0)) } == manifestsBefore)
                let verified = try await FTBackupBinary.run(["verify", "--repo", repo.path])
                #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
                #expect(verified.stdout.contains("archives: \(archives.count) ok"))
                #expect(verified.stdout.contains("all good"))
                let listed = try await FTBackupBinary.run(["lifecycle", "list", "--repo", repo.path, "--output", "json"])
                let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
                #expect(rows.allSatisfy { $0["verification"] as? String == "verified" && $0["lastVerifiedAt"] is String })

                // One flipped byte in a dependant table's file of the second archive.
                let (damaged, damagedManifest) = archives[1]
                let file = "\(repo.path)/\(store.folder(damaged))/\(damagedManifest.tables.last!.file.path)"
                try flipByte(file)
                for arguments in [["verify"], ["verify", "--archives"]] {
                    let outcome = try await FTBackupBinary.run(arguments + ["--repo", repo.path])
                    #expect(outcome.status == 65, "\(arguments) \(outcome.stdout)")
                    let named = outcome.stdout.split(separator: "\n").filter { $0.contains(file) }
                    #expect(named.count == 1, "\(outcome.stdout)")
                    #expect(named.first?.contains("SHA-256 mismatch") == true)
                    #expect(outcome.stdout.contains("\(damaged): BAD: 1 of \(damagedManifest.tables.count) files"))
                }
                #expect(try await FTBackupBinary.run(["verify", "--segments", "--repo", repo.path]).status == 0)
                let json = try jsonObject(try await FTBackupBinary.run(["verify", "--archives", "--repo", repo.path, "--output", "json"]).stdout)
                #expect(json["ok"] as? Bool == false)
                let bad = json["badFiles"] as? [[String: Any]]
                #expect(bad?.count == 1 && bad?.first?["path"] as? String == file && bad?.first?["record"] as? String == damaged)
                #expect(json["backups"] == nil && json["segments"] == nil)

                let failed = try #require(VerificationResultRecord.read(ArchiveManifest.self, name: damaged, storage: store.storage))
                #expect(failed.outcome == .failed && failed.problems.count == 1 && failed.problems[0].contains(file))
                #expect(VerificationResultRecord.read(ArchiveManifest.self, name: archives[0].0, storage: store.storage)?.outcome == .ok)
                let list = try await FTBackupBinary.run(["lifecycle", "list", "--repo", repo.path])
                #expect(list.stdout.split(separator: "\n").first { $0.hasPrefix(damaged) }?.contains("VERIFY-FAILED") == true, "\(list.stdout)")
                let listJSON = try #require(try JSONSerialization.jsonObject(with: Data(
                    try await FTBackupBinary.run(["lifecycle", "list", "--repo", repo.path, "--output", "json"]).stdout.utf8)) as? [[String: Any]])
                #expect(listJSON.first { $0["name"] as? String == damaged }?["verification"] as? String == "verify-failed")
                #expect(listJSON.first { $0["name"] as? String == damaged }?["status"] as? String == "committed")
                let info = try await FTBackupBinary.run(["info", "--repo", repo.path])
                #expect(info.status == 0, "\(info.stderr)")
                #expect(info.stdout.contains("archive \(damaged)  verify-failed"), "\(info.stdout)")
                let infoJSON = try jsonObject(try await FTBackupBinary.run(["info", "--repo", repo.path, "--output", "json"]).stdout)
                let items = (infoJSON["verification"] as? [String: Any])?["archives"] as? [[String: Any]]
                #expect(items?.first { $0["name"] as? String == damaged }?["verification"] as? String == "verify-failed")
                #expect(items?.first { $0["name"] as? String == archives[0].0 }?["verification"] as? String == "verified")

                // Put the byte back: the next verify finds it good again and the record says so.
                try flipByte(file)
                #expect(try await FTBackupBinary.run(["verify", "--archives", "--repo", repo.path]).status == 0)
                #expect(VerificationResultRecord.read(ArchiveManifest.self, name: damaged, storage: store.storage)?.outcome == .ok)

                // A manifest whose row count disagrees with the file's COPY lines.
                var miscounted = archives[2].1
                miscounted.tables[0].rows += 1
                try store.write(miscounted)
                let rowsOff = try await RepositoryVerifier.verify(repo.repository, .init(parts: .archives))
                #expect(!rowsOff.ok)
                #expect(rowsOff.badFiles.map(\.record) == [archives[2].0])
                #expect(rowsOff.badFiles.first?.problem.contains("holds \(archives[2].1.tables[0].rows) COPY lines, the manifest records \(miscounted.tables[0].rows) rows") == true)
                try store.write(archives[2].1)

                // A pending archive (its run was interrupted) is reported as such, not as a failure.
                var pending = archives[0].1
                pending.status = .pending
                try store.write(pending)
                let withPending = try await RepositoryVerifier.verify(repo.repository, .init(parts: .archives))
                #expect(withPending.ok)
                #expect(withPending.archives?.first { $0.name == archives[0].0 }?.state == .pending)
                let pendingText = try await FTBackupBinary.run(["verify", "--archives", "--repo", repo.path])
                #expect(pendingText.status == 0)
                #expect(pendingText.stdout.contains("\(archives[0].0): pending: its run was interrupted"))
                try store.write(archives[0].1)

                // Unreadable evidence: a torn run log, and a prune-audit evidence file that is JSON of another shape.
                let runLog = "\(repo.path)/lifecycle/archive/\(report.run).json"
                try Data("{\"run\": \"\(report.run)\", \"dryRun\": fal".utf8).write(to: URL(fileURLWithPath: runLog))
                try repo.repository.storage.writeAll("lifecycle/prune-audit/20260101T000000Z.json", Array("{\"run\": 1}\n".utf8))
                let evidence = try await FTBackupBinary.run(["verify", "--repo", repo.path])
                #expect(evidence.status == 65)
                #expect(evidence.stdout.contains("lifecycle evidence \(runLog) is unreadable as archive evidence"), "\(evidence.stdout)")
                #expect(evidence.stdout.contains("\(repo.path)/lifecycle/prune-audit/20260101T000000Z.json is unreadable"))
                #expect(evidence.stdout.contains("2 bad files"))
                #expect(try await FTBackupBinary.run(["verify", "--archives", "--repo", repo.path]).status == 0)
                #expect(try await FTBackupBinary.run(["verify", "--evidence", "--repo", repo.path]).status == 65)
            }
        }
    }
}

extension ChangeArchivalTests {
    /// Real segments (a full, then incremental passes): verified with records kept outside the
    /// segments folder; a truncated segment makes `verify` and `verify --segments` exit 65 naming
    /// it, and `info` shows it verify-failed.
    @Test func segmentsAreVerifiedAndATruncatedOneIsNamed() async throws {
        try await ArchivedDatabase.with(prepare: workloadSchemaSQL) { a in
            let full = try await a.full()
            for round in 1...2 {
                try await writeWorkload(a.session, round: round)
                _ = try await a.incremental()
            }
            let segments = try ChangeSegmentManifest.all(a.repo.repository.storage)
            #expect(segments.count >= 2)
            let clean = try await FTBackupBinary.run(["verify", "--repo", a.repo.path, "--output", "json"])
            #expect(clean.status == 0, "\(clean.stdout)")
            let report = try jsonObject(clean.stdout)
            #expect((report["segments"] as? [[String: Any]])?.count == segments.count)
            #expect((report["backups"] as? [[String: Any]])?.first?["label"] as? String == full.label)
            for segment in segments {
                let record = VerificationResultRecord.read(ChangeSegmentManifest.self, name: segment.label, storage: a.repo.repository.storage)
                #expect(record?.outcome == .ok)
                #expect(try fileMode("\(a.repo.path)/\(ChangeSegmentManifest.verificationPath(name: segment.label))") == 0o600)
            }
            #expect(try fileMode("\(a.repo.path)/\(SegmentVerifier.verificationFolder)") == 0o700)
            // Records do not disturb the chain: the segments list the same and the next pass removes nothing.
            #expect(try ChangeSegmentManifest.all(a.repo.repository.storage).map(\.label) == segments.map(\.label))
            #expect(try await a.incremental().removedIncomplete.isEmpty)

            let victim = segments[0]
            let path = "\(a.repo.path)/\(ChangeSegmentManifest.dataPath(victim.label))"
            let handle = try #require(FileHandle(forUpdatingAtPath: path))
            try handle.truncate(atOffset: UInt64(victim.file.storedBytes / 2))
            try handle.close()
            for arguments in [["verify"], ["verify", "--segments"]] {
                let outcome = try await FTBackupBinary.run(arguments + ["--repo", a.repo.path])
                #expect(outcome.status == 65, "\(arguments) \(outcome.stdout)")
                let named = outcome.stdout.split(separator: "\n").filter { $0.contains(path) }
                #expect(named.count == 1 && named.first?.contains("truncated") == true, "\(outcome.stdout)")
            }
            #expect(try await FTBackupBinary.run(["verify", "--archives", "--repo", a.repo.path]).status == 0)
            #expect(try await FTBackupBinary.run(["verify", "--newest", "--repo", a.repo.path]).status == 0)
            let record = VerificationResultRecord.read(ChangeSegmentManifest.self, name: victim.label, storage: a.repo.repository.storage)
            #expect(record?.outcome == .failed)
            let info = try await FTBackupBinary.run(["info", "--repo", a.repo.path])
            #expect(info.stdout.contains("segment \(victim.label)  verify-failed"), "\(info.stdout)")
            #expect(info.stdout.contains("1 VERIFY-FAILED"))
            let infoJSON = try jsonObject(try await FTBackupBinary.run(["info", "--repo", a.repo.path, "--output", "json"]).stdout)
            let items = (infoJSON["verification"] as? [String: Any])?["segments"] as? [[String: Any]]
            #expect(items?.first { $0["name"] as? String == victim.label }?["verification"] as? String == "verify-failed")
            let total = try ChangeSegmentManifest.all(a.repo.repository.storage).count
            #expect(items?.count == total)
            #expect(items?.filter { $0["verification"] as? String == "verified" }.count == total - 1)
        }
    }
}
