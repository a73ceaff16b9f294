import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A repository in a local (or mounted) folder.
///
/// Files are written under `name.tmp-<pid>`, fsynced, renamed into place and the folder fsynced,
/// so a crash leaves either the complete file or a temporary one that a later run removes. Files
/// are created 0600 and folders 0700: a backup holds every user's data.
public struct LocalStorage: RepositoryStorage {
    public let root: String
    public var location: String { root }

    public init(root: String) {
        self.root = root.hasSuffix("/") && root.count > 1 ? String(root.dropLast()) : root
    }

    func absolute(_ path: String) -> String { path.isEmpty ? root : "\(root)/\(path)" }

    public func list(_ folder: String) throws -> [StorageEntry] {
        let base = absolute(folder)
        guard let dir = opendir(base) else {
            if errno == ENOENT { return [] }
            throw Self.failure("cannot list", base, errno)
        }
        defer { closedir(dir) }
        var entries: [StorageEntry] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name == "." || name == ".." { continue }
            var info = stat()
            let relative = folder.isEmpty ? name : "\(folder)/\(name)"
            guard stat(absolute(relative), &info) == 0 else { continue }
            entries.append(StorageEntry(path: relative, size: Int64(info.st_size),
                                        isDirectory: (info.st_mode & S_IFMT) == S_IFDIR))
        }
        return entries.sorted { $0.path < $1.path }
    }

    public func exists(_ path: String) throws -> Bool { access(absolute(path), F_OK) == 0 }

    public func size(of path: String) throws -> Int64 {
        var info = stat()
        guard stat(absolute(path), &info) == 0 else { throw Self.failure("cannot stat", absolute(path), errno) }
        return Int64(info.st_size)
    }

    public func openRead(_ path: String) throws -> any StorageReader {
        let full = absolute(path)
        let fd = open(full, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Self.failure("cannot open", full, errno) }
        return LocalFileReader(fd: fd, path: full)
    }

    public func openWrite(_ path: String) throws -> any StorageWriter {
        let full = absolute(path)
        let folder = Self.parentFolder(full)
        try Self.makeDirectories(folder)
        let temporary = "\(full).tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Self.failure("cannot create", temporary, errno) }
        return LocalFileWriter(fd: fd, temporary: temporary, final: full, folder: folder)
    }

    public func remove(_ path: String) throws {
        let full = absolute(path)
        var info = stat()
        guard lstat(full, &info) == 0 else { return }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            for entry in try list(path) { try remove(entry.path) }
            guard rmdir(full) == 0 || errno == ENOENT else { throw Self.failure("cannot remove", full, errno) }
        } else {
            guard unlink(full) == 0 || errno == ENOENT else { throw Self.failure("cannot remove", full, errno) }
        }
        Self.syncDirectory(Self.parentFolder(full))
    }

    public func makeFolder(_ path: String) throws { try Self.makeDirectories(absolute(path)) }

    /// Creates `path` and missing parents with mode 0700.
    static func makeDirectories(_ path: String) throws {
        var info = stat()
        if stat(path, &info) == 0 {
            // A repository path (or a folder inside it) that is a file cannot become a folder.
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                throw FTBackupError(.cannotWrite, "cannot use \(path) as a folder: it is a file",
                                    hint: "point --repo (FTBACKUP_REPO) at a folder, or at a path that does not exist yet (it is created)")
            }
            return
        }
        let parent = Self.parentFolder(path)
        if !parent.isEmpty, parent != path { try makeDirectories(parent) }
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw failure("cannot create folder", path, errno) }
    }

    /// The folder `path` is in ("" for a bare name, "/" for a name at the root), without Foundation's
    /// `deletingLastPathComponent`, which traps on a one-character name ("k", "r/") on Linux: `--repo r`
    /// and `key create --key-file k` crashed.
    public static func parentFolder(_ path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "" }
        if slash == trimmed.startIndex { return "/" }
        var parent = trimmed[..<slash]
        while parent.count > 1 && parent.hasSuffix("/") { parent = parent.dropLast() }
        return String(parent)
    }

    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    /// One line naming the operation, the file, the system's reason and what to do.
    static func failure(_ what: String, _ path: String, _ code: Int32) -> FTBackupError {
        let reason = String(cString: strerror(code))
        switch code {
        case ENOSPC, EDQUOT:
            return FTBackupError(.cannotWrite, "\(what) \(path): \(reason)", hint: "free space on the repository's filesystem or point --repo elsewhere")
        case EROFS:
            return FTBackupError(.cannotWrite, "\(what) \(path): \(reason)", hint: "the repository's filesystem is mounted read-only")
        case ENOTDIR:
            return FTBackupError(.cannotWrite, "\(what) \(path): \(reason)", hint: "a part of the path is a file, not a folder; point --repo at a folder")
        case EACCES, EPERM:
            return FTBackupError(.cannotWrite, "\(what) \(path): \(reason)", hint: "run as the repository's owner or fix its permissions (0700)")
        case ENOENT:
            return FTBackupError(.dataError, "\(what) \(path): \(reason)", hint: "the repository is missing this file; run ftbackup verify")
        default:
            return FTBackupError(.failure, "\(what) \(path): \(reason)")
        }
    }

    /// Tells whether `path` can hold a repository, without leaving anything behind.
    public static func probe(path: String) -> CheckReport.RepositoryStatus {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if exists && !isDirectory.boolValue {
            return .init(path: path, exists: true, writable: false, problem: "\(path) is not a folder")
        }
        // A missing repository is created by the first backup: its nearest existing parent must be writable.
        var folder = path
        while !FileManager.default.fileExists(atPath: folder) {
            let parent = Self.parentFolder(folder)
            if parent == folder || parent.isEmpty { break }
            folder = parent
        }
        let probeFile = "\(folder)/.ftbackup-probe-\(getpid())"
        let fd = open(probeFile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 {
            let reason = String(cString: strerror(errno))
            return .init(path: path, exists: exists, writable: false, problem: "cannot write in \(folder): \(reason)")
        }
        var ok = write(fd, "x", 1) == 1 && fsync(fd) == 0
        let reason = ok ? nil : String(cString: strerror(errno))
        close(fd)
        if unlink(probeFile) != 0 { ok = false }
        return .init(path: path, exists: exists, writable: ok, problem: reason.map { "cannot write in \(folder): \($0)" })
    }
}

final class LocalFileReader: StorageReader {
    private var fd: Int32
    let path: String

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let count = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if count >= 0 { return count }
            if errno != EINTR { throw LocalStorage.failure("cannot read", path, errno) }
        }
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    deinit { close() }
}

final class LocalFileWriter: StorageWriter {
    private var fd: Int32
    private let temporary: String
    private let final: String
    private let folder: String
    private var finished = false

    init(fd: Int32, temporary: String, final: String, folder: String) {
        self.fd = fd
        self.temporary = temporary
        self.final = final
        self.folder = folder
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let count = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if count < 0 {
                if errno == EINTR { continue }
                throw LocalStorage.failure("cannot write", temporary, errno)
            }
            offset += count
        }
    }

    func commit() throws {
        guard fsync(fd) == 0 else { throw LocalStorage.failure("cannot fsync", temporary, errno) }
        guard Glibc.close(fd) == 0 else {
            fd = -1
            throw LocalStorage.failure("cannot close", temporary, errno)
        }
        fd = -1
        guard rename(temporary, final) == 0 else { throw LocalStorage.failure("cannot rename into place", final, errno) }
        finished = true
        LocalStorage.syncDirectory(folder)
    }

    func abort() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
        if !finished { unlink(temporary) }
        finished = true
    }

    deinit { abort() }
}
