import Foundation
import Testing
@testable import FTBackupKit

/// adv21: `restore --clean` reads what other schemas hold on the dropped ones ahead of the drop (while it verifies
/// the backup) and the drop's transaction checks it is unchanged. Attacks on that check.
@Suite struct AdversarialCaptureAheadTests {
    static let tool = DependantsCapturedAheadTests.tool

    /// Changes to a captured view that keep its name and `pg_get_viewdef`, but that its views dump (taken at the
    /// capture) holds: put back as they were read, they undo what was done in between.
    enum ViewChange: String, CaseIterable {
        case grantRevoked, indexAdded, insteadOfTriggerAdded, columnDefaultAdded, securityBarrierSet, commentChanged

        var sql: String {
            switch self {
            case .grantRevoked: return "REVOKE SELECT ON organizations.vp_recent FROM PUBLIC"
            case .indexAdded: return "CREATE INDEX vp_counts_status ON organizations.vp_counts (status)"
            case .insteadOfTriggerAdded:
                return "CREATE TRIGGER vp_recent_insert INSTEAD OF INSERT ON organizations.vp_recent FOR EACH ROW EXECUTE FUNCTION organizations.vp_noop()"
            case .columnDefaultAdded: return "ALTER VIEW organizations.vp_recent ALTER COLUMN id SET DEFAULT gen_random_uuid()"
            case .securityBarrierSet: return "ALTER VIEW organizations.vp_recent SET (security_barrier = true)"
            case .commentChanged: return "COMMENT ON VIEW organizations.vp_recent IS 'changed while the restore prepared'"
            }
        }
        var view: String { self == .indexAdded ? "organizations.vp_counts" : "organizations.vp_recent" }
    }

    static func options(_ db: TestDatabase, _ schemas: [String]) -> RestoreOptions {
        RestoreOptions(target: db.connectionString, repositoryPath: "/nonexistent", schemas: schemas, clean: true, showProgress: false)
    }

    /// A REVOKE (a security change), a new index or INSTEAD OF trigger, a column default, a security_barrier or a
    /// comment made on a captured view between the capture and the drop: on main the check saw none of them (it
    /// compared only the view's name, kind, populated flag and md5(pg_get_viewdef)), the drop went ahead, and the
    /// views dump taken at the capture put the view back as it was: the REVOKE undone, the index and trigger lost.
    @Test(arguments: ViewChange.allCases)
    func aViewsGrantsIndexesTriggersOrOptionsChangedAfterTheCaptureStopTheDrop(change: ViewChange) async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute("""
                CREATE VIEW organizations.vp_recent AS SELECT id, status FROM \(Self.tool).tool_data;
                GRANT SELECT ON organizations.vp_recent TO PUBLIC;
                CREATE MATERIALIZED VIEW organizations.vp_counts AS SELECT status, count(*) AS n FROM \(Self.tool).tool_data GROUP BY status;
                CREATE FUNCTION organizations.vp_noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
                """)
            let captured = try await OutsideDependants.capture(session, schemas: [Self.tool], options: Self.options(db, [Self.tool]))
            defer { captured.removeFiles() }
            #expect(captured.views.contains { $0.name == "vp_recent" } && captured.views.contains { $0.name == "vp_counts" })

            try await session.execute(change.sql)
            let error = await #expect(throws: FTBackupError.self) {
                _ = try await CleanDrop.run(session, plan: DependantsCapturedAheadTests.plan([Self.tool]), dependants: captured,
                                            cascade: false, publicRelations: [])
            }
            #expect(error?.status == .locked)
            #expect(error?.message.contains("view \(change.view) redefined") == true, "\(error?.message ?? "")")
            let schema = try await DependantsCapturedAheadTests.schemaCount(Self.tool, session)
            #expect(schema == 1)
        }
    }

    /// A view on a dropped schema's table that another session is creating when the drop starts (not yet committed)
    /// commits while the drop waits for its lock: on main the check (and the list of what CASCADE may take) had read
    /// the catalog before it, the DROP SCHEMA … CASCADE then took the new view silently, and it was never put back.
    @Test func aViewCommittedWhileTheDropWaitsIsNotDroppedSilently() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute("CREATE SCHEMA vp_lone; CREATE TABLE vp_lone.t (id int PRIMARY KEY)")
            let captured = try await OutsideDependants.capture(session, schemas: ["vp_lone"], options: Self.options(db, ["vp_lone"]))
            defer { captured.removeFiles() }
            let other = try await db.connect("other")
            defer { other.close() }
            try await other.execute("BEGIN; CREATE VIEW organizations.vp_late AS SELECT id FROM vp_lone.t")
            let dropSession = try await db.connect("drop")
            defer { dropSession.close() }
            let drop = Task {
                try await CleanDrop.run(dropSession, plan: DependantsCapturedAheadTests.plan(["vp_lone"]), dependants: captured,
                                        cascade: false, publicRelations: [])
            }
            let waited = try await Eventually.holds(every: .milliseconds(20)) {
                try await session.query("""
                    SELECT count(*) AS n FROM pg_locks WHERE NOT granted AND relation = 'vp_lone.t'::regclass
                      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    """).first!.int64("n") > 0
            }
            #expect(waited)
            try await other.execute("COMMIT")
            let result = await drop.result
            let view = try await session.query("SELECT to_regclass('organizations.vp_late') IS NOT NULL AS there").first?.bool("there")
            #expect(view == true, "the view committed while the drop waited was dropped by CASCADE, unseen (drop returned \(result))")
            let error = #expect(throws: FTBackupError.self) { try result.get() }
            #expect(error?.status == .locked)
            #expect(error?.message.contains("view organizations.vp_late added") == true, "\(error?.message ?? "")")
        }
    }
    /// A captured dependant that another session is dropping when the drop starts (not yet committed): the check still
    /// sees it; on main the drop's `DROP … IF EXISTS` then waited for that session, found it gone and went on, and
    /// the saved copy put it back at the end: a policy, view or materialized view dropped meanwhile came back.
    @Test(arguments: ["policy", "view", "materialized view"])
    func aDependantDroppedWhileTheDropWaitsIsNotPutBack(kind: String) async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute("""
                CREATE VIEW organizations.vp_recent AS SELECT id, status FROM \(Self.tool).tool_data;
                CREATE MATERIALIZED VIEW organizations.vp_counts AS SELECT status, count(*) AS n FROM \(Self.tool).tool_data GROUP BY status;
                CREATE TABLE organizations.vp_notes (tool_data_id uuid NOT NULL);
                CREATE POLICY vp_only ON organizations.vp_notes USING (EXISTS (SELECT 1 FROM \(Self.tool).tool_data d WHERE d.id = tool_data_id));
                """)
            let captured = try await OutsideDependants.capture(session, schemas: [Self.tool], options: Self.options(db, [Self.tool]))
            defer { captured.removeFiles() }
            let (relation, dropSQL, exists) = switch kind {
            case "policy": ("organizations.vp_notes", "DROP POLICY vp_only ON organizations.vp_notes",
                            "SELECT count(*) AS n FROM pg_policy WHERE polname = 'vp_only'")
            case "view": ("organizations.vp_recent", "DROP VIEW organizations.vp_recent",
                          "SELECT count(*) AS n FROM pg_class WHERE relname = 'vp_recent'")
            default: ("organizations.vp_counts", "DROP MATERIALIZED VIEW organizations.vp_counts",
                      "SELECT count(*) AS n FROM pg_class WHERE relname = 'vp_counts'")
            }
            let other = try await db.connect("other")
            defer { other.close() }
            try await other.execute("BEGIN; \(dropSQL)")
            let dropSession = try await db.connect("drop")
            defer { dropSession.close() }
            let drop = Task {
                try await CleanDrop.run(dropSession, plan: DependantsCapturedAheadTests.plan([Self.tool]), dependants: captured,
                                        cascade: false, publicRelations: [])
            }
            let waited = try await Eventually.holds(every: .milliseconds(20)) {
                try await session.query("""
                    SELECT count(*) AS n FROM pg_locks WHERE NOT granted AND relation = $1::regclass
                      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    """, [relation]).first!.int64("n") > 0
            }
            #expect(waited)
            try await other.execute("COMMIT")
            let result = await drop.result
            let error = #expect(throws: FTBackupError.self, "the \(kind) dropped meanwhile would be put back (drop returned \(result))") { try result.get() }
            #expect(error?.status == .locked)
            #expect(error?.message.contains("changed while the restore prepared") == true, "\(error?.message ?? "")")
            #expect(try await session.query(exists).first?.int64("n") == 0)
            let schema = try await DependantsCapturedAheadTests.schemaCount(Self.tool, session)
            #expect(schema == 1)
        }
    }
}
