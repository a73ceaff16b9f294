import Foundation

/// A SHA-256 of a prune run's evidence, kept inside it: the digest of the report's own canonical
/// JSON (sorted keys) with the seal left out.
///
/// The evidence is not only a record: a restore reads the newest run's cut-off from it and deletes
/// every audit row older than that. One flipped bit in the year would delete a decade of audit log,
/// so `verify` and the restore both check the seal before anything trusts the file (evidence written
/// before seals existed has none and is only parsed). The seal is a plain digest, not a signature:
/// it finds damage and careless edits, not a forger with write access to the repository.
extension AuditPruner.Report {
    func sealed() throws -> AuditPruner.Report {
        var copy = self
        copy.seal = nil
        copy.seal = try copy.canonicalDigest()
        return copy
    }

    /// Throws when the seal does not match what the file says.
    func checkSeal(_ shown: String) throws {
        guard let seal else {
            // Only evidence written before seals existed may lack one, and it has no instant or zone either.
            guard cutoffInstant == nil, timeZone == nil else {
                throw FTBackupError(.dataError, "prune evidence \(shown) has lost its seal: it was changed after it was written",
                                    hint: "do not use it; restore with --keep-retired if a restore needs to go on, and look into the repository (ftbackup verify)")
            }
            return
        }
        var copy = self
        copy.seal = nil
        guard try copy.canonicalDigest() == seal else {
            throw FTBackupError(.dataError, "prune evidence \(shown) does not match its seal: it was changed or damaged after it was written",
                                hint: "do not use it; restore with --keep-retired if a restore needs to go on, and look into the repository (ftbackup verify)")
        }
    }

    private func canonicalDigest() throws -> String {
        var digest = StreamDigest()
        Array(try JSONOutput.encode(self).utf8).withUnsafeBytes { digest.update($0) }
        return digest.hexDigest()
    }
}
