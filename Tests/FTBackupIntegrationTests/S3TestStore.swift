import Foundation
import Testing
@testable import FTBackupKit

/// The loopback S3 server `make test` started (moto, scripts/scratch-s3.sh) and a fresh bucket per test.
struct S3TestStore {
    let bucket: String
    let environment: [String: String]

    var url: String { "s3://\(bucket)/repo" }

    static func variable(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            throw FTBackupError(.usage, "\(name) is not set", hint: "run the tests with `make test` (it starts moto: scripts/scratch-s3.sh)")
        }
        return value
    }

    static func credentials(secret: String? = nil) throws -> S3Credentials {
        try S3Credentials.resolve(["AWS_ACCESS_KEY_ID": try variable("FTBACKUP_TEST_S3_ACCESS_KEY"),
                                   "AWS_SECRET_ACCESS_KEY": secret ?? (try variable("FTBACKUP_TEST_S3_SECRET_KEY")),
                                   "AWS_ENDPOINT_URL_S3": try variable("FTBACKUP_TEST_S3_ENDPOINT"), "AWS_REGION": "us-east-1"])
    }

    /// A new empty bucket; `body` gets the store; the bucket is left for moto to discard when it stops.
    static func with<T>(_ body: (S3TestStore) async throws -> T) async throws -> T {
        let bucket = "ftb-\(UUID().uuidString.prefix(13).lowercased().replacingOccurrences(of: "-", with: ""))"
        let client = S3Client(credentials: try credentials(), bucket: bucket)
        try client.expect([200], "PUT", key: "")
        let environment = ["AWS_ACCESS_KEY_ID": try variable("FTBACKUP_TEST_S3_ACCESS_KEY"),
                           "AWS_SECRET_ACCESS_KEY": try variable("FTBACKUP_TEST_S3_SECRET_KEY"),
                           "AWS_ENDPOINT_URL_S3": try variable("FTBACKUP_TEST_S3_ENDPOINT"), "AWS_REGION": "us-east-1",
                           "AWS_PROFILE": "", "AWS_SESSION_TOKEN": ""]
        return try await body(S3TestStore(bucket: bucket, environment: environment))
    }

    var client: S3Client { get throws { S3Client(credentials: try Self.credentials(), bucket: bucket) } }
    var storage: S3Storage { get throws { S3Storage(location: try S3Location(url), client: try client) } }

    /// Runs ftbackup on the bucket's repository (`--repo` added) with the store's credentials.
    func run(_ arguments: [String], database: TestDatabase? = nil, environment extra: [String: String] = [:]) async throws -> FTBackupBinary.Outcome {
        try await FTBackupBinary.run(arguments + ["--repo", url] + (database.map { ["--db", $0.connectionString.raw] } ?? []),
                               environment: environment.merging(extra) { $1 })
    }

    /// Every object key in the bucket.
    func keys() throws -> [String] {
        try storage.listKeys(prefix: "", delimiter: nil).objects.map(\.0)
    }

    /// The unfinished multipart uploads in the bucket (their keys).
    func uploads() throws -> [String] {
        S3XML.all("Key", in: try client.expect([200], "GET", key: "", query: [("uploads", "")]).body)
    }
}
