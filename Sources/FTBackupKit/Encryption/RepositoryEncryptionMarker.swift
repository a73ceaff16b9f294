import Crypto
import Foundation

/// `encryption.json` at the repository's root (plain, authenticated): says that the repository holds
/// encrypted units, which master key opens them, whether a key rotation is under way, and which units
/// were already there, plain, when encryption was turned on.
///
/// It exists so that a command run without the key, or with another key, stops at once with one clear
/// line (exit 77) instead of failing file by file; so that an interrupted rotation is never mistaken
/// for a finished one; and so that a plain unit dropped into an encrypted repository later (a forged
/// backup, with or without its key record removed) is refused instead of read: only the units listed in
/// ``plainUnits`` may be plain. It holds key ids only, never a key, and carries an HMAC-SHA256 tag under
/// a key derived from the master key, so that none of it can be changed without the key.
public struct RepositoryEncryptionMarker: Codable, Sendable, Equatable {
    public static let fileName = "encryption.json"
    public static let format = "tink-aes-gcm-hkdf-streaming/aes256-hkdfsha256-1mib"
    /// Version 2 added ``plainUnits`` and ``tag``; a version 1 marker is not authenticated and is refused.
    public static let currentVersion = 2

    public var version = RepositoryEncryptionMarker.currentVersion
    public var format = RepositoryEncryptionMarker.format
    /// The key that wraps every data key (the new key while a rotation runs).
    public var masterKeyId: String
    /// While `key rotate` runs: the key it rotates from (records may be wrapped by either).
    public var rotatingFrom: String?
    /// The units that held plain files when the first unit was encrypted (written before encryption was
    /// turned on); every other unit must be encrypted.
    public var plainUnits: [String] = []
    /// Base64 of HMAC-SHA256 over the other fields, under HKDF(master key of ``masterKeyId``, "ftbackup encryption.json").
    public var tag: String?

    public init(masterKeyId: String, rotatingFrom: String? = nil, plainUnits: [String] = []) {
        self.masterKeyId = masterKeyId
        self.rotatingFrom = rotatingFrom
        self.plainUnits = plainUnits
    }

    enum CodingKeys: String, CodingKey { case version, format, masterKeyId, rotatingFrom, plainUnits, tag }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        version = try container.decode(Int.self, forKey: .version)
        format = try container.decode(String.self, forKey: .format)
        masterKeyId = try container.decode(String.self, forKey: .masterKeyId)
        rotatingFrom = try container.decodeIfPresent(String.self, forKey: .rotatingFrom)
        plainUnits = try container.decodeIfPresent([String].self, forKey: .plainUnits) ?? []
        tag = try container.decodeIfPresent(String.self, forKey: .tag)
    }

    public static func read(_ storage: any RepositoryStorage) throws -> RepositoryEncryptionMarker? {
        if let local = storage as? LocalStorage {
            guard try local.exists(fileName) else { return nil }
        } else {
            // A bucket: one listing of the root (a HEAD of a missing key would be followed by a prefix listing).
            guard try storage.list("").contains(where: { $0.path == fileName && !$0.isDirectory }) else { return nil }
        }
        let bytes = try storage.readAll(fileName)
        do { return try JSONDecoder().decode(RepositoryEncryptionMarker.self, from: Data(bytes)) } catch {
            throw FTBackupError(.dataError, "\(storage.location)/\(fileName) is unreadable: \(error)",
                                hint: "it must hold the repository's key id; restore it from a copy of the repository")
        }
    }

    /// Writes the marker with its tag under `key` (the key of ``masterKeyId``).
    public func write(_ storage: any RepositoryStorage, sealedBy key: MasterKey) throws {
        var sealed = self
        sealed.version = Self.currentVersion
        sealed.tag = Data(try sealed.mac(key)).base64EncodedString()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try storage.writeAll(Self.fileName, Array(try encoder.encode(sealed)) + [0x0A])
    }

    /// Refuses (exit 65) a marker whose tag does not verify under `key`, the key of ``masterKeyId``:
    /// it was changed (a unit added to ``plainUnits``, a rotation state edited) or written by an
    /// ftbackup that did not authenticate it.
    public func authenticate(_ key: MasterKey, location: String) throws {
        guard version >= Self.currentVersion, let tag, let expected = Data(base64Encoded: tag) else {
            throw FTBackupError(.dataError, "\(location)/\(Self.fileName) is not authenticated (version \(version), no tag): it was changed, or written by an earlier ftbackup",
                                hint: "restore it from a copy of the repository")
        }
        guard Array(expected) == (try mac(key)) else {
            throw FTBackupError(.dataError, "\(location)/\(Self.fileName) does not authenticate with the repository's key (id \(key.id)): it was changed",
                                hint: "restore it from a copy of the repository")
        }
    }

    private func mac(_ key: MasterKey) throws -> [UInt8] {
        var untagged = self
        untagged.tag = nil
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let macKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: key.key, info: Array("ftbackup encryption.json".utf8), outputByteCount: 32)
        return Array(HMAC<SHA256>.authenticationCode(for: try encoder.encode(untagged), using: macKey))
    }
}
