import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The repository's master key: 32 random bytes in a file only its owner can read.
///
/// It exists to wrap the per-unit data keys (``DataKeyRecord``) and nothing else, so that rotating it
/// rewrites small key records instead of the data. It is never printed, logged or stored in the
/// repository: messages and records name it by ``id``, derived from it with HKDF (not a plain hash).
public struct MasterKey: Sendable {
    public static let size = 32
    let key: SymmetricKey
    /// 16 hex digits: HKDF-SHA256(master, info "ftbackup key id"), first 8 bytes.
    public let id: String

    init(bytes: [UInt8]) {
        key = SymmetricKey(data: bytes)
        id = MasterKey.keyID(of: key, info: "ftbackup key id")
    }

    /// The id of a key: the first 8 bytes of HKDF-SHA256 over it with `info`, in hex.
    static func keyID(of key: SymmetricKey, info: String) -> String {
        let derived = HKDF<SHA256>.deriveKey(inputKeyMaterial: key, info: Array(info.utf8), outputByteCount: 8)
        return derived.withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() }
    }

    /// Reads a key file: it must be a regular file of exactly 32 bytes that neither group nor others can
    /// read or write (as ssh refuses a private key others can read). Every refusal is exit 77.
    public static func load(path: String) throws -> MasterKey {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw FTBackupError(.permission, "cannot read key file \(path): \(String(cString: strerror(errno)))",
                                hint: "give the repository's key with --key-file, FTBACKUP_KEY_FILE or the policy's encryption.key_file")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw FTBackupError(.permission, "key file \(path) is not a regular file", hint: "point it at the file ftbackup key create wrote")
        }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw FTBackupError(.permission, "key file \(path) is accessible by group or others (mode \(String(mode, radix: 8))): refused",
                                hint: "chmod 600 \(path)")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw FTBackupError(.permission, "cannot read key file \(path): \(String(cString: strerror(errno)))", hint: "run as the key file's owner")
        }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: size + 1)
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if count < 0 { if errno == EINTR { continue }; throw FTBackupError(.permission, "cannot read key file \(path): \(String(cString: strerror(errno)))") }
            if count == 0 { break }
            filled += count
        }
        guard filled == size else {
            throw FTBackupError(.permission, "key file \(path) is not an ftbackup key (\(filled == size + 1 ? "more than" : "\(filled) bytes, not") \(size) bytes)",
                                hint: "create one with ftbackup key create --key-file PATH")
        }
        return MasterKey(bytes: Array(bytes[0..<size]))
    }

    /// Writes a new random key to `path` (mode 0600, created exclusively: an existing file is never
    /// overwritten) and returns it.
    public static func create(path: String) throws -> MasterKey {
        var bytes = [UInt8](repeating: 0, count: size)
        var generator = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = generator.next() }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let code = errno
            if code == EEXIST {
                throw FTBackupError(.usage, "key file \(path) already exists: refusing to overwrite it",
                                    hint: "a key that is overwritten can no longer open what it encrypted; choose another path")
            }
            if code == ENOENT {
                throw FTBackupError(.cannotWrite, "cannot create key file \(path): its folder does not exist",
                                    hint: "create the folder first (mode 0700), away from the repository")
            }
            throw LocalStorage.failure("cannot create key file", path, code)
        }
        var ok = fchmod(fd, 0o600) == 0
        ok = ok && bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == size
        ok = ok && fsync(fd) == 0
        let code = errno
        close(fd)
        guard ok else {
            unlink(path)
            throw LocalStorage.failure("cannot write key file", path, code)
        }
        LocalStorage.syncDirectory(LocalStorage.parentFolder(path).isEmpty ? "." : LocalStorage.parentFolder(path))
        return MasterKey(bytes: bytes)
    }
}
