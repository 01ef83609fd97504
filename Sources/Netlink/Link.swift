#if canImport(Glibc)
import Glibc
#endif
import CMnl
import Base

/// What the kernel reports about one link.
public struct LinkInfo: Sendable, Equatable {
    public var index: Int32
    public var name: String
    /// IFLA_INFO_KIND ("bridge", "veth", "vxlan", ...), nil for plain devices.
    public var kind: String?
    public var mtu: Int
    public var mac: MACAddress?
    public var flags: UInt32
    /// Index of the bridge this link is a port of.
    public var master: Int32?
    /// IFLA_LINK: for a veth, the peer's index (in the peer's namespace).
    public var peerIndex: Int32?
    /// IFLA_LINK_NETNSID: set when the peer lives in another namespace.
    public var linkNetnsID: Int32?
    /// IFLA_IFALIAS (the suite marks the devices it creates with it).
    public var alias: String?

    public var isUp: Bool { flags & UInt32(IFF_UP) != 0 }
    public var isPromiscuous: Bool { flags & UInt32(IFF_PROMISC) != 0 }
}

/// Link settings applied with RTM_NEWLINK / RTM_SETLINK.
public struct LinkSettings: Sendable {
    public var up: Bool?
    public var mtu: Int?
    public var mac: MACAddress?
    public var master: Int32?
    public var promiscuous: Bool?
    public var alias: String?
    /// No IPv6 link-local address (IN6_ADDR_GEN_MODE_NONE): for bridge ports, which need no
    /// addresses and would otherwise run DAD, router solicitation and MLD for nothing.
    public var noIPv6LinkLocal: Bool = false
    public init(up: Bool? = nil, mtu: Int? = nil, mac: MACAddress? = nil, master: Int32? = nil, promiscuous: Bool? = nil,
                alias: String? = nil, noIPv6LinkLocal: Bool = false) {
        self.up = up; self.mtu = mtu; self.mac = mac; self.master = master; self.promiscuous = promiscuous
        self.alias = alias; self.noIPv6LinkLocal = noIPv6LinkLocal
    }
}

extension NetlinkSocket {
    static func ifinfo(index: Int32 = 0, family: Int32 = AF_UNSPEC, settings: LinkSettings? = nil) -> ifinfomsg {
        var m = ifinfomsg()
        m.ifi_family = UInt8(family)
        m.ifi_index = index
        if let s = settings {
            if let up = s.up {
                m.ifi_change |= UInt32(IFF_UP)
                if up { m.ifi_flags |= UInt32(IFF_UP) }
            }
            if let p = s.promiscuous {
                m.ifi_change |= UInt32(IFF_PROMISC)
                if p { m.ifi_flags |= UInt32(IFF_PROMISC) }
            }
        }
        return m
    }

    static func put(_ s: LinkSettings, into r: NetlinkRequest) {
        if let mtu = s.mtu { r.putU32(IFLA_MTU, u32(mtu)) }
        if let mac = s.mac { r.putBytes(IFLA_ADDRESS, mac.bytes) }
        if let m = s.master { r.putU32(IFLA_MASTER, u32(m)) }
        if let a = s.alias { r.putString(IFLA_IFALIAS, a) }
        if s.noIPv6LinkLocal {
            let spec = r.nest(IFLA_AF_SPEC)
            let inet6 = r.nest(Int(AF_INET6))
            r.putU8(Int(IFLA_INET6_ADDR_GEN_MODE), UInt8(IN6_ADDR_GEN_MODE_NONE.rawValue))
            r.end(inet6)
            r.end(spec)
        }
    }

    static func parseLink(_ m: NetlinkMessage) -> LinkInfo? {
        guard m.type == RTM_NEWLINK, let h = m.header(ifinfomsg.self) else { return nil }
        let a = m.attributes(after: ifinfomsg.self)
        let info = a.nested(IFLA_LINKINFO)
        return LinkInfo(
            index: h.ifi_index,
            name: a.string(IFLA_IFNAME) ?? "",
            kind: info?.string(IFLA_INFO_KIND),
            mtu: Int(a.u32(IFLA_MTU) ?? 0),
            mac: a.data(IFLA_ADDRESS).flatMap { MACAddress(bytes: $0) },
            flags: h.ifi_flags,
            master: a.i32(IFLA_MASTER).flatMap { $0 == 0 ? nil : $0 },
            peerIndex: a.i32(IFLA_LINK),
            linkNetnsID: a.i32(IFLA_LINK_NETNSID),
            alias: a.string(IFLA_IFALIAS))
    }

    /// The link named `name`, or nil if there is none.
    public func link(named name: String) throws(NetlinkError) -> LinkInfo? {
        let r = NetlinkRequest(type: RTM_GETLINK, flags: 0, operation: "get link \(name)")
        r.header(NetlinkSocket.ifinfo())
        r.putU32(IFLA_EXT_MASK, u32(RTEXT_FILTER_SKIP_STATS))
        r.putString(IFLA_IFNAME, name)
        do {
            return try query(r).compactMap(NetlinkSocket.parseLink).first
        } catch {
            if error.errno == ENODEV { return nil }
            throw error
        }
    }

    public func link(index: Int32) throws(NetlinkError) -> LinkInfo? {
        let r = NetlinkRequest(type: RTM_GETLINK, flags: 0, operation: "get link #\(index)")
        r.header(NetlinkSocket.ifinfo(index: index))
        r.putU32(IFLA_EXT_MASK, u32(RTEXT_FILTER_SKIP_STATS))
        do {
            return try query(r).compactMap(NetlinkSocket.parseLink).first
        } catch {
            if error.errno == ENODEV { return nil }
            throw error
        }
    }

    public func links() throws(NetlinkError) -> [LinkInfo] {
        let r = NetlinkRequest(type: RTM_GETLINK, flags: Int32(NLM_F_DUMP), operation: "list links")
        r.header(NetlinkSocket.ifinfo())
        r.putU32(IFLA_EXT_MASK, u32(RTEXT_FILTER_SKIP_STATS))
        return try query(r).compactMap(NetlinkSocket.parseLink)
    }

    /// Creates a Linux bridge.
    public func addBridge(name: String, settings: LinkSettings = LinkSettings(), vlanFiltering: Bool? = nil) throws(NetlinkError) {
        try createLink(name: name, kind: "bridge", settings: settings, operation: "create bridge \(name)",
                       data: vlanFiltering.map { vf in { r in r.putU8(IFLA_BR_VLAN_FILTERING, vf ? 1 : 0) } })
    }

    /// RTM_NEWLINK creating `name` of `kind` with `settings`; `attributes` adds link-level
    /// attributes, `data` the kind's IFLA_INFO_DATA (none when nil).
    package func createLink(name: String, kind: String, settings: LinkSettings, operation: String,
                            attributes: (NetlinkRequest) -> Void = { _ in },
                            data: ((NetlinkRequest) -> Void)?) throws(NetlinkError) {
        let r = NetlinkRequest(type: RTM_NEWLINK, flags: Int32(NLM_F_CREATE | NLM_F_EXCL), operation: operation)
        r.header(NetlinkSocket.ifinfo(settings: settings))
        r.putString(IFLA_IFNAME, name)
        attributes(r)
        NetlinkSocket.put(settings, into: r)
        let li = r.nest(IFLA_LINKINFO)
        r.putString(IFLA_INFO_KIND, kind)
        if let data {
            let d = r.nest(IFLA_INFO_DATA)
            data(r)
            r.end(d)
        }
        r.end(li)
        try execute(r)
    }

    /// Turns VLAN filtering on or off on an existing bridge.
    public func setBridgeVlanFiltering(index: Int32, _ on: Bool) throws(NetlinkError) {
        let r = NetlinkRequest(type: RTM_NEWLINK, flags: 0, operation: "set vlan_filtering on link #\(index)")
        r.header(NetlinkSocket.ifinfo(index: index))
        let li = r.nest(IFLA_LINKINFO)
        r.putString(IFLA_INFO_KIND, "bridge")
        let d = r.nest(IFLA_INFO_DATA)
        r.putU8(IFLA_BR_VLAN_FILTERING, on ? 1 : 0)
        r.end(d)
        r.end(li)
        try execute(r)
    }

    /// Creates a veth pair: `name` here (with `settings`), `peerName` inside the namespace
    /// `peerNamespace` (with `peerSettings`; its `master` is ignored).
    public func addVeth(name: String, settings: LinkSettings, peerName: String, peerNamespace: NetworkNamespace?,
                        peerSettings: LinkSettings) throws(NetlinkError) {
        let r = NetlinkRequest(type: RTM_NEWLINK, flags: Int32(NLM_F_CREATE | NLM_F_EXCL),
                               operation: "create veth \(name) with peer \(peerName)")
        r.header(NetlinkSocket.ifinfo(settings: settings))
        r.putString(IFLA_IFNAME, name)
        NetlinkSocket.put(settings, into: r)
        let li = r.nest(IFLA_LINKINFO)
        r.putString(IFLA_INFO_KIND, "veth")
        let d = r.nest(IFLA_INFO_DATA)
        let peer = r.nest(Int(VETH_INFO_PEER))
        r.rawHeader(NetlinkSocket.ifinfo(settings: peerSettings))
        r.putString(IFLA_IFNAME, peerName)
        if let mtu = peerSettings.mtu { r.putU32(IFLA_MTU, u32(mtu)) }
        if let mac = peerSettings.mac { r.putBytes(IFLA_ADDRESS, mac.bytes) }
        if let ns = peerNamespace { r.putU32(IFLA_NET_NS_FD, u32(ns.fd)) }
        r.end(peer)
        r.end(d)
        r.end(li)
        try execute(r)
    }

    /// Creates a VLAN sub-interface `name` on link `parent` with `vid`.
    public func addVlan(name: String, parent: Int32, vid: Int, settings: LinkSettings = LinkSettings()) throws(NetlinkError) {
        try createLink(name: name, kind: "vlan", settings: settings, operation: "create vlan \(name)",
                       attributes: { r in r.putU32(IFLA_LINK, u32(parent)) },
                       data: { r in r.putU16(IFLA_VLAN_ID, u16(vid)) })
    }

    /// Applies settings to an existing link.
    public func setLink(index: Int32, _ s: LinkSettings) throws(NetlinkError) {
        let r = NetlinkRequest(type: RTM_NEWLINK, flags: 0, operation: "configure link #\(index)")
        r.header(NetlinkSocket.ifinfo(index: index, settings: s))
        NetlinkSocket.put(s, into: r)
        try execute(r)
    }

    /// Renames a link (it must be down).
    public func renameLink(index: Int32, to name: String) throws(NetlinkError) {
        let r = NetlinkRequest(type: RTM_NEWLINK, flags: 0, operation: "rename link #\(index) to \(name)")
        r.header(NetlinkSocket.ifinfo(index: index))
        r.putString(IFLA_IFNAME, name)
        try execute(r)
    }

    /// Deletes a link; a link that is already gone is not an error. Returns whether it existed.
    @discardableResult
    public func deleteLink(index: Int32) throws(NetlinkError) -> Bool {
        let r = NetlinkRequest(type: RTM_DELLINK, flags: 0, operation: "delete link #\(index)")
        r.header(NetlinkSocket.ifinfo(index: index))
        return try executeDelete(r)
    }

    @discardableResult
    public func deleteLink(named name: String) throws(NetlinkError) -> Bool {
        let r = NetlinkRequest(type: RTM_DELLINK, flags: 0, operation: "delete link \(name)")
        r.header(NetlinkSocket.ifinfo())
        r.putString(IFLA_IFNAME, name)
        return try executeDelete(r)
    }

    func executeDelete(_ r: NetlinkRequest) throws(NetlinkError) -> Bool {
        do {
            try execute(r)
            return true
        } catch {
            if error.errno == ENODEV { return false }
            throw error
        }
    }

    /// Bridge-port options (IFLA_PROTINFO of family AF_BRIDGE) on a port of a bridge.
    public func setBridgePort(index: Int32, hairpin: Bool? = nil, isolated: Bool? = nil, learning: Bool? = nil) throws(NetlinkError) {
        let r = NetlinkRequest(type: RTM_SETLINK, flags: 0, operation: "set bridge port options on link #\(index)")
        r.header(NetlinkSocket.ifinfo(index: index, family: Int32(AF_BRIDGE)))
        let p = r.nest(Int(IFLA_PROTINFO) | Int(NLA_F_NESTED))
        if let h = hairpin { r.putU8(Int(IFLA_BRPORT_MODE), h ? 1 : 0) }
        if let i = isolated { r.putU8(Int(IFLA_BRPORT_ISOLATED), i ? 1 : 0) }
        if let l = learning { r.putU8(Int(IFLA_BRPORT_LEARNING), l ? 1 : 0) }
        r.end(p)
        try execute(r)
    }

    /// Reads a bridge port's hairpin setting.
    public func bridgePortHairpin(index: Int32) throws(NetlinkError) -> Bool? {
        let r = NetlinkRequest(type: RTM_GETLINK, flags: 0, operation: "get bridge port #\(index)")
        r.header(NetlinkSocket.ifinfo(index: index, family: Int32(AF_BRIDGE)))
        guard let m = try query(r).first else { return nil }
        let a = m.attributes(after: ifinfomsg.self)
        return a.nested(Int(IFLA_PROTINFO))?.u8(Int(IFLA_BRPORT_MODE)).map { $0 != 0 }
    }

    /// Adds (or with `delete`, removes) a VLAN on a bridge port, or on the bridge itself
    /// when `onBridgeItself` (BRIDGE_FLAGS_SELF).
    public func bridgeVlan(index: Int32, vid: Int, pvid: Bool = false, untagged: Bool = false,
                           onBridgeItself: Bool = false, delete: Bool = false) throws(NetlinkError) {
        let r = NetlinkRequest(type: delete ? RTM_DELLINK : RTM_SETLINK, flags: 0,
                               operation: "\(delete ? "remove" : "add") vlan \(vid) on link #\(index)")
        r.header(NetlinkSocket.ifinfo(index: index, family: Int32(AF_BRIDGE)))
        let spec = r.nest(IFLA_AF_SPEC)
        if onBridgeItself { r.putU16(Int(IFLA_BRIDGE_FLAGS), u16(BRIDGE_FLAGS_SELF)) }
        var info = bridge_vlan_info()
        info.vid = u16(vid)
        if pvid { info.flags |= u16(BRIDGE_VLAN_INFO_PVID) }
        if untagged { info.flags |= u16(BRIDGE_VLAN_INFO_UNTAGGED) }
        withUnsafeBytes(of: info) { r.putBytes(Int(IFLA_BRIDGE_VLAN_INFO), Array($0)) }
        r.end(spec)
        try execute(r)
    }

    /// VLANs configured on a bridge port: (vid, pvid, untagged).
    public func bridgeVlans(index: Int32) throws(NetlinkError) -> [(vid: Int, pvid: Bool, untagged: Bool)] {
        let r = NetlinkRequest(type: RTM_GETLINK, flags: 0, operation: "get vlans of link #\(index)")
        r.header(NetlinkSocket.ifinfo(index: index, family: Int32(AF_BRIDGE)))
        r.putU32(IFLA_EXT_MASK, u32(RTEXT_FILTER_BRVLAN))
        var out: [(Int, Bool, Bool)] = []
        for m in try query(r) {
            guard let spec = m.attributes(after: ifinfomsg.self).nested(IFLA_AF_SPEC) else { continue }
            for e in spec.entries where e.0 == UInt16(IFLA_BRIDGE_VLAN_INFO) && e.2 >= 4 {
                let flags = UInt16(spec.bytes[e.1]) | UInt16(spec.bytes[e.1 + 1]) << 8
                let vid = UInt16(spec.bytes[e.1 + 2]) | UInt16(spec.bytes[e.1 + 3]) << 8
                out.append((Int(vid), flags & u16(BRIDGE_VLAN_INFO_PVID) != 0, flags & u16(BRIDGE_VLAN_INFO_UNTAGGED) != 0))
            }
        }
        return out
    }

    /// Sets an IPv4 per-device configuration value (IFLA_INET_CONF, e.g. arp_notify) by
    /// netlink, without going through /proc/sys in the link's namespace.
    public func setIPv4DeviceConf(index: Int32, _ conf: Int32, _ value: UInt32) throws(NetlinkError) {
        let r = NetlinkRequest(type: RTM_NEWLINK, flags: 0, operation: "set ipv4 devconf \(conf) on link #\(index)")
        r.header(NetlinkSocket.ifinfo(index: index))
        let spec = r.nest(IFLA_AF_SPEC)
        let inet = r.nest(Int(AF_INET))
        let conf4 = r.nest(Int(IFLA_INET_CONF))
        r.putU32(Int(conf), value)
        r.end(conf4)
        r.end(inet)
        r.end(spec)
        try execute(r)
    }
}

/// IPv4 per-device configuration keys (IFLA_INET_CONF indexes).
public enum IPv4DeviceConf {
    public static let arpNotify = Int32(IPV4_DEVCONF_ARP_NOTIFY)
    public static let forwarding = Int32(IPV4_DEVCONF_FORWARDING)
}

extension NetlinkSocket {
    /// Links enslaved to `master`.
    public func ports(of master: Int32) throws(NetlinkError) -> [LinkInfo] {
        try links().filter { $0.master == master }
    }
}
