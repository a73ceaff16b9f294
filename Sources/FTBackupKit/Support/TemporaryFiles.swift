import Foundation

/// The process's own temporary folder, the child programs it runs, and what happens to both when the
/// process ends: on a normal exit, an error, SIGINT, SIGTERM or SIGHUP.
///
/// It exists because temporary files (a restore's decompressed schema dump, pg_restore lists, a child's
/// stderr) used to be left in `/tmp` whenever the process was interrupted. Every temporary file now
/// lives in one folder, `$TMPDIR/ftbackup-<pid>-<random>` (0700), removed at exit. On a signal the
/// handler stops the running children (pg_dump, pg_restore), runs the interrupt actions (a restore
/// that already dropped schemas keeps what it saved, and says where), removes the folder, prints one
/// line and ends the process by the same signal, so its parent sees it was interrupted (a shell
/// reports 130 for SIGINT, 143 for SIGTERM). Only SIGKILL leaves the folder behind; the next run
/// removes folders of this user whose process is gone.
public enum TemporaryFiles {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var folder: String?
    nonisolated(unsafe) private static var children: Set<Int32> = []
    nonisolated(unsafe) private static var interruptActions: [UUID: @Sendable () -> String?] = [:]
    /// Set once a signal arrived: no new temporary file or child from then on (the run is ending).
    nonisolated(unsafe) private static var ending = false
    private static let prefix = "ftbackup-"

    /// A path for a new temporary file named `name` inside the process's folder (created at first use).
    public static func path(_ name: String) throws -> String {
        try lock.withLock {
            if ending { throw FTBackupError(.failure, "interrupted: no new temporary file") }
            if let folder { return "\(folder)/\(name)" }
            let base = FileManager.default.temporaryDirectory.path
            var template = Array("\(base)/\(prefix)\(getpid())-XXXXXX".utf8CString)
            let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
            guard made != nil else {
                throw FTBackupError(.cannotWrite, "cannot create a temporary folder in \(base): \(String(cString: strerror(errno)))",
                                    hint: "check TMPDIR, its permissions and free space")
            }
            let created = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            folder = created
            return "\(created)/\(name)"
        }
    }

    /// The process's folder, if it was created.
    public static var currentFolder: String? { lock.withLock { folder } }

    /// Removes the process's folder and everything in it.
    public static func removeAll() {
        let current = lock.withLock { () -> String? in
            defer { folder = nil }
            return folder
        }
        guard let current else { return }
        // A second pass for a file a running thread created while the first one emptied the folder.
        for _ in 0..<2 where FileManager.default.fileExists(atPath: current) { try? FileManager.default.removeItem(atPath: current) }
    }

    /// A child program that must not outlive an interrupted run.
    static func started(child pid: Int32) {
        let stop = lock.withLock { () -> Bool in
            children.insert(pid)
            return ending
        }
        if stop { kill(pid, SIGTERM) }
    }
    static func ended(child pid: Int32) { _ = lock.withLock { children.remove(pid) } }

    /// Registers what to do if the process is interrupted (before the folder is removed); the action
    /// returns a line for the operator, or nil. Remove it with `cancelInterruptAction` when its window closes.
    public static func onInterrupt(_ action: @escaping @Sendable () -> String?) -> UUID {
        let key = UUID()
        lock.withLock { interruptActions[key] = action }
        return key
    }

    public static func cancelInterruptAction(_ key: UUID) { _ = lock.withLock { interruptActions.removeValue(forKey: key) } }

    /// Installs the handlers for SIGINT, SIGTERM and SIGHUP (once, at the start of a command), and
    /// removes what earlier runs of this user left when they were killed outright.
    public static func installSignalCleanup() {
        removeAbandonedFolders()
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        signalPipe = fds[1]
        let reader = fds[0]
        let thread = Thread {
            var byte: UInt8 = 0
            while true {
                let count = read(reader, &byte, 1)
                if count == 1 { break }
                if count < 0 && errno == EINTR { continue }
                return
            }
            interrupted(by: Int32(byte))
        }
        thread.name = "ftbackup-signals"
        thread.start()
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { signalNumber in
                var byte = UInt8(truncatingIfNeeded: signalNumber)
                _ = write(TemporaryFiles.signalPipe, &byte, 1)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(signalNumber, &action, nil)
        }
    }

    nonisolated(unsafe) static var signalPipe: Int32 = -1

    /// Called before a command reports a failure: while a signal is being handled, the failure is only
    /// its echo (a child stopped by the handler), so the handler's line and exit by the signal win.
    public static var isEnding: Bool { lock.withLock { ending } }

    public static func yieldToInterrupt() {
        guard lock.withLock({ ending }) else { return }
        while true { sleep(1) }  // the handler ends the process
    }

    /// Stops the children, runs the interrupt actions, removes the folder, then dies by the signal.
    static func interrupted(by signalNumber: Int32) {
        let (pids, actions) = lock.withLock { () -> (Set<Int32>, [@Sendable () -> String?]) in
            ending = true
            return (children, Array(interruptActions.values))
        }
        for pid in pids { kill(pid, SIGTERM) }
        // Up to a second for them to end (their Process objects reap them), so none still reads a file removed below.
        for pid in pids {
            for _ in 0..<50 where kill(pid, 0) == 0 { usleep(20_000) }
        }
        var lines = actions.compactMap { $0() }
        removeAll()
        let name = signalNumber == SIGINT ? "SIGINT" : signalNumber == SIGTERM ? "SIGTERM" : signalNumber == SIGHUP ? "SIGHUP" : "signal \(signalNumber)"
        lines.insert("interrupted by \(name); temporary files removed", at: 0)
        FileHandle.standardError.write(Data("ftbackup: error: \(lines.joined(separator: "; "))\n".utf8))
        signal(signalNumber, SIG_DFL)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, signalNumber)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        kill(getpid(), signalNumber)
        // Not reached unless the signal is blocked elsewhere.
        _exit(128 + signalNumber)
    }

    /// Folders `ftbackup-<pid>-*` of this user whose process no longer exists (a run killed with SIGKILL).
    static func removeAbandonedFolders() {
        let base = FileManager.default.temporaryDirectory.path
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: base) else { return }
        for name in names where name.hasPrefix(prefix) {
            let parts = name.dropFirst(prefix.count).split(separator: "-")
            guard parts.count == 2, parts[1].count == 6, let pid = Int32(parts[0]), pid != getpid() else { continue }
            let path = "\(base)/\(name)"
            var info = stat()
            guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR, info.st_uid == getuid() else { continue }
            if kill(pid, 0) == 0 || errno == EPERM { continue }
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}
