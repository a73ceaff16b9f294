import Foundation

/// Everything a restore needs to know about one backup, written as the backup's last file.
///
/// It exists so that a restore can confidently reconstruct the database from the repository alone:
/// it names the source, the snapshot every table was read in, and for each file its size and
/// SHA-256. A backup folder without a manifest is, by construction, not a usable backup.
public struct BackupManifest: Codable, Sendable, Equatable {
    public static let currentFormatVersion = 1
    public static let fileName = "manifest.json"

    public enum BackupType: String, Codable, Sendable, CaseIterable { case full, incr }

    public struct Source: Codable, Sendable, Equatable {
        public var server: String
        public var serverVersion: String
        public var serverVersionNumber: Int
        public var systemIdentifier: String?
        public var database: String
        public var encoding: String
        /// The database's oid (for information: a database created again under its name is the same source).
        public var databaseOid: Int64? = nil
    }

    /// The instant all tables were read at.
    public struct Snapshot: Codable, Sendable, Equatable {
        /// Where the snapshot came from (`pg_export_snapshot`, later a replication slot).
        public var origin: String
        public var id: String
        /// The server's clock inside the snapshot's transaction: "consistent as of".
        public var time: Date
        /// `pg_current_wal_lsn()` when the snapshot was taken (or the slot's consistent point).
        public var walLSN: String
    }

    /// One stored file: where it is, how big, what digest.
    public struct StoredFile: Codable, Sendable, Equatable {
        public var path: String
        public var codec: CompressionCodec
        /// Size in the repository.
        public var storedBytes: Int64
        /// SHA-256 of the stored bytes.
        public var sha256: String
        /// Size after decompression.
        public var rawBytes: Int64
    }

    /// One valid index, or the PRIMARY KEY / UNIQUE / EXCLUDE constraint it backs. A restore builds
    /// these itself from the schema dump's matching entries (`IndexBuildPlan`) right after the
    /// table's data, while other tables still load, and leaves those entries out of post-data.
    public struct IndexBuild: Codable, Sendable, Equatable {
        public var name: String
        /// The constraint this index backs, if any (then `sql` is an ALTER TABLE … ADD CONSTRAINT).
        public var constraint: String?
        /// The definition as discovered (for reading: a restore runs the schema dump's own entry for
        /// this index, which carries what pg_dump attaches to it: REPLICA IDENTITY, CLUSTER ON, statistics).
        public var sql: String
        /// The partitioned table's index this partition's index is attached to.
        public var attachedTo: RelationName? = nil
    }

    /// A partitioned table's own indexes and keys (it holds no rows, so it is not in `tables`): a
    /// restore creates its keys before the partitions load, so that each partition's key is attached
    /// as soon as it is built and replay finds rows by it.
    public struct PartitionedTable: Codable, Sendable, Equatable {
        public var schema: String
        public var name: String
        public var indexes: [IndexBuild]
    }

    public struct Table: Codable, Sendable, Equatable {
        public var schema: String
        public var name: String
        public var indexes: [IndexBuild]
        /// The columns COPY wrote, in order (generated columns are never copied).
        public var columns: [String]
        public var rows: Int64
        public var file: StoredFile
        /// Set for an extension's configuration table: the filter its rows were read through (`WHERE NOT
        /// is_default`; empty for every row), as the extension registered it. A restore appends these
        /// rows to those the extension's own script creates, without TRUNCATE.
        public var extensionFilter: String? = nil
        /// The COPY format of `file`; absent in manifests written before binary files existed: text.
        public var format: CopyFormat? = nil

        /// The format the file is in (text when the manifest does not say).
        public var copyFormat: CopyFormat { format ?? .text }
    }

    /// A sequence's state, read right after the snapshot was taken (sequences are not transactional,
    /// so this is the value at that moment or a little later: never behind any row in the backup).
    public struct SequenceState: Codable, Sendable, Equatable {
        public var schema: String
        public var name: String
        public var lastValue: String
        public var isCalled: Bool
    }

    /// A relation named by schema and name.
    public struct RelationName: Codable, Sendable, Equatable {
        public var schema: String
        public var name: String
    }

    public struct Totals: Codable, Sendable, Equatable {
        public var tables: Int
        public var rows: Int64
        public var rawBytes: Int64
        public var storedBytes: Int64
    }

    public var formatVersion: Int
    public var label: String
    public var type: BackupType
    public var toolVersion: String
    public var source: Source
    public var startedAt: Date
    public var stoppedAt: Date
    public var snapshot: Snapshot
    /// COPY format of the data files: `text`, or `binary` when any table's file is binary (each
    /// table's own `format` says which; see the README's "COPY formats").
    public var copyFormat: String
    public var policySource: String
    public var compression: Policy.Compression
    /// `pg_dump -Fc` of everything but table data: schemas, types, tables, sequences with their
    /// values, indexes, constraints, RLS policies, grants; split into sections at restore.
    public var schemaDump: StoredFile
    /// Schemas the backup covers.
    public var schemas: [String]
    /// Roles that own or are granted objects in the backup (a restore target must have them, or use --no-owner).
    public var roles: [String]
    public var tables: [Table]
    /// Tables that exist but whose data is not copied (policy exclusions, extension tables), as
    /// schema.name; their archived changes are not replayed.
    public var tablesNotCopied: [String]?
    public var sequences: [SequenceState]
    /// Materialized views that held data at the source: refreshed after the load, never copied.
    public var materializedViews: [RelationName]
    public var totals: Totals
    /// The database's own settings (`ALTER DATABASE … SET`, `ALTER ROLE … IN DATABASE … SET`), applied
    /// to the target database by a whole-database restore; nil in backups taken before they were recorded.
    public var databaseSettings: [DatabaseSetting]? = nil
    /// Partitioned tables with their indexes (nil in backups taken before it was recorded: their
    /// partitions' indexes are then all left to post-data).
    public var partitionedTables: [PartitionedTable]? = nil
    /// The large objects as of the snapshot (nil in backups taken before it was recorded): `restore --at`
    /// compares the change segments' readings with it (`LargeObjectRefusal`).
    public var largeObjects: LargeObjectState? = nil

    public var duration: TimeInterval { stoppedAt.timeIntervalSince(startedAt) }

    /// True when any table's data file is binary COPY (restorable only into the same major version
    /// unless the restore is told otherwise).
    public var hasBinaryData: Bool { tables.contains { $0.copyFormat == .binary } }

    /// Every file of the backup, schema dump first.
    public var files: [StoredFile] { [schemaDump] + tables.map(\.file) }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = Timestamps.parseISO8601(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad date \(text)"))
            }
            return date
        }
        return decoder
    }

    public static func decode(_ bytes: [UInt8], path: String) throws -> BackupManifest {
        let manifest: BackupManifest
        do {
            manifest = try decoder().decode(BackupManifest.self, from: Data(bytes))
        } catch {
            throw FTBackupError(.dataError, "manifest \(path) is unreadable: \(error)",
                                hint: "the backup cannot be trusted; restore from another backup (ftbackup info lists them)")
        }
        guard manifest.formatVersion <= currentFormatVersion else {
            throw FTBackupError(.dataError, "manifest \(path) has format \(manifest.formatVersion), newer than this ftbackup understands",
                                hint: "use ftbackup \(manifest.toolVersion) or later")
        }
        return manifest
    }

    public func encoded() throws -> [UInt8] { Array(try JSONOutput.encode(self).utf8) + [0x0A] }
}
