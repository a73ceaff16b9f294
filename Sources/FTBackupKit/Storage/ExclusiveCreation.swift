import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Creating a small file only if nothing is at its path yet, on any repository storage.
///
/// It exists for key records: two runs that start the same unit at once must agree on one data key, so
/// the first record written wins and the other run reads it. A folder does it with a temporary file
/// linked into place (`link(2)` fails on an existing name); a bucket with a conditional PUT
/// (`If-None-Match: *`), the same request its lock objects use.
public enum ExclusiveCreation {
    /// Writes `bytes` at `path` unless a file is there; true when this call created it.
    public static func create(_ path: String, _ bytes: [UInt8], in storage: any RepositoryStorage) throws -> Bool {
        if let local = storage as? LocalStorage { return try local.createExclusively(path, bytes) }
        if let s3 = storage as? S3Storage { return try s3.createExclusively(path, bytes) }
        throw FTBackupError(.failure, "\(storage.location) cannot create \(path) exclusively")
    }
}

extension LocalStorage {
    /// Writes the file under a temporary name (fsynced), then links it into place: an existing file is kept.
    func createExclusively(_ path: String, _ bytes: [UInt8]) throws -> Bool {
        let full = absolute(path), folder = Self.parentFolder(full)
        try Self.makeDirectories(folder)
        let temporaryPath = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try writeAll(temporaryPath, bytes)
        let temporary = absolute(temporaryPath)
        defer { unlink(temporary) }
        if link(temporary, full) != 0 {
            let code = errno
            guard code == EEXIST else { throw Self.failure("cannot create", full, code) }
            return false
        }
        Self.syncDirectory(folder)
        return true
    }
}

extension S3Storage {
    /// One conditional PUT (`If-None-Match: *`): 412 (or 409 while another create races) means it exists,
    /// unless the 412 answers a retry and the stored bytes are exactly ours (our first attempt created it and
    /// its answer was lost; key records carry a random nonce, so equal bytes are ours).
    /// A store without conditional writes is refused (exit 78) unless `FTBACKUP_S3_UNSAFE_NO_LOCKS=1`
    /// says one host only ever runs ftbackup here; then a look then a plain PUT.
    func createExclusively(_ path: String, _ bytes: [UInt8]) throws -> Bool {
        let objectKey = key(path)
        let response = try client.send("PUT", key: objectKey, headers: [("if-none-match", "*"), ("content-md5", S3Client.contentMD5(bytes))], body: bytes)
        switch response.status {
        case 200: return true
        case 412, 409:
            // A retry may meet our own create whose answer was lost: ours only when the stored bytes are exactly ours.
            guard response.isRetry else { return false }
            let stored = try client.send("GET", key: objectKey)
            return stored.status == 200 && stored.body == bytes
        case 501 where Self.locksDisabled, 400 where Self.locksDisabled && S3XML.first("Code", in: response.body) == "NotImplemented":
            if (try? client.send("HEAD", key: objectKey))?.status == 200 { return false }
            try client.expect([200], "PUT", key: objectKey, headers: [("content-md5", S3Client.contentMD5(bytes))], body: bytes)
            return true
        case 501, 400:
            guard response.status == 501 || S3XML.first("Code", in: response.body) == "NotImplemented" else {
                throw client.failure(response, method: "PUT", key: objectKey)
            }
            throw FTBackupError(.configuration, "the S3 store of \(location) does not support conditional writes (If-None-Match), so two runs could each create a key record for one unit",
                                hint: "use a store that supports them (AWS S3, MinIO), or set FTBACKUP_S3_UNSAFE_NO_LOCKS=1 if only one host ever runs ftbackup on this repository")
        default:
            throw client.failure(response, method: "PUT", key: objectKey)
        }
    }

    /// The first `count` bytes of an object (one ranged GET), fewer when it is shorter.
    func firstBytes(_ path: String, count: Int) throws -> [UInt8] {
        let objectKey = key(path)
        let response = try client.send("GET", key: objectKey, headers: [("range", "bytes=0-\(count - 1)")])
        if response.status == 416 { return [] }
        guard response.status == 206 || response.status == 200 else { throw client.failure(response, method: "GET", key: objectKey) }
        return Array(response.body.prefix(count))
    }
}
