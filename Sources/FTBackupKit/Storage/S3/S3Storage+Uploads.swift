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

    /// Every unfinished multipart upload under the repository's prefix (ListMultipartUploads, every page).
    public func pendingUploads() throws -> [PendingUpload] {
        let prefix = folderPrefix("")
        var uploads: [PendingUpload] = []
        var keyMarker: String?, uploadMarker: String?
        repeat {
            var query = [("uploads", ""), ("prefix", prefix)]
            if let keyMarker { query.append(("key-marker", keyMarker)) }
            if let uploadMarker { query.append(("upload-id-marker", uploadMarker)) }
            let response = try client.expect([200], "GET", key: "", query: query)
            for block in S3XML.blocks("Upload", in: response.body) {
                guard let key = S3XML.all("Key", in: block).first, let id = S3XML.all("UploadId", in: block).first else { continue }
                uploads.append(PendingUpload(path: path(ofKey: key), uploadId: id,
                                             initiated: S3XML.all("Initiated", in: block).first.flatMap(Self.isoDate)))
            }
            let truncated = S3XML.first("IsTruncated", in: response.body) == "true"
            keyMarker = truncated ? S3XML.first("NextKeyMarker", in: response.body) : nil
            uploadMarker = truncated ? S3XML.first("NextUploadIdMarker", in: response.body) : nil
        } while keyMarker != nil
        return uploads
    }

    /// Aborts one upload (its parts are freed; an upload already gone is fine).
    public func abort(_ upload: PendingUpload) throws {
        try client.expect([200, 204, 404], "DELETE", key: key(upload.path), query: [("uploadId", upload.uploadId)])
    }

    static func isoDate(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
