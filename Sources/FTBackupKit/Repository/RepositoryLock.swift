import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Keeps two runs from writing one repository at once, and keeps expiry away from a backup that a
/// restore is reading.
///
/// It uses `flock(2)` on files under `locks/`: the kernel releases the lock when its process dies,
/// so a stale lock of a killed run is taken over without guessing. The holder's pid, host, command
/// and start time are written into the file so that a refused run can name who holds it.
/// (flock is reliable on local filesystems; an S3 repository uses lock objects instead: ``S3LeaseLock``.)
public final class RepositoryLock: @unchecked Sendable {
    public enum Kind: String, Sendable {
        /// Backups, archives and expiry: one at a time.
        case write
        /// Restores, verifies and drills: many at once, but never during expiry.
        case read
        /// The change archive's writer: `follow` for its whole life, or one `backup --type incr` pass.
        case changes
        /// One scheduler tick (`ftbackup run`) at a time: a second tick started meanwhile does nothing.
        case run
    }

    private var fd: Int32
    public let path: String
    private let exclusive: Bool
    /// The lock object(s) of an S3 repository.
    private var remote: [S3LeaseLock]

    private init(fd: Int32, path: String, exclusive: Bool) {
        self.fd = fd
        self.path = path
        self.exclusive = exclusive
        remote = []
    }

    init(remote: [S3LeaseLock], path: String) {
        fd = -1
        self.path = path
        exclusive = true
        self.remote = remote
    }

    /// Takes the lock now or fails at once with a message naming the holder.
    public static func acquire(repositoryRoot: String, kind: Kind, exclusive: Bool, command: String) throws -> RepositoryLock {
        if S3Location.isS3(repositoryRoot) { return try acquireS3(repositoryRoot: repositoryRoot, kind: kind, exclusive: exclusive, command: command) }
        let folder = "\(repositoryRoot)/locks"
        try LocalStorage.makeDirectories(folder)
        let path = "\(folder)/\(kind.rawValue).lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LocalStorage.failure("cannot open lock file", path, errno) }
        if flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0 {
            let code = errno
            var holder = ""
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = pread(fd, &buffer, buffer.count, 0)
            if count > 0 { holder = String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
            close(fd)
            guard code == EWOULDBLOCK else { throw LocalStorage.failure("cannot lock", path, code) }
            // Only exclusive holders write their details (readers share the file); an empty file means readers.
            let who = holder.isEmpty ? (kind == .read ? "one or more restores or verifies are reading it" : "holder unknown") : holder
            throw FTBackupError(.locked, "repository \(repositoryRoot) is locked (\(kind.rawValue)) by another run: \(who)",
                                hint: "wait for it to finish; a lock of a process that died is released by the kernel")
        }
        if exclusive {
            var host = [CChar](repeating: 0, count: 256)
            gethostname(&host, host.count)
            let text = "pid=\(getpid()) host=\(String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)) command=\(command) started=\(Timestamps.iso8601UTC(Date()))\n"
            _ = ftruncate(fd, 0)
            _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
            _ = fsync(fd)
        }
        return RepositoryLock(fd: fd, path: path, exclusive: exclusive)
    }

    public func release() {
        for lock in remote { lock.release() }
        remote = []
        guard fd >= 0 else { return }
        // Clear the holder's details first, so a later refusal never names a run that has finished.
        if exclusive { _ = ftruncate(fd, 0) }
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}
