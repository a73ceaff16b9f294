import Foundation

/// A resource of the one test server that every test shares, and that some tests must have to themselves.
///
/// swift-testing runs suites in parallel, and `.serialized` only orders the tests of one suite. Tests that use
/// the resource hold ``shared(_:)`` while they do; a test that changes it for everyone, or judges it as a
/// whole, holds ``exclusive(_:)``, which waits until no other test holds it (and keeps new ones waiting).
actor ServerWideResource {
    /// Replication slots: `ChangeArchivalTests.slotInvalidatedByMaxSlotWalKeepSizeBreaksTheChainLoudly` lowers
    /// `max_slot_wal_keep_size` for the whole server and forces checkpoints, which invalidates every slot then
    /// more than 1 MB of WAL behind, whichever test's it is. Many suites outside the serialized
    /// `ChangeArchivalTests` set up change archival (drills, S3, snapshot races, encryption, second repository…):
    /// one that held a slot at that moment failed its next incremental pass or restore --at ("chain is broken"),
    /// more often on a loaded machine where tests overlap longer. Shared by every test while it holds a slot
    /// (``ArchivedDatabase/with(prepare:_:)`` does), exclusive for the test that invalidates them, and for a test
    /// that keeps a transaction with an xid open while it waits (slot creation waits for every such transaction).
    static let replicationSlots = ServerWideResource("replication slots")

    /// The drills' `ftbackup_drill_*` scratch databases: `DrillTests` compares the server's whole set before
    /// and after a drill, and kills drills whose leftovers the next drill removes; a drill of another suite
    /// (`MonitoringTests`) running meanwhile added its own database to the set or removed the leftover first.
    /// Shared by drills outside `DrillTests`, exclusive for those `DrillTests` that judge the whole set.
    static let drillScratchDatabases = ServerWideResource("drill scratch databases")

    /// The resources this task (and the tasks it starts) holds: a nested scope of the same resource is
    /// covered by the outer one (a nested `shared` would otherwise wait behind a waiting `exclusive` that
    /// waits for the outer one).
    @TaskLocal private static var held: Set<String> = []

    private let name: String
    private var readers = 0
    private var writer = false
    private var waitingReaders: [CheckedContinuation<Void, Never>] = []
    private var waitingWriters: [CheckedContinuation<Void, Never>] = []

    private init(_ name: String) { self.name = name }

    /// Runs `body` while no test holds the resource exclusively.
    nonisolated func shared<T>(_ body: () async throws -> T) async throws -> T {
        if Self.held.contains(name) { return try await body() }
        await lockShared()
        do {
            let value = try await Self.$held.withValue(Self.held.union([name])) { try await body() }
            await unlockShared()
            return value
        } catch {
            await unlockShared()
            throw error
        }
    }

    /// Runs `body` while no other test holds the resource (nor starts to).
    nonisolated func exclusive<T>(_ body: () async throws -> T) async throws -> T {
        precondition(!Self.held.contains(name), "exclusive use of \(name) inside a scope of it would wait for itself")
        await lockExclusive()
        do {
            let value = try await Self.$held.withValue(Self.held.union([name])) { try await body() }
            await unlockExclusive()
            return value
        } catch {
            await unlockExclusive()
            throw error
        }
    }

    private func lockShared() async {
        // A waiting writer goes first, so that a stream of users cannot keep it out for the whole run.
        if writer || !waitingWriters.isEmpty {
            await withCheckedContinuation { waitingReaders.append($0) }  // counted by the writer that lets it in
        } else {
            readers += 1
        }
    }

    private func unlockShared() {
        readers -= 1
        if readers == 0 && !waitingWriters.isEmpty {
            writer = true
            waitingWriters.removeFirst().resume()
        }
    }

    private func lockExclusive() async {
        if writer || readers > 0 {
            await withCheckedContinuation { waitingWriters.append($0) }  // marked as the writer by whoever lets it in
        } else {
            writer = true
        }
    }

    private func unlockExclusive() {
        if !waitingWriters.isEmpty {
            waitingWriters.removeFirst().resume()
            return
        }
        writer = false
        readers += waitingReaders.count
        for reader in waitingReaders { reader.resume() }
        waitingReaders = []
    }
}
