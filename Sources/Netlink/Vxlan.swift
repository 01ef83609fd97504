#if canImport(Glibc)
import Glibc
#endif
import CMnl
import Base

/// A VXLAN device's settings as the kernel reports them.
public struct VxlanInfo: Sendable, Equatable {
    public var vni: UInt32
    public var local: IPAddress?
    public var port: UInt16
    public var underlay: Int32?
    public var learning: Bool
    public var proxy: Bool
}

/// A forwarding entry of a VXLAN device: frames for `mac` go to the VTEP `dst`.
public struct FDBEntry: Sendable, Hashable {
    public var mac: MACAddress
    public var dst: IPAddress?
    public var permanent: Bool
}

/// A neighbour (ARP / NDP) entry.
public struct NeighbourEntry: Sendable, Hashable {
    public var address: IPAddress
    public var mac: MACAddress?
    public var permanent: Bool
}

extension NetlinkSocket {
    /// Creates VXLAN device `name` (VNI `vni`, UDP `port`, from `local` over link
    /// `underlay`), with learning off and ARP/ND proxy on: peers are programmed, not learned.
    public func addVxlan(name: String, vni: UInt32, local: IPAddress, underlay: Int32, port: UInt16 = 4789,
                         settings: LinkSettings = LinkSettings()) throws(NetlinkError) {
        try createLink(name: name, kind: "vxlan", settings: settings, operation: "create vxlan \(name) (vni \(vni))", data: { r in
            r.putU32(IFLA_VXLAN_ID, vni)
            if local.isV4 { r.putBytes(IFLA_VXLAN_LOCAL, local.bytes) } else { r.putBytes(IFLA_VXLAN_LOCAL6, local.bytes) }
            r.putU32(IFLA_VXLAN_LINK, u32(underlay))
            r.putU16(IFLA_VXLAN_PORT, port.bigEndian)
            r.putU8(IFLA_VXLAN_LEARNING, 0)
            r.putU8(IFLA_VXLAN_PROXY, 1)
            r.putU8(IFLA_VXLAN_TTL, 64)
        })
    }

    /// The VXLAN settings of link `name` (nil if it is not a VXLAN device).
    public func vxlan(named name: String) throws(NetlinkError) -> VxlanInfo? {
        let r = NetlinkRequest(type: RTM_GETLINK, flags: 0, operation: "get link \(name)")
        r.header(NetlinkSocket.ifinfo())
        r.putString(IFLA_IFNAME, name)
        let msgs: [NetlinkMessage]
        do { msgs = try query(r) } catch let e where e.errno == ENODEV { return nil }
        guard let m = msgs.first, m.type == RTM_NEWLINK else { return nil }
        let a = m.attributes(after: ifinfomsg.self)
        guard let info = a.nested(IFLA_LINKINFO), info.string(IFLA_INFO_KIND) == "vxlan", let d = info.nested(IFLA_INFO_DATA) else { return nil }
        let local = d.data(IFLA_VXLAN_LOCAL).flatMap { IPAddress(bytes: $0) }
            ?? d.data(IFLA_VXLAN_LOCAL6).flatMap { IPAddress(bytes: $0) }
        return VxlanInfo(vni: d.u32(IFLA_VXLAN_ID) ?? 0, local: local,
                         port: UInt16(bigEndian: d.u16(IFLA_VXLAN_PORT) ?? 0),
                         underlay: d.i32(IFLA_VXLAN_LINK),
                         learning: (d.u8(IFLA_VXLAN_LEARNING) ?? 1) != 0,
                         proxy: (d.u8(IFLA_VXLAN_PROXY) ?? 0) != 0)
    }

    static func ndmsgHeader(family: Int32, index: Int32, state: UInt16, flags: UInt8) -> ndmsg {
        var m = ndmsg()
        m.ndm_family = UInt8(family)
        m.ndm_ifindex = index
        m.ndm_state = state
        m.ndm_flags = flags
        return m
    }

    /// Adds (or replaces) a static forwarding entry on VXLAN device `index`: `mac` is
    /// reached through the VTEP `dst`. With `bridgeToo`, also a static entry in the bridge
    /// the device is a port of, so the bridge sends such frames only to the VXLAN port.
    public func setFDB(index: Int32, mac: MACAddress, dst: IPAddress, bridgeToo: Bool = true) throws(NetlinkError) {
        let r = NetlinkRequest(type: RTM_NEWNEIGH, flags: Int32(NLM_F_CREATE | NLM_F_REPLACE), operation: "fdb add \(mac) dst \(dst)")
        r.header(NetlinkSocket.ndmsgHeader(family: Int32(AF_BRIDGE), index: index, state: u16(NUD_PERMANENT | NUD_NOARP), flags: u8(NTF_SELF)))
        r.putBytes(NDA_LLADDR, mac.bytes)
        r.putBytes(NDA_DST, dst.bytes)
        try execute(r)
        if bridgeToo {
            let b = NetlinkRequest(type: RTM_NEWNEIGH, flags: Int32(NLM_F_CREATE | NLM_F_REPLACE), operation: "bridge fdb add \(mac) master")
            b.header(NetlinkSocket.ndmsgHeader(family: Int32(AF_BRIDGE), index: index, state: u16(NUD_NOARP), flags: u8(NTF_MASTER)))
            b.putBytes(NDA_LLADDR, mac.bytes)
            try execute(b)
        }
    }

    /// Removes the entries for `mac` (the device's own and the bridge's); true if one was there.
    @discardableResult
    public func deleteFDB(index: Int32, mac: MACAddress, dst: IPAddress?) throws(NetlinkError) -> Bool {
        var found = false
        for flags in [u8(NTF_SELF), u8(NTF_MASTER)] {
            let r = NetlinkRequest(type: RTM_DELNEIGH, flags: 0, operation: "fdb del \(mac)")
            r.header(NetlinkSocket.ndmsgHeader(family: Int32(AF_BRIDGE), index: index, state: 0, flags: flags))
            r.putBytes(NDA_LLADDR, mac.bytes)
            if flags == u8(NTF_SELF), let dst { r.putBytes(NDA_DST, dst.bytes) }
            do { try execute(r); found = true } catch let e where e.errno == ENOENT {}
        }
        return found
    }

    /// The static forwarding entries of VXLAN device `index` (its own table).
    public func fdb(index: Int32) throws(NetlinkError) -> [FDBEntry] {
        let r = NetlinkRequest(type: RTM_GETNEIGH, flags: Int32(NLM_F_DUMP), operation: "fdb show")
        r.header(NetlinkSocket.ndmsgHeader(family: Int32(AF_BRIDGE), index: index, state: 0, flags: 0))
        var out: [FDBEntry] = []
        for m in try query(r) where m.type == RTM_NEWNEIGH {
            guard let h = m.header(ndmsg.self), h.ndm_ifindex == index, h.ndm_flags & u8(NTF_SELF) != 0 else { continue }
            let a = m.attributes(after: ndmsg.self)
            guard let mac = a.data(NDA_LLADDR).flatMap({ MACAddress(bytes: $0) }) else { continue }
            out.append(FDBEntry(mac: mac, dst: a.data(NDA_DST).flatMap { IPAddress(bytes: $0) },
                                permanent: h.ndm_state & u16(NUD_PERMANENT) != 0))
        }
        return out
    }

    /// Adds (or replaces) a permanent neighbour entry on link `index`.
    public func setNeighbour(index: Int32, address: IPAddress, mac: MACAddress) throws(NetlinkError) {
        let r = NetlinkRequest(type: RTM_NEWNEIGH, flags: Int32(NLM_F_CREATE | NLM_F_REPLACE), operation: "neigh add \(address) lladdr \(mac)")
        r.header(NetlinkSocket.ndmsgHeader(family: address.isV4 ? AF_INET : AF_INET6, index: index, state: u16(NUD_PERMANENT), flags: 0))
        r.putBytes(NDA_DST, address.bytes)
        r.putBytes(NDA_LLADDR, mac.bytes)
        try execute(r)
    }

    /// Gives an existing neighbour entry of link `index` the address `mac`, as STALE (the kernel
    /// confirms it as usual), sending what waited on it; false if there is no such entry (none
    /// is created).
    @discardableResult
    public func updateNeighbour(index: Int32, address: IPAddress, mac: MACAddress) throws(NetlinkError) -> Bool {
        let r = NetlinkRequest(type: RTM_NEWNEIGH, flags: Int32(NLM_F_REPLACE), operation: "neigh change \(address) lladdr \(mac)")
        r.header(NetlinkSocket.ndmsgHeader(family: address.isV4 ? AF_INET : AF_INET6, index: index, state: u16(NUD_STALE), flags: 0))
        r.putBytes(NDA_DST, address.bytes)
        r.putBytes(NDA_LLADDR, mac.bytes)
        do { try execute(r); return true } catch let e where e.errno == ENOENT { return false }
    }

    @discardableResult
    public func deleteNeighbour(index: Int32, address: IPAddress) throws(NetlinkError) -> Bool {
        let r = NetlinkRequest(type: RTM_DELNEIGH, flags: 0, operation: "neigh del \(address)")
        r.header(NetlinkSocket.ndmsgHeader(family: address.isV4 ? AF_INET : AF_INET6, index: index, state: 0, flags: 0))
        r.putBytes(NDA_DST, address.bytes)
        do { try execute(r); return true } catch let e where e.errno == ENOENT { return false }
    }

    /// The neighbour entries of link `index` (both families).
    public func neighbours(index: Int32) throws(NetlinkError) -> [NeighbourEntry] {
        var out: [NeighbourEntry] = []
        for fam in [AF_INET, AF_INET6] {
            // Strict dump checking wants the device as NDA_IFINDEX, not in the header.
            let r = NetlinkRequest(type: RTM_GETNEIGH, flags: Int32(NLM_F_DUMP), operation: "neigh show")
            r.header(NetlinkSocket.ndmsgHeader(family: fam, index: 0, state: 0, flags: 0))
            r.putU32(Int(NDA_IFINDEX), u32(index))
            for m in try query(r) where m.type == RTM_NEWNEIGH {
                guard let h = m.header(ndmsg.self), h.ndm_ifindex == index else { continue }
                let a = m.attributes(after: ndmsg.self)
                guard let ip = a.data(NDA_DST).flatMap({ IPAddress(bytes: $0) }) else { continue }
                out.append(NeighbourEntry(address: ip, mac: a.data(NDA_LLADDR).flatMap { MACAddress(bytes: $0) },
                                          permanent: h.ndm_state & u16(NUD_PERMANENT) != 0))
            }
        }
        return out
    }
}
