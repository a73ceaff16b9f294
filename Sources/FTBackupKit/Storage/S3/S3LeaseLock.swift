import Foundation

/// A lock object in the bucket, for runs on different hosts (flock cannot reach across them).
///
/// Created with `If-None-Match: *` (only one creator wins), it holds the holder's pid, host, command,
/// start time and lease end; a thread renews the lease (`If-Match` on its own ETag) while the run
/// lasts. A lock whose lease has run out, or whose holder on this same host is no longer running, is
/// taken over with `If-Match` on the ETag read, so two runs cannot both take a dead holder's lock.
/// Shared (reader) holders each write `locks/<kind>.shared/<id>`; an exclusive taker and a shared one
/// each write first and look for the other second, so at least one of two racing runs sees the other.
/// Every conditional write (create, takeover, renewal) that meets 412 on a retry reads the object back: when
/// it holds exactly the body just sent (the holder's random `id` makes it ours alone), the write was ours and
/// only its answer was lost; release deletes the object only while it names that id.
public final class S3LeaseLock: @unchecked Sendable {
    struct Holder: Codable {
        var id: String
        var pid: Int32
        var host: String
        var command: String
        var started: String
        var leaseUntil: Double
        /// The holder's lease length: it is dead once the store's clock says the object is older than this.
        var leaseSeconds: Double? = nil

        var described: String { "pid=\(pid) host=\(host) command=\(command) started=\(started)" }
    }

    private let storage: S3Storage
    private let key: String
    private var holder: Holder
    private var etag: String
    private let lease: Double
    private let condition = NSCondition()
    private var released = false
    private var takenOver = false
    /// True once a renewal found the lock taken over by another run (its lease had expired).
    public var lost: Bool {
        condition.lock()
        defer { condition.unlock() }
        return takenOver
    }

    /// The lease length: `FTBACKUP_S3_LOCK_LEASE` seconds (default 300; checked by ``configuredLeaseSeconds()`` when a
    /// run takes its repository lock, so a bad value has already been refused wherever this is read).
    static var leaseSeconds: Double { (try? configuredLeaseSeconds()) ?? defaultLeaseSeconds }

    static let defaultLeaseSeconds: Double = 300

    /// `FTBACKUP_S3_LOCK_LEASE`, which must be a number of seconds from 1 to a day. Anything else is refused, not
    /// replaced by the default in silence (the operator who set it believes it in force), and `inf` would make a
    /// lease that never ends: a dead run's lock could never be taken over.
    static func configuredLeaseSeconds() throws -> Double {
        guard let text = ProcessInfo.processInfo.environment["FTBACKUP_S3_LOCK_LEASE"], !text.isEmpty else { return defaultLeaseSeconds }
        guard let seconds = Double(text), seconds.isFinite, (1...86_400).contains(seconds) else {
            throw FTBackupError(.configuration, "FTBACKUP_S3_LOCK_LEASE is \(text): it must be a number of seconds from 1 to 86400",
                                hint: "unset it for the default (300 s)")
        }
        return seconds
    }

    private init(storage: S3Storage, key: String, holder: Holder, etag: String, lease: Double) {
        self.storage = storage
        self.key = key
        self.holder = holder
        self.etag = etag
        self.lease = lease
        // The renewing thread keeps the lock alive until `release()` (RepositoryLock calls it, also from its deinit).
        let thread = Thread { self.renewLoop() }
        thread.name = "ftbackup-s3-lock"
        thread.start()
    }

    static func newHolder(command: String, lease: Double) -> Holder {
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count)
        return Holder(id: UUID().uuidString, pid: getpid(), host: String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self),
                      command: command, started: Timestamps.iso8601UTC(Date()), leaseUntil: Date().timeIntervalSince1970 + lease,
                      leaseSeconds: lease)
    }

    static func encode(_ holder: Holder) -> [UInt8] { Array((try? JSONEncoder().encode(holder)) ?? Data()) }

    /// Whether a holder can no longer be running: it ran on this host and its pid is gone, or its lease is over.
    ///
    /// The lease is judged on the store's clock when `response` (the GET of the lock object) carries `Date` and
    /// `Last-Modified`: the object's age since the holder last wrote (renewed) it, so hosts whose clocks disagree
    /// never take a live holder's lock (nor wait for a dead one longer than the lease). Without them, the holder's
    /// own `leaseUntil` against this host's clock.
    static func isDead(_ holder: Holder, host: String, seenIn response: S3HTTPResponse? = nil) -> Bool {
        if holder.host == host && kill(holder.pid, 0) != 0 && errno == ESRCH { return true }
        if let response, let age = storeAge(response) { return age > (holder.leaseSeconds ?? leaseSeconds) + 2 }
        return holder.leaseUntil < Date().timeIntervalSince1970
    }

    /// Seconds between the object's `Last-Modified` and the response's `Date`, both the store's clock.
    static func storeAge(_ response: S3HTTPResponse) -> Double? {
        guard let modified = response.headers["last-modified"].flatMap(httpDate), let now = response.headers["date"].flatMap(httpDate) else { return nil }
        return now.timeIntervalSince(modified)
    }

    static func httpDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }

    /// The holder recorded in the lock object at `key` and the response it came in (nil: none, or unreadable).
    static func readHolder(storage: S3Storage, key: String) -> (Holder, S3HTTPResponse)? {
        guard let response = try? storage.client.send("GET", key: key), response.status == 200,
              let holder = try? JSONDecoder().decode(Holder.self, from: Data(response.body)) else { return nil }
        return (holder, response)
    }

    /// What an attempt to take a lock came to.
    enum Attempt {
        case acquired(S3LeaseLock)
        /// Held by a live run (nil: it could not be read).
        case busy(Holder?)
    }

    /// Takes the lock object at `path` (under `locks/`) exclusively, or says who holds it.
    static func tryExclusive(storage: S3Storage, path: String, command: String, lease: Double = leaseSeconds) throws -> Attempt {
        let key = storage.key(path)
        var mine = newHolder(command: command, lease: lease)
        let body = encode(mine)
        let created = try storage.client.send("PUT", key: key, headers: [("if-none-match", "*")], body: body)
        if created.status == 200, let etag = created.headers["etag"] {
            return .acquired(S3LeaseLock(storage: storage, key: key, holder: mine, etag: etag, lease: lease))
        }
        if (created.status == 412 || created.status == 409) && created.isRetry, let etag = storedETag(storage: storage, key: key, ifBodyIs: body) {
            return .acquired(S3LeaseLock(storage: storage, key: key, holder: mine, etag: etag, lease: lease))
        }
        if created.status == 501 || (created.status == 400 && S3XML.first("Code", in: created.body) == "NotImplemented") {
            throw FTBackupError(.configuration, "the S3 store of \(storage.location) does not support conditional writes (If-None-Match), so runs on two hosts could not be kept apart",
                                hint: "use a store that supports them (AWS S3, MinIO), or set FTBACKUP_S3_UNSAFE_NO_LOCKS=1 if only one host ever runs ftbackup on this repository")
        }
        guard created.status == 412 || created.status == 409 else { throw storage.client.failure(created, method: "PUT", key: key) }
        // Someone holds it: read who, and take it over only if that holder is dead.
        let current = try storage.client.send("GET", key: key)
        if current.status == 404 { return .busy(nil) }
        guard current.status == 200 else { throw storage.client.failure(current, method: "GET", key: key) }
        guard let theirs = try? JSONDecoder().decode(Holder.self, from: Data(current.body)), let theirTag = current.headers["etag"] else {
            return .busy(nil)
        }
        guard isDead(theirs, host: mine.host, seenIn: current) else { return .busy(theirs) }
        mine.leaseUntil = Date().timeIntervalSince1970 + lease
        let takeover = encode(mine)
        let taken = try storage.client.send("PUT", key: key, headers: [("if-match", theirTag)], body: takeover)
        if taken.status == 200, let etag = taken.headers["etag"] {
            return .acquired(S3LeaseLock(storage: storage, key: key, holder: mine, etag: etag, lease: lease))
        }
        if taken.status == 412 && taken.isRetry, let etag = storedETag(storage: storage, key: key, ifBodyIs: takeover) {
            return .acquired(S3LeaseLock(storage: storage, key: key, holder: mine, etag: etag, lease: lease))
        }
        return .busy(theirs)
    }

    /// The ETag of the object at `key` when it holds exactly `body` (our own write, whose answer was lost: the
    /// holder's random `id` makes the body ours alone), else nil.
    static func storedETag(storage: S3Storage, key: String, ifBodyIs body: [UInt8]) -> String? {
        guard let stored = try? storage.client.send("GET", key: key), stored.status == 200, stored.body == body else { return nil }
        return stored.headers["etag"]
    }

    /// A shared holder's own object (never contended).
    static func shared(storage: S3Storage, path: String, command: String) throws -> S3LeaseLock {
        let lease = leaseSeconds
        let mine = newHolder(command: command, lease: lease)
        let key = storage.key("\(path)/\(mine.id)")
        let created = try storage.client.expect([200], "PUT", key: key, body: encode(mine))
        return S3LeaseLock(storage: storage, key: key, holder: mine, etag: created.headers["etag"] ?? "", lease: lease)
    }

    /// The live holders of the shared objects under `path` (dead ones are removed on the way).
    static func liveSharedHolders(storage: S3Storage, path: String) throws -> [Holder] {
        var live: [Holder] = []
        let host = newHolder(command: "", lease: 0).host
        for entry in try storage.list(path) where !entry.isDirectory {
            guard let (holder, response) = readHolder(storage: storage, key: storage.key(entry.path)) else { continue }
            if isDead(holder, host: host, seenIn: response) { try? storage.remove(entry.path) } else { live.append(holder) }
        }
        return live
    }

    /// The holder recorded in an exclusive lock object, if it is alive.
    static func liveHolder(storage: S3Storage, path: String) -> Holder? {
        guard let (holder, response) = readHolder(storage: storage, key: storage.key(path)) else { return nil }
        return isDead(holder, host: newHolder(command: "", lease: 0).host, seenIn: response) ? nil : holder
    }

    private func renewLoop() {
        while true {
            condition.lock()
            let deadline = Date().addingTimeInterval(lease / 3)
            while !released && Date() < deadline { _ = condition.wait(until: deadline) }
            let stop = released
            condition.unlock()
            if stop { return }
            var renewed = holder
            renewed.leaseUntil = Date().timeIntervalSince1970 + lease
            let body = Self.encode(renewed)
            guard let response = try? storage.client.send("PUT", key: key, headers: [("if-match", etag)], body: body) else { continue }
            // A 412 to a retried renewal may be our own renewal, its answer lost: then the lock holds exactly its body.
            let ours = response.status == 200 ? response.headers["etag"]
                : response.status == 412 && response.isRetry ? Self.storedETag(storage: storage, key: key, ifBodyIs: body) : nil
            condition.lock()
            if let tag = ours, !released {
                holder = renewed
                etag = tag
            } else if ours == nil && response.status == 412 {
                FileHandle.standardError.write(Data("ftbackup: warning: lock s3://\(storage.client.bucket)/\(key) was taken over by another run (its lease had expired)\n".utf8))
                released = true
                takenOver = true
            }
            condition.unlock()
        }
    }

    /// Stops renewing and deletes the lock object (if it is still ours).
    public func release() {
        condition.lock()
        let wasReleased = released
        let id = holder.id
        released = true
        condition.signal()
        condition.unlock()
        guard !wasReleased else { return }
        // Ours when it names our random id (whatever lease end a renewal, answered or not, last wrote). The
        // DELETE is idempotent: a retry after a lost answer meets an absent object and is answered 204 too.
        if let (current, _) = Self.readHolder(storage: storage, key: key), current.id == id {
            _ = try? storage.client.send("DELETE", key: key)
        }
    }
}
