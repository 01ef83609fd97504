// How the etcd client reaches a member: async-http-client (HTTP/1.1 over TCP, or TLS with the
// configured CA and client certificate through swift-nio-ssl), driven from the caller's
// thread — the agent's and cnictl's code is synchronous. One HTTP client (its connection
// pool, its TLS context) per process and set of certificate files.

import AsyncHTTPClient
import Base
import Dispatch
import EtcdSettings
import NIOCore
import NIOHTTP1
import NIOSSL

public struct HTTPError: Error, CustomStringConvertible, Sendable {
    public var description: String
    /// The server could not be reached (connect failed or timed out): try another endpoint.
    public var unreachable: Bool
    /// The member accepted the connection and closed it without an answer: what a TLS member
    /// does to a plain HTTP request, and (TLS 1.3) to a client certificate it refuses.
    public var closedSilently: Bool
    /// ... by a reset during the TLS handshake (a member that does not speak TLS).
    public var reset: Bool
    init(_ d: String, unreachable: Bool = false, closedSilently: Bool = false, reset: Bool = false) {
        description = d; self.unreachable = unreachable; self.closedSilently = closedSilently; self.reset = reset
    }
}

final class EtcdTransport: @unchecked Sendable {
    let client: HTTPClient
    let config: EtcdConfig

    private static let lock = Mutex()
    nonisolated(unsafe) private static var shared: [String: EtcdTransport] = [:]

    /// The transport for `config`'s certificate files (made once; a file that cannot be used
    /// is an error naming it).
    static func forConfig(_ config: EtcdConfig) throws -> EtcdTransport {
        let key = [config.caFile ?? "", config.certFile ?? "", config.keyFile ?? "", String(config.timeoutMs)].joined(separator: "\n")
        return try lock.locked {
            if let t = shared[key] { return t }
            let t = try EtcdTransport(config)
            shared[key] = t
            return t
        }
    }

    private init(_ config: EtcdConfig) throws {
        self.config = config
        var c = HTTPClient.Configuration()
        c.timeout = .init(connect: .milliseconds(Int64(config.timeoutMs)), read: nil)
        // HTTP/1.1 only. Over TLS etcd offers HTTP/2 (ALPN h2), and async-http-client's HTTP/2
        // handler crashes the process when a stream is reset or the connection goes away at
        // the wrong moment (a force unwrap in HTTP2ClientRequestHandler, line 249;
        // swift-server/async-http-client#922, open): our agents died of it now and then, on
        // a watch cancelled or a member restarted. HTTP/1.1 gives each concurrent request its
        // own pooled connection, which is all the agent needs.
        c.httpVersion = .http1Only
        // A refused connection fails the request at once: `EtcdClient.call` goes on to the next
        // member and retries the cluster itself until its timeout. Left to async-http-client, a
        // pool retries with a backoff that grows with every failure (100 ms × 1.25ⁿ, up to a
        // minute) and resets only on success: after an outage of some seconds the first
        // request once etcd was back waited out that backoff past its deadline and failed with
        // the last "connection refused" (a multi-host etcd-down step, in CI).
        c.connectionPool.retryConnectionEstablishment = false
        if config.usesTLS {
            var tls = TLSConfiguration.makeClientConfiguration()
            if let ca = config.caFile {
                do { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca)) } catch {
                    throw EtcdError.misconfigured("caFile \(ca): not PEM certificates (\(error))")
                }
            }
            if let cert = config.certFile, let key = config.keyFile {
                do { tls.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) } } catch {
                    throw EtcdError.misconfigured("certFile \(cert): not a PEM certificate (\(error))")
                }
                do { tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)) } catch {
                    throw EtcdError.misconfigured("keyFile \(key): not a PEM private key (\(error))")
                }
            }
            c.tlsConfiguration = tls
        }
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: c)
    }

    func url(_ ep: EtcdConfig.Endpoint, _ path: String) -> String { "\(ep)\(path)" }

    func request(_ ep: EtcdConfig.Endpoint, _ path: String, body: [UInt8], headers: [String: String]) throws -> HTTPClient.Request {
        var h = HTTPHeaders([("Content-Type", "application/json")])
        for (k, v) in headers { h.add(name: k, value: v) }
        do {
            return try HTTPClient.Request(url: url(ep, path), method: .POST, headers: h, body: .bytes(body))
        } catch {
            throw HTTPError("\(ep): \(error)", unreachable: true)
        }
    }

    /// What went wrong talking to `ep`: a certificate or protocol mismatch is the
    /// configuration's fault (EtcdError.misconfigured, naming the file); anything else means
    /// the member cannot be reached now.
    func classify(_ error: Error, _ ep: EtcdConfig.Endpoint) -> Error {
        let text = String(describing: error)
        let has = { (s: String) in text.contains(s) }
        if has("CERTIFICATE_VERIFY_FAILED") || has("certificate verify failed") || has("unable to get local issuer") {
            return EtcdError.misconfigured("\(ep): its certificate does not verify against \(config.caFile.map { "caFile \($0)" } ?? "the system's CA certificates") (\(text))")
        }
        if has("WRONG_VERSION_NUMBER") || has("wrong version number") || has("PACKET_LENGTH_TOO_LONG") || has("HTTP_REQUEST")
            || has("EOF during handshake") {
            return EtcdError.misconfigured("\(ep): the member does not speak TLS (an http:// endpoint?) (\(text))")
        }
        if has("ALERT_UNKNOWN_CA") || has("ALERT_BAD_CERTIFICATE") || has("ALERT_CERTIFICATE") || has("CERTIFICATE_REQUIRED")
            || has("ALERT_HANDSHAKE_FAILURE") {
            return EtcdError.misconfigured("\(ep): the member refused \(config.certFile.map { "the client certificate certFile \($0)" } ?? "a client without a certificate (certFile, keyFile)") (\(text))")
        }
        if error is NIOSSLError || has("handshakeFailed") || has("sslError") {
            return EtcdError.misconfigured("\(ep): TLS handshake failed (\(text))")
        }
        // A TLS client reset by a plain member (it answered the handshake with HTTP and hung
        // up) reads as a reset: counted with the silent closes.
        // (A plain request to a TLS member is closed or reset, either way.)
        let wasReset = has("Connection reset by peer") || has("errno: 104")
        return HTTPError("\(ep): \(text)", unreachable: true, closedSilently: has("remoteConnectionClosed") || wasReset,
                         reset: ep.secure && wasReset)
    }

    /// Why every member kept closing the connection without answering.
    func silentlyClosed(_ ep: EtcdConfig.Endpoint, reset: Bool) -> EtcdError {
        if ep.secure && reset {
            return .misconfigured("\(ep): the member does not speak TLS (an http:// endpoint?) (it reset the TLS handshake)")
        }
        guard ep.secure else {
            return .misconfigured("\(ep): the member closes the connection without answering; does it speak TLS? (use https:// endpoints and caFile, certFile, keyFile)")
        }
        if let c = config.certFile {
            return .misconfigured("\(ep): the member refused the client certificate certFile \(c) (it closes the TLS connection without answering)")
        }
        return .misconfigured("\(ep): the member refused a client without a certificate (certFile, keyFile) (it closes the TLS connection without answering)")
    }

    /// A POST answered in full within `timeoutMs` (a refused connection fails at once; a
    /// member that does not answer costs the whole `timeoutMs`).
    func post(_ ep: EtcdConfig.Endpoint, _ path: String, body: [UInt8], headers: [String: String], timeoutMs: Int) throws -> (Int, [UInt8]) {
        let req = try request(ep, path, body: body, headers: headers)
        do {
            let r = try client.execute(request: req, deadline: .now() + .milliseconds(Int64(timeoutMs))).wait()
            let bytes = r.body.map { Array($0.readableBytesView) } ?? []
            if r.status == .badRequest, String(decoding: bytes, as: UTF8.self).contains("HTTPS server") {
                throw EtcdError.misconfigured("\(ep): the member speaks TLS (use https:// endpoints and caFile, certFile, keyFile)")
            }
            return (Int(r.status.code), bytes)
        } catch let e as EtcdError {
            throw e
        } catch {
            throw classify(error, ep)
        }
    }

    /// A POST whose response is read as it arrives (a watch).
    func stream(_ ep: EtcdConfig.Endpoint, _ path: String, body: [UInt8], headers: [String: String]) throws -> ResponseStream {
        let req = try request(ep, path, body: body, headers: headers)
        let s = ResponseStream()
        s.task = client.execute(request: req, delegate: s)
        return s
    }
}

/// The parts of a streamed response, handed from the event loop to the reading thread.
final class ResponseStream: HTTPClientResponseDelegate, @unchecked Sendable {
    typealias Response = Void
    private let lock = Mutex()
    private let signal = DispatchSemaphore(value: 0)
    private var status: Int?
    private var parts: [[UInt8]] = []
    private var finished = false
    private var failure: Error?
    var task: HTTPClient.Task<Void>?

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        lock.locked { status = Int(head.status.code) }
        signal.signal()
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        lock.locked { parts.append(Array(buffer.readableBytesView)) }
        signal.signal()
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveError(task: HTTPClient.Task<Void>, _ error: Error) {
        lock.locked { failure = error }
        signal.signal()
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {
        lock.locked { finished = true }
        signal.signal()
    }

    /// Waits for the next event; false on timeout.
    private func wait(_ ms: Int) -> Bool { signal.wait(timeout: .now() + .milliseconds(ms)) == .success }

    /// The response status, once it came (within `waitMs`).
    func readStatus(waitMs: Int) throws -> Int {
        let deadline = Posix.monotonicNanos() + UInt64(waitMs) * 1_000_000
        while true {
            let (s, f, e) = lock.locked { (status, finished, failure) }
            if let s { return s }
            if let e { throw e }
            if f { throw HTTPError("the response ended before its head", unreachable: true) }
            let left = Int((deadline > Posix.monotonicNanos() ? deadline - Posix.monotonicNanos() : 0) / 1_000_000)
            if left == 0 || !wait(left) {
                if lock.locked({ status }) == nil { throw HTTPError("no response within \(waitMs) ms", unreachable: true) }
            }
        }
    }

    /// The next part of the body; nil when the response ended. Throws on silence longer
    /// than `waitMs` and on a failed connection.
    func readPart(waitMs: Int) throws -> [UInt8]? {
        while true {
            let (p, f, e): ([UInt8]?, Bool, Error?) = lock.locked {
                if !parts.isEmpty { return (parts.removeFirst(), finished, failure) }
                return (nil, finished, failure)
            }
            if let p { return p }
            if let e { throw e }
            if f { return nil }
            if !wait(waitMs) && lock.locked({ parts.isEmpty && !finished && failure == nil }) {
                throw HTTPError("nothing received for \(waitMs) ms", unreachable: true)
            }
        }
    }

    func cancel() { task?.cancel() }
}
