import Foundation

/// Quoting of the paths `ftbackup schedule` writes into unit files and crontab lines.
///
/// It exists because a path with a space, a quote or a `%` is taken apart by systemd (which splits
/// `ExecStart=` on spaces and expands `%` specifiers) and by cron (which turns `%` into a newline) unless
/// it is quoted for each of them.
public enum ScheduleQuoting {
    /// A path both generators can carry: absolute, without control characters (a newline would end the
    /// unit's line or the crontab entry). Nil when fine, else the reason.
    public static func problem(with path: String) -> String? {
        guard path.hasPrefix("/") else { return "'\(path)' is not an absolute path" }
        if path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) { return "'\(path)' contains a control character" }
        return nil
    }

    /// A word of a systemd command line (`ExecStart=`): `%` doubled; in double quotes (backslash and
    /// quote escaped) when it holds anything but plain path characters.
    static func systemdWord(_ text: String) -> String {
        let escaped = text.replacingOccurrences(of: "%", with: "%%")
        let plain = escaped.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "/._-+,:@%".unicodeScalars.contains($0) }
        if plain { return escaped }
        return "\"" + escaped.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// A path setting's value (`EnvironmentFile=`): taken whole by systemd, only `%` is special.
    static func systemdPath(_ text: String) -> String { text.replacingOccurrences(of: "%", with: "%%") }

    /// A word of the crontab command (run by /bin/sh): single-quoted when not plain, and every `%`
    /// escaped as `\%` (cron turns a bare `%` into a newline, even inside quotes).
    static func cronWord(_ text: String) -> String {
        let plain = text.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "/._-+,:@".unicodeScalars.contains($0) }
        let quoted = plain ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
        return quoted.replacingOccurrences(of: "%", with: "\\%")
    }
}
