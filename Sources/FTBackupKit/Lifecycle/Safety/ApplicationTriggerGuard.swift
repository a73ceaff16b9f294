import Foundation

/// Keeps application triggers from firing while lifecycle work deletes or puts back rows.
///
/// Archive, unarchive, prune and the re-application of retired data after a restore move rows the
/// application wrote long ago; an application trigger that fires on them rewrites columns or adds
/// rows elsewhere (an AFTER INSERT trigger that writes an audit row, say), and the database no
/// longer holds exactly what was archived. The guard looks at every user trigger on the tables a
/// statement touches (their partitions and ancestors included) and chooses how to run:
///
/// - no enabled trigger for that event: nothing to do;
/// - only ordinary (`ENABLE`, origin) triggers: `SET LOCAL session_replication_role = replica` in
///   each transaction, the way logical replication applies rows. That needs superuser, or
///   `GRANT SET ON PARAMETER session_replication_role TO <role>` (PostgreSQL 15); without it the
///   run is refused with exit 77 rather than fire the triggers;
/// - a trigger `ENABLE ALWAYS` (fires in every mode), or both origin and `ENABLE REPLICA` triggers:
///   no mode silences them all, so the run is refused (exit 78) naming them;
/// - policy `lifecycle.application_triggers: fire`: triggers fire, as the policy says.
///
/// Under `replica` the database's own foreign-key triggers do not fire either, so every caller
/// that uses it checks its foreign keys itself before it commits (callers say how).
struct ApplicationTriggerGuard: Sendable {
    enum Event: Int, Sendable {
        case insert = 4
        case delete = 8
    }

    struct Trigger: Sendable, Equatable, CustomStringConvertible {
        var name: String
        var table: String
        /// `O` origin (ordinary), `A` always, `R` replica.
        var enabled: String
        var description: String { "\(name) on \(table)" + (enabled == "A" ? " (ENABLE ALWAYS)" : enabled == "R" ? " (ENABLE REPLICA)" : "") }
    }

    /// True when each transaction must run with `session_replication_role = replica`.
    let replica: Bool
    /// The triggers that would have fired without the guard (for reports).
    let silenced: [Trigger]

    static let none = ApplicationTriggerGuard(replica: false, silenced: [])

    /// Decides for the tables `oids` (and their partitions) and the event; checks the privilege up front.
    static func decide(_ connection: PGConnection, oids: [Int64], event: Event, policy: Policy.ApplicationTriggers,
                       work: String) throws -> ApplicationTriggerGuard {
        guard !oids.isEmpty else { return .none }
        let triggers = try connection.query("""
            WITH tables AS (
              SELECT r.oid AS relid FROM unnest($1::oid[]) r(oid)
              UNION SELECT t.relid FROM unnest($1::oid[]) r(oid), LATERAL pg_partition_tree(r.oid) t
              UNION SELECT a.relid FROM unnest($1::oid[]) r(oid), LATERAL pg_partition_ancestors(r.oid) a)
            SELECT DISTINCT t.tgname AS name, format('%I.%I', n.nspname, c.relname) AS table, t.tgenabled::text AS enabled
            FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE t.tgrelid IN (SELECT relid FROM tables) AND NOT t.tgisinternal AND t.tgenabled <> 'D'
              AND (t.tgtype::int & $2::int) <> 0
            ORDER BY 2, 1
            """, ["{" + oids.map(String.init).joined(separator: ",") + "}", event.rawValue]).rows.map {
            Trigger(name: try $0.requiredString("name"), table: try $0.requiredString("table"), enabled: try $0.requiredString("enabled"))
        }
        guard !triggers.isEmpty, policy == .skip else { return .none }
        let always = triggers.filter { $0.enabled == "A" }
        let origin = triggers.filter { $0.enabled == "O" }
        let replicaOnly = triggers.filter { $0.enabled == "R" }
        if !always.isEmpty || (!origin.isEmpty && !replicaOnly.isEmpty) {
            let named = (always.isEmpty ? triggers : always).prefix(3).map(\.description).joined(separator: ", ")
            throw FTBackupError(.configuration, "\(work) refused: application trigger \(named) would fire on the rows it moves, whatever session_replication_role is",
                                hint: "make the trigger an ordinary (ENABLE, origin) trigger, or set lifecycle.application_triggers: fire if it should see lifecycle work")
        }
        guard !origin.isEmpty else { return .none }  // only replica-mode triggers: they stay silent in origin mode
        let guardrail = ApplicationTriggerGuard(replica: true, silenced: origin)
        try connection.execute("BEGIN")
        defer { try? connection.execute("ROLLBACK") }
        try guardrail.enter(connection, work: work)
        return guardrail
    }

    /// Applies the guard to the current transaction.
    func enter(_ connection: PGConnection, work: String) throws {
        guard replica else { return }
        do {
            try connection.execute("SET LOCAL session_replication_role = replica")
        } catch let error as PostgresError where error.sqlState == "42501" {
            let role = (try? connection.query("SELECT current_user AS u").first?.requiredString("u")) ?? "this role"
            throw FTBackupError(.permission, "\(work) refused: \(silenced.prefix(3).map(\.description).joined(separator: ", ")) must not fire, and \(role) may not set session_replication_role to silence it",
                                hint: "run as a superuser, or GRANT SET ON PARAMETER session_replication_role TO \(role); or set lifecycle.application_triggers: fire")
        }
    }
}
