import Foundation

/// Where an S3 repository is and how to reach it, read the AWS way from the environment.
///
/// It exists so that one place resolves `s3://BUCKET/PREFIX` with the usual AWS settings
/// (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, the shared credentials file with
/// `AWS_PROFILE`, `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL`) plus
/// ftbackup's own (`FTBACKUP_S3_URI_STYLE`, `FTBACKUP_S3_CA_BUNDLE`, `FTBACKUP_S3_PART_SIZE`). Its
/// description never includes the secret.
public struct S3Credentials: Sendable {
    public var accessKey: String
    public var secretKey: String
    public var sessionToken: String?
    public var region: String
    /// `https://s3.REGION.amazonaws.com` unless an endpoint is configured (scheme, host, optional port).
    public var endpoint: URL
    /// Path-style (`endpoint/bucket/key`) or virtual-host (`bucket.endpoint/key`) addressing.
    public var pathStyle: Bool
    /// A CA bundle for stores with a private certificate authority (TLS is always verified).
    public var caBundle: String?
    /// The first multipart part size in bytes (it grows for large files); at least 5 MiB on real stores.
    public var partSize: Int

    public static let defaultPartSize = 8 << 20

    /// Resolves everything from `environment` (the process's by default); fails with one line (exit 77 or 78).
    public static func resolve(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> S3Credentials {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        var accessKey = value("AWS_ACCESS_KEY_ID")
        var secretKey = value("AWS_SECRET_ACCESS_KEY")
        var token = value("AWS_SESSION_TOKEN")
        var profileRegion: String?
        if accessKey == nil || secretKey == nil {
            let profile = value("AWS_PROFILE") ?? "default"
            let home = value("HOME") ?? NSHomeDirectory()
            let file = value("AWS_SHARED_CREDENTIALS_FILE") ?? "\(home)/.aws/credentials"
            if let section = iniSection(file: file, name: profile) {
                accessKey = section["aws_access_key_id"]
                secretKey = section["aws_secret_access_key"]
                token = section["aws_session_token"]
                for (name, found) in [("aws_access_key_id", accessKey), ("aws_secret_access_key", secretKey)] where found?.isEmpty ?? true {
                    throw FTBackupError(.configuration, "AWS profile \(profile) in \(file) has no \(name)",
                                        hint: "add it to the profile, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
                }
            } else if value("AWS_PROFILE") != nil {
                throw FTBackupError(.configuration, "AWS profile \(profile) is not in \(file)",
                                    hint: "add it, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
            }
            let configFile = value("AWS_CONFIG_FILE") ?? "\(home)/.aws/config"
            profileRegion = iniSection(file: configFile, name: profile == "default" ? "default" : "profile \(profile)")?["region"]
        }
        guard let accessKey, let secretKey else {
            throw FTBackupError(.permission, "no S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set and no shared credentials file has them",
                                hint: "set them, or AWS_PROFILE with ~/.aws/credentials")
        }
        let region = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? profileRegion ?? "us-east-1"
        let endpointText = value("AWS_ENDPOINT_URL_S3") ?? value("AWS_ENDPOINT_URL") ?? "https://s3.\(region).amazonaws.com"
        guard let endpoint = URL(string: endpointText), let scheme = endpoint.scheme, ["http", "https"].contains(scheme),
              endpoint.host != nil else {
            throw FTBackupError(.configuration, "S3 endpoint \(endpointText) is not an http(s) URL",
                                hint: "set AWS_ENDPOINT_URL_S3 like https://host:port")
        }
        // Requests go to scheme://host[:port]/…: a path or a query would be dropped silently and every request sent
        // elsewhere than meant, and user:password would end up in error messages. Refuse both.
        guard endpoint.user == nil, endpoint.password == nil else {
            throw FTBackupError(.configuration, "S3 endpoint has user information: credentials belong in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
                                hint: "set AWS_ENDPOINT_URL_S3 like https://host:port")
        }
        guard endpoint.path.isEmpty || endpoint.path == "/", endpoint.query == nil, endpoint.fragment == nil else {
            throw FTBackupError(.configuration, "S3 endpoint \(endpointText) has a path: ftbackup addresses the store at its root",
                                hint: "set AWS_ENDPOINT_URL_S3 like https://host:port and put the folder in the repository URL (s3://bucket/folder)")
        }
        let style = value("FTBACKUP_S3_URI_STYLE")
        guard style == nil || style == "path" || style == "host" else {
            throw FTBackupError(.configuration, "FTBACKUP_S3_URI_STYLE is \(style!): it must be path or host")
        }
        // Custom endpoints (MinIO, moto, Ceph) usually want path style; AWS itself virtual-host style.
        let custom = value("AWS_ENDPOINT_URL_S3") ?? value("AWS_ENDPOINT_URL")
        let pathStyle = style.map { $0 == "path" } ?? (custom != nil)
        var partSize = defaultPartSize
        if let text = value("FTBACKUP_S3_PART_SIZE") {
            guard let bytes = Int(text), bytes >= 1024 else {
                throw FTBackupError(.configuration, "FTBACKUP_S3_PART_SIZE is \(text): it must be a byte count of at least 1024")
            }
            partSize = bytes
        }
        return S3Credentials(accessKey: accessKey, secretKey: secretKey, sessionToken: token, region: region, endpoint: endpoint,
                             pathStyle: pathStyle, caBundle: value("FTBACKUP_S3_CA_BUNDLE"), partSize: partSize)
    }

    /// The `key = value` pairs of `[name]` in an AWS-style ini file, nil when the file or section is absent.
    static func iniSection(file: String, name: String) -> [String: String]? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        var current: String?
        var found: [String: String]?
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                current = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                if current == name && found == nil { found = [:] }
                continue
            }
            guard current == name, let equals = line.firstIndex(of: "=") else { continue }
            found?[line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()] = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        }
        return found
    }
}

/// An `s3://BUCKET/PREFIX` repository address.
public struct S3Location: Sendable, Hashable {
    public var bucket: String
    /// The key prefix without leading or trailing `/` ("" for the bucket's root).
    public var prefix: String

    public static func isS3(_ path: String) -> Bool { path.hasPrefix("s3://") }

    public init(bucket: String, prefix: String) {
        self.bucket = bucket
        self.prefix = prefix
    }

    /// Parses `s3://BUCKET[/PREFIX]`; a bad address is a usage error (exit 64).
    public init(_ url: String) throws {
        guard Self.isS3(url) else { throw FTBackupError(.usage, "\(url) is not an s3:// address") }
        let rest = url.dropFirst("s3://".count)
        let bucket = String(rest.prefix { $0 != "/" })
        let valid = bucket.count >= 3 && bucket.count <= 63 && bucket.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" || $0 == "." }
            && bucket.unicodeScalars.allSatisfy(\.isASCII)
        guard valid else {
            throw FTBackupError(.usage, "\(url): \(bucket.isEmpty ? "no bucket" : "bucket name \(bucket) is not valid")",
                                hint: "use s3://BUCKET/PREFIX with a bucket of 3-63 lowercase letters, digits, dots and hyphens")
        }
        self.bucket = bucket
        self.prefix = rest.dropFirst(bucket.count).split(separator: "/").joined(separator: "/")
    }

    public var description: String { prefix.isEmpty ? "s3://\(bucket)" : "s3://\(bucket)/\(prefix)" }

    /// The object key of a repository path.
    public func key(_ path: String) -> String {
        let trimmed = path.split(separator: "/").joined(separator: "/")
        if prefix.isEmpty { return trimmed }
        return trimmed.isEmpty ? prefix : "\(prefix)/\(trimmed)"
    }
}
