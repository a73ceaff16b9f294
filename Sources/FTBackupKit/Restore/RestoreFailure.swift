import Foundation

/// The error of a restore that failed after the target was changed: the cause, then exactly how the
/// target was left and what to run.
///
/// The dependants `--clean` had saved from other schemas (foreign keys, policies, views) are not back
/// yet at that point; their definitions are kept in files named in the message (a SQL script and a
/// `pg_dump` of the views), so nothing is lost with the failed run.
enum RestoreFailure {
    static func describe(_ error: Error, target: DatabaseSession, plan: RestorePlan, options: RestoreOptions, dropped: Bool,
                         dependants: inout OutsideDependants) -> Error {
        let cause: FTBackupError
        if let error = error as? FTBackupError { cause = error } else {
            cause = FTBackupError((error as? PostgresError)?.exitStatus ?? .failure, "\(error)")
        }
        let schemas = plan.wholeDatabase ? "all \(plan.schemas.count) schemas of the backup" : "schema(s) \(plan.schemas.joined(separator: ", "))"
        var state = dropped
            ? "the target is left half-built: \(schemas) were dropped by --clean and are only partly restored"
            : "the target is left half-built: \(schemas) are only partly restored"
        var todo = "fix the cause, then run the same restore again with --clean (it drops the partial schemas first), or restore into a fresh database"
        if !dependants.isEmpty, let kept = dependants.keepForLater(target) {
            state += "; \(dependants.foreignKeys.count) foreign key(s), \(dependants.policies.count) policy(ies) and \(dependants.views.count) view(s) other schemas held on them are not back"
            todo += "; then put them back with psql -f \(kept.script)" + (kept.views.map { " and pg_restore -d TARGET \($0)" } ?? "")
        }
        return FTBackupError(cause.status, "\(cause.message) — \(state)", hint: todo + (cause.hint.map { " (\($0))" } ?? ""))
    }

    /// What an interrupted restore says from the moment `--clean` starts dropping schemas: they may be only
    /// partly restored, and where the saved foreign keys, policies and views of other schemas are kept
    /// (outside the temporary folder, which goes with the process).
    static func keepOnInterrupt(_ saved: OutsideDependants, target: DatabaseSession, plan: RestorePlan) -> UUID {
        TemporaryFiles.onInterrupt {
            var dependants = saved
            let schemas = plan.wholeDatabase ? "all \(plan.schemas.count) schemas of the backup" : "schema(s) \(plan.schemas.joined(separator: ", "))"
            var line = "the target may be left half-built: --clean was dropping or had dropped \(schemas), which may be only partly restored; run the same restore again with --clean"
            if !dependants.isEmpty, let kept = dependants.keepForLater(target) {
                line += ", then put back what other schemas held on them with psql -f \(kept.script)" + (kept.views.map { " and pg_restore -d TARGET \($0)" } ?? "")
            }
            return line
        }
    }
}
