import Crypto
import Foundation

/// Writes one object in bounded memory: one part buffered at a time.
///
/// A file that ends before its first part fills goes up as one PUT at `commit()`; a longer one becomes
/// a multipart upload whose parts grow (the size doubles every 1,000 parts: with 8 MiB parts 10,000 of
/// them reach 8 TB). Each part carries `Content-MD5` and a signed SHA-256 of its body, which the store
/// checks. Nothing is visible under the key until the upload completes; `abort()` aborts it.
///
/// Two of its requests are not idempotent, and a retry can meet the effect of an attempt whose answer was
/// lost: a second CreateMultipartUpload starts a second upload (the first one's id never reached us, so the
/// others of this key are aborted), and a second CompleteMultipartUpload may be told 404 NoSuchUpload because
/// the first completed it (then the object is accepted only when its multipart ETag, the MD5 of the parts'
/// MD5s and their count, and its size are those of what was uploaded here).
final class S3ObjectWriter: StorageWriter {
    private let client: S3Client
    private let key: String
    private let firstPartSize: Int
    private var buffer: [UInt8] = []
    private var uploadId: String?
    private var parts: [(number: Int, etag: String)] = []
    /// The parts' MD5 digests, concatenated (the multipart ETag is their MD5), and their total size.
    private var partDigests: [UInt8] = []
    private var uploadedBytes: Int64 = 0
    private var finished = false

    static let maxParts = 10_000

    init(client: S3Client, key: String, firstPartSize: Int) {
        self.client = client
        self.key = key
        self.firstPartSize = firstPartSize
        buffer.reserveCapacity(min(firstPartSize, 1 << 20))
    }

    /// The size of part `number` (1-based).
    static func partSize(number: Int, first: Int) -> Int {
        first << min(9, (number - 1) / 1000)
    }

    private var currentPartSize: Int { Self.partSize(number: parts.count + 1, first: firstPartSize) }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var rest = bytes[...]
        while !rest.isEmpty {
            let room = currentPartSize - buffer.count
            let take = min(room, rest.count)
            buffer.append(contentsOf: rest.prefix(take))
            rest = rest.dropFirst(take)
            // Only a full part with more to follow is sent now: the last one goes at commit.
            if buffer.count == currentPartSize && !rest.isEmpty { try uploadPart() }
        }
        if buffer.count == currentPartSize { try uploadPart() }
    }

    private func uploadPart() throws {
        if uploadId == nil { uploadId = try createUpload() }
        let number = parts.count + 1
        guard number <= Self.maxParts else {
            throw FTBackupError(.cannotWrite, "s3://\(client.bucket)/\(key) would need more than \(Self.maxParts) parts",
                                hint: "raise FTBACKUP_S3_PART_SIZE")
        }
        let digest = Array(Insecure.MD5.hash(data: buffer))
        let response = try client.expect([200], "PUT", key: key, query: [("partNumber", "\(number)"), ("uploadId", uploadId!)],
                                         headers: [("content-md5", Data(digest).base64EncodedString())], body: buffer)
        guard let etag = response.headers["etag"] else {
            throw FTBackupError(.failure, "S3 part \(number) of s3://\(client.bucket)/\(key) was stored without an ETag")
        }
        parts.append((number, etag))
        partDigests += digest
        uploadedBytes += Int64(buffer.count)
        buffer.removeAll(keepingCapacity: true)
        if parts.count == 2 { Failpoint.hit("s3.after-second-part") }
    }

    func commit() throws {
        guard !finished else { return }
        do {
            if uploadId == nil {
                try client.expect([200], "PUT", key: key, headers: [("content-md5", S3Client.contentMD5(buffer))], body: buffer)
            } else {
                if !buffer.isEmpty { try uploadPart() }
                let body = "<CompleteMultipartUpload>" + parts.map {
                    "<Part><PartNumber>\($0.number)</PartNumber><ETag>\(S3XML.escape($0.etag))</ETag></Part>"
                }.joined() + "</CompleteMultipartUpload>"
                let response = try client.send("POST", key: key, query: [("uploadId", uploadId!)], body: Array(body.utf8))
                if response.status == 404 && response.isRetry, try storedObjectIsOurs() {
                    finished = true
                    buffer = []
                    return
                }
                guard response.status == 200 else { throw client.failure(response, method: "POST", key: key) }
                // S3 may answer 200 and report the failure in the body.
                if S3XML.blocks("Error", in: response.body).count > 0 || S3XML.first("Code", in: response.body) != nil {
                    throw client.failure(S3HTTPResponse(status: 500, headers: [:], body: response.body), method: "POST", key: key)
                }
            }
        } catch {
            abort()
            throw error
        }
        finished = true
        buffer = []
    }

    /// Starts the multipart upload. A create whose answer was lost started an upload too, whose id never reached
    /// us: the key's other uploads are aborted (only this writer writes the key: its run holds the lock that guards
    /// it). Best effort: one left behind is aborted by the next backup or `repo cleanup`.
    private func createUpload() throws -> String {
        let response = try client.expect([200], "POST", key: key, query: [("uploads", "")])
        guard let id = S3XML.first("UploadId", in: response.body) else {
            throw FTBackupError(.failure, "S3 POST s3://\(client.bucket)/\(key)?uploads gave no upload id")
        }
        if response.isRetry, let others = try? client.multipartUploads(prefix: key) {
            for other in others where other.key == key && other.uploadId != id { try? client.abortUpload(key: key, uploadId: other.uploadId) }
        }
        return id
    }

    /// The multipart ETag of what was uploaded: hex MD5 of the parts' MD5s, a dash, the part count.
    var expectedETag: String {
        Insecure.MD5.hash(data: partDigests).map { String(format: "%02x", $0) }.joined() + "-\(parts.count)"
    }

    /// True when the object now under the key is provably the one this upload completed: its ETag and size match.
    private func storedObjectIsOurs() throws -> Bool {
        let head = try client.send("HEAD", key: key)
        guard head.status == 200, let etag = head.headers["etag"] else { return false }
        let stored = etag.trimmingCharacters(in: CharacterSet(charactersIn: "\"")).lowercased()
        return stored == expectedETag && Int64(head.headers["content-length"] ?? "") == uploadedBytes
    }

    func abort() {
        guard !finished else { return }
        finished = true
        buffer = []
        if let uploadId { _ = try? client.send("DELETE", key: key, query: [("uploadId", uploadId)]) }
    }

    deinit { abort() }
}
