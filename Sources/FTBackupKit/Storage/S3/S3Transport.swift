import CCurl
import Foundation

/// One HTTP request as it goes on the wire (already signed).
public struct S3HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]
}

/// One HTTP response, read whole (S3 responses are small: ranged GETs keep them bounded).
public struct S3HTTPResponse: Sendable {
    public var status: Int
    /// Header names lowercased.
    public var headers: [String: String]
    public var body: [UInt8]
    /// Which attempt of the request this answers (``S3Retry``). Above 1, an earlier attempt may have reached
    /// the store and taken effect with its answer lost (a reset, a timeout, a 5xx after the write): a
    /// non-idempotent request's answer (412 to a conditional write, 404 to a completion) may be its own doing.
    public var attempt: Int = 1
    /// Set by the transport when it may have sent the request twice: libcurl resends, by itself, a request whose
    /// kept-alive connection died without an answer, and that request may have reached the store first.
    public var mayHaveBeenResent = false

    /// True when an earlier attempt of the request (ours or libcurl's) may have taken effect.
    public var isRetry: Bool { attempt > 1 || mayHaveBeenResent }
}

/// A request that got no HTTP answer (refused, reset, timed out): retried, then reported.
public struct S3TransportError: Error, Sendable {
    public var message: String
}

/// Sends HTTP requests; the curl one in production, a fake in the retry tests.
public protocol S3Transport: Sendable {
    func send(_ request: S3HTTPRequest) throws -> S3HTTPResponse
}

/// libcurl, blocking, never on Swift's cooperative pool.
///
/// Storage calls are synchronous (``RepositoryStorage``). Callers on a dedicated thread (the threads
/// backup and restore give each table stream, the lock-renewing thread) send from that thread; a call
/// made from inside an async task (listing, HEAD, manifests, locks from a command's own code) is run
/// on ``S3TransportThreads`` instead. Easy handles are pooled so connections are reused (keep-alive) and never shared
/// by two threads at once. TLS is verified (`FTBACKUP_S3_CA_BUNDLE` adds a private CA).
public final class CurlTransport: S3Transport, @unchecked Sendable {
    private let lock = NSLock()
    private var idle: [UnsafeMutableRawPointer] = []
    private let caBundle: String?
    private let lowSpeedSeconds: Int

    /// Requests curl has run (all off the pool: ``perform`` asserts it); tests read it.
    static let performedOffPool = Counter()
    /// Of those, the ones handed to ``S3TransportThreads`` by a caller inside a task.
    static let performedOnTransportThreads = Counter()

    /// A thread-safe count.
    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func add() { lock.withLock { value += 1 } }
        var count: Int { lock.withLock { value } }
    }

    private static let globalInit: Bool = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK }()

    public init(caBundle: String?, lowSpeedSeconds: Int = 60) {
        _ = Self.globalInit
        self.caBundle = caBundle
        self.lowSpeedSeconds = lowSpeedSeconds
    }

    deinit { for handle in idle { curl_easy_cleanup(handle) } }

    /// A pooled handle (`used`: it has run a request, so it may hold a kept-alive connection) or a new one.
    private func take() throws -> (handle: UnsafeMutableRawPointer, used: Bool) {
        if let handle = lock.withLock({ idle.popLast() }) { return (handle, true) }
        guard let handle = curl_easy_init() else { throw S3TransportError(message: "cannot initialise libcurl") }
        return (handle, false)
    }

    private func giveBack(_ handle: UnsafeMutableRawPointer) {
        lock.withLock { idle.append(handle) }
    }

    /// Collects the response while curl runs.
    private final class Sink {
        var body: [UInt8] = []
        var headers: [String: String] = [:]
    }

    public func send(_ request: S3HTTPRequest) throws -> S3HTTPResponse {
        if S3TransportThreads.isInsideTask && !S3TransportThreads.isTransportThread {
            return try S3TransportThreads.shared.run { try self.perform(request) }
        }
        return try perform(request)
    }

    /// Runs one request with curl on the current thread, which must not be a cooperative-pool thread.
    private func perform(_ request: S3HTTPRequest) throws -> S3HTTPResponse {
        assert(!S3TransportThreads.isInsideTask, "curl called from an async task (the cooperative pool)")
        Self.performedOffPool.add()
        if S3TransportThreads.isTransportThread { Self.performedOnTransportThreads.add() }
        let (handle, used) = try take()
        var keep = true
        defer { if keep { giveBack(handle) } else { curl_easy_cleanup(handle) } }
        curl_easy_reset(handle)
        let sink = Sink()
        let sinkPointer = Unmanaged.passUnretained(sink).toOpaque()
        var list: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(list) }
        for (name, value) in request.headers { list = curl_slist_append(list, "\(name): \(value)") }
        // No Expect: 100-continue round trip, and no default form Content-Type on bodies.
        for blank in ["Expect:", "Content-Type:", "Accept:"] where !request.headers.contains(where: { "\($0.0):".lowercased() == blank.lowercased() }) {
            list = curl_slist_append(list, blank)
        }
        ftb_curl_setopt_string(handle, CURLOPT_URL, request.url)
        ftb_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, list)
        ftb_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        ftb_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT, 10)
        ftb_curl_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1)
        ftb_curl_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, lowSpeedSeconds)
        ftb_curl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1)
        ftb_curl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2)
        if let caBundle { ftb_curl_setopt_string(handle, CURLOPT_CAINFO, caBundle) }
        ftb_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, sinkPointer)
        ftb_curl_setopt_data_fn(handle, CURLOPT_WRITEFUNCTION) { data, size, count, user in
            let sink = Unmanaged<Sink>.fromOpaque(user!).takeUnretainedValue()
            sink.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: size * count))
            return size * count
        }
        ftb_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, sinkPointer)
        ftb_curl_setopt_data_fn(handle, CURLOPT_HEADERFUNCTION) { data, size, count, user in
            let sink = Unmanaged<Sink>.fromOpaque(user!).takeUnretainedValue()
            let line = String(decoding: UnsafeRawBufferPointer(start: data, count: size * count), as: UTF8.self)
            if line.hasPrefix("HTTP/") { sink.headers = [:] }
            if let colon = line.firstIndex(of: ":") {
                sink.headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
            }
            return size * count
        }
        let code: CURLcode = request.body.withUnsafeBytes { body in
            switch request.method {
            case "GET": ftb_curl_setopt_long(handle, CURLOPT_HTTPGET, 1)
            case "HEAD": ftb_curl_setopt_long(handle, CURLOPT_NOBODY, 1)
            default:
                ftb_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method)
                if request.method != "DELETE" || !body.isEmpty {
                    ftb_curl_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
                    ftb_curl_setopt_pointer(handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: body.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
                }
            }
            return curl_easy_perform(handle)
        }
        guard code == CURLE_OK else {
            keep = false
            throw S3TransportError(message: String(cString: curl_easy_strerror(code)))
        }
        var response = S3HTTPResponse(status: Int(ftb_curl_response_code(handle)), headers: sink.headers, body: sink.body)
        // A used handle that had to connect again found its connection dead: maybe after sending on it (a lost
        // answer curl retried unseen). Harmless when it was merely closed while idle: callers then check the store.
        response.mayHaveBeenResent = used && ftb_curl_num_connects(handle) > 0
        return response
    }
}
