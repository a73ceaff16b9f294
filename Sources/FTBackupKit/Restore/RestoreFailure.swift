import Foundation

/// The error of a restore that failed after the target was changed: the cause, then exactly how the
/// target was left and what to run.
///
/// The dependants `--clean` had saved from other schemas (foreign keys, policies, views) are not back
/// yet at that point; their definitions are kept in files named in the message (a SQL script and a
/// `pg_dump` of the views), so nothing is lost with the failed run.
enum RestoreFailure {
    /// `rerunClashes`: objects the failed run created that the same restore with `--clean` would refuse
    /// to find (outside the schemas it drops: functions and types in `public`, casts, servers, …).
    /// `preDataRolledBack`: pre-data's `pg_restore` (one transaction) failed, so none of the backup's objects were created.
    static func describe(_ error: Error, phase: String, target: DatabaseSession, plan: RestorePlan, options: RestoreOptions, dropped: Bool,
                         dependants: inout OutsideDependants, rerunClashes: [String] = [],
                         keysNotBack: OutsideDependants.KeysNotPutBack? = nil, preDataRolledBack: Bool = false) -> Error {
        var cause: FTBackupError
        if let error = error as? FTBackupError { cause = error } else {
            cause = FTBackupError((error as? PostgresError)?.exitStatus ?? .failure, "\(error)")
        }
        cause.status = status(of: cause.status, phase: phase)
        if !["pre-data", "post-data"].contains(phase) { cause.message = "\(phase) phase: \(cause.message)" }
        let schemas = plan.wholeDatabase ? "all \(plan.schemas.count) schemas of the backup" : "schema(s) \(plan.schemas.joined(separator: ", "))"
        var state = dropped
            ? "the target is left half-built: \(schemas) were dropped by --clean and are only partly restored"
            : "the target is left half-built: \(schemas) are only partly restored"
        // The steps after every row, index and dependant is in: the schemas are whole, only that step's work is missing.
        let lateSteps = ["retired": "the retired data is not removed again", "event-triggers": "the backup's event triggers are not created",
                         "settings": "the database's settings are not applied"]
        if let missing = lateSteps[phase] { state = "\(schemas) are restored, but \(missing)" }
        var todo = "fix the cause, then run the same restore again with --clean (it drops the partial schemas first), or restore into a fresh database"
        if preDataRolledBack {
            // (adv30 D4: "half-built" sent a user to --clean for a target the failed run had not changed.)
            // A --schema restore creates its schemas (not public) before pre-data, for pg_restore --schema.
            let made = plan.wholeDatabase ? [] : plan.schemas.filter { $0 != "public" }
            let created = made.isEmpty ? "" : " but for the empty schema(s) \(made.joined(separator: ", ")) it made for pg_restore"
            state = dropped
                ? "\(schemas) were dropped by --clean and none of their objects is restored\(made.isEmpty ? "" : " (the schemas are there, empty)") (pre-data, one transaction, was rolled back)"
                : "none of the backup's objects was created: the target is as it was\(created) (pre-data, one transaction, was rolled back)"
            if !dropped && made.isEmpty { todo = "fix the cause, then run the same restore again" }
        }
        if !rerunClashes.isEmpty {
            let names = rerunClashes.prefix(5).joined(separator: ", ") + (rerunClashes.count > 5 ? ", …" : "")
            todo = "fix the cause, then restore into a fresh database (drop and create the target again): the same restore with --clean would refuse to start, since this run created \(rerunClashes.count) object(s) outside the schemas --clean drops (\(names)); or drop those first and rerun with --clean"
        }
        if !dependants.isEmpty, let kept = dependants.keepForLater(target) {
            state += "; \(dependants.foreignKeys.count) foreign key(s), \(dependants.policies.count) policy(ies) and \(dependants.views.count) view(s) other schemas held on them are not back"
            todo += "; a rerun with --clean into this database (same user, same TMPDIR) puts them back itself, else put them back with psql -f \(kept.script)" + (kept.views.map { " and pg_restore -d TARGET \($0)" } ?? "")
        }
        if let keysNotBack {
            state += "; \(keysNotBack) (\(Self.keysTodo(keysNotBack)))"
        }
        return FTBackupError(cause.status, "\(cause.message) — \(state)", hint: todo + (cause.hint.map { " (\($0))" } ?? ""))
    }

    /// The restore ran to its end and every other dependant is back; only these keys are not, until the rows they reject
    /// are fixed. 65: the rows conflict (as SQLSTATE 23503 is mapped everywhere else).
    static func keysNotPutBack(_ error: OutsideDependants.KeysNotPutBack, plan: RestorePlan) -> Error {
        let schemas = plan.wholeDatabase ? "all \(plan.schemas.count) schemas of the backup" : "schema(s) \(plan.schemas.joined(separator: ", "))"
        return FTBackupError(.dataError, "\(error) — \(schemas) are restored whole and everything else other schemas held on them is back; only those key(s) are not",
                             hint: keysTodo(error))
    }

    static func keysTodo(_ error: OutsideDependants.KeysNotPutBack) -> String {
        error.script.map { "delete or fix those rows, then add the key(s) with psql -f \($0)" }
            ?? "delete or fix those rows, then add the key(s) again: " + error.keys.map { "\($0.name) on \($0.table): \($0.definition)" }.joined(separator: "; ")
    }

    /// The exit status of a restore that failed after the target was changed, by where it failed. Bad
    /// usage (64) means nothing was done, so it is never the answer once the target was touched. The
    /// backup's rows failing to load (the data, sequences and replay phases: a value that names an object
    /// the target lacks, a constraint the rows break) is a partial restore of the backup's data, 65,
    /// whatever the server's class; a usage error in another phase (pg_restore's DDL, the dependants put
    /// back) is 1. Codes that say what to fix (unreachable 69, privilege 77, cannot write 73) are kept.
    static func status(of status: ExitStatus, phase: String) -> ExitStatus {
        guard status == .usage || status == .failure else { return status }
        return ["data", "sequences", "replay"].contains(phase) ? .dataError : .failure
    }

    /// What an interrupted restore says from the moment it may change the target (`--clean` dropping
    /// schemas, else the first statement of the restore): the schemas may be only partly restored, what
    /// to run, and where the saved foreign keys, policies and views of other schemas are kept (outside the
    /// temporary folder, which goes with the process). Once pre-data has committed, a rerun with `--clean`
    /// would refuse what this run created outside the schemas it drops (`createdOutside`): then the way
    /// back is a fresh database, as for a failure (`describe`).
    static func keepOnInterrupt(_ saved: OutsideDependants, dropped: Bool, target: DatabaseSession, plan: RestorePlan,
                                clock: RestorePhaseClock, createdOutside: [String],
                                keysNotBack: OutsideDependants.KeysNotPutBack? = nil) -> UUID {
        TemporaryFiles.onInterrupt {
            var dependants = saved
            let schemas = plan.wholeDatabase ? "all \(plan.schemas.count) schemas of the backup" : "schema(s) \(plan.schemas.joined(separator: ", "))"
            var line = dropped
                ? "the target may be left half-built: --clean was dropping or had dropped \(schemas), which may be only partly restored"
                : "the target may be left half-built: \(schemas) may be only partly restored"
            let preDataDone = clock.phases["pre-data"] != nil
            if preDataDone && !createdOutside.isEmpty {
                let names = createdOutside.prefix(5).joined(separator: ", ") + (createdOutside.count > 5 ? ", …" : "")
                line += "; restore into a fresh database (drop and create the target again): the same restore with --clean would refuse to start, since this run created \(createdOutside.count) object(s) outside the schemas --clean drops (\(names)); or drop those first and run the same restore again with --clean"
            } else {
                line += dropped ? "; run the same restore again with --clean"
                                : "; run the same restore again with --clean (it drops the partial schemas first), or restore into a fresh database"
            }
            if !dependants.isEmpty, let kept = dependants.keepForLater(target) {
                line += "; what other schemas held on them is kept in \(kept.script)\(kept.views.map { " and \($0)" } ?? ""): a rerun with --clean into this database (same user, same TMPDIR) puts it back itself, else put it back with psql -f \(kept.script)" + (kept.views.map { " and pg_restore -d TARGET \($0)" } ?? "")
            }
            if let keysNotBack { line += "; \(keysNotBack) (\(keysTodo(keysNotBack)))" }
            return line
        }
    }
}
