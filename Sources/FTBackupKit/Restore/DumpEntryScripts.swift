import Foundation

/// The SQL of chosen entries of a schema dump, one script per entry, exactly as pg_restore would run
/// them: `pg_restore --use-list` writes them as one script, in the listing's order, each under its
/// `-- Name: …; Type: …` header, which is where it is cut.
///
/// Scripts stay bytes in the dump's encoding (names and comments need not be UTF-8), and each starts
/// with the `default_tablespace` pg_restore had set for it.
enum DumpEntryScripts {
    /// The dump's `client_encoding` and one script per entry of `entries`, in order.
    static func read(_ entries: [RestoreContents.Entry], pgRestore: String, dumpFile: String) throws -> (String, [[UInt8]]) {
        guard !entries.isEmpty else { return ("UTF8", []) }
        let list = FileManager.default.temporaryDirectory.appendingPathComponent("ftbackup-\(UUID().uuidString).list").path
        guard FileManager.default.createFile(atPath: list, contents: Data(entries.map(\.line).joined(separator: "\n").utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw FTBackupError(.cannotWrite, "cannot write \(list)", hint: "check free space in the temporary folder (TMPDIR)")
        }
        defer { try? FileManager.default.removeItem(atPath: list) }
        var output: [UInt8] = []
        try PostgresTools.run(pgRestore, ["--file=-", "--use-list=\(list)", dumpFile]) { output.append(contentsOf: $0) }
        let (encoding, scripts, headers) = split(output)
        let expected = entries.map(\.type)
        guard headers.count == expected.count,
              zip(headers, expected).allSatisfy({ $0.contains("; Type: \($1); Schema: ") }) else {
            throw FTBackupError(.failure, "cannot read the index definitions from the backup's schema dump: pg_restore wrote \(headers.count) entries for \(expected.count) listed",
                                hint: "restore with a pg_restore of the backup's major version (ftbackup check shows the server's)")
        }
        return (encoding, scripts)
    }

    /// Cuts pg_restore's script at its entry headers; returns the encoding it set, the scripts and the headers.
    static func split(_ output: [UInt8]) -> (String, [[UInt8]], [String]) {
        let lines = output.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { Array($0) }
        let comment = Array("--".utf8)
        var encoding = "UTF8"
        var tablespace = Array("SET default_tablespace = '';".utf8)
        var scripts: [[[UInt8]]] = []
        var headers: [String] = []
        var index = 0
        while index < lines.count {
            let line = lines[index]
            defer { index += 1 }
            if line == comment, index + 2 < lines.count, lines[index + 1].starts(with: "-- Name: ".utf8), lines[index + 2] == comment {
                headers.append(String(decoding: lines[index + 1], as: UTF8.self))
                scripts.append([tablespace])
                index += 2
            } else if line.starts(with: "\\restrict ".utf8) || line.starts(with: "\\unrestrict ".utf8) {
                continue  // psql's guard against a malicious dump, not SQL
            } else if line.starts(with: "SET default_tablespace = ".utf8) {
                tablespace = line  // pg_restore sets it before an entry's header, for that entry and the next ones
            } else if scripts.isEmpty {
                let prefix = Array("SET client_encoding = '".utf8)
                if line.starts(with: prefix), line.last == UInt8(ascii: ";") {
                    encoding = String(decoding: line.dropFirst(prefix.count).dropLast(2), as: UTF8.self)
                }
            } else {
                scripts[scripts.count - 1].append(line)
            }
        }
        return (encoding, scripts.map { Array($0.joined(separator: [UInt8(ascii: "\n")])) }, headers)
    }

    /// Whether an index's script makes it the table's replica identity (pg_dump attaches that to the index).
    static func setsReplicaIdentity(_ script: [UInt8]) -> Bool {
        script.split(separator: UInt8(ascii: "\n")).contains { line in
            line.starts(with: "ALTER TABLE ONLY ".utf8) && String(decoding: line, as: UTF8.self).contains(" REPLICA IDENTITY USING INDEX ")
        }
    }

    /// Whether an index's script creates a unique index (which a foreign key may reference): its first
    /// statement after the `SET`s, not a line of a comment on it.
    static func createsUniqueIndex(_ script: [UInt8]) -> Bool {
        let first = script.split(separator: UInt8(ascii: "\n")).first { !$0.isEmpty && !$0.starts(with: "SET ".utf8) }
        return first?.starts(with: "CREATE UNIQUE INDEX ".utf8) ?? false
    }
}
