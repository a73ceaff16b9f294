import Foundation
import Yams

/// Reads the policy's optional `repository` section: `{path, uri_style, ca_bundle, second, second_env_file}`.
enum RepositorySettingsReader {
    static func read(_ reader: NodeReader, _ node: Node?) throws -> Policy.RepositorySettings {
        let section = try reader.mapping(node, path: "repository", keys: ["path", "uri_style", "ca_bundle", "second", "second_env_file"])
        var settings = Policy.RepositorySettings()
        settings.path = try section.optional("path").map { try reader.string($0, path: "repository.path") }
        if let node = section.optional("uri_style") {
            let style = try reader.string(node, path: "repository.uri_style")
            guard style == "path" || style == "host" else { throw reader.error("repository.uri_style", node, "'\(style)' must be path or host") }
            settings.uriStyle = style
        }
        settings.caBundle = try section.optional("ca_bundle").map { try reader.string($0, path: "repository.ca_bundle") }
        if let node = section.optional("second") {
            let second = try reader.string(node, path: "repository.second")
            if let path = settings.path, Self.same(path, second) {
                throw reader.error("repository.second", node, "'\(second)' is the repository itself: name another one")
            }
            settings.second = second
        }
        if let node = section.optional("second_env_file") {
            let file = try reader.string(node, path: "repository.second_env_file")
            guard let second = settings.second, S3Location.isS3(second), (try? S3Location(second)) != nil else {
                throw reader.error("repository.second_env_file", node, "applies to an s3:// repository.second only")
            }
            guard file.hasPrefix("/") else {
                throw reader.error("repository.second_env_file", node, "'\(file)' must be an absolute path")
            }
            settings.secondEnvFile = file
        }
        return settings
    }

    static func same(_ a: String, _ b: String) -> Bool {
        func trimmed(_ text: String) -> String { text.count > 1 && text.hasSuffix("/") ? String(text.dropLast()) : text }
        return trimmed(a) == trimmed(b)
    }
}
