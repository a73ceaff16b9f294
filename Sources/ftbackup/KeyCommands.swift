import ArgumentParser
import FTBackupKit
import Foundation

/// `ftbackup key`: the master key that encrypts the repository at rest (create, rotate).
struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Create or rotate the master key that encrypts the repository at rest.",
        subcommands: [KeyCreateCommand.self, KeyRotateCommand.self])
}

/// `ftbackup key create --key-file PATH`: a new random 256-bit key, mode 0600, never over an existing file.
struct KeyCreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Write a new random 256-bit master key to --key-file (0600; never overwrites).")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reportingFailures {
            guard let path = try global.keyFilePath() else {
                throw FTBackupError(.usage, "no key file given", hint: "pass --key-file PATH")
            }
            let key = try MasterKey.create(path: path)
            if global.output == .json {
                printLine(try JSONOutput.encode(["keyFile": path, "keyId": key.id]))
            } else {
                printLine("key \(key.id) written to \(path) (mode 0600): keep a copy apart from the repository; without it nothing encrypted can be read")
            }
            return .success
        }
    }
}

/// `ftbackup key rotate --new-key-file PATH`: every data key re-wrapped with the new master key.
struct KeyRotateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate",
        abstract: "Re-wrap every data key of the repository with a new master key (atomic per record, resumable).")

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("new-key-file"), help: "The new master key (ftbackup key create).")
    var newKeyFile: String

    func run() async throws {
        try await reportingFailures {
            let path = try global.existingRepositoryPath()
            guard let oldPath = try global.keyFilePath() else {
                throw FTBackupError(.usage, "no current key given", hint: "pass the repository's key with --key-file (or FTBACKUP_KEY_FILE) and the new one with --new-key-file")
            }
            let report = try KeyRotation.rotate(repositoryPath: path, from: try MasterKey.load(path: oldPath),
                                                to: try MasterKey.load(path: newKeyFile))
            if global.output == .json {
                printLine(try JSONOutput.encode(report))
            } else {
                printLine("rotated from key \(report.oldKeyId) to \(report.newKeyId): \(report.rewrapped) data keys re-wrapped"
                          + (report.alreadyNew > 0 ? ", \(report.alreadyNew) already re-wrapped by an earlier run" : "")
                          + "; the old key no longer opens this repository")
            }
            return .success
        }
    }
}
