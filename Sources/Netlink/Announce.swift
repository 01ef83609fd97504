// Announcing that an address is at a MAC on a link: a gratuitous ARP (IPv4) or an unsolicited
// neighbour advertisement (IPv6), sent as a raw Ethernet frame on a packet socket.
//
// Why the overlay needs it: a container that asks (ARP/ND) for a remote address before this
// host's agent has programmed the VXLAN device's proxy entry gets no answer, and its kernel
// asks again only after retrans_time (1 s by default). Announcing each newly programmed entry
// on the network's bridge updates such waiting (INCOMPLETE) or FAILED entries at once: Linux
// applies an unsolicited ARP/NA to a neighbour entry that exists, and creates none (arp_accept
// and accept_untracked_na are off by default), so containers that never asked are untouched.

#if canImport(Glibc)
import Glibc
#endif
import Base
import CMnl

public enum Announcement {
    static let broadcast: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]

    /// The Ethernet frame announcing `ip` at `mac`.
    /// IPv4: an ARP reply broadcast, sender = target = `ip`, target hardware address broadcast
    /// (what `arping -A` sends; a proxying VXLAN device answers requests only, so it ignores it).
    /// IPv6: a neighbour advertisement from `ip` to all nodes (ff02::1), Override set,
    /// Solicited clear, with the target link-layer address option; hop limit 255 (RFC 4861).
    public static func frame(ip: IPAddress, mac: MACAddress) -> [UInt8] {
        ip.isV4 ? arpFrame(ip: ip, mac: mac) : naFrame(ip: ip, mac: mac)
    }

    static func arpFrame(ip: IPAddress, mac: MACAddress) -> [UInt8] {
        var f = broadcast + mac.bytes + [0x08, 0x06]  // Ethernet: dst, src, ETH_P_ARP
        f += [0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02]  // Ethernet/IPv4, 6/4 bytes, reply
        f += mac.bytes + ip.bytes + broadcast + ip.bytes
        return f
    }

    static func naFrame(ip: IPAddress, mac: MACAddress) -> [UInt8] {
        let allNodes: [UInt8] = [0xFF, 0x02] + [UInt8](repeating: 0, count: 13) + [0x01]
        // ICMPv6: type 136, code 0, checksum, flags (Override), reserved; target; option 2 (8 bytes).
        var icmp: [UInt8] = [136, 0, 0, 0, 0x20, 0, 0, 0] + ip.bytes + [2, 1] + mac.bytes
        let sum = checksum(pseudoHeader(src: ip.bytes, dst: allNodes, length: icmp.count) + icmp)
        icmp[2] = UInt8(sum >> 8)
        icmp[3] = UInt8(sum & 0xFF)
        var f = [0x33, 0x33, 0x00, 0x00, 0x00, 0x01] + mac.bytes + [0x86, 0xDD]  // to 33:33:00:00:00:01
        f += [0x60, 0, 0, 0, UInt8(icmp.count >> 8), UInt8(icmp.count & 0xFF), 58, 255]  // IPv6, next ICMPv6, hop limit 255
        f += ip.bytes + allNodes + icmp
        return f
    }

    static func pseudoHeader(src: [UInt8], dst: [UInt8], length: Int) -> [UInt8] {
        src + dst + [UInt8(length >> 24 & 0xFF), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF),
                     0, 0, 0, 58]
    }

    /// The Internet checksum (RFC 1071).
    static func checksum(_ b: [UInt8]) -> UInt16 {
        var s: UInt32 = 0
        var i = 0
        while i + 1 < b.count { s += UInt32(b[i]) << 8 | UInt32(b[i + 1]); i += 2 }
        if i < b.count { s += UInt32(b[i]) << 8 }
        while s >> 16 != 0 { s = (s & 0xFFFF) + (s >> 16) }
        return ~UInt16(s)
    }

    /// Sends each announcement out of link `index` (in the calling thread's namespace).
    public static func send(index: Int32, _ entries: [(ip: IPAddress, mac: MACAddress)]) throws(NetlinkError) {
        guard !entries.isEmpty else { return }
        let fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw NetlinkError("socket(AF_PACKET)", errno: errno) }
        defer { close(fd) }
        for e in entries {
            let f = frame(ip: e.ip, mac: e.mac)
            var addr = sockaddr_ll()
            addr.sll_family = UInt16(AF_PACKET)
            addr.sll_protocol = UInt16(e.ip.isV4 ? 0x0806 : 0x86DD).bigEndian
            addr.sll_ifindex = index
            addr.sll_halen = 6
            withUnsafeMutableBytes(of: &addr.sll_addr) { p in for k in 0..<6 { p[k] = f[k] } }
            let n = f.withUnsafeBytes { b in
                withUnsafePointer(to: &addr) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_ll>.size))
                    }
                }
            }
            guard n == f.count else { throw NetlinkError("announce \(e.ip) on link \(index)", errno: n < 0 ? errno : EMSGSIZE) }
        }
    }
}
