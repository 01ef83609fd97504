// The netlink messages we build, byte for byte, without root: a recording transport stands
// in for the kernel (it keeps what is sent and answers as the kernel does), and the expected
// bytes come from an encoder written here from the kernel's uapi (constants as numbers, so
// a wrong constant in the code under test shows too).
import Glibc
import Testing
@testable import Base
@testable import Netlink

/// A transport that records each datagram sent and answers each message that asks for an
/// acknowledgement with one (or with `failWith`'s errno); `replies` are queued answers to
/// queries.
final class Recorder: NetlinkTransport {
    let portID: UInt32 = 4242
    var sent: [[UInt8]] = []
    var queued: [[UInt8]] = []
    var failWith: Int32 = 0
    /// Answers for a query with this message type: the messages to send back (flag NLM_F_MULTI
    /// is set by the recorder, followed by NLMSG_DONE).
    var dump: [UInt16: [[UInt8]]] = [:]

    func send(_ bytes: UnsafeRawBufferPointer) throws(NetlinkError) {
        let b = Array(bytes)
        sent.append(b)
        var off = 0
        while off + 16 <= b.count {
            let len = Int(W.u32(b, off)), type = W.u16(b, off + 4), flags = W.u16(b, off + 6), seq = W.u32(b, off + 8)
            if let answers = dump[type] {
                for a in answers { queued.append(W.message(type: W.u16(a, 0), flags: 2 /* MULTI */, seq: seq, pid: portID, body: Array(a[2...]))) }
                queued.append(W.message(type: 3 /* DONE */, flags: 2, seq: seq, pid: portID, body: W.le32(0)))
            } else if flags & 4 != 0 {  // NLM_F_ACK
                queued.append(W.message(type: 2 /* NLMSG_ERROR */, flags: 0x100 /* CAPPED */, seq: seq, pid: portID,
                                        body: W.le32(UInt32(bitPattern: -failWith)) + Array(b[off..<off + 16])))
            }
            off += (len + 3) & ~3
        }
    }

    func receive(into buffer: UnsafeMutableRawBufferPointer, timeoutMs: Int32?) throws(NetlinkError) -> Int {
        guard !queued.isEmpty else {
            if timeoutMs != nil { return 0 }
            throw NetlinkError("no reply queued", errno: EAGAIN)
        }
        let d = queued.removeFirst()
        for (i, x) in d.enumerated() { buffer[i] = x }
        return d.count
    }
}

/// The netlink wire format, written from the uapi headers: little-endian integers,
/// attributes of (length, type, value) padded to 4 bytes, nests flagged NLA_F_NESTED.
enum W {
    static func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xFF) } }
    static func u16(_ b: [UInt8], _ o: Int) -> UInt16 { UInt16(b[o]) | UInt16(b[o + 1]) << 8 }
    static func u32(_ b: [UInt8], _ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[o + $1]) << (8 * $1) } }
    static func pad(_ b: [UInt8]) -> [UInt8] { b + [UInt8](repeating: 0, count: (4 - b.count % 4) % 4) }

    static func message(type: UInt16, flags: UInt16, seq: UInt32, pid: UInt32 = 0, body: [UInt8]) -> [UInt8] {
        le32(UInt32(16 + body.count)) + le16(type) + le16(flags) + le32(seq) + le32(pid) + body
    }
    static func attr(_ type: UInt16, _ value: [UInt8]) -> [UInt8] { pad(le16(UInt16(4 + value.count)) + le16(type) + value) }
    static func attr(_ type: UInt16, _ s: String) -> [UInt8] { attr(type, Array(s.utf8) + [0]) }
    static func attr(_ type: UInt16, u32 v: UInt32) -> [UInt8] { attr(type, le32(v)) }
    static func attr(_ type: UInt16, u16 v: UInt16) -> [UInt8] { attr(type, le16(v)) }
    static func attr(_ type: UInt16, u8 v: UInt8) -> [UInt8] { attr(type, [v]) }
    static func nest(_ type: UInt16, _ inner: [UInt8]) -> [UInt8] { le16(UInt16(4 + inner.count)) + le16(type | 0x8000) + inner }

    /// struct ifinfomsg: family, pad, type, index, flags, change.
    static func ifinfo(family: UInt8 = 0, index: Int32 = 0, flags: UInt32 = 0, change: UInt32 = 0) -> [UInt8] {
        [family, 0] + le16(0) + le32(UInt32(bitPattern: index)) + le32(flags) + le32(change)
    }
    /// struct ifaddrmsg: family, prefixlen, flags, scope, index.
    static func ifaddr(family: UInt8, prefix: UInt8, flags: UInt8 = 0, scope: UInt8 = 0, index: UInt32) -> [UInt8] {
        [family, prefix, flags, scope] + le32(index)
    }
    /// struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
    static func rtmsg(family: UInt8, dstLen: UInt8, table: UInt8, proto: UInt8, scope: UInt8, type: UInt8) -> [UInt8] {
        [family, dstLen, 0, 0, table, proto, scope, type] + le32(0)
    }
    /// struct ndmsg: family, pad, pad, ifindex, state, flags, type.
    static func ndmsg(family: UInt8, index: Int32, state: UInt16, flags: UInt8) -> [UInt8] {
        [family, 0] + le16(0) + le32(UInt32(bitPattern: index)) + le16(state) + [flags, 0]
    }
}

// Message types and flags (linux/rtnetlink.h, linux/netlink.h).
private let NEWLINK: UInt16 = 16, DELLINK: UInt16 = 17, GETLINK: UInt16 = 18, NEWADDR: UInt16 = 20, NEWROUTE: UInt16 = 24,
            NEWNEIGH: UInt16 = 28
private let REQUEST: UInt16 = 1, ACK: UInt16 = 4, REPLACE: UInt16 = 0x100, EXCL: UInt16 = 0x200, CREATE: UInt16 = 0x400

func socket(_ r: Recorder) -> NetlinkSocket { NetlinkSocket(transport: r, firstSequence: 0) }

@Suite struct NetlinkMessages {
    let mac = MACAddress("02:73:63:00:00:01")!

    @Test func createBridge() throws {
        let r = Recorder()
        try socket(r).addBridge(name: "br0", settings: LinkSettings(up: true, mtu: 1400, mac: mac, alias: "swiftcni"))
        let body = W.ifinfo(flags: 1, change: 1) + W.attr(3, "br0") + W.attr(4, u32: 1400) + W.attr(1, mac.bytes)
            + W.attr(20, "swiftcni") + W.nest(18, W.attr(1, "bridge"))
        #expect(r.sent == [W.message(type: NEWLINK, flags: REQUEST | ACK | CREATE | EXCL, seq: 1, body: body)])
    }

    @Test func createBridgeWithVlanFiltering() throws {
        let r = Recorder()
        try socket(r).addBridge(name: "br1", vlanFiltering: true)
        // IFLA_INFO_DATA { IFLA_BR_VLAN_FILTERING (7) = 1 }
        let body = W.ifinfo() + W.attr(3, "br1") + W.nest(18, W.attr(1, "bridge") + W.nest(2, W.attr(7, u8: 1)))
        #expect(r.sent == [W.message(type: NEWLINK, flags: REQUEST | ACK | CREATE | EXCL, seq: 1, body: body)])
    }

    @Test func vethWithItsPeerInAnotherNamespace() throws {
        let r = Recorder()
        // Any open descriptor stands for the namespace file (the message carries its number).
        let fd = open("/dev/null", O_RDONLY | O_CLOEXEC)
        let ns = NetworkNamespace(fd: fd, path: "/run/netns/x")
        defer { _ = ns }
        try socket(r).addVeth(name: "veth0abc", settings: LinkSettings(up: true, mtu: 1500, master: 7), peerName: "eth0",
                              peerNamespace: ns, peerSettings: LinkSettings(mtu: 1500, mac: mac))
        // VETH_INFO_PEER holds a raw ifinfomsg, then the peer's attributes.
        let peer = W.ifinfo() + W.attr(3, "eth0") + W.attr(4, u32: 1500) + W.attr(1, mac.bytes) + W.attr(28, u32: UInt32(fd))
        let body = W.ifinfo(flags: 1, change: 1) + W.attr(3, "veth0abc") + W.attr(4, u32: 1500) + W.attr(10, u32: 7)
            + W.nest(18, W.attr(1, "veth") + W.nest(2, W.nest(1, peer)))
        #expect(r.sent == [W.message(type: NEWLINK, flags: REQUEST | ACK | CREATE | EXCL, seq: 1, body: body)])
    }

    @Test func linkSettingsAndDelete() throws {
        let r = Recorder()
        let s = socket(r)
        try s.setLink(index: 5, LinkSettings(up: false, master: 3))
        try s.deleteLink(index: 5)
        #expect(r.sent == [
            W.message(type: NEWLINK, flags: REQUEST | ACK, seq: 1, body: W.ifinfo(index: 5, change: 1) + W.attr(10, u32: 3)),
            W.message(type: DELLINK, flags: REQUEST | ACK, seq: 2, body: W.ifinfo(index: 5)),
        ])
    }

    @Test func addresses() throws {
        let r = Recorder()
        let s = socket(r)
        try s.addAddress(index: 7, IPNetwork("10.1.0.2/24")!)
        try s.addAddress(index: 7, IPNetwork("fd00::2/64")!, noDAD: true, replace: true)
        let v6 = IPAddress("fd00::2")!.bytes
        #expect(r.sent == [
            W.message(type: NEWADDR, flags: REQUEST | ACK | CREATE | EXCL, seq: 1,
                      body: W.ifaddr(family: 2, prefix: 24, index: 7) + W.attr(2, [10, 1, 0, 2]) + W.attr(1, [10, 1, 0, 2])
                        + W.attr(4, [10, 1, 0, 255])),
            W.message(type: NEWADDR, flags: REQUEST | ACK | CREATE | REPLACE, seq: 2,
                      body: W.ifaddr(family: 10, prefix: 64, flags: 2, index: 7) + W.attr(2, v6) + W.attr(1, v6) + W.attr(8, u32: 2)),
        ])
    }

    @Test func routes() throws {
        let r = Recorder()
        let s = socket(r)
        try s.addRoute(RouteInfo(dst: IPNetwork("0.0.0.0/0")!, gateway: IPAddress("10.1.0.1")!, priority: 100))
        try s.addRoute(RouteInfo(dst: IPNetwork("10.2.0.0/16")!, outputIndex: 7, table: 300))
        #expect(r.sent == [
            // main table (254), boot protocol, universe scope, unicast; RTA_GATEWAY, RTA_PRIORITY, RTA_TABLE.
            W.message(type: NEWROUTE, flags: REQUEST | ACK | CREATE | EXCL, seq: 1,
                      body: W.rtmsg(family: 2, dstLen: 0, table: 254, proto: 3, scope: 0, type: 1) + W.attr(5, [10, 1, 0, 1])
                        + W.attr(6, u32: 100) + W.attr(15, u32: 254)),
            // A table beyond 255 goes in RTA_TABLE only (rtm_table RT_TABLE_UNSPEC); link scope without a gateway.
            W.message(type: NEWROUTE, flags: REQUEST | ACK | CREATE | EXCL, seq: 2,
                      body: W.rtmsg(family: 2, dstLen: 16, table: 0, proto: 3, scope: 253, type: 1) + W.attr(1, [10, 2, 0, 0])
                        + W.attr(4, u32: 7) + W.attr(15, u32: 300)),
        ])
    }

    @Test func vxlanForwardingAndNeighbours() throws {
        let r = Recorder()
        let s = socket(r)
        try s.addVxlan(name: "ovvx42", vni: 42, local: IPAddress("10.99.0.1")!, underlay: 2, settings: LinkSettings(mtu: 1450))
        try s.setFDB(index: 9, mac: mac, dst: IPAddress("10.99.0.2")!)
        try s.setNeighbour(index: 9, address: IPAddress("10.40.0.7")!, mac: mac)
        try s.updateNeighbour(index: 8, address: IPAddress("10.41.0.7")!, mac: mac)
        let data = W.attr(1, u32: 42) + W.attr(4, [10, 99, 0, 1]) + W.attr(3, u32: 2) + W.attr(15, [0x12, 0xB5]) + W.attr(7, u8: 0)
            + W.attr(11, u8: 1) + W.attr(5, u8: 64)
        #expect(r.sent == [
            W.message(type: NEWLINK, flags: REQUEST | ACK | CREATE | EXCL, seq: 1,
                      body: W.ifinfo() + W.attr(3, "ovvx42") + W.attr(4, u32: 1450) + W.nest(18, W.attr(1, "vxlan") + W.nest(2, data))),
            // The VXLAN device's own entry (NTF_SELF, permanent|noarp, with the VTEP), then the bridge's (NTF_MASTER).
            W.message(type: NEWNEIGH, flags: REQUEST | ACK | CREATE | REPLACE, seq: 2,
                      body: W.ndmsg(family: 7, index: 9, state: 0xC0, flags: 2) + W.attr(2, mac.bytes) + W.attr(1, [10, 99, 0, 2])),
            W.message(type: NEWNEIGH, flags: REQUEST | ACK | CREATE | REPLACE, seq: 3,
                      body: W.ndmsg(family: 7, index: 9, state: 0x40, flags: 4) + W.attr(2, mac.bytes)),
            W.message(type: NEWNEIGH, flags: REQUEST | ACK | CREATE | REPLACE, seq: 4,
                      body: W.ndmsg(family: 2, index: 9, state: 0x80, flags: 0) + W.attr(1, [10, 40, 0, 7]) + W.attr(2, mac.bytes)),
            // An existing entry given its address: replace only (no create), NUD_STALE.
            W.message(type: NEWNEIGH, flags: REQUEST | ACK | REPLACE, seq: 5,
                      body: W.ndmsg(family: 2, index: 8, state: 0x04, flags: 0) + W.attr(1, [10, 41, 0, 7]) + W.attr(2, mac.bytes)),
        ])
    }

    /// The kernel's refusal comes back as the operation and its errno.
    @Test func kernelErrorsNameTheOperation() throws {
        let r = Recorder()
        r.failWith = EEXIST
        do {
            try socket(r).addBridge(name: "br0")
            Issue.record("no error")
        } catch {
            #expect(error.errno == EEXIST)
            #expect(error.description == "create bridge br0: File exists (errno 17)")
            #expect(CNIErrorCodeFree.kind(of: error) == .kernel)
        }
        // A delete of what is gone is no error.
        r.failWith = ENODEV
        #expect(try socket(r).deleteLink(index: 3) == false)
    }

    /// A query's answers are parsed back: a link dump.
    @Test func linkDumpIsParsed() throws {
        let r = Recorder()
        let link = W.le16(NEWLINK) + W.ifinfo(index: 7, flags: 1) + W.attr(3, "br0") + W.attr(4, u32: 1400) + W.attr(1, mac.bytes)
            + W.nest(18, W.attr(1, "bridge"))
        r.dump[GETLINK] = [link]
        let links = try socket(r).links()
        #expect(links.count == 1)
        #expect(links.first?.name == "br0" && links.first?.index == 7 && links.first?.mtu == 1400)
        #expect(links.first?.kind == "bridge" && links.first?.mac == mac && links.first?.isUp == true)
        // The dump request itself.
        #expect(r.sent.first.map { W.u16($0, 4) } == GETLINK)
        #expect(r.sent.first.map { W.u16($0, 6) } == REQUEST | 0x300)
    }
}

/// (Lower modules know no CNI code: only their failure kind.)
enum CNIErrorCodeFree {
    static func kind(of e: any ClassifiedError) -> FailureKind { e.kind }
}
