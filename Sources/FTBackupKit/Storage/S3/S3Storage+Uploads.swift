import Foundation

/// The unfinished multipart uploads of a bucket's repository, with when each began (`repo cleanup`).
extension S3Storage {
    /// One unfinished multipart upload.
    public struct PendingUpload: Codable, Sendable, Equatable {
        /// The repository path the upload would create.
        public var path: String
        public var uploadId: String
        /// When the store says it was initiated (nil when it does not say).
        public var initiated: Date?
    }

    /// Every unfinished multipart upload under `folder` ("" the whole repository), from every page of the listing.
    public func pendingUploads(under folder: String = "") throws -> [PendingUpload] {
        try client.multipartUploads(prefix: folderPrefix(folder)).map {
            PendingUpload(path: path(ofKey: $0.key), uploadId: $0.uploadId, initiated: $0.initiated.flatMap(Self.isoDate))
        }
    }

    /// Aborts one upload (its parts are freed; an upload already gone is fine).
    public func abort(_ upload: PendingUpload) throws {
        try client.abortUpload(key: key(upload.path), uploadId: upload.uploadId)
    }

    static func isoDate(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}

extension S3Client {
    /// The unfinished multipart uploads whose keys start with `prefix` (ListMultipartUploads, every page):
    /// key, upload id and the store's `Initiated` text.
    func multipartUploads(prefix: String) throws -> [(key: String, uploadId: String, initiated: String?)] {
        var uploads: [(key: String, uploadId: String, initiated: String?)] = []
        var keyMarker: String?, uploadMarker: String?
        repeat {
            var query = [("uploads", ""), ("prefix", prefix)]
            if let keyMarker { query.append(("key-marker", keyMarker)) }
            if let uploadMarker { query.append(("upload-id-marker", uploadMarker)) }
            let response = try expect([200], "GET", key: "", query: query)
            for block in S3XML.blocks("Upload", in: response.body) {
                guard let key = S3XML.all("Key", in: block).first, let id = S3XML.all("UploadId", in: block).first else { continue }
                uploads.append((key, id, S3XML.all("Initiated", in: block).first))
            }
            let truncated = S3XML.first("IsTruncated", in: response.body) == "true"
            keyMarker = truncated ? S3XML.first("NextKeyMarker", in: response.body) : nil
            uploadMarker = truncated ? S3XML.first("NextUploadIdMarker", in: response.body) : nil
        } while keyMarker != nil
        return uploads
    }

    /// Aborts one multipart upload. Idempotent: an upload already gone (404 NoSuchUpload, also the answer to a
    /// retry whose first attempt did abort it) is fine.
    func abortUpload(key: String, uploadId: String) throws {
        try expect([200, 204, 404], "DELETE", key: key, query: [("uploadId", uploadId)])
    }
}
