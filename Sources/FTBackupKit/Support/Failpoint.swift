import Foundation

/// Named points where a test can make ftbackup die exactly as a crash would (SIGKILL, no cleanup).
///
/// Crash safety is claimed for specific windows ("after the archive is written, before the delete
/// commits"); tests prove it by setting `FTBACKUP_FAILPOINT` to the window's name. Unset, a
/// failpoint costs one environment lookup.
public enum Failpoint {
    /// True when a test asked for the named fault (a failpoint that changes behaviour rather than kills).
    public static func isActive(_ name: String) -> Bool {
        ProcessInfo.processInfo.environment["FTBACKUP_FAILPOINT"] == name
    }

    /// Holds the calling thread for up to two minutes, so that a test can signal the process in a window
    /// without racing it (the signal handler ends the process; nothing else changes).
    public static func pause(_ name: String, detail: String? = nil) {
        guard isActive(name) else { return }
        FileHandle.standardError.write(Data("ftbackup: failpoint \(name) reached\(detail.map { " (\($0))" } ?? ""): pausing\n".utf8))
        for _ in 0..<120 { sleep(1) }
    }

    public static func hit(_ name: String) {
        guard ProcessInfo.processInfo.environment["FTBACKUP_FAILPOINT"] == name else { return }
        FileHandle.standardError.write(Data("ftbackup: failpoint \(name) reached: killing this process\n".utf8))
        kill(getpid(), SIGKILL)
    }
}
