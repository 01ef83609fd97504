// The per-host DNS server: SwiftNIO UDP and TCP listeners on each DNS-enabled network's
// gateway addresses (port 53), answering from a `DNSZone` and forwarding the rest to the
// network's upstream servers. Records come from the files the dns-alias plugin writes
// (`DNSState`); the plugin tells the server which network changed over a unix control
// socket, served by a plain thread so that file reads never stall a query loop.

#if canImport(Glibc)
import Glibc
#endif
import CNI
import DNS
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

public final class DNSServer: @unchecked Sendable {
    let state: DNSState
    let port: Int
    let threads: Int
    let group: MultiThreadedEventLoopGroup
    let zone = NIOLockedValueBox(DNSZone())
    let forwarder: Forwarder
    var logger = Logger(label: "swiftcni-dns")
    /// Listeners by address (UDP threads, the TCP channel); touched only by the control thread.
    var listeners: [IPAddress: Listener] = [:]

    struct Listener {
        var udp: [UDPListener]
        var tcp: Channel
        func close() {
            for u in udp { u.stop() }
            try? tcp.close().wait()
        }
    }
    let stats = NIOLockedValueBox(Stats())

    struct Stats { var forwarded = 0; var refused = 0; var malformed = 0 }

    /// UDP threads default to half the cores (at least one): on a host the queries come
    /// from containers that need CPU too, and one thread per two cores measured best on
    /// two cores (scripts/bench/dnsbench.py). TCP and forwarding share one event loop.
    public static var defaultThreads: Int { max(1, System.coreCount / 2) }

    public init(state: DNSState, port: Int = 53, threads: Int = DNSServer.defaultThreads) {
        self.state = state
        self.port = port
        self.threads = max(1, threads)
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        forwarder = Forwarder(eventLoop: group.next())
        logger.logLevel = .info
    }

    // MARK: answering

    enum Outcome {
        case reply([UInt8])
        case forward(DNSQuery, [UInt8], [DNSUpstream])
        case none
    }

    /// The answer to one message from `source`, or what to do instead.
    func answer<R: RandomNumberGenerator>(_ bytes: [UInt8], source: IPAddress, limit: Int?, rng: inout R) -> Outcome {
        switch DNSQuery.parse(bytes) {
        case .drop:
            stats.withLockedValue { $0.malformed += 1 }
            return .none
        case .reject(let id, let flags, let rcode):
            stats.withLockedValue { $0.malformed += 1 }
            return .reply(DNSResponse.error(id: id, queryFlags: flags, rcode))
        case .query(let q):
            let z = zone.withLockedValue { $0 }
            switch z.resolve(source: source, q.question, using: &rng) {
            case .answer(let rcode, let recs, let ttl):
                return .reply(DNSResponse.answer(q, rcode: rcode, records: recs, ttl: ttl, limit: limit ?? q.udpLimit))
            case .refused:
                stats.withLockedValue { $0.refused += 1 }
                return .reply(DNSResponse.answer(q, rcode: .refused, authoritative: false, limit: limit ?? q.udpLimit))
            case .forward(let ups):
                stats.withLockedValue { $0.forwarded += 1 }
                return .forward(q, bytes, ups)
            }
        }
    }

    // MARK: state

    /// Re-reads one network (or one endpoint of it) from disk.
    func reload(network: String, key: String?) throws {
        guard let net = try state.readNetwork(network) else {
            zone.withLockedValue { $0.removeNetwork(network) }
            return
        }
        if let key {
            let e = try state.readEndpoint(network: network, key: key)
            zone.withLockedValue { z in
                z.setNetwork(net)
                if let e { z.upsert(e) } else { z.remove(network: network, key: key) }
            }
        } else {
            guard let (n, eps) = try state.load(network: network) else { return }
            zone.withLockedValue { z in
                z.setNetwork(n)
                let keep = Set(eps.map(\.key))
                for k in (z.endpoints[network] ?? [:]).keys where !keep.contains(k) { z.remove(network: network, key: k) }
                for e in eps { z.upsert(e) }
            }
        }
    }

    /// Opens listeners for every address of a network with endpoints; closes the others.
    func syncListeners() throws {
        let z = zone.withLockedValue { $0 }
        var want = Set<IPAddress>()
        for (name, n) in z.networks where !(z.endpoints[name] ?? [:]).isEmpty { want.formUnion(n.gateways) }
        for (a, l) in listeners where !want.contains(a) {
            l.close()
            listeners[a] = nil
            logger.info("stopped listening on \(a)")
        }
        var failures: [String] = []
        for a in want.sorted() where listeners[a] == nil {
            do {
                listeners[a] = try listen(on: a)
                logger.info("listening on \(a) port \(port) (udp, tcp)")
            } catch {
                failures.append("\(a) port \(port): \(error)")
            }
        }
        if !failures.isEmpty { throw ServerError("cannot listen on " + failures.joined(separator: "; ")) }
    }

    func listen(on a: IPAddress) throws -> Listener {
        // UDP: one socket and thread per core, sharing the port (SO_REUSEPORT spreads clients).
        var udp: [UDPListener] = []
        do {
            for _ in 0..<threads { udp.append(try UDPListener(server: self, address: a, port: port)) }
        } catch {
            for u in udp { close(u.fd) }
            throw error
        }
        let addr = try SocketAddress(ipAddress: a.description, port: port)
        let freebind = a.isV4
            ? ChannelOptions.Types.SocketOption(level: NIOBSDSocket.OptionLevel(rawValue: Int32(IPPROTO_IP)), name: NIOBSDSocket.Option(rawValue: 15))
            : ChannelOptions.Types.SocketOption(level: NIOBSDSocket.OptionLevel(rawValue: Int32(IPPROTO_IPV6)), name: NIOBSDSocket.Option(rawValue: 78))
        let tcp: Channel
        do {
            tcp = try ServerBootstrap(group: group)
                .serverChannelOption(ChannelOptions.backlog, value: 256)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(freebind, value: 1)
                .childChannelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture {
                        try ch.pipeline.syncOperations.addHandlers([
                            IdleStateHandler(readTimeout: .seconds(10)),
                            ByteToMessageHandler(LengthPrefixDecoder()),
                            TCPHandler(self),
                        ])
                    }
                }
                .bind(to: addr).wait()
        } catch {
            for u in udp { close(u.fd) }
            throw error
        }
        for u in udp { u.start() }
        return Listener(udp: udp, tcp: tcp)
    }

    // MARK: control

    func control(_ line: String) -> String {
        let parts = line.split(separator: " ").map(String.init)
        do {
            switch parts.first {
            case "status":
                let z = zone.withLockedValue { $0 }
                let s = stats.withLockedValue { $0 }
                return "ok networks=\(z.networks.count) endpoints=\(z.recordCount) listening=\(listeners.keys.sorted().map(\.description).joined(separator: ",")) forwarded=\(s.forwarded) refused=\(s.refused) malformed=\(s.malformed)"
            case "update" where parts.count == 2 || parts.count == 3:
                try reload(network: parts[1], key: parts.count == 3 ? parts[2] : nil)
                try syncListeners()
                return "ok"
            case "has" where parts.count == 3:
                guard let onDisk = try state.readEndpoint(network: parts[1], key: parts[2]) else {
                    return "missing: no record file for \(parts[2]) in network \(parts[1])"
                }
                let z = zone.withLockedValue { $0 }
                guard let mine = z.endpoint(parts[1], parts[2]) else { return "missing: the server does not serve \(parts[2]) in network \(parts[1])" }
                if mine != onDisk { return "missing: the server serves a different record for \(parts[2])" }
                for g in z.networks[parts[1]]?.gateways ?? [] where listeners[g] == nil {
                    return "missing: the server does not listen on \(g)"
                }
                return "ok"
            default:
                return "error unknown request \"\(line)\""
            }
        } catch {
            logger.error("\(line): \(error)")
            return "error \(error)"
        }
    }

    /// Serves the control socket on the calling thread, forever (until the server has had
    /// no records for `idleExit` seconds, when it exits).
    func serveControl(idleExit: Int) throws -> Never {
        let path = state.controlSocket
        _ = try? Posix.remove(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket", "AF_UNIX") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let p = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, c) in p.enumerated() { raw[i] = c }
            raw[p.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw SystemError("bind", path) }
        chmod(path, 0o600)
        guard Glibc.listen(fd, 64) == 0 else { throw SystemError("listen", path) }
        logger.info("control socket \(path)")
        var emptySince: UInt64? = nil
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let n = poll(&pfd, 1, 1000)
            if n <= 0 {
                let empty = zone.withLockedValue { $0.recordCount == 0 }
                if empty {
                    let now = Posix.monotonicNanos()
                    if let s = emptySince, now - s > UInt64(idleExit) * 1_000_000_000 {
                        logger.info("no records left; exiting")
                        _ = try? Posix.remove(path)
                        _ = try? Posix.remove(state.pidFile)
                        exit(0)
                    }
                    if emptySince == nil { emptySince = now }
                } else {
                    emptySince = nil
                }
                continue
            }
            let c = accept(fd, nil, nil)
            if c < 0 { continue }
            var tv = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var line: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 1024)
            while !line.contains(10), line.count < 4096 {
                let r = buf.withUnsafeMutableBytes { read(c, $0.baseAddress, $0.count) }
                if r > 0 { line += buf[0..<r] } else if r < 0 && errno == EINTR { continue } else { break }
            }
            if let nl = line.firstIndex(of: 10) {
                let req = String(decoding: line[..<nl], as: UTF8.self)
                let reply = control(req)
                if !req.hasPrefix("status") { logger.debug("\(req) → \(reply)") }
                try? Posix.writeAll(fd: c, Array((reply + "\n").utf8))
                emptySince = nil
            }
            close(c)
        }
    }

    // MARK: running

    /// Takes the server lock (one server per run directory), loads every record, listens,
    /// and serves until killed.
    public func run(idleExit: Int = 2) throws -> Never {
        try Posix.makeDirectories(state.root)
        let lockFD = open(state.serverLock, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else { throw SystemError("open", state.serverLock) }
        // A previous server may still be exiting: wait for it a little.
        var locked = false
        for _ in 0..<100 {
            if flock(lockFD, LOCK_EX | LOCK_NB) == 0 { locked = true; break }
            usleep(20000)
        }
        guard locked else {
            logger.info("another server holds \(state.serverLock); exiting")
            exit(0)
        }
        try Posix.overwrite(state.pidFile, Array("\(getpid())\n".utf8))
        forwarder.start()
        let z = try state.loadZone()
        zone.withLockedValue { $0 = z }
        logger.info("loaded \(z.recordCount) records of \(z.networks.count) networks from \(state.networksDirectory)")
        do {
            try syncListeners()
        } catch {
            // Serve what we can; a later update retries the others.
            logger.error("\(error)")
        }
        try serveControl(idleExit: idleExit)
    }
}

struct ServerError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

extension IPAddress {
    init?(_ sa: SocketAddress) {
        switch sa {
        case .v4(let a):
            self.init(v4: UInt32(bigEndian: a.address.sin_addr.s_addr))
        case .v6(let a):
            var x = a.address.sin6_addr
            let b = withUnsafeBytes(of: &x) { Array($0) }
            // IPv4-mapped (::ffff:a.b.c.d) counts as the IPv4 address.
            if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF {
                self.init(bytes: Array(b[12..<16]))
            } else {
                self.init(bytes: b)
            }
        default:
            return nil
        }
    }
}

/// A small, fast PRNG for shuffling answers (not for anything secret).
struct Xorshift: RandomNumberGenerator {
    var s: UInt64
    init() {
        var g = SystemRandomNumberGenerator()
        s = g.next() | 1
    }
    mutating func next() -> UInt64 {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17
        return s
    }
}
