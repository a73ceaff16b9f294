import Foundation

/// A repository in an S3-compatible bucket (`s3://BUCKET/PREFIX`), behind the same protocol as a folder.
///
/// Keys are the repository paths under the prefix; "folders" are key prefixes (ListObjectsV2 with a
/// `/` delimiter, every page followed). Atomicity is S3's own: an object appears only when its single
/// PUT or its multipart upload completes (``S3ObjectWriter``), so a killed run leaves at most an
/// unfinished upload, which is invisible and is aborted by the next backup (``abortAbandonedUploads``).
public struct S3Storage: RepositoryStorage {
    public let address: S3Location
    public let client: S3Client
    public var location: String { address.description }

    public init(location: S3Location, client: S3Client) {
        self.address = location
        self.client = client
    }

    /// The storage of `url` with the environment's credentials (or the repository's own, ``S3RepositoryEnvironment``).
    public static func open(_ url: String) throws -> S3Storage {
        let location = try S3Location(url)
        let credentials = try S3Credentials.resolve(try S3RepositoryEnvironment.environment(for: location))
        return S3Storage(location: location, client: S3Client(credentials: credentials, bucket: location.bucket))
    }

    func key(_ path: String) -> String { address.key(path) }

    /// `FTBACKUP_S3_UNSAFE_NO_LOCKS=1`: no lock objects (only for stores without conditional writes, one host).
    static var locksDisabled: Bool { ProcessInfo.processInfo.environment["FTBACKUP_S3_UNSAFE_NO_LOCKS"] == "1" }

    /// The repository path of a key under the prefix.
    func path(ofKey key: String) -> String {
        let base = address.prefix.isEmpty ? "" : address.prefix + "/"
        return String(key.dropFirst(base.count)).split(separator: "/").joined(separator: "/")
    }

    /// Every key under `prefix` (with `delimiter`, also the common prefixes), all pages.
    func listKeys(prefix: String, delimiter: String?) throws -> (objects: [(String, Int64)], prefixes: [String]) {
        var objects: [(String, Int64)] = []
        var prefixes: [String] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let delimiter { query.append(("delimiter", delimiter)) }
            if let token { query.append(("continuation-token", token)) }
            let response = try client.expect([200], "GET", key: "", query: query)
            for block in S3XML.blocks("Contents", in: response.body) {
                guard let key = S3XML.all("Key", in: block).first else { continue }
                objects.append((key, Int64(S3XML.all("Size", in: block).first ?? "") ?? 0))
            }
            for block in S3XML.blocks("CommonPrefixes", in: response.body) {
                if let value = S3XML.all("Prefix", in: block).first { prefixes.append(value) }
            }
            token = S3XML.first("IsTruncated", in: response.body) == "true" ? S3XML.first("NextContinuationToken", in: response.body) : nil
        } while token != nil
        return (objects, prefixes)
    }

    func folderPrefix(_ folder: String) -> String {
        let base = key(folder)
        return base.isEmpty ? "" : base + "/"
    }

    public func list(_ folder: String) throws -> [StorageEntry] {
        let prefix = folderPrefix(folder)
        let found = try listKeys(prefix: prefix, delimiter: "/")
        var entries = found.objects.filter { $0.0 != prefix }.map { StorageEntry(path: path(ofKey: $0.0), size: $0.1, isDirectory: false) }
        entries += found.prefixes.map { StorageEntry(path: path(ofKey: $0), size: 0, isDirectory: true) }
        return entries.sorted { $0.path < $1.path }
    }

    /// True when an object or a "folder" is at `path`. Only a 404 means absent: a refused (403), throttled or
    /// unreachable store fails with one line instead of passing for "not there".
    public func exists(_ path: String) throws -> Bool {
        let response = try client.send("HEAD", key: key(path))
        if response.status == 200 { return true }
        guard response.status == 404 else { throw client.failure(response, method: "HEAD", key: key(path)) }
        // A "folder" exists when anything is under it.
        let listing = try client.expect([200], "GET", key: "", query: [("list-type", "2"), ("prefix", folderPrefix(path)), ("max-keys", "1")])
        return !S3XML.all("Key", in: listing.body).isEmpty
    }

    /// HEAD of an object: its size and ETag.
    func head(_ path: String) throws -> (size: Int64, etag: String?) {
        let response = try client.expect([200], "HEAD", key: key(path))
        return (Int64(response.headers["content-length"] ?? "") ?? 0, response.headers["etag"])
    }

    public func size(of path: String) throws -> Int64 { try head(path).size }

    public func openRead(_ path: String) throws -> any StorageReader {
        let (size, etag) = try head(path)
        return S3ObjectReader(client: client, key: key(path), size: size, etag: etag)
    }

    public func openWrite(_ path: String) throws -> any StorageWriter {
        S3ObjectWriter(client: client, key: key(path), firstPartSize: client.credentials.partSize)
    }

    public func remove(_ path: String) throws {
        let base = key(path)
        var keys = try listKeys(prefix: base + "/", delimiter: nil).objects.map(\.0)
        if try client.expect([200, 404], "HEAD", key: base).status == 200 { keys.append(base) }
        for key in keys { try client.expect([200, 204, 404], "DELETE", key: key) }
    }

    public func makeFolder(_ path: String) throws {}

    /// Aborts the unfinished multipart uploads under `folder` (a killed or failed run's), returning their keys.
    /// Only call it under the lock of whoever writes there (the write lock for `backups/`).
    @discardableResult
    public func abortAbandonedUploads(under folder: String) throws -> [String] {
        try pendingUploads(under: folder).map { upload in
            try abort(upload)
            return upload.path
        }
    }

    /// Tells whether `url` can hold a repository (`ftbackup check`).
    public static func probe(url: String) -> CheckReport.RepositoryStatus {
        do { return try open(url).probe() } catch { return .init(path: url, exists: false, writable: false, problem: "\(error)") }
    }

    /// Tells whether the bucket can hold a repository: lists it and writes, then removes, a probe.
    public func probe() -> CheckReport.RepositoryStatus {
        do {
            let exists = !(try list("")).isEmpty
            let probe = ".ftbackup-probe-\(getpid())-\(UUID().uuidString.prefix(8))"
            try writeAll(probe, Array("x".utf8))
            try remove(probe)
            return .init(path: location, exists: exists, writable: true, problem: nil)
        } catch {
            return .init(path: location, exists: false, writable: false, problem: "\(error)")
        }
    }
}

/// Reads one object with ranged GETs of a bounded size, each retried, pinned to the ETag seen at open.
final class S3ObjectReader: StorageReader {
    private let client: S3Client
    private let key: String
    private let size: Int64
    private let etag: String?
    private var offset: Int64 = 0
    private var chunk: [UInt8] = []
    private var chunkOffset = 0
    static let rangeSize: Int64 = 8 << 20

    init(client: S3Client, key: String, size: Int64, etag: String?) {
        self.client = client
        self.key = key
        self.size = size
        self.etag = etag
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if chunkOffset == chunk.count {
            guard offset < size else { return 0 }
            let last = min(size, offset + Self.rangeSize) - 1
            var headers = [("range", "bytes=\(offset)-\(last)")]
            if let etag { headers.append(("if-match", etag)) }
            let response = try client.send("GET", key: key, headers: headers)
            if response.status == 412 {
                throw FTBackupError(.dataError, "S3 object s3://\(client.bucket)/\(key) changed while it was read (HTTP 412)",
                                    hint: "another run rewrote it; run the command again")
            }
            guard response.status == 206 || response.status == 200 else { throw client.failure(response, method: "GET", key: key) }
            // A 200 is the whole object (a store that ignores Range): keep the requested part only.
            chunk = response.status == 200 ? Array(response.body.dropFirst(Int(offset)).prefix(Int(last - offset + 1))) : response.body
            chunkOffset = 0
            guard !chunk.isEmpty else {
                throw FTBackupError(.dataError, "S3 object s3://\(client.bucket)/\(key) ended at byte \(offset) of \(size)")
            }
            offset += Int64(chunk.count)
        }
        let count = min(buffer.count, chunk.count - chunkOffset)
        chunk.withUnsafeBytes { source in
            buffer.baseAddress!.copyMemory(from: source.baseAddress! + chunkOffset, byteCount: count)
        }
        chunkOffset += count
        return count
    }

    func close() { chunk = [] }
}
