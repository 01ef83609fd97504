// Conntrack (ctnetlink): removing stale UDP flows when a UDP port is published. A datagram
// sent to the host port before it was published created a conntrack entry without DNAT;
// later datagrams of that "flow" match it and bypass the new mapping until it expires.
#if canImport(Glibc)
import Glibc
#endif
import CMnl
import Base
import Netlink

public enum Conntrack {
    struct Tuple {
        var family: IPFamily
        var proto: UInt8
        var src: IPAddress
        var dst: IPAddress
        var sport: UInt16
        var dport: UInt16
    }

    static let subsys = UInt16(NFNL_SUBSYS_CTNETLINK) << 8

    /// Deletes the flows of `proto` whose original destination port is `port` (and address is
    /// `address`, when given). Returns how many were deleted.
    @discardableResult
    public static func flush(proto: PortProtocol, port: UInt16, address: IPAddress?, family: IPFamily) throws -> Int {
        let sock = try NetlinkSocket(protocol: NETLINK_NETFILTER)
        let req = NetlinkRequest(type: Int(subsys | UInt16(IPCTNL_MSG_CT_GET.rawValue)), flags: Int32(NLM_F_DUMP),
                                 operation: "conntrack: list flows")
        var g = nfgenmsg()
        g.nfgen_family = UInt8(family == .v4 ? AF_INET : AF_INET6)
        req.header(g)
        let msgs: [NetlinkMessage]
        do { msgs = try sock.query(req) } catch {
            // No conntrack in this namespace yet: nothing to flush.
            if error.errno == ENOENT { return 0 }
            throw error
        }
        var deleted = 0
        for m in msgs {
            guard let t = parse(m, family: family), t.proto == proto.number, t.dport == port,
                  address == nil || t.dst == address else { continue }
            let del = NetlinkRequest(type: Int(subsys | UInt16(IPCTNL_MSG_CT_DELETE.rawValue)), flags: 0,
                                     operation: "conntrack: delete flow to port \(port)")
            del.header(g)
            let orig = del.nest(Int(CTA_TUPLE_ORIG.rawValue) | Int(NLA_F_NESTED))
            let ip = del.nest(Int(CTA_TUPLE_IP.rawValue) | Int(NLA_F_NESTED))
            del.putBytes(Int(family == .v4 ? CTA_IP_V4_SRC.rawValue : CTA_IP_V6_SRC.rawValue), t.src.bytes)
            del.putBytes(Int(family == .v4 ? CTA_IP_V4_DST.rawValue : CTA_IP_V6_DST.rawValue), t.dst.bytes)
            del.end(ip)
            let pr = del.nest(Int(CTA_TUPLE_PROTO.rawValue) | Int(NLA_F_NESTED))
            del.putU8(Int(CTA_PROTO_NUM.rawValue), t.proto)
            del.putBytes(Int(CTA_PROTO_SRC_PORT.rawValue), [UInt8(t.sport >> 8), UInt8(t.sport & 0xFF)])
            del.putBytes(Int(CTA_PROTO_DST_PORT.rawValue), [UInt8(t.dport >> 8), UInt8(t.dport & 0xFF)])
            del.end(pr)
            del.end(orig)
            do {
                try sock.execute(del)
                deleted += 1
            } catch {
                // Gone meanwhile: fine.
                if error.errno != ENOENT { throw error }
            }
        }
        return deleted
    }

    static func parse(_ m: NetlinkMessage, family: IPFamily) -> Tuple? {
        let a = m.attributes(after: nfgenmsg.self)
        guard let orig = a.nested(Int(CTA_TUPLE_ORIG.rawValue)), let ip = orig.nested(Int(CTA_TUPLE_IP.rawValue)),
              let proto = orig.nested(Int(CTA_TUPLE_PROTO.rawValue)) else { return nil }
        let srcKey = Int(family == .v4 ? CTA_IP_V4_SRC.rawValue : CTA_IP_V6_SRC.rawValue)
        let dstKey = Int(family == .v4 ? CTA_IP_V4_DST.rawValue : CTA_IP_V6_DST.rawValue)
        guard let s = ip.data(srcKey).flatMap({ IPAddress(bytes: $0) }), let d = ip.data(dstKey).flatMap({ IPAddress(bytes: $0) }),
              let num = proto.u8(Int(CTA_PROTO_NUM.rawValue)) else { return nil }
        func port(_ k: Int) -> UInt16 {
            guard let b = proto.data(k), b.count >= 2 else { return 0 }
            return UInt16(b[0]) << 8 | UInt16(b[1])
        }
        return Tuple(family: family, proto: num, src: s, dst: d, sport: port(Int(CTA_PROTO_SRC_PORT.rawValue)),
                     dport: port(Int(CTA_PROTO_DST_PORT.rawValue)))
    }
}
