import Foundation
import Logging

extension BackupRunner {
    /// Copies every table with `jobs` connections that all imported the snapshot, largest first.
    /// Returns what was copied and the tables a worker could not lock without waiting.
    static func copyTables(_ tables: [TableToCopy], options: BackupOptions, encoding: String, snapshot: ExportedSnapshot,
                           storage: any RepositoryStorage, folder: String,
                           progress: ProgressReporter) async throws -> ([(Int, BackupManifest.Table)], [(Int, TableToCopy)]) {
        let queue = WorkQueue(Array(tables.enumerated()))
        let workers = min(options.jobs, max(tables.count, 1))
        let compression = options.policy.compression
        return try await withThrowingTaskGroup(of: ([(Int, BackupManifest.Table)], [(Int, TableToCopy)]).self) { group in
            for worker in 0..<workers {
                group.addTask {
                    let session = try await DatabaseSession.connect(options.database, name: "ftbackup-copy-\(worker)")
                    defer { session.close() }
                    try await session.execute(SessionSettings.copy() + "; " + SessionSettings.qualifiedNames)
                    try await session.withConnection { try $0.beginTransaction(importingSnapshot: snapshot.id) }
                    var done: [(Int, BackupManifest.Table)] = []
                    var deferred: [(Int, TableToCopy)] = []
                    while let (index, table) = queue.next() {
                        try Task.checkCancellation()
                        let entry = try await withTaskCancellationHandler {
                            try await session.withConnection { connection -> BackupManifest.Table? in
                                // Waiting here could stall for ever behind an ACCESS EXCLUSIVE request that itself waits for the coordinator.
                                do {
                                    try connection.execute("SAVEPOINT ftbackup_lock; LOCK TABLE \(try connection.qualifiedName(table.schema, table.name)) IN ACCESS SHARE MODE NOWAIT")
                                } catch let error as PostgresError where error.sqlState == "55P03" {
                                    try connection.execute("ROLLBACK TO SAVEPOINT ftbackup_lock")
                                    return nil
                                }
                                return try copyOne(table, index: index, connection: connection, encoding: encoding, storage: storage, folder: folder,
                                                   compression: compression, progress: progress)
                            }
                        } onCancel: {
                            session.cancel()
                        }
                        guard let entry else {
                            deferred.append((index, table))
                            continue
                        }
                        progress.finished(item: "\(table.schema).\(table.name)", metadata: [
                            "rows": .string("\(entry.rows)"), "raw_bytes": .string("\(entry.file.rawBytes)"),
                            "stored_bytes": .string("\(entry.file.storedBytes)"),
                        ])
                        done.append((index, entry))
                    }
                    try? await session.execute("COMMIT")
                    return (done, deferred)
                }
            }
            var all: [(Int, BackupManifest.Table)] = []
            var deferred: [(Int, TableToCopy)] = []
            for try await (done, skipped) in group {
                all += done
                deferred += skipped
            }
            return (all, deferred)
        }
    }

    static func copyOne(_ table: TableToCopy, index: Int, connection: PGConnection, encoding: String, storage: any RepositoryStorage,
                        folder: String, compression: Policy.Compression, progress: ProgressReporter) throws -> BackupManifest.Table {
        let file = "data/\(index).\(table.format == .binary ? "bin" : "copy")\(compression.codec.fileExtension)"
        let writer = try CompressedFileWriter(storage: storage, path: "\(folder)/\(file)", compression: compression)
        do {
            let outcome = try connection.copyOut(try CopyStatement.out(table, encoding: encoding, connection)) { chunk in
                try writer.write(chunk)
                progress.advance(bytes: chunk.count)
            }
            var stored = try writer.finish()
            stored.path = file
            return BackupManifest.Table(schema: table.schema, name: table.name, indexes: table.indexes, columns: table.columns,
                                        rows: outcome.rows, file: stored, extensionFilter: table.extensionFilter,
                                        format: table.format)
        } catch {
            writer.abort()
            throw error
        }
    }
}

/// Hands out work items to parallel workers, in order.
final class WorkQueue<Item: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Item]
    private var position = 0

    init(_ items: [Item]) { self.items = items }

    func next() -> Item? {
        lock.lock()
        defer { lock.unlock() }
        guard position < items.count else { return nil }
        defer { position += 1 }
        return items[position]
    }
}
