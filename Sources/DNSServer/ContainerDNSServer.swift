// The per-host DNS server: SwiftNIO UDP and TCP listeners on each DNS-enabled network's
// gateway addresses (port 53), answering from a `DNSZone` and forwarding the rest to the
// network's upstream servers. Records come from the files the dns-alias plugin writes
// (`DNSState`); the plugin tells the server which network changed over a unix control
// socket, served by a plain thread so that file reads never stall a query loop.

#if canImport(Glibc)
import Glibc
#endif
import Base
import DNS
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

public final class ContainerDNSServer: @unchecked Sendable {
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

    public init(state: DNSState, port: Int = 53, threads: Int = ContainerDNSServer.defaultThreads) {
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

    /// Opens a listener on every gateway a container of this host was handed (every subnet's
    /// of every network, IPv4 and IPv6); closes one only when no container uses it any more.
    func syncListeners() throws {
        let z = zone.withLockedValue { $0 }
        let want = z.listenAddresses
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
                return "ok netns=\(netns) networks=\(z.networks.count) endpoints=\(z.recordCount) listening=\(listeners.keys.sorted().map(\.description).joined(separator: ",")) forwarded=\(s.forwarded) refused=\(s.refused) malformed=\(s.malformed)"
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
                let gateways = mine.gateways.isEmpty ? (z.networks[parts[1]]?.gateways ?? []) : mine.gateways
                for g in gateways where listeners[g] == nil {
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

    // MARK: running

    /// The network namespace this server serves (its records are that namespace's).
    let netns = Posix.netnsCookie()

    /// Takes the server lock (one server per network namespace and run directory), binds the
    /// control socket, loads every record, listens, and serves until idle or killed. The
    /// socket is bound before the records are read: a change made meanwhile is either read
    /// or waiting in the socket's backlog, never lost.
    public func run(idleExit: Int = 2) throws -> Never {
        let daemon = Daemon(root: state.root, role: .dnsServer)
        guard try daemon.claim() else {
            logger.info("another server holds \(daemon.lockFile); exiting")
            exit(0)
        }
        let control = try daemon.bindControl()
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
        logger.info("control socket \(daemon.controlSocket)")
        try daemon.serve(listener: control, idleExit: idleExit, idle: { zone.withLockedValue { $0.recordCount == 0 } },
                         handle: self.control)
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
