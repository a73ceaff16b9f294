import Foundation

/// The indexes and keys a restore builds itself rather than in pg_restore's post-data, each as the
/// schema dump's own entry: the `CREATE INDEX` or `ADD CONSTRAINT` with everything pg_dump attaches to
/// it (`REPLICA IDENTITY USING INDEX`, `CLUSTER ON`, `ALTER INDEX … SET STATISTICS`), the comments on
/// it, and for a partition's index its `ATTACH PARTITION`. Building from the manifest's bare
/// definitions instead lost all of that (and with it the replica identity an UPDATE under a
/// publication needs).
///
/// Keys (primary, unique and exclusion constraints, and replica-identity indexes) are what replay
/// finds rows by, so they exist before it, partitions' included: partitioned tables' keys are
/// created before any data (they are empty catalog entries), and each partition's key is built and
/// attached as soon as its rows are in. A table's other unique indexes are built with its keys, as a
/// foreign key in post-data may reference one. Other indexes are built right after their table's keys,
/// or after the replay when one follows; a partitioned table's are created before any data like its
/// keys, and each partition's is attached to it once built. An index the manifest names but the dump does not hold (an invalid index, which pg_dump
/// leaves out and older backups still list) is not built.
struct IndexBuildPlan: Sendable {
    /// One dump entry and the comments on it, in the dump's own bytes.
    struct Build: Sendable {
        var name: String
        var script: [UInt8]
    }

    /// The `client_encoding` the scripts are written in (the dump's).
    var encoding = "UTF8"
    /// Partitioned tables' keys, then their attachments to each other: before any data.
    var beforeData: [Build] = []
    /// Per table (`schema.name`), what is built once its rows are in.
    var keys: [String: [Build]] = [:]
    var secondary: [String: [Build]] = [:]
    /// Listing lines of every entry built here, left out of post-data.
    var builtLines: Set<String> = []
    /// Indexes the manifest names that the dump does not hold: not built.
    var notInDump: [String] = []

    /// A table's key in `keys` and `secondary`: schema and name joined by a NUL, which no identifier holds. Joined by a
    /// dot, "a.b".c and a."b.c" were one key: one table's indexes were built and analyzed as the other's (adv24).
    static func key(_ table: BackupManifest.Table) -> String { key(schema: table.schema, name: table.name) }
    static func key(schema: String, name: String) -> String { "\(schema)\u{0}\(name)" }

    /// How pg_dump may write `name` in a tag: bare, or quoted (`fmtId`: any name that is not all
    /// lower-case letters, digits and underscores, or that is a keyword). Missing the quoted form lost
    /// the comment on an index such as `"n idx"` (its entry was left in post-data without its index,
    /// and pg_restore skips a comment whose object it does not restore).
    static func spellings(_ name: String) -> [String] {
        [name, "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""]
    }

    /// What each table's indexes need, from the dump's listing and the manifest.
    static func make(_ contents: RestoreContents, tables: [BackupManifest.Table], partitioned: [BackupManifest.PartitionedTable],
                     pgRestore: String, dumpFile: String) throws -> IndexBuildPlan {
        struct Candidate {
            var table: String, schema: String, index: BackupManifest.IndexBuild, isPartitioned: Bool
            var entries: [RestoreContents.Entry]   // the index's or constraint's entry, then its comments
            var attach: RestoreContents.Entry?
        }
        var byTag: [String: RestoreContents.Entry] = [:]
        for entry in contents.entries { byTag["\(entry.type)|\(entry.schema ?? "-")|\(entry.tag)"] = entry }
        var plan = IndexBuildPlan()
        var candidates: [Candidate] = []
        let owners = partitioned.map { ($0.schema, $0.name, $0.indexes, true) } + tables.map { ($0.schema, $0.name, $0.indexes, false) }
        for (schema, name, indexes, isPartitioned) in owners {
            for index in indexes {
                let own = index.constraint.map { byTag["CONSTRAINT|\(schema)|\(name) \($0)"] } ?? byTag["INDEX|\(schema)|\(index.name)"]
                guard let own else { plan.notInDump.append("\(schema).\(index.name)"); continue }
                // A comment's tag names its object as pg_dump writes it: quoted when the name needs quotes.
                let comments = [index.constraint.flatMap { constraint in
                                    Self.spellings(constraint).lazy.flatMap { c in Self.spellings(name).map { "COMMENT|\(schema)|CONSTRAINT \(c) ON \($0)" } }
                                        .compactMap { byTag[$0] }.first },
                                Self.spellings(index.name).lazy.compactMap { byTag["COMMENT|\(schema)|INDEX \($0)"] }.first].compactMap { $0 }
                candidates.append(Candidate(table: Self.key(schema: schema, name: name), schema: schema, index: index, isPartitioned: isPartitioned,
                                            entries: [own] + comments,
                                            attach: index.attachedTo == nil ? nil : byTag["INDEX ATTACH|\(schema)|\(index.name)"]))
            }
        }
        let listed = candidates.flatMap { $0.entries + ($0.attach.map { [$0] } ?? []) }
        let (encoding, scripts) = try DumpEntryScripts.read(listed, pgRestore: pgRestore, dumpFile: dumpFile)
        plan.encoding = encoding
        var next = 0
        func take(_ count: Int) -> [[UInt8]] { defer { next += count }; return Array(scripts[next..<next + count]) }
        var built: [(Candidate, script: [UInt8], attach: [UInt8]?, isKey: Bool)] = []
        for candidate in candidates {
            let script = Array(take(candidate.entries.count).joined(separator: Array("\n".utf8)))
            let attach = candidate.attach.map { _ in take(1)[0] }
            // A foreign key may reference a unique index that backs no constraint: it is built with the keys.
            let isKey = candidate.index.constraint != nil
                || (!candidate.isPartitioned && (DumpEntryScripts.setsReplicaIdentity(script)
                                                 || (candidate.index.attachedTo == nil && DumpEntryScripts.createsUniqueIndex(script))))
            built.append((candidate, script, attach, isKey))
        }
        // A partitioned table's index (`ON ONLY`, an empty catalog entry until every partition's is attached) is created
        // before any data, keys or not; a partition's other index is built after its rows and attached at once. Left to
        // post-data, `audit.events`'s 33 partition indexes were built at the end of every restore, after a restore --at's
        // replay had dirtied their pages: 0.7-0.9 s on two cores with nothing else left to run.
        // Indexes keyed as tables are (`key`): "a.b".c and a."b.c" are two.
        let partitionedIndexes = Set(built.filter { $0.0.isPartitioned }.map { Self.key(schema: $0.0.schema, name: $0.0.index.name) })
        built.removeAll { candidate, _, _, isKey in
            guard !isKey, !candidate.isPartitioned, let parent = candidate.index.attachedTo else { return false }
            // Its parent's index is not restored (a --schema restore of the partition's schema alone): post-data builds it, as pg_restore would.
            return !partitionedIndexes.contains(Self.key(schema: parent.schema, name: parent.name))
        }
        let early = Set(built.map { Self.key(schema: $0.0.schema, name: $0.0.index.name) })
        var parentAttachments: [Build] = []
        for (candidate, script, attach, isKey) in built {
            plan.builtLines.formUnion(candidate.entries.map(\.line))
            var builds = [Build(name: "\(candidate.schema).\(candidate.index.name)", script: script)]
            // Attached here only when the parent's index is built here too; else post-data attaches it.
            if let attach, let entry = candidate.attach, let parent = candidate.index.attachedTo, early.contains(Self.key(schema: parent.schema, name: parent.name)) {
                plan.builtLines.insert(entry.line)
                builds.append(Build(name: "\(candidate.schema).\(candidate.index.name) attached", script: attach))
            }
            if candidate.isPartitioned {
                plan.beforeData.append(builds[0])
                parentAttachments += builds.dropFirst()
            } else if isKey {
                plan.keys[candidate.table, default: []] += builds
            } else {
                // One item with its attachment: after a replay the builds are spread over workers, and an attachment
                // taken by another worker ran before its index existed.
                let script = Array(builds.map(\.script).joined(separator: Array("\n".utf8)))
                plan.secondary[candidate.table, default: []].append(Build(name: builds[0].name, script: script))
            }
        }
        plan.beforeData += parentAttachments
        return plan
    }

    /// Runs `builds` in order on `session`, in the dump's encoding (the session's own is put back after).
    func run(_ builds: [Build], on session: DatabaseSession) async throws {
        guard !builds.isEmpty else { return }
        let encoding = self.encoding
        try await session.withConnection { connection in
            let previous = try connection.query("SELECT current_setting('client_encoding') AS e").first?.string("e") ?? encoding
            if previous != encoding { try connection.execute("SET client_encoding = \(try connection.escapeLiteral(encoding))") }
            for build in builds {
                do {
                    try connection.execute(script: build.script)
                } catch var error as PostgresError {
                    // Named, as pg_restore names its command: "data phase: function g(integer) does not exist"
                    // alone did not say that an index was being built, nor which.
                    error.context = "building index \(build.name)" + (error.context.map { " (\($0))" } ?? "")
                    throw error
                }
            }
            if previous != encoding { try connection.execute("SET client_encoding = \(try connection.escapeLiteral(previous))") }
        }
    }
}
