import Foundation

/// What `sync` can check about a repository's JSON records before it copies them: each one parses, a backup's
/// manifest decodes as one, and every chained record's link (the SHA-256 of the record before it) still
/// matches that record's bytes.
///
/// It exists so that a record damaged or edited in the source fails the sync with one line naming it, instead
/// of being copied off-site as is, where it would make the damage look like two agreeing copies.
enum SyncRecordCheck {
    /// Throws (exit 65) at the first record of `records` (path → bytes) that fails a check.
    static func check(_ records: [String: [UInt8]], in storage: any RepositoryStorage) throws {
        for (path, bytes) in records.sorted(by: { $0.key < $1.key }) where path.hasSuffix(".json") {
            let json: Any
            do { json = try JSONSerialization.jsonObject(with: Data(bytes)) } catch {
                throw refused(path, in: storage, "is not valid JSON")
            }
            let parts = path.split(separator: "/")
            if parts.count == 3, parts[0] == "backups", parts[2] == "manifest.json" {
                do { _ = try BackupManifest.decode(bytes, path: "\(storage.location)/\(path)") } catch let error as FTBackupError {
                    throw FTBackupError(.dataError, "\(error.message): not copied",
                                        hint: "run `ftbackup verify --repo \(storage.location)`; fix or remove it before syncing again")
                }
            }
            // A chained record names the record before it and that record's SHA-256: an edited predecessor shows here.
            guard let object = json as? [String: Any], let previous = object["previousRecord"] as? String,
                  let digest = object["previousRecordSHA256"] as? String else { continue }
            let folder = (path as NSString).deletingLastPathComponent
            let previousPath = folder.isEmpty ? previous : "\(folder)/\(previous)"
            guard let previousBytes = records[previousPath] else { continue }
            guard RecordChain.sha256(previousBytes) == digest.lowercased() else {
                throw refused(previousPath, in: storage, "no longer has the SHA-256 that \((path as NSString).lastPathComponent) recorded for it (edited after it was chained)")
            }
        }
    }

    /// Throws (exit 65) when a backup's manifest lists a file the source does not hold (`present`: every file
    /// collected): copied, the second would hold a manifest promising a file that neither repository has.
    static func checkListedFiles(_ records: [String: [UInt8]], present: Set<String>, in storage: any RepositoryStorage) throws {
        for (path, bytes) in records.sorted(by: { $0.key < $1.key }) {
            let parts = path.split(separator: "/")
            guard parts.count == 3, parts[0] == Repository.backupsFolder, parts[2] == BackupManifest.fileName,
                  let manifest = try? BackupManifest.decode(bytes, path: path) else { continue }
            let folder = "\(Repository.backupsFolder)/\(parts[1])"
            for file in manifest.files where !present.contains("\(folder)/\(file.path)") {
                throw refused("\(folder)/\(file.path)", in: storage, "is missing, and \(path) lists it")
            }
        }
    }

    private static func refused(_ path: String, in storage: any RepositoryStorage, _ why: String) -> FTBackupError {
        FTBackupError(.dataError, "\(storage.location)/\(path) \(why): not copied",
                      hint: "run `ftbackup verify --repo \(storage.location)`; fix or remove it before syncing again")
    }
}
