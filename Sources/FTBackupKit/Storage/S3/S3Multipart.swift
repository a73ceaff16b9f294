import Foundation

/// Writes one object in bounded memory: one part buffered at a time.
///
/// A file that ends before its first part fills goes up as one PUT at `commit()`; a longer one becomes
/// a multipart upload whose parts grow (the size doubles every 1,000 parts: with 8 MiB parts 10,000 of
/// them reach 8 TB). Each part carries `Content-MD5` and a signed SHA-256 of its body, which the store
/// checks. Nothing is visible under the key until the upload completes; `abort()` aborts it.
final class S3ObjectWriter: StorageWriter {
    private let client: S3Client
    private let key: String
    private let firstPartSize: Int
    private var buffer: [UInt8] = []
    private var uploadId: String?
    private var parts: [(number: Int, etag: String)] = []
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
        if uploadId == nil {
            let response = try client.expect([200], "POST", key: key, query: [("uploads", "")])
            guard let id = S3XML.first("UploadId", in: response.body) else {
                throw FTBackupError(.failure, "S3 POST s3://\(client.bucket)/\(key)?uploads gave no upload id")
            }
            uploadId = id
        }
        let number = parts.count + 1
        guard number <= Self.maxParts else {
            throw FTBackupError(.cannotWrite, "s3://\(client.bucket)/\(key) would need more than \(Self.maxParts) parts",
                                hint: "raise FTBACKUP_S3_PART_SIZE")
        }
        let response = try client.expect([200], "PUT", key: key, query: [("partNumber", "\(number)"), ("uploadId", uploadId!)],
                                         headers: [("content-md5", S3Client.contentMD5(buffer))], body: buffer)
        guard let etag = response.headers["etag"] else {
            throw FTBackupError(.failure, "S3 part \(number) of s3://\(client.bucket)/\(key) was stored without an ETag")
        }
        parts.append((number, etag))
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
                let response = try client.expect([200], "POST", key: key, query: [("uploadId", uploadId!)], body: Array(body.utf8))
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

    func abort() {
        guard !finished else { return }
        finished = true
        buffer = []
        if let uploadId { _ = try? client.send("DELETE", key: key, query: [("uploadId", uploadId)]) }
    }

    deinit { abort() }
}
