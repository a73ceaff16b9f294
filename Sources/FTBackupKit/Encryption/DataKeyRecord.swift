import Crypto
import Foundation

/// One unit's data key as stored in `keys/`: wrapped (AES-256-GCM) by the master key.
///
/// It exists so that every backup, segment or archive has its own key (a leaked data key opens one
/// unit) and so that `key rotate` only rewrites these records. The associated data of the wrap binds
/// the record to its unit and data key id: a record copied onto another unit does not unwrap.
public struct DataKeyRecord: Codable, Sendable, Equatable {
    public var version = 1
    /// The unit this key encrypts (`backups/<label>`, `changes/segments/<label>`, a file's path).
    public var unit: String
    /// 16 hex digits derived from the data key (HKDF, info "ftbackup data key id"); every encrypted file
    /// of the unit carries it in its prefix.
    public var dataKeyId: String
    /// The id of the master key that wrapped it.
    public var masterKeyId: String
    /// Base64 of the 12-byte GCM nonce and of the wrapped key followed by its 16-byte tag.
    public var nonce: String
    public var wrapped: String

    static func associatedData(unit: String, dataKeyId: String) -> [UInt8] {
        Array("ftbackup data key\u{0}\(unit)\u{0}\(dataKeyId)".utf8)
    }

    static func dataKeyID(_ key: SymmetricKey) -> String { MasterKey.keyID(of: key, info: "ftbackup data key id") }

    /// A record for `dataKey`, wrapped by `master`.
    static func wrap(_ dataKey: SymmetricKey, unit: String, master: MasterKey) throws -> DataKeyRecord {
        let id = dataKeyID(dataKey)
        let box = try dataKey.withUnsafeBytes {
            try AES.GCM.seal(Array($0), using: master.key, authenticating: associatedData(unit: unit, dataKeyId: id))
        }
        return DataKeyRecord(unit: unit, dataKeyId: id, masterKeyId: master.id,
                             nonce: Data(box.nonce).base64EncodedString(),
                             wrapped: (box.ciphertext + box.tag).base64EncodedString())
    }

    /// The data key; a record wrapped by another master key, or one that does not unwrap, is a key
    /// problem (exit 77) naming the key ids, never the keys.
    func unwrap(_ master: MasterKey, shown: String) throws -> SymmetricKey {
        guard masterKeyId == master.id else {
            throw FTBackupError(.permission, "data key \(shown) is wrapped by key id \(masterKeyId), not by the key given (id \(master.id))",
                                hint: "give the repository's current key; if a key rotate was interrupted, run it again")
        }
        guard let nonceBytes = Data(base64Encoded: nonce), let sealed = Data(base64Encoded: wrapped), sealed.count == MasterKey.size + 16,
              let key = try? AES.GCM.open(AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: nonceBytes), ciphertext: sealed.prefix(MasterKey.size),
                                                            tag: sealed.suffix(16)),
                                          using: master.key, authenticating: Self.associatedData(unit: unit, dataKeyId: dataKeyId)),
              DataKeyRecord.dataKeyID(SymmetricKey(data: key)) == dataKeyId else {
            // The record names the key given (ids are derived from the key): the key is right, the record was changed.
            throw FTBackupError(.dataError, "data key \(shown) does not unwrap with the key it names (id \(master.id)): the record was changed",
                                hint: "the key is right; a changed key record cannot be repaired: restore keys/ from a copy of the repository")
        }
        return SymmetricKey(data: key)
    }

    /// The same data key wrapped by `master` (rotation).
    func rewrapped(_ key: SymmetricKey, by master: MasterKey) throws -> DataKeyRecord {
        try DataKeyRecord.wrap(key, unit: unit, master: master)
    }

    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return Array(try encoder.encode(self)) + [0x0A]
    }

    static func decode(_ bytes: [UInt8], shown: String) throws -> DataKeyRecord {
        do { return try JSONDecoder().decode(DataKeyRecord.self, from: Data(bytes)) } catch {
            throw FTBackupError(.dataError, "key record \(shown) is unreadable: \(error)",
                                hint: "a damaged key record cannot be repaired: restore keys/ from a copy of the repository")
        }
    }
}
