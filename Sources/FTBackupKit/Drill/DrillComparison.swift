import Foundation

/// `drill --compare`: ordered row hashes of the restored tables against the live source, for the
/// tables the change archive shows unchanged since the point restored.
///
/// The archive knows only what it has sealed: a table written after the newest segment shows as
/// different, so run it with the follower running or right after `backup --type incr`.
enum DrillComparison {
    static func compare(restored: DatabaseSession, source: ConnectionString, tables: [BackupManifest.Table], point: Date,
                        segments: [ChangeSegmentManifest]) async throws -> [DrillRecord.Check] {
        let changed = Set(segments.filter { ($0.lastCommitTime ?? .distantPast) > point }.flatMap(\.relations))
        let unchanged = tables.filter { !changed.contains("\($0.schema).\($0.name)") }
        let schemas = Array(Set(unchanged.map(\.schema))).sorted()
        guard !schemas.isEmpty else { return [] }
        let live = try await DatabaseSession.connect(source, name: "ftbackup-drill-compare")
        defer { live.close() }
        let wanted = Set(unchanged.map { "\($0.schema).\($0.name)" })
        let left = try await TableFingerprint.compute(live, schemas: schemas).filter { wanted.contains("\($0.schema).\($0.table)") }
        let right = try await TableFingerprint.compute(restored, schemas: schemas).filter { wanted.contains("\($0.schema).\($0.table)") }
        let differences = TableFingerprint.differences(source: left, restored: right)
        return [DrillRecord.Check(kind: "compare", name: "ordered row hashes of \(left.count) tables unchanged since the point", ok: differences.isEmpty,
                                  detail: differences.isEmpty ? "all equal" : "\(differences.count) differ: \(differences.prefix(5).joined(separator: "; "))")]
    }
}
