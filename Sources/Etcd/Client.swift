// An etcd v3 client over the JSON gateway (/v3/kv/*, /v3/lease/*, /v3/watch, /v3/auth/*):
// ranges, puts, deletes, compare-and-swap transactions, leases, watches and username/password
// authentication, with failover across the cluster's endpoints, over HTTP or TLS (mutual TLS
// with a client certificate; Transport.swift). Keys and values are base64 on the wire; int64
// come as strings.

#if canImport(Glibc)
import Glibc
#endif
import Base
@_exported import EtcdSettings

public struct KeyValue: Equatable, Sendable {
    public var key: String
    public var value: [UInt8]
    public var createRevision: Int64
    public var modRevision: Int64
    public var lease: Int64
    public var text: String { String(decoding: value, as: UTF8.self) }
}

public struct WatchEvent: Sendable {
    public enum Kind: Sendable { case put, delete }
    public var kind: Kind
    public var kv: KeyValue
}

public enum EtcdError: ClassifiedError {
    /// No endpoint answered.
    case unavailable(String)
    /// etcd answered with an error.
    case failed(String)
    /// A watch's start revision was compacted away: re-sync from `revision`.
    case compacted(Int64)
    /// The configuration cannot work: a certificate file, TLS where the member has none (or
    /// the reverse), credentials etcd refuses.
    case misconfigured(String)

    public var description: String {
        switch self {
        case .unavailable(let s): return "etcd unreachable: \(s)"
        case .failed(let s): return "etcd: \(s)"
        case .compacted(let r): return "etcd: watch revision compacted (now \(r))"
        case .misconfigured(let s): return "etcd \(s)"
        }
    }

    public var kind: FailureKind {
        switch self {
        case .unavailable: return .unavailable
        case .misconfigured: return .invalidArgument
        default: return .storeFailed
        }
    }
}

public final class EtcdClient {
    public let config: EtcdConfig
    private var current = 0
    private var token: String?

    public init(_ config: EtcdConfig) { self.config = config }

    // MARK: transport

    /// POSTs to the first endpoint that answers (the last good one first). A cluster that is
    /// electing a leader or has lost a member is retried across its endpoints until the
    /// configured timeout; only then is it "unreachable".
    func call(_ path: String, _ body: JSON) throws -> JSONObject {
        var failures: [String] = []
        var silent = 0, other = 0, resets = 0
        let n = config.endpoints.count
        let deadline = Posix.monotonicNanos() + UInt64(config.timeoutMs) * 1_000_000
        var pass = 0
        while true {
            let start = current
            for attempt in 0..<n {
                let idx = (start + attempt) % n
                let ep = config.endpoints[idx]
                if idx != current {
                    current = idx
                    token = nil
                }
                do {
                    if config.username != nil && token == nil && path != "/v3/auth/authenticate" { try authenticate() }
                    var headers: [String: String] = [:]
                    if let t = token { headers["Authorization"] = t }
                    // Each member gets its share of the timeout, so that a dead one does not use it all.
                    let left = Int((deadline > Posix.monotonicNanos() ? deadline - Posix.monotonicNanos() : 0) / 1_000_000)
                    let share = max(200, min(left, config.timeoutMs / n))
                    let (code, bytes) = try EtcdTransport.forConfig(config).post(ep, path, body: body.serializedBytes(), headers: headers,
                                                                                 timeoutMs: share)
                    guard let j = try? JSON.parse(bytes), case .object(let o) = j else {
                        throw EtcdError.failed("\(ep) \(path): HTTP \(code), not JSON")
                    }
                    if code != 200 {
                        let msg = o["message"]?.stringValue ?? o["error"]?.stringValue ?? "HTTP \(code)"
                        // A member without a leader (election, lost quorum) or shutting down: ask another.
                        if code == 503 || EtcdClient.transient(msg) {
                            failures.append("\(ep): \(msg)")
                            continue
                        }
                        if msg.contains("authentication failed") || msg.contains("invalid auth token") && path == "/v3/auth/authenticate" {
                            throw EtcdError.misconfigured("\(ep): user \(config.username ?? "") and its password are refused (\(msg))")
                        }
                        if msg.contains("user name is empty") || msg.contains("permission denied") || msg.contains("user name not found") {
                            throw EtcdError.misconfigured("\(ep) \(path): \(msg) (username, password: the member requires authentication)")
                        }
                        throw EtcdError.failed("\(path): \(msg)")
                    }
                    return o
                } catch let e as HTTPError {
                    failures.append("\(ep): \(e)")
                    if e.closedSilently { silent += 1 } else { other += 1 }
                    if e.reset { resets += 1 }
                }
            }
            pass += 1
            if Posix.monotonicNanos() >= deadline { break }
            usleep(UInt32(min(100_000 * pass, 500_000)))
        }
        // Every member accepted and hung up, every time: the configuration, not the network.
        if silent > 0 && other == 0, let ep = config.endpoints.first, let t = try? EtcdTransport.forConfig(config) {
            throw t.silentlyClosed(ep, reset: resets == silent)
        }
        throw EtcdError.unavailable(Array(failures.suffix(n)).joined(separator: "; "))
    }

    static func transient(_ msg: String) -> Bool {
        ["no leader", "leader changed", "timed out", "not started", "stopped", "too many requests", "unavailable"].contains { msg.contains($0) }
    }

    /// The password: given, or read from its file.
    var password: String? {
        if let p = config.password { return p }
        guard let f = config.passwordFile, let b = (try? Posix.readFile(f)) ?? nil else { return nil }
        var t = String(decoding: b, as: UTF8.self)
        while t.hasSuffix("\n") || t.hasSuffix("\r") { t.removeLast() }
        return t
    }

    func authenticate() throws {
        guard let u = config.username else { return }
        guard let p = password else { throw EtcdError.misconfigured("passwordFile \(config.passwordFile ?? ""): cannot be read") }
        let o = try call("/v3/auth/authenticate", ["name": .string(u), "password": .string(p)])
        guard let t = o["token"]?.stringValue else { throw EtcdError.failed("authenticate: no token") }
        token = t
    }

    static func b64(_ s: String) -> JSON { .string(Base64.encode(s)) }

    /// The end of the range of keys with `prefix`: the prefix with its last byte incremented.
    public static func prefixEnd(_ prefix: String) -> String {
        var b = Array(prefix.utf8)
        while let last = b.last {
            if last < 0xFF { b[b.count - 1] = last + 1; return String(decoding: b, as: UTF8.self) }
            b.removeLast()
        }
        return "\0"
    }

    static func int(_ j: JSON?) -> Int64 {
        if let s = j?.stringValue { return Int64(s) ?? 0 }
        if let i = j?.intValue { return Int64(i) }
        return 0
    }

    static func kv(_ j: JSON) -> KeyValue? {
        guard case .object(let o) = j, let k = o["key"]?.stringValue, let kb = Base64.decode(k) else { return nil }
        return KeyValue(key: String(decoding: kb, as: UTF8.self), value: o["value"]?.stringValue.flatMap(Base64.decode) ?? [],
                        createRevision: int(o["create_revision"]), modRevision: int(o["mod_revision"]), lease: int(o["lease"]))
    }

    // MARK: KV

    public func get(_ key: String) throws -> KeyValue? {
        let o = try call("/v3/kv/range", ["key": EtcdClient.b64(key)])
        return o["kvs"]?.arrayValue?.first.flatMap(EtcdClient.kv)
    }

    /// Every key under `prefix`, and the store's revision at that moment. With `revision`,
    /// the keys as they were at that revision (the second return is still the store's).
    public func range(prefix: String, revision: Int64 = 0) throws -> ([KeyValue], Int64) {
        var body = JSONObject([("key", EtcdClient.b64(prefix)), ("range_end", EtcdClient.b64(EtcdClient.prefixEnd(prefix)))])
        if revision > 0 { body["revision"] = .string(String(revision)) }
        let o = try call("/v3/kv/range", .object(body))
        let kvs = (o["kvs"]?.arrayValue ?? []).compactMap(EtcdClient.kv)
        return (kvs, EtcdClient.int(o["header"]?["revision"]))
    }

    /// The keys under each of `prefixes` as of one revision — a consistent snapshot across
    /// them — and that revision: a watch from revision + 1 misses nothing and repeats nothing.
    public func snapshot(_ prefixes: [String]) throws -> ([[KeyValue]], Int64) {
        guard let first = prefixes.first else { return ([], 0) }
        let (kvs, rev) = try range(prefix: first)
        var out = [kvs]
        for p in prefixes.dropFirst() { out.append(try range(prefix: p, revision: rev).0) }
        return (out, rev)
    }

    @discardableResult
    public func put(_ key: String, _ value: [UInt8], lease: Int64 = 0) throws -> Int64 {
        var body = JSONObject([("key", EtcdClient.b64(key)), ("value", .string(Base64.encode(value)))])
        if lease != 0 { body["lease"] = .string(String(lease)) }
        let o = try call("/v3/kv/put", .object(body))
        return EtcdClient.int(o["header"]?["revision"])
    }

    @discardableResult
    public func delete(_ key: String) throws -> Int {
        let o = try call("/v3/kv/deleterange", ["key": EtcdClient.b64(key)])
        return Int(EtcdClient.int(o["deleted"]))
    }

    @discardableResult
    public func delete(prefix: String) throws -> Int {
        let o = try call("/v3/kv/deleterange", ["key": EtcdClient.b64(prefix), "range_end": EtcdClient.b64(EtcdClient.prefixEnd(prefix))])
        return Int(EtcdClient.int(o["deleted"]))
    }

    /// Puts `key` only if it does not exist (a transaction comparing its create revision
    /// with 0). True if this call created it.
    public func create(_ key: String, _ value: [UInt8], lease: Int64 = 0) throws -> Bool {
        var put = JSONObject([("key", EtcdClient.b64(key)), ("value", .string(Base64.encode(value)))])
        if lease != 0 { put["lease"] = .string(String(lease)) }
        let o = try call("/v3/kv/txn", [
            "compare": [["key": EtcdClient.b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"]],
            "success": [["request_put": .object(put)]],
        ])
        return o["succeeded"]?.boolValue ?? false
    }

    /// Creates `key` only if it does not exist, and in the same transaction puts `also`.
    /// True if this call created it.
    public func createWith(_ key: String, _ value: [UInt8], also: [(String, [UInt8])]) throws -> Bool {
        var ops: [JSON] = [["request_put": ["key": EtcdClient.b64(key), "value": .string(Base64.encode(value))]]]
        for (k, v) in also { ops.append(["request_put": ["key": EtcdClient.b64(k), "value": .string(Base64.encode(v))]]) }
        let o = try call("/v3/kv/txn", [
            "compare": [["key": EtcdClient.b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"]],
            "success": .array(ops),
        ])
        return o["succeeded"]?.boolValue ?? false
    }

    /// A condition of `transaction`.
    public enum Condition: Sendable {
        /// The key exists, last modified at this revision.
        case modifiedAt(String, Int64)
        /// The key does not exist.
        case absent(String)
    }

    /// Puts and deletes, all or none, if every condition holds. Returns whether it did and
    /// the store's revision after it.
    public func transaction(_ conditions: [Condition], puts: [(String, [UInt8])], deletes: [String] = []) throws -> (succeeded: Bool, revision: Int64) {
        let cmp: [JSON] = conditions.map {
            switch $0 {
            case .modifiedAt(let k, let r): return ["key": EtcdClient.b64(k), "target": "MOD", "result": "EQUAL", "mod_revision": .string(String(r))]
            case .absent(let k): return ["key": EtcdClient.b64(k), "target": "CREATE", "result": "EQUAL", "create_revision": "0"]
            }
        }
        var ops: [JSON] = puts.map { ["request_put": ["key": EtcdClient.b64($0.0), "value": .string(Base64.encode($0.1))]] }
        ops += deletes.map { ["request_delete_range": ["key": EtcdClient.b64($0)]] }
        let o = try call("/v3/kv/txn", ["compare": .array(cmp), "success": .array(ops)])
        return (o["succeeded"]?.boolValue ?? false, EtcdClient.int(o["header"]?["revision"]))
    }

    /// Deletes `key` only if its value is `value`. True if it did.
    public func delete(_ key: String, ifValue value: [UInt8]) throws -> Bool {
        let o = try call("/v3/kv/txn", [
            "compare": [["key": EtcdClient.b64(key), "target": "VALUE", "result": "EQUAL", "value": .string(Base64.encode(value))]],
            "success": [["request_delete_range": ["key": EtcdClient.b64(key)]]],
        ])
        return o["succeeded"]?.boolValue ?? false
    }

    // MARK: leases

    public func grantLease(ttl: Int) throws -> Int64 {
        let o = try call("/v3/lease/grant", ["TTL": .string(String(ttl))])
        let id = EtcdClient.int(o["ID"])
        guard id != 0 else { throw EtcdError.failed("lease grant: no ID (\(o["error"]?.stringValue ?? ""))") }
        return id
    }

    /// Renews a lease; returns its TTL (0 when it has expired).
    public func keepAlive(_ id: Int64) throws -> Int64 {
        let o = try call("/v3/lease/keepalive", ["ID": .string(String(id))])
        return EtcdClient.int(o["result"]?["TTL"])
    }

    public func revoke(_ id: Int64) throws {
        _ = try call("/v3/lease/revoke", ["ID": .string(String(id))])
    }

    // MARK: watch

    /// Watches keys under `prefix` from `revision` on a dedicated connection, calling
    /// `handle` with each batch of events and the revision they bring the store to; returns
    /// when `handle` returns false. Throws when the connection is lost (re-sync and watch
    /// again) or the revision was compacted (`EtcdError.compacted`).
    public func watch(prefix: String, from revision: Int64, idleTimeoutMs: Int = 15000,
                      _ handle: ([WatchEvent], Int64) -> Bool) throws {
        var failures: [String] = []
        for attempt in 0..<config.endpoints.count {
            let ep = config.endpoints[(current + attempt) % config.endpoints.count]
            do {
                if config.username != nil && token == nil { try authenticate() }
                var headers: [String: String] = [:]
                if let t = token { headers["Authorization"] = t }
                let body: JSON = ["create_request": [
                    "key": EtcdClient.b64(prefix), "range_end": EtcdClient.b64(EtcdClient.prefixEnd(prefix)),
                    "start_revision": .string(String(revision)), "progress_notify": true,
                ]]
                let c = try EtcdTransport.forConfig(config).stream(ep, "/v3/watch", body: body.serializedBytes(), headers: headers)
                defer { c.cancel() }
                let code = try c.readStatus(waitMs: config.timeoutMs)
                guard code == 200 else { throw EtcdError.failed("watch: HTTP \(code)") }
                var pending: [UInt8] = []
                while true {
                    // etcd sends progress notifications every few seconds, so silence means a dead member.
                    guard let chunk = try c.readPart(waitMs: idleTimeoutMs) else { throw EtcdError.unavailable("\(ep): watch stream ended") }
                    pending += chunk
                    while let nl = pending.firstIndex(of: 10) {
                        let line = Array(pending[..<nl])
                        pending.removeFirst(nl + 1)
                        if !line.isEmpty, try !deliver(line, handle) { return }
                    }
                    if !pending.isEmpty, let _ = try? JSON.parse(pending) {
                        let line = pending
                        pending = []
                        if try !deliver(line, handle) { return }
                    }
                }
            } catch let e as HTTPError {
                failures.append("\(ep): \(e)")
                if !e.unreachable { throw EtcdError.unavailable(failures.joined(separator: "; ")) }
            }
        }
        throw EtcdError.unavailable(failures.joined(separator: "; "))
    }

    private func deliver(_ line: [UInt8], _ handle: ([WatchEvent], Int64) -> Bool) throws -> Bool {
        guard let j = try? JSON.parse(line), let r = j["result"]?.objectValue else {
            if let j = try? JSON.parse(line), let err = j["error"] { throw EtcdError.failed("watch: \(err.excerpt())") }
            return true
        }
        let compact = EtcdClient.int(r["compact_revision"])
        if compact > 0 { throw EtcdError.compacted(compact) }
        if r["canceled"]?.boolValue == true { throw EtcdError.failed("watch canceled: \(r["cancel_reason"]?.stringValue ?? "")") }
        let rev = EtcdClient.int(r["header"]?["revision"])
        var events: [WatchEvent] = []
        for e in r["events"]?.arrayValue ?? [] {
            guard let kv = e["kv"].flatMap(EtcdClient.kv) else { continue }
            events.append(WatchEvent(kind: e["type"]?.stringValue == "DELETE" ? .delete : .put, kv: kv))
        }
        return handle(events, rev)
    }
}
