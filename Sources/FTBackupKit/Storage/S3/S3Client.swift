import Crypto
import Foundation

/// Signed, retried requests to one bucket.
///
/// It exists so that the storage speaks in keys and S3 operations while addressing (path or virtual
/// host), SigV4, retries and the mapping of failures to one clear line (bucket, key, HTTP status and
/// S3 error code, never a secret) live in one place.
public final class S3Client: @unchecked Sendable {
    public let credentials: S3Credentials
    public let bucket: String
    let transport: any S3Transport
    let retry: S3Retry
    private let signer: S3Signer

    public init(credentials: S3Credentials, bucket: String, transport: (any S3Transport)? = nil, retry: S3Retry = .fromEnvironment()) {
        self.credentials = credentials
        self.bucket = bucket
        self.transport = transport ?? CurlTransport(caBundle: credentials.caBundle)
        self.retry = retry
        signer = S3Signer(accessKey: credentials.accessKey, secretKey: credentials.secretKey, region: credentials.region)
    }

    /// The `host` header: the endpoint's host, with its port unless it is the scheme's default.
    var hostHeader: String {
        let endpoint = credentials.endpoint
        var host = endpoint.host!
        if host.contains(":") { host = "[\(host)]" }
        if !credentials.pathStyle { host = "\(bucket).\(host)" }
        if let port = endpoint.port, !(endpoint.scheme == "https" && port == 443), !(endpoint.scheme == "http" && port == 80) {
            host += ":\(port)"
        }
        return host
    }

    /// The encoded request path for `key` ("" addresses the bucket itself).
    func path(_ key: String) -> String {
        let encodedKey = S3Signer.uriEncode(key, keepSlash: true)
        return credentials.pathStyle ? "/\(bucket)" + (key.isEmpty ? "" : "/\(encodedKey)") : "/\(encodedKey)"
    }

    /// Sends one request (retrying what is worth retrying) and returns the answer whatever its status.
    public func send(_ method: String, key: String, query: [(String, String)] = [], headers: [(String, String)] = [],
                     body: [UInt8] = []) throws -> S3HTTPResponse {
        let payloadHash = body.withUnsafeBytes { S3Signer.payloadHash($0) }
        let path = path(key)
        let queryText = query.map { "\(S3Signer.uriEncode($0.0, keepSlash: false))=\(S3Signer.uriEncode($0.1, keepSlash: false))" }.joined(separator: "&")
        let scheme = credentials.endpoint.scheme!
        let url = "\(scheme)://\(hostHeader)\(path)\(queryText.isEmpty ? "" : "?\(queryText)")"
        do {
            return try retry.run {
                let amzDate = S3Signer.amzDate(Date())
                var signed = headers + [("host", hostHeader), ("x-amz-date", amzDate), ("x-amz-content-sha256", payloadHash)]
                if let token = credentials.sessionToken { signed.append(("x-amz-security-token", token)) }
                let authorization = signer.authorization(method: method, path: path, query: query, headers: signed,
                                                         payloadHash: payloadHash, amzDate: amzDate)
                return try transport.send(S3HTTPRequest(method: method, url: url, headers: signed + [("Authorization", authorization)], body: body))
            }
        } catch let error as S3TransportError {
            throw FTBackupError(.unavailable, "cannot reach S3 endpoint \(credentials.endpoint.absoluteString) for s3://\(bucket)/\(key): \(error.message)",
                                hint: "check AWS_ENDPOINT_URL_S3 and the network; requests were retried \(retry.attempts) times")
        }
    }

    /// Sends and fails (one line) unless the status is one of `expected`.
    @discardableResult
    public func expect(_ expected: Set<Int>, _ method: String, key: String, query: [(String, String)] = [],
                       headers: [(String, String)] = [], body: [UInt8] = []) throws -> S3HTTPResponse {
        let response = try send(method, key: key, query: query, headers: headers, body: body)
        guard expected.contains(response.status) else { throw failure(response, method: method, key: key) }
        return response
    }

    /// The one-line error for an answer: bucket, key, status and S3's error code; exit code by kind.
    public func failure(_ response: S3HTTPResponse, method: String, key: String) -> FTBackupError {
        let code = S3XML.first("Code", in: response.body) ?? response.headers["x-amz-error-code"]
        let what = "S3 \(method) s3://\(bucket)/\(key) failed: HTTP \(response.status)\(code.map { " \($0)" } ?? "")"
        // NoSuchBucket on any key, or a bare 404 on the bucket itself (a HEAD or listing has no error body).
        if response.status == 404 && (code == "NoSuchBucket" || (code == nil && key.isEmpty)) {
            return FTBackupError(.unavailable, "S3 bucket \(bucket) does not exist at \(credentials.endpoint.absoluteString) (HTTP 404 NoSuchBucket)",
                                 hint: "create the bucket, or fix the bucket in --repo / FTBACKUP_REPO")
        }
        switch (response.status, code) {
        case (400, "InvalidToken"), (400, "ExpiredToken"), (400, "TokenRefreshRequired"), (403, "ExpiredToken"), (403, "InvalidToken"):
            return FTBackupError(.permission, "\(what): the session token (AWS_SESSION_TOKEN) is expired or invalid",
                                 hint: "get new temporary credentials (all three of key, secret and token) and run again")
        case (401, _), (403, _):
            return FTBackupError(.permission, "\(what): the store refused the credentials or the access key lacks permission",
                                 hint: "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and the bucket policy")
        case (404, _):
            return FTBackupError(.dataError, "\(what): no such object", hint: "the repository is missing this file; run ftbackup verify")
        case (301, _), (400, "AuthorizationHeaderMalformed"), (400, "IllegalLocationConstraintException"):
            return FTBackupError(.configuration, "\(what): wrong region or endpoint for the bucket",
                                 hint: "set AWS_REGION to the bucket's region (or AWS_ENDPOINT_URL_S3)")
        case (let status, _) where status >= 500 || status == 429:
            return FTBackupError(.unavailable, "\(what) after \(retry.attempts) attempts", hint: "the store is unavailable or throttling; run again later")
        default:
            return FTBackupError(.failure, what)
        }
    }

    /// Base64 MD5 of a body (`Content-MD5`), which every S3-compatible store checks.
    static func contentMD5(_ bytes: [UInt8]) -> String {
        Data(Insecure.MD5.hash(data: bytes)).base64EncodedString()
    }

    /// Base64 SHA-256 of a body (`x-amz-checksum-sha256`).
    static func checksumSHA256(_ bytes: [UInt8]) -> String {
        Data(SHA256.hash(data: bytes)).base64EncodedString()
    }
}
