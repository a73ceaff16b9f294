import Foundation
import Testing
@testable import FTBackupKit

/// The second repository's own S3 settings (`repository.second_env_file`): the file's syntax, its
/// permissions, and that the policy accepts it only for an `s3://` second repository.
@Suite struct S3EnvironmentFileTests {
    static func file(_ text: String, mode: mode_t = 0o600) throws -> String {
        let path = NSTemporaryDirectory() + "ftbackup-s3env-\(UUID()).env"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(text.utf8)))
        #expect(chmod(path, mode) == 0)
        return path
    }

    @Test func keyValueLinesCommentsExportAndQuotesAreRead() throws {
        let path = try Self.file("""
            # the off-site account
            AWS_ACCESS_KEY_ID=AKIDSECOND

            export AWS_SECRET_ACCESS_KEY="se cret=x"
              AWS_REGION = 'eu-west-1'
            AWS_ENDPOINT_URL_S3=https://s3.eu-west-1.amazonaws.com\r
            FTBACKUP_S3_URI_STYLE=host
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try S3EnvironmentFile.read(path) == ["AWS_ACCESS_KEY_ID": "AKIDSECOND", "AWS_SECRET_ACCESS_KEY": "se cret=x",
                                                     "AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL_S3": "https://s3.eu-west-1.amazonaws.com",
                                                     "FTBACKUP_S3_URI_STYLE": "host"])
    }

    @Test func aFileOthersCanReadIsRefusedAndNeverShowsTheSecret() throws {
        let path = try Self.file("AWS_ACCESS_KEY_ID=A\nAWS_SECRET_ACCESS_KEY=topsecret\n", mode: 0o640)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = try #require(throws: FTBackupError.self) { try S3EnvironmentFile.read(path) }
        #expect(error.status == .permission && error.message.contains("mode 640") && !error.message.contains("topsecret"), "\(error.message)")
    }

    @Test(arguments: [("AWS_REGION eu-west-1\n", "line 1: not KEY=VALUE"),
                      ("# ok\nPGPASSWORD=x\n", "line 2: PGPASSWORD is not an S3 setting"),
                      ("aws_region=x\n", "line 1: 'aws_region' is not a variable name"),
                      ("AWS_SECRET_ACCESS_KEY=\"abc\n", "line 1: AWS_SECRET_ACCESS_KEY's value has no closing quote")])
    func aLineItCannotReadIsRefusedWithItsNumber(text: String, expected: String) throws {
        let path = try Self.file(text)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = try #require(throws: FTBackupError.self) { try S3EnvironmentFile.read(path) }
        #expect(error.status == .configuration && error.message.contains(expected), "\(error.message)")
    }

    @Test func aMissingFileIsAConfigurationError() throws {
        let error = try #require(throws: FTBackupError.self) { try S3EnvironmentFile.read("/nonexistent/ftbackup-second.env") }
        #expect(error.status == .configuration && error.message.contains("/nonexistent/ftbackup-second.env"), "\(error.message)")
    }

    @Test func thePolicyTakesTheFileOnlyForAnS3SecondRepository() throws {
        let base = PolicyLoader.builtInDefault
        let policy = try PolicyLoader.parse(base + "\nrepository:\n  path: /r\n  second: s3://off-site/ft\n  second_env_file: /etc/ftbackup/second.env\n", source: "(t)")
        #expect(policy.repository.secondEnvFile == "/etc/ftbackup/second.env")
        for bad in ["  second: /srv/second\n  second_env_file: /etc/second.env\n", "  second_env_file: /etc/second.env\n",
                    "  second: s3://off-site/ft\n  second_env_file: second.env\n"] {
            let error = try #require(throws: FTBackupError.self) { try PolicyLoader.parse(base + "\nrepository:\n  path: /r\n" + bad, source: "(t)") }
            #expect(error.status == .configuration && error.message.contains("repository.second_env_file"), "\(error.message)")
        }
    }

    @Test func theSecondRepositoryReadsItsOwnFileAndNoOtherRepositoryDoes() throws {
        let path = try Self.file("AWS_ACCESS_KEY_ID=AKIDSECOND\nAWS_SECRET_ACCESS_KEY=s\nAWS_REGION=eu-west-1\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let second = try S3Location("s3://ftb-unit-second-\(UUID().uuidString.prefix(8).lowercased())/ft")
        S3RepositoryEnvironment.use(file: path, for: second)
        defer { S3RepositoryEnvironment.use(file: nil, for: second) }
        let environment = try S3RepositoryEnvironment.environment(for: try S3Location(second.description + "/"))
        #expect(environment["AWS_ACCESS_KEY_ID"] == "AKIDSECOND" && environment["HOME"] != nil)
        let credentials = try S3Credentials.resolve(environment)
        #expect(credentials.accessKey == "AKIDSECOND" && credentials.region == "eu-west-1")
        #expect(try S3RepositoryEnvironment.environment(for: try S3Location("s3://\(second.bucket)/other")) == ProcessInfo.processInfo.environment)
    }
}
