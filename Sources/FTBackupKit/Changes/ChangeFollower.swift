import Foundation
import Logging

/// `ftbackup follow`: streams the archival slot continuously and seals a segment every N seconds or
/// M bytes, so the recovery point is seconds old instead of an hour (a long-running systemd service).
///
/// It speaks the streaming replication protocol (`START_REPLICATION`, CopyBoth): XLogData carries
/// pgoutput messages, keepalives are answered, and standby status updates report as flushed only
/// what a sealed segment holds durably — so a crash at any point makes the server resend whatever is
/// not yet in a sealed segment, and replay skips what it has already applied (by commit LSN).
/// Segments are sealed only between transactions. A heartbeat is written every interval, so the
/// archive provably reaches the present even when the application is idle.
public enum ChangeFollower {
    public struct Options: Sendable {
        public var database: ConnectionString
        public var repositoryPath: String
        public var policy: Policy
        public var logger: Logger
        /// Polled about once a second; true makes the follower seal what it has and return.
        public var shouldStop: @Sendable () -> Bool

        public init(database: ConnectionString, repositoryPath: String, policy: Policy, logger: Logger = Logger(label: "ftbackup"),
                    shouldStop: @escaping @Sendable () -> Bool) {
            self.database = database
            self.repositoryPath = repositoryPath
            self.policy = policy
            self.logger = logger
            self.shouldStop = shouldStop
        }
    }

    public struct Report: Codable, Sendable {
        public var segments: [String]
        public var transactions: Int
    }

    public static func run(_ options: Options) async throws -> Report {
        let storage = try RepositoryStorageFactory.open(options.repositoryPath)
        try storage.makeFolder(ChangeSegmentManifest.folder)
        // Held for the follower's whole life: no incremental pass writes or cleans segments meanwhile.
        let lock = try RepositoryLock.acquire(repositoryRoot: options.repositoryPath, kind: .changes, exclusive: true, command: "follow")
        defer { lock.release() }
        let control = try await DatabaseSession.connect(options.database, name: "ftbackup-follow-control")
        defer { control.close() }
        try await control.execute(ChangeArchiver.decodingSettings)
        let encoding = try await ChangeArchiver.decodingEncoding(control)
        let identity = try await control.withConnection { try DatabaseIdentity.of($0) }
        try RepositorySource.claim(repositoryPath: options.repositoryPath, identity: identity, command: "follow")
        let slotName = try await ChangeArchivalNames.slot(control)
        let health = try await SlotHealth.check(control, slot: slotName)
        if health.active {
            throw FTBackupError(.locked, "slot \(slotName) is already in use by pid \(health.activePID ?? 0)",
                                hint: "only one follower per database; stop the other one first")
        }
        _ = try ChangeArchiver.removeIncompleteSegments(storage)

        let stream = try await DatabaseSession.connect(options.database, name: "ftbackup-follow-stream", replication: true)
        defer { stream.close() }
        // A failure to start or read the stream repeats on every restart until its cause is fixed, while the
        // slot holds WAL: recorded for info (changes/stalled.json), as the incremental pass does.
        do { try await stream.withConnection { connection in
            for setting in ChangeArchiver.decodingSettings.split(separator: ";") {
                try connection.simpleQuery(setting.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            // The walsender sends names and values in the client encoding (ChangeArchiver.decodingEncoding).
            try connection.simpleQuery("SET client_encoding = \(try connection.escapeLiteral(encoding))")
            try connection.startReplicationStream("""
                START_REPLICATION SLOT \(try connection.escapeIdentifier(slotName)) LOGICAL 0/0 \
                ("proto_version" '1', "publication_names" '"\(ChangeArchivalNames.publication)"')
                """)
        } } catch {
            ChangeArchiveStall.record(error, storage: storage)
            throw error
        }
        let sealEvery = options.policy.changeArchival.sealEvery.nominalSeconds
        // The heartbeat proves the archive reaches the present and carries the sequences' values.
        let logger = options.logger
        let largeObjects = NewestLargeObjectReading()
        let database = options.database
        let heartbeat = Task {
            // A session the server ended (pg_terminate_backend, idle_session_timeout, a proxy's idle cut) is replaced:
            // the heartbeats bound the sequences and carry the large-object readings, for as long as the follower runs.
            var session = control
            defer { if session !== control { session.close() } }
            while !Task.isCancelled {
                do {
                    try await ChangeArchiver.writeHeartbeat(session)
                    largeObjects.set(try await LargeObjectState.read(session))
                } catch {
                    // Without heartbeats an idle database's recoverable point stops moving: say so every time.
                    logger.warning("heartbeat failed: the recoverable point will not advance while the application is idle",
                                   metadata: ["error": .string("\(error)")])
                    if !session.isAlive {
                        do {
                            let fresh = try await DatabaseSession.connect(database, name: "ftbackup-follow-control")
                            do { try await fresh.execute(ChangeArchiver.decodingSettings) } catch { fresh.close(); throw error }
                            if session !== control { session.close() }
                            session = fresh
                            logger.info("heartbeat session lost: connected again")
                        } catch {
                            logger.warning("heartbeat session lost and cannot connect again: trying at the next heartbeat",
                                           metadata: ["error": .string("\(error)")])
                        }
                    }
                }
                try? await Task.sleep(for: .seconds(max(1, sealEvery)))
            }
        }
        defer { heartbeat.cancel() }
        options.logger.info("following the slot", metadata: ["slot": .string(slotName), "from": .string(health.confirmedFlushLSN),
                                                           "seal_every_seconds": .string("\(sealEvery)")])
        let start = LSN.parse(health.confirmedFlushLSN) ?? 0
        let policy = options.policy
        let shouldStop = options.shouldStop
        do {
            return try await stream.withConnection { connection in
                var loop = FollowLoop(connection: connection, storage: storage, slot: slotName, source: identity, compression: policy.compression,
                                      sealEvery: sealEvery, sealBytes: policy.changeArchival.sealBytes, flushed: start, logger: logger)
                loop.encoding = encoding
                loop.largeObjects = largeObjects
                return try loop.run(shouldStop: shouldStop)
            }
        } catch {
            ChangeArchiveStall.record(error, storage: storage)
            throw error
        }
    }
}

/// The follower's state machine, run on the replication connection's own thread.
struct FollowLoop {
    let connection: PGConnection
    let storage: any RepositoryStorage
    let slot: String
    let source: DatabaseIdentity
    /// The database encoding the values are decoded in (recorded in each segment's manifest).
    var encoding = "UTF8"
    /// The heartbeat task's newest large-object reading, recorded in each sealed segment.
    var largeObjects = NewestLargeObjectReading()
    let compression: Policy.Compression
    let sealEvery: Double
    let sealBytes: Int64
    /// Everything up to here is in a sealed segment (what the server is told is flushed).
    var flushed: UInt64
    let logger: Logger

    var writer: CompressedFileWriter?
    var label = ""
    var openedAt = Date()
    var segmentStart: UInt64 = 0
    var summary = ChangeStreamSummary()
    var inTransaction = false
    var currentXID: UInt32 = 0
    var received: UInt64 = 0
    var lastStatus = Date.distantPast
    var sealed: [String] = []
    var transactions = 0
    var bytesWritten: Int64 = 0
    /// The stream's newest description (`R` row) of each relation, by relid: written again at the start of
    /// every segment. The stream describes a relation once, so without them a later segment's changes
    /// need a segment that expiry may remove, or that lies before the full a restore starts from.
    var descriptions: [UInt32: ChangeRow] = [:]

    init(connection: PGConnection, storage: any RepositoryStorage, slot: String, source: DatabaseIdentity, compression: Policy.Compression, sealEvery: Double,
         sealBytes: Int64, flushed: UInt64, logger: Logger) {
        self.connection = connection
        self.storage = storage
        self.slot = slot
        self.source = source
        self.compression = compression
        self.sealEvery = sealEvery
        self.sealBytes = sealBytes
        self.flushed = flushed
        self.logger = logger
    }

    mutating func run(shouldStop: () -> Bool) throws -> ChangeFollower.Report {
        var stopRequested: Date?
        do {
            while true {
                if stopRequested == nil, shouldStop() { stopRequested = Date() }
                if let since = stopRequested {
                    if !inTransaction {
                        try seal()
                        break
                    }
                    if Date().timeIntervalSince(since) > 30 { break }  // the open transaction is resent next time
                }
                if let message = try connection.readStreamMessage(timeout: 1) {
                    try handle(message)
                }
                if !inTransaction, summary.transactions > 0, Date().timeIntervalSince(openedAt) >= sealEvery || bytesWritten >= sealBytes {
                    try seal()
                }
                if Date().timeIntervalSince(lastStatus) >= 10 { try sendStatus(reply: false) }
            }
        } catch {
            writer?.abort()
            throw error
        }
        writer?.abort()  // only an unfinished transaction's rows can be left: the server resends them
        try? sendStatus(reply: false)
        return ChangeFollower.Report(segments: sealed, transactions: transactions)
    }

    mutating func handle(_ message: [UInt8]) throws {
        guard let kind = message.first else { return }
        switch kind {
        case UInt8(ascii: "w"):
            guard message.count >= 25 else { throw CodecError(kind: .corrupted, codec: "replication", detail: "short XLogData message") }
            let start = Self.uint64(message, 1), walEnd = Self.uint64(message, 9)
            received = max(received, walEnd, start)
            let payload = Array(message[25...])
            var lsn = start != 0 ? start : walEnd
            var described: UInt32?
            switch try PgOutputDecoder.decode(payload) {
            case .begin(_, _, let xid):
                inTransaction = true
                currentXID = xid
            case .commit(_, _, let endLSN, _):
                inTransaction = false
                lsn = endLSN
                transactions += 1
            case .relation(let relation):
                described = relation.relid
            default:
                break
            }
            let row = ChangeRow(lsn: lsn, xid: currentXID, data: payload)
            try write(row)
            if let described { descriptions[described] = row }
        case UInt8(ascii: "k"):
            guard message.count >= 18 else { throw CodecError(kind: .corrupted, codec: "replication", detail: "short keepalive") }
            received = max(received, Self.uint64(message, 1))
            if message[17] == 1 { try sendStatus(reply: true) }
        default:
            break
        }
    }

    mutating func write(_ row: ChangeRow) throws {
        if writer == nil {
            segmentStart = flushed
            label = ChangeSegmentManifest.newLabel(startingAt: segmentStart)
            writer = try CompressedFileWriter(storage: storage, path: ChangeSegmentManifest.dataPath(label), compression: compression)
            openedAt = Date()
            summary = ChangeStreamSummary(continuing: summary)
            bytesWritten = 0
            try append(ChangeRowCopyWriter.header())
            // Every relation the stream described so far, so the segment carries what its changes need.
            // (Failpoint follow.describe-once: as versions before, for the tests of archives they wrote.)
            for carried in descriptions.values.sorted(by: { $0.lsn < $1.lsn }) where !Failpoint.isActive("follow.describe-once") {
                try summary.carry(carried)
                try append(ChangeRowCopyWriter.row(carried))
            }
        }
        try summary.observe(row)
        try append(ChangeRowCopyWriter.row(row))
    }

    mutating func append(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try writer!.write($0) }
        bytesWritten += Int64(bytes.count)
    }

    /// Closes the segment at a transaction boundary, makes it durable with its manifest, and only then
    /// tells the server it may forget those changes.
    mutating func seal() throws {
        guard let current = writer, summary.transactions > 0, let end = summary.lastEndLSN else { return }
        try append(ChangeRowCopyWriter.trailer())
        var file = try current.finish()
        file.path = "\(label).seg.zst"
        writer = nil
        let manifest = try ChangeSegmentManifest.seal(label: label, slot: slot, source: source, startLSN: segmentStart, endLSN: end, summary: summary,
                                                      file: file, encoding: encoding, largeObjects: largeObjects.value,
                                                      storage: storage, logger: logger)
        Failpoint.hit("follow.before-feedback")
        flushed = end
        sealed.append(label)
        try sendStatus(reply: false)
        try ChangeArchiveStall.clear(storage)  // the chain advances again
        logger.info("change segment sealed", metadata: ["segment": .string(label), "transactions": .string("\(manifest.transactions)"),
                                                       "end_lsn": .string(manifest.endLSN)])
    }

    /// Standby status update: written = received, flushed = applied = what sealed segments hold.
    mutating func sendStatus(reply: Bool) throws {
        var message: [UInt8] = [UInt8(ascii: "r")]
        for value in [max(received, flushed), flushed, flushed, UInt64(bitPattern: PgOutputDecoder.postgresMicroseconds(from: Date()))] {
            withUnsafeBytes(of: value.bigEndian) { message.append(contentsOf: $0) }
        }
        message.append(0)
        try connection.sendStreamMessage(message)
        lastStatus = Date()
    }

    static func uint64(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
        bytes[offset..<offset + 8].reduce(0) { $0 << 8 | UInt64($1) }
    }
}

/// The follower's newest large-object reading: written by its heartbeat task, read when a segment is sealed.
final class NewestLargeObjectReading: @unchecked Sendable {
    private let lock = NSLock()
    private var reading: LargeObjectState?

    func set(_ value: LargeObjectState) { lock.withLock { reading = value } }
    var value: LargeObjectState? { lock.withLock { reading } }
}
