/// One file in a repository, as listed by its storage.
public struct StorageEntry: Sendable, Equatable {
    /// Path relative to the repository root, `/`-separated.
    public var path: String
    public var size: Int64
    public var isDirectory: Bool
}

/// Where repository files live.
///
/// Backup, restore, verify and expiry only ever talk to this protocol, so an object-store backend
/// can be added later without touching them. Its contract is the one that keeps backups honest: a
/// written file becomes visible under its name only when `commit()` has made it durable.
public protocol RepositoryStorage: Sendable {
    /// A description for messages (`/var/lib/ftbackup`, `s3://bucket/prefix`).
    var location: String { get }
    /// Entries directly under `folder` ("" for the root); an absent folder lists as empty.
    func list(_ folder: String) throws -> [StorageEntry]
    /// Whether a file or folder is at `path`; throws when the store cannot tell (never "absent" on an error).
    func exists(_ path: String) throws -> Bool
    func size(of path: String) throws -> Int64
    func openRead(_ path: String) throws -> any StorageReader
    /// Starts writing `path` under a temporary name; nothing appears at `path` until `commit()`.
    func openWrite(_ path: String) throws -> any StorageWriter
    /// Removes a file, or a folder and everything in it.
    func remove(_ path: String) throws
    /// Makes sure a folder exists (no-op for stores without folders).
    func makeFolder(_ path: String) throws
}

/// Reads one stored file sequentially.
public protocol StorageReader: AnyObject {
    /// Fills up to `buffer.count` bytes; returns 0 at the end of the file.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    func close()
}

/// Writes one stored file; `commit()` makes it durable and visible under its final name.
public protocol StorageWriter: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Durable and visible (local files: fsync, rename, fsync the folder).
    func commit() throws
    /// Throws the partial file away (safe to call after a failure, and more than once).
    func abort()
}

extension RepositoryStorage {
    /// Reads a small file whole (manifests, locks, run logs).
    public func readAll(_ path: String) throws -> [UInt8] {
        let reader = try openRead(path)
        defer { reader.close() }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
            if count == 0 { return data }
            data.append(contentsOf: buffer[0..<count])
        }
    }

    /// Writes a small file whole, atomically.
    public func writeAll(_ path: String, _ bytes: [UInt8]) throws {
        let writer = try openWrite(path)
        do {
            try bytes.withUnsafeBytes { try writer.write($0) }
            try writer.commit()
        } catch {
            writer.abort()
            throw error
        }
    }
}
