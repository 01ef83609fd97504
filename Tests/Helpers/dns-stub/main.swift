// test-dns-stub: the upstream DNS server the DNS tests run themselves (never the machine's
// resolver), built on the suite's own DNS codec. It answers on ADDRESS:53, UDP and TCP:
//   example.test      A 198.51.100.7
//   big.example.test  truncated over UDP (TC, no answer), A 198.51.100.8 over TCP
//   anything else     NXDOMAIN
// and creates READY_FILE once both sockets listen.
//
//   test-dns-stub ADDRESS READY_FILE
#if canImport(Glibc)
import Glibc
#endif
import Base
import DNS

enum Stub {
    static func answer(_ bytes: [UInt8], tcp: Bool) -> [UInt8]? {
        guard case .query(let q) = DNSQuery.parse(bytes) else { return nil }
        switch q.question.name.key {
        case "example.test":
            return DNSResponse.answer(q, rcode: .noError, records: [.address(IPAddress("198.51.100.7")!)], ttl: 60, authoritative: false)
        case "big.example.test":
            // Over UDP the answer does not fit (a limit below its size): TC, then TCP gets it.
            return DNSResponse.answer(q, rcode: .noError, records: [.address(IPAddress("198.51.100.8")!)], ttl: 60, authoritative: false,
                                      limit: tcp ? 65535 : 12)
        default:
            return DNSResponse.answer(q, rcode: .nxDomain, authoritative: false)
        }
    }

    static func bound(_ type: Int32, _ address: IPAddress) -> Int32 {
        let fd = socket(AF_INET, type, 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = UInt16(53).bigEndian
        let b = address.bytes
        sa.sin_addr.s_addr = UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24  // network order in memory
        let rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if rc != 0 { Posix.writeStderr("test-dns-stub: bind \(address):53: \(String(cString: strerror(errno)))\n"); exit(1) }
        return fd
    }

    /// TCP: a 2-byte length, the query; the answer with its length.
    static func serveTCP(_ tcp: Int32) {
        while true {
            let c = accept(tcp, nil, nil)
            if c < 0 { continue }
            var tv = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var buf = [UInt8](repeating: 0, count: 65537)
            var got = 0
            while got < 2 || got < 2 + (Int(buf[0]) << 8 | Int(buf[1])) {
                let n = buf.withUnsafeMutableBytes { read(c, $0.baseAddress! + got, $0.count - got) }
                if n <= 0 { break }
                got += n
            }
            if got >= 2, let a = answer(Array(buf[2..<got]), tcp: true) {
                try? Posix.writeAll(fd: c, [UInt8(a.count >> 8), UInt8(a.count & 0xFF)] + a)
            }
            close(c)
        }
    }

    static func serveUDP(_ udp: Int32) -> Never {
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            var from = sockaddr_storage()
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = buf.withUnsafeMutableBytes { b in
                withUnsafeMutablePointer(to: &from) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(udp, b.baseAddress, b.count, 0, $0, &len) } }
            }
            if n <= 0 { continue }
            if let a = answer(Array(buf[0..<n]), tcp: false) {
                _ = a.withUnsafeBytes { p in
                    withUnsafePointer(to: &from) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(udp, p.baseAddress, p.count, 0, $0, len) } }
                }
            }
        }
    }

    static func main(_ args: [String]) -> Never {
        guard args.count == 3, let address = IPAddress(args[1]), address.isV4 else {
            Posix.writeStderr("usage: test-dns-stub IPV4-ADDRESS READY_FILE\n")
            exit(2)
        }
        let udp = bound(Int32(SOCK_DGRAM.rawValue), address)
        let tcp = bound(Int32(SOCK_STREAM.rawValue), address)
        listen(tcp, 16)
        try? Posix.writeFile(args[2], [])
        Threads.detach { serveTCP(tcp) }
        serveUDP(udp)
    }
}

Stub.main(CommandLine.arguments)
