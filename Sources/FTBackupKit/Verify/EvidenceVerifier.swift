import Foundation

/// Reads every lifecycle run log and piece of evidence, `lifecycle/<kind>/<run>.json`, and checks
/// that it parses as the report of its kind (archive, prune-audit, unarchive; any JSON for a kind
/// this version does not know).
///
/// It exists because this evidence is what compliance reports are built from: an unreadable file
/// must be found while the run it describes can still be looked into. Folders under a kind (audit
/// partition exports keep one per export) are stored-file records, read by ``ArchiveVerifier``.
public enum EvidenceVerifier {
    public static let folder = "lifecycle"

    public struct Result: Codable, Sendable {
        public var ok: Bool
        /// Evidence files read, per kind.
        public var files: [String: Int]
        public var badFiles: [BackupVerifier.FileResult]
    }

    /// How each known kind's files must parse.
    static let decoders: [String: @Sendable ([UInt8]) throws -> Void] = [
        "archive": { _ = try BackupManifest.decoder().decode(ArchiveReport.self, from: Data($0)) },
        "prune-audit": { try BackupManifest.decoder().decode(AuditPruner.Report.self, from: Data($0)).checkSeal("this file") },
        "prune-audit-reapplied": { try BackupManifest.decoder().decode(AuditPruner.Report.self, from: Data($0)).checkSeal("this file") },
        "reapplied": { _ = try BackupManifest.decoder().decode(RetiredDataReapplier.Report.self, from: Data($0)) },
        "unarchive": { _ = try BackupManifest.decoder().decode(Unarchiver.Report.self, from: Data($0)) },
    ]

    public static func verify(_ storage: any RepositoryStorage) throws -> Result {
        var counts: [String: Int] = [:]
        var bad: [BackupVerifier.FileResult] = []
        for kindFolder in try storage.list(folder) where kindFolder.isDirectory {
            let kind = String(kindFolder.path.dropFirst(folder.count + 1))
            let decode = decoders[kind] ?? { _ = try JSONSerialization.jsonObject(with: Data($0)) }
            for entry in try storage.list(kindFolder.path) where !entry.isDirectory && entry.path.hasSuffix(".json") {
                counts[kind, default: 0] += 1
                let shown = "\(storage.location)/\(entry.path)"
                do {
                    try decode(try storage.readAll(entry.path))
                } catch {
                    let why = (error as? FTBackupError)?.message ?? Self.describe(error)
                    bad.append(.init(path: shown, ok: false, problem: "lifecycle evidence \(shown) is unreadable as \(kind) evidence: \(why)"))
                }
            }
        }
        return Result(ok: bad.isEmpty, files: counts, badFiles: bad.sorted { $0.path < $1.path })
    }

    /// A decoding error in one line: what is wrong and where.
    static func describe(_ error: Error) -> String {
        switch error as? DecodingError {
        case .dataCorrupted(let context): "not valid JSON\(Self.at(context))"
        case .keyNotFound(let key, let context): "\(key.stringValue) is missing\(Self.at(context))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context): "\(context.debugDescription)\(Self.at(context))"
        default: "\(error)"
        }
    }

    static func at(_ context: DecodingError.Context) -> String {
        context.codingPath.isEmpty ? "" : " at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
    }
}
