import Foundation

extension RepositoryLock {
    /// The same locks on an S3 repository, as lock objects (``S3LeaseLock``): exclusive kinds by
    /// conditional create, shared readers each with an object of their own under `locks/read.shared/`.
    static func acquireS3(repositoryRoot: String, kind: Kind, exclusive: Bool, command: String) throws -> RepositoryLock {
        let storage = try S3Storage.open(repositoryRoot)
        let path = "locks/\(kind.rawValue).lock"
        if S3Storage.locksDisabled { return RepositoryLock(remote: [], path: path) }
        _ = try S3LeaseLock.configuredLeaseSeconds()
        let sharedFolder = "locks/\(kind.rawValue).shared"
        func busy(_ who: String) -> FTBackupError {
            FTBackupError(.locked, "repository \(storage.location) is locked (\(kind.rawValue)) by another run: \(who)",
                          hint: "wait for it to finish; the lock of a run that died is taken over when its lease (FTBACKUP_S3_LOCK_LEASE, default 300 s) ends")
        }
        if exclusive {
            switch try S3LeaseLock.tryExclusive(storage: storage, path: path, command: command) {
            case .busy(let holder): throw busy(holder?.described ?? "holder unknown")
            case .acquired(let lock):
                if let reader = try S3LeaseLock.liveSharedHolders(storage: storage, path: sharedFolder).first {
                    lock.release()
                    throw busy("one or more restores or verifies are reading it (\(reader.described))")
                }
                return RepositoryLock(remote: [lock], path: path)
            }
        }
        let lock = try S3LeaseLock.shared(storage: storage, path: sharedFolder, command: command)
        if let holder = S3LeaseLock.liveHolder(storage: storage, path: path) {
            lock.release()
            throw busy(holder.described)
        }
        return RepositoryLock(remote: [lock], path: path)
    }

    /// A short exclusive lock object that waits (up to `seconds`) for its holder: recording the source,
    /// appending to a record chain.
    static func waitS3(repositoryRoot: String, file: String, command: String, seconds: Double = 120) throws -> RepositoryLock {
        let storage = try S3Storage.open(repositoryRoot)
        let path = "locks/\(file)"
        if S3Storage.locksDisabled { return RepositoryLock(remote: [], path: path) }
        _ = try S3LeaseLock.configuredLeaseSeconds()
        let start = Date()
        while true {
            switch try S3LeaseLock.tryExclusive(storage: storage, path: path, command: command) {
            case .acquired(let lock): return RepositoryLock(remote: [lock], path: path)
            case .busy(let holder):
                guard Date().timeIntervalSince(start) < seconds else {
                    throw FTBackupError(.locked, "repository \(storage.location): lock \(file) is still held after \(Int(seconds)) s: \(holder?.described ?? "holder unknown")")
                }
                Thread.sleep(forTimeInterval: 0.2)
            }
        }
    }
}
