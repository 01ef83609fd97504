// The UDP query path: a thread per socket that takes whatever datagrams are queued with one
// recvmmsg, answers them, and sends the answers with one sendmmsg. Measured against SwiftNIO's
// datagram channel on this path (scripts/bench/dnsbench.py), this spends far less CPU per
// query (no envelope, no address formatting, no pipeline per datagram), which is what lets
// the server keep up with dnsmasq on a small machine. TCP, forwarding and timers stay on
// SwiftNIO.

#if canImport(Glibc)
import Glibc
#endif
import Base
import CShim
import DNS

final class UDPListener: @unchecked Sendable {
    let fd: Int32
    let server: ContainerDNSServer
    let address: IPAddress
    private var thread: pthread_t?
    private var stopping = false
    static let batch: UInt32 = 32
    static let size: UInt32 = 4096

    init(server: ContainerDNSServer, address: IPAddress, port: Int) throws {
        self.server = server
        self.address = address
        let family = address.isV4 ? AF_INET : AF_INET6
        let s = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw SystemError("socket", "udp \(address)") }
        var one: Int32 = 1
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, 4)
        // Bind even while the address is tentative (IPv6 DAD): IP_FREEBIND / IPV6_FREEBIND.
        if address.isV4 { setsockopt(s, Int32(IPPROTO_IP), 15, &one, 4) } else {
            setsockopt(s, Int32(IPPROTO_IPV6), 78, &one, 4)
            setsockopt(s, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, 4)
        }
        var buf: Int32 = 4 << 20
        setsockopt(s, SOL_SOCKET, SO_RCVBUF, &buf, 4)
        setsockopt(s, SOL_SOCKET, SO_SNDBUF, &buf, 4)
        // A blocked receive wakes up at least this often to notice a stop.
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc: Int32
        if address.isV4 {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = in_port_t(UInt16(port).bigEndian)
            sa.sin_addr.s_addr = UInt32(truncatingIfNeeded: address.value).bigEndian
            rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        } else {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = in_port_t(UInt16(port).bigEndian)
            withUnsafeMutableBytes(of: &sa.sin6_addr) { raw in for (i, b) in address.bytes.enumerated() { raw[i] = b } }
            rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        }
        if rc != 0 {
            let e = errno
            close(s)
            throw SystemError("bind", "udp \(address) port \(port)", errno: e)
        }
        fd = s
    }

    func start() {
        let ctx = Unmanaged.passRetained(self).toOpaque()
        var t = pthread_t()
        pthread_create(&t, nil, { arg in
            let me = Unmanaged<UDPListener>.fromOpaque(arg!).takeRetainedValue()
            me.serve()
            return nil
        }, ctx)
        thread = t
    }

    /// Stops the thread and closes the socket.
    func stop() {
        stopping = true
        shutdown(fd, Int32(SHUT_RDWR))
        if let t = thread { pthread_join(t, nil) }
        thread = nil
        close(fd)
    }

    private func serve() {
        guard let batch = cshim_udp_batch_new(UDPListener.batch, UDPListener.size) else { return }
        defer { cshim_udp_batch_free(batch) }
        var rng = FastRandom()
        var addr = [UInt8](repeating: 0, count: 16)
        while !stopping {
            let n = cshim_udp_batch_recv(fd, batch, 1)
            if n <= 0 {
                if n < 0 && (errno == EAGAIN || errno == EINTR) { continue }
                if stopping { return }
                continue
            }
            for i in 0..<UInt32(n) {
                var len: UInt32 = 0
                guard let data = cshim_udp_batch_data(batch, i, &len), len <= UDPListener.size else { continue }
                var port: UInt16 = 0
                let fam = addr.withUnsafeMutableBufferPointer { cshim_udp_batch_source(batch, i, $0.baseAddress, &port) }
                let source: IPAddress
                if fam == AF_INET {
                    source = IPAddress(v4: UInt32(addr[0]) << 24 | UInt32(addr[1]) << 16 | UInt32(addr[2]) << 8 | UInt32(addr[3]))
                } else if fam == AF_INET6, let a = IPAddress(bytes: addr) {
                    source = a.isV4Mapped ?? a
                } else { continue }
                let bytes = Array(UnsafeBufferPointer(start: data, count: Int(len)))
                switch server.answer(bytes, source: source, limit: nil, rng: &rng) {
                case .reply(let r):
                    r.withUnsafeBufferPointer { cshim_udp_batch_reply(batch, i, $0.baseAddress, UInt32($0.count)) }
                case .forward(let q, let raw, let ups):
                    let fd = self.fd, peer = addr, family = fam
                    server.forwarder.forward(raw, q, ups, overTCP: false) { resp in
                        resp.withUnsafeBufferPointer { r in
                            peer.withUnsafeBufferPointer { _ = cshim_udp_sendto(fd, r.baseAddress, UInt32(r.count), family, $0.baseAddress, port) }
                        }
                    }
                case .none:
                    break
                }
            }
            _ = cshim_udp_batch_send(fd, batch)
        }
    }
}

extension IPAddress {
    /// The IPv4 address of an IPv4-mapped IPv6 address (::ffff:a.b.c.d).
    var isV4Mapped: IPAddress? {
        guard isV6, value >> 32 == 0xFFFF else { return nil }
        return IPAddress(v4: UInt32(truncatingIfNeeded: value))
    }
}
