import Foundation
import Testing
@testable import FTBackupKit

/// The SigV4 signer against AWS's published test suite (aws-sig-v4-test-suite: get-vanilla,
/// get-vanilla-query-order-key-case, post-vanilla; credentials AKIDEXAMPLE, 2015-08-30T12:36:00Z).
@Suite struct S3SignerTests {
    let signer = S3Signer(accessKey: "AKIDEXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                          region: "us-east-1", service: "service")
    let emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    func sign(_ method: String, query: [(String, String)] = []) -> String {
        signer.authorization(method: method, path: "/", query: query,
                             headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
                             payloadHash: emptyHash, amzDate: "20150830T123600Z")
    }

    @Test func getVanillaMatchesAWSsPublishedSignature() {
        #expect(sign("GET") == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                + "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    }

    @Test func getVanillaQueryOrderKeyCaseMatchesAWSsPublishedSignature() {
        #expect(sign("GET", query: [("Param2", "value2"), ("Param1", "value1")]).hasSuffix(
            "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"))
    }

    @Test func postVanillaMatchesAWSsPublishedSignature() {
        #expect(sign("POST").hasSuffix("Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"))
    }

    @Test func keysAreEncodedOnceKeepingSlashes() {
        #expect(S3Signer.uriEncode("backups/a b/ü+=.zst", keepSlash: true) == "backups/a%20b/%C3%BC%2B%3D.zst")
        #expect(S3Signer.uriEncode("a/b", keepSlash: false) == "a%2Fb")
    }

    @Test func theHostHeaderCarriesANonDefaultPort() throws {
        func client(_ endpoint: String, pathStyle: Bool) -> S3Client {
            S3Client(credentials: S3Credentials(accessKey: "a", secretKey: "b", region: "us-east-1", endpoint: URL(string: endpoint)!,
                                                pathStyle: pathStyle, caBundle: nil, partSize: 1 << 20), bucket: "bkt")
        }
        #expect(client("http://127.0.0.1:9000", pathStyle: true).hostHeader == "127.0.0.1:9000")
        #expect(client("https://s3.eu-west-1.amazonaws.com", pathStyle: false).hostHeader == "bkt.s3.eu-west-1.amazonaws.com")
        #expect(client("https://store.example:443", pathStyle: true).hostHeader == "store.example")
        #expect(client("http://127.0.0.1:9000", pathStyle: true).path("a b/c") == "/bkt/a%20b/c")
    }

    @Test func s3AddressesParseAndBadOnesAreRefused() throws {
        let location = try S3Location("s3://my-bucket/some/prefix/")
        #expect(location.bucket == "my-bucket" && location.prefix == "some/prefix")
        #expect(location.key("backups/x/manifest.json") == "some/prefix/backups/x/manifest.json")
        #expect(try S3Location("s3://my-bucket").key("a") == "a")
        for bad in ["s3://", "s3://UPPER/x", "s3://ab/x"] {
            #expect(throws: FTBackupError.self) { try S3Location(bad) }
        }
    }

    @Test func credentialsComeFromTheSharedFileWithAProfile() throws {
        let file = NSTemporaryDirectory() + "aws-credentials-\(UUID())"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try "[default]\naws_access_key_id = D\naws_secret_access_key = DS\n[ci]\naws_access_key_id=CI\naws_secret_access_key = CIS\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let resolved = try S3Credentials.resolve(["AWS_SHARED_CREDENTIALS_FILE": file, "AWS_PROFILE": "ci", "AWS_REGION": "eu-west-1"])
        #expect(resolved.accessKey == "CI" && resolved.secretKey == "CIS" && resolved.region == "eu-west-1")
        #expect(resolved.endpoint.absoluteString == "https://s3.eu-west-1.amazonaws.com" && !resolved.pathStyle)
        let overridden = try S3Credentials.resolve(["AWS_SHARED_CREDENTIALS_FILE": file, "AWS_ACCESS_KEY_ID": "E", "AWS_SECRET_ACCESS_KEY": "ES",
                                                    "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000"])
        #expect(overridden.accessKey == "E" && overridden.pathStyle)
        #expect(throws: FTBackupError.self) { try S3Credentials.resolve(["AWS_SHARED_CREDENTIALS_FILE": file, "AWS_PROFILE": "missing"]) }
    }

    @Test func partsGrowSoTenThousandReachBeyondATerabyte() {
        let first = S3Credentials.defaultPartSize
        let total = (1...S3ObjectWriter.maxParts).reduce(Int64(0)) { $0 + Int64(S3ObjectWriter.partSize(number: $1, first: first)) }
        #expect(total > 1 << 40)
        #expect(S3ObjectWriter.partSize(number: 10_000, first: first) <= 5 << 30)
        #expect(S3ObjectWriter.partSize(number: 1, first: first) == first)
    }

    @Test func listResultsAreReadWithEntitiesDecoded() {
        let xml = Array("<ListBucketResult><Contents><Key>a&amp;b/c&lt;d</Key><Size>12</Size></Contents><IsTruncated>true</IsTruncated></ListBucketResult>".utf8)
        #expect(S3XML.all("Key", in: xml) == ["a&b/c<d"])
        #expect(S3XML.first("IsTruncated", in: xml) == "true")
    }
}
