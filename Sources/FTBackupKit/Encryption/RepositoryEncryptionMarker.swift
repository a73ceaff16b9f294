import Foundation

/// `encryption.json` at the repository's root (plain): says that the repository holds encrypted units,
/// which master key opens them, and whether a key rotation is under way.
///
/// It exists so that a command run without the key, or with another key, stops at once with one clear
/// line (exit 77) instead of failing file by file, and so that an interrupted rotation is never mistaken
/// for a finished one. It holds key ids only, never a key.
public struct RepositoryEncryptionMarker: Codable, Sendable, Equatable {
    public static let fileName = "encryption.json"
    public static let format = "tink-aes-gcm-hkdf-streaming/aes256-hkdfsha256-1mib"

    public var version = 1
    public var format = RepositoryEncryptionMarker.format
    /// The key that wraps every data key (the new key while a rotation runs).
    public var masterKeyId: String
    /// While `key rotate` runs: the key it rotates from (records may be wrapped by either).
    public var rotatingFrom: String?

    public static func read(_ storage: LocalStorage) throws -> RepositoryEncryptionMarker? {
        guard storage.exists(fileName) else { return nil }
        let bytes = try storage.readAll(fileName)
        do { return try JSONDecoder().decode(RepositoryEncryptionMarker.self, from: Data(bytes)) } catch {
            throw FTBackupError(.dataError, "\(storage.location)/\(fileName) is unreadable: \(error)",
                                hint: "it must hold the repository's key id; restore it from a copy of the repository")
        }
    }

    public func write(_ storage: LocalStorage) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try storage.writeAll(Self.fileName, Array(try encoder.encode(self)) + [0x0A])
    }
}
