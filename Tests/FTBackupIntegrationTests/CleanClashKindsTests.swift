import Foundation
import Testing
@testable import FTBackupKit

/// Objects pg_restore recreates outside the schemas `--clean` drops (issue 9, item 4): each kind, as
/// the source and the target both hold it.
enum ClashKind: String, CaseIterable, Sendable {
    case collation, `operator`, operatorClass, operatorFamily, textSearchConfiguration, textSearchDictionary, cast

    var sql: String {
        switch self {
        case .collation: "CREATE COLLATION public.clash_coll FROM \"C\""
        case .operator: """
            CREATE FUNCTION public.clash_eq(integer, integer) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 = $2';
            CREATE OPERATOR public.=== (LEFTARG = integer, RIGHTARG = integer, FUNCTION = public.clash_eq)
            """
        case .operatorClass: "CREATE OPERATOR CLASS public.clash_ops FOR TYPE integer USING hash AS OPERATOR 1 =, FUNCTION 1 hashint4(integer)"
        case .operatorFamily: "CREATE OPERATOR FAMILY public.clash_family USING btree"
        case .textSearchConfiguration: "CREATE TEXT SEARCH CONFIGURATION public.clash_cfg (COPY = pg_catalog.simple)"
        case .textSearchDictionary: "CREATE TEXT SEARCH DICTIONARY public.clash_dict (TEMPLATE = simple)"
        case .cast: "CREATE CAST (int4range AS text) WITH INOUT"
        }
    }

    /// What the refusal names.
    var named: String {
        switch self {
        case .collation: "collation public.clash_coll"
        case .operator: "operator public.==="
        case .operatorClass: "operator class public.clash_ops"
        case .operatorFamily: "operator family public.clash_family"
        case .textSearchConfiguration: "text search configuration public.clash_cfg"
        case .textSearchDictionary: "text search dictionary public.clash_dict"
        case .cast: "cast (int4range AS text)"
        }
    }
}

extension CleanRestoreTests {
    /// The target already holds the object (as any second restore does, when --clean does not drop it):
    /// the restore is refused naming it, before anything is dropped.
    @Test(arguments: ClashKind.allCases)
    func clashOfEachKindOutsideTheDroppedSchemasIsRefusedBeforeAnythingIsDropped(kind: ClashKind) async throws {
        let tables = "CREATE TABLE public.kept (id int PRIMARY KEY, v text); INSERT INTO public.kept SELECT g, 'v' || g FROM generate_series(1, 50) g; CREATE SCHEMA other; CREATE TABLE other.t (id int); INSERT INTO other.t VALUES (1)"
        try await TestServer.withDatabase(seeded: false) { source in
            let s = try await source.connect()
            defer { s.close() }
            try await s.execute(tables + "; " + kind.sql)
            try await TestRepository.with { repo in
                _ = try await BackupRunner.runFull(try .test(source, repo))
                try await TestServer.withDatabase(seeded: false) { target in
                    let t = try await target.connect()
                    defer { t.close() }
                    try await t.execute(tables + "; UPDATE public.kept SET v = 'target' WHERE id = 1; " + kind.sql)
                    let before = try await TableFingerprint.compute(t)
                    let schemaBefore = try Fixtures.schemaDDL(target.connectionString, serverVersion: t.serverVersionNumber)
                    let error = await #expect(throws: FTBackupError.self) {
                        _ = try await RestoreRunner.run(RestoreOptions(target: target.connectionString, repositoryPath: repo.path,
                                                                       clean: true, showProgress: false))
                    }
                    #expect(error?.status == .usage)
                    #expect(error?.message.contains(kind.named) == true, "\(String(describing: error))")
                    #expect(error?.message.contains("nothing was dropped") == true)
                    #expect(try await TableFingerprint.compute(t) == before)
                    #expect(try Fixtures.schemaDDL(target.connectionString, serverVersion: t.serverVersionNumber) == schemaBefore)
                }
            }
        }
    }
}
