import Foundation
import Testing
@testable import FTBackupKit

/// `restore --clean` reads what other schemas hold on the dropped ones (and dumps their views) while it verifies the
/// backup, ahead of the drop: the drop's transaction checks that it is still what was read, so nothing added,
/// removed or redefined in between is lost or put back stale.
@Suite struct DependantsCapturedAheadTests {
    static let tool = "sprint_15_value_proposition"

    enum Change: String, CaseIterable {
        case viewRedefined, viewDropped, foreignKeyAdded, foreignKeyDropped, policyAdded

        var sql: String {
            switch self {
            case .viewRedefined:
                return "CREATE OR REPLACE VIEW organizations.vp_recent AS SELECT id, status FROM \(DependantsCapturedAheadTests.tool).tool_data WHERE status = 'completed'"
            case .viewDropped:
                return "DROP VIEW organizations.vp_recent"
            case .foreignKeyAdded:
                return "ALTER TABLE organizations.vp_notes ADD CONSTRAINT vp_notes_second FOREIGN KEY (tool_data_id) REFERENCES \(DependantsCapturedAheadTests.tool).tool_data(id)"
            case .foreignKeyDropped:
                return "ALTER TABLE organizations.featured_canvases DROP CONSTRAINT featured_canvases_tool_data_id_fkey"
            case .policyAdded:
                return "CREATE POLICY vp_only ON organizations.vp_notes USING (EXISTS (SELECT 1 FROM \(DependantsCapturedAheadTests.tool).tool_data d WHERE d.id = tool_data_id))"
            }
        }
        /// What the refusal names.
        var named: String {
            switch self {
            case .viewRedefined: return "view organizations.vp_recent redefined"
            case .viewDropped: return "view organizations.vp_recent dropped or changed"
            case .foreignKeyAdded: return "foreign key vp_notes_second on organizations.vp_notes added"
            case .foreignKeyDropped: return "foreign key featured_canvases_tool_data_id_fkey on organizations.featured_canvases dropped or changed"
            case .policyAdded: return "policy vp_only on organizations.vp_notes added"
            }
        }
    }

    /// 1 while the schema `name` exists, 0 once it is dropped.
    static func schemaCount(_ name: String, _ session: DatabaseSession) async throws -> Int64? {
        try await session.query("SELECT count(*) AS n FROM pg_namespace WHERE nspname = $1", [name]).first?.int64("n")
    }

    static func plan(_ schemas: [String]) -> RestorePlan {
        RestorePlan(label: "test", consistentAt: Date(), source: "test", target: "test", schemas: schemas, wholeDatabase: false,
                    tables: 0, rows: 0, storedBytes: 0, rawBytes: 0, jobs: 1, clean: true, noOwner: false)
    }

    /// Each kind of change made between the capture and the drop stops the drop (exit 75), names the change, and
    /// leaves the schema, its dependants and the change itself as they were. Without the check the drop went ahead:
    /// a view redefined in between would have come back with its old definition, a foreign key added in between was
    /// taken by CASCADE.
    @Test(arguments: Change.allCases)
    func aDependantChangedAfterItWasReadStopsTheDropWithNothingDropped(change: Change) async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            try await session.execute("""
                CREATE VIEW organizations.vp_recent AS SELECT id, status FROM \(Self.tool).tool_data;
                CREATE TABLE organizations.vp_notes (tool_data_id uuid NOT NULL);
                """)
            let options = RestoreOptions(target: db.connectionString, repositoryPath: "/nonexistent", schemas: [Self.tool], clean: true,
                                         showProgress: false)
            let captured = try await OutsideDependants.capture(session, schemas: [Self.tool], options: options)
            defer { captured.removeFiles() }
            #expect(captured.views.contains { $0.name == "vp_recent" } && captured.foreignKeys.contains { $0.name == "featured_canvases_tool_data_id_fkey" })
            #expect(captured.viewDump != nil)

            try await session.execute(change.sql)
            let before = try await CleanRestoreTests.keysAndPolicies(session)
            let error = await #expect(throws: FTBackupError.self) {
                _ = try await CleanDrop.run(session, plan: Self.plan([Self.tool]), dependants: captured, cascade: false, publicRelations: [])
            }
            #expect(error?.status == .locked)
            #expect(error?.message.contains("changed while the restore prepared") == true)
            #expect(error?.message.contains(change.named) == true, "\(error?.message ?? "")")
            #expect(error?.message.contains("nothing was dropped") == true)
            // Nothing dropped: the schema, the foreign keys and policies, and the views as they are now.
            let schema = try await DependantsCapturedAheadTests.schemaCount(Self.tool, session)
            #expect(schema == 1)
            #expect(try await CleanRestoreTests.keysAndPolicies(session) == before)
            let summary = try await session.query("SELECT to_regclass('organizations.tool_usage_summary') IS NOT NULL AS there").first?.bool("there")
            #expect(summary == true)
        }
    }

    /// Unchanged, the same capture lets the drop go ahead and takes exactly the saved dependants with it.
    @Test func anUnchangedCaptureLetsTheDropGoAhead() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect()
            defer { session.close() }
            let options = RestoreOptions(target: db.connectionString, repositoryPath: "/nonexistent", schemas: [Self.tool], clean: true,
                                         showProgress: false)
            let captured = try await OutsideDependants.capture(session, schemas: [Self.tool], options: options)
            defer { captured.removeFiles() }
            #expect(captured.capturedState != nil)
            let taken = try await CleanDrop.run(session, plan: Self.plan([Self.tool]), dependants: captured, cascade: false, publicRelations: [])
            #expect(taken.isEmpty)
            let schema = try await DependantsCapturedAheadTests.schemaCount(Self.tool, session)
            #expect(schema == 0)
        }
    }

    /// The views' dump is taken in the read's snapshot: a REVOKE made after the read (which an undoing GRANT before the
    /// drop's check would hide from it) is not in the dump, which still holds the grant the read saw. Before, pg_dump
    /// took a snapshot of its own and the dump held the REVOKE (adv21's note 2).
    @Test func theViewsDumpIsTakenInTheReadsSnapshot() async throws {
        try await TestServer.withDatabase { db in
            let session = try await db.connect(), other = try await db.connect("other")
            defer { session.close(); other.close() }
            try await session.execute("""
                CREATE VIEW organizations.vp_recent AS SELECT id, status FROM \(Self.tool).tool_data;
                GRANT SELECT ON organizations.vp_recent TO PUBLIC;
                """)
            let options = RestoreOptions(target: db.connectionString, repositoryPath: "/nonexistent", schemas: [Self.tool], clean: true,
                                         showProgress: false)
            let captured = try await OutsideDependants.capture(session, schemas: [Self.tool], options: options) {
                try await other.execute("REVOKE SELECT ON organizations.vp_recent FROM PUBLIC")
            }
            defer { captured.removeFiles() }
            let dump = try #require(captured.viewDump)
            let pgRestore = try PostgresTools.path(of: "pg_restore", serverVersionNumber: session.serverVersionNumber)
            var script: [UInt8] = []
            try PostgresTools.run(pgRestore, ["--file=-", dump]) { script.append(contentsOf: $0) }
            #expect(String(decoding: script, as: UTF8.self).contains("GRANT SELECT ON TABLE organizations.vp_recent TO PUBLIC"))
            let now = try await session.query("SELECT has_table_privilege('public', 'organizations.vp_recent', 'SELECT') AS granted").first?.bool("granted")
            #expect(now == false)
        }
    }
}
