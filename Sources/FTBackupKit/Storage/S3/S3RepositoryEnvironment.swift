import Foundation

/// The AWS settings of one S3 repository when they are not the process's: the policy's
/// `repository.second_env_file` gives the off-site copy its own account, region, endpoint or CA (a
/// second repository in another AWS account or region is the usual off-site copy, and the process's
/// environment can name only one).
///
/// It is process-wide, like ``RepositoryEncryption``, because every place that opens a repository by
/// its address (sync, expire, the locks, restore `--repo`) must open the second the same way. The file
/// is read when the repository is opened, not when the policy loads, so a missing or unreadable file
/// stops only what uses the second repository.
public enum S3RepositoryEnvironment {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var files: [S3Location: String] = [:]

    /// Uses the settings in `file` (nil: the process's environment again) for the repository at `location`.
    public static func use(file: String?, for location: S3Location) {
        lock.withLock { files[location] = file }
    }

    /// The environment ``S3Credentials/resolve(_:)`` reads for `location`: the process's, or the file's
    /// variables alone (with `HOME`, where a profile's shared files are looked up).
    static func environment(for location: S3Location) throws -> [String: String] {
        let process = ProcessInfo.processInfo.environment
        guard let file = lock.withLock({ files[location] }) else { return process }
        var environment = try S3EnvironmentFile.read(file)
        if environment["HOME"] == nil, let home = process["HOME"] { environment["HOME"] = home }
        return environment
    }
}

/// An environment file of AWS settings (`KEY=VALUE` lines, as systemd's `EnvironmentFile=` reads them):
/// `AWS_*` and `FTBACKUP_S3_*` variables only, refused when group or others can read it (it holds a secret).
public enum S3EnvironmentFile {
    /// The variables of `path`; every refusal is one line naming the file (and the line), exit 77 or 78.
    public static func read(_ path: String) throws -> [String: String] {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw FTBackupError(.configuration, "cannot read S3 settings file \(path): \(String(cString: strerror(errno)))",
                                hint: "repository.second_env_file names a file of AWS_* lines for the second repository")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw FTBackupError(.configuration, "S3 settings file \(path) is not a regular file")
        }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw FTBackupError(.permission, "S3 settings file \(path) is accessible by group or others (mode \(String(mode, radix: 8))): refused",
                                hint: "chmod 600 \(path)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FTBackupError(.permission, "cannot read S3 settings file \(path)", hint: "run as the file's owner")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw FTBackupError(.configuration, "S3 settings file \(path) is not UTF-8 text")
        }
        return try parse(text, path: path)
    }

    /// `KEY=VALUE` per line; blank lines and `#` comments skipped; `export ` allowed before a key; a value
    /// may be wrapped in single or double quotes (taken as they are inside). Anything else is refused.
    static func parse(_ text: String, path: String) throws -> [String: String] {
        var variables: [String: String] = [:]
        for (index, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = line.dropFirst("export ".count).trimmingCharacters(in: .whitespaces) }
            func refuse(_ why: String) -> FTBackupError {
                FTBackupError(.configuration, "S3 settings file \(path) line \(index + 1): \(why)",
                              hint: "write KEY=VALUE lines of AWS_* and FTBACKUP_S3_* variables")
            }
            guard let equals = line.firstIndex(of: "=") else { throw refuse("not KEY=VALUE") }
            let key = String(line[..<equals]).trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty, key.allSatisfy({ $0.isASCII && ($0.isUppercase || $0.isNumber || $0 == "_") }) else {
                throw refuse("'\(key)' is not a variable name")
            }
            guard key.hasPrefix("AWS_") || key.hasPrefix("FTBACKUP_S3_") else {
                throw refuse("\(key) is not an S3 setting (AWS_* or FTBACKUP_S3_*)")
            }
            var value = String(line[line.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'" {
                guard value.last == first else { throw refuse("\(key)'s value has no closing quote") }
                value = String(value.dropFirst().dropLast())
            }
            variables[key] = value
        }
        return variables
    }
}
