#if canImport(Glibc)
import Glibc
#endif
import CMnl
import Base

public struct AddressInfo: Sendable, Equatable {
    public var index: Int32
    public var address: IPNetwork
    public var flags: UInt32
    public var scope: UInt8

    public var isTentative: Bool { flags & UInt32(IFA_F_TENTATIVE) != 0 }
    public var isDADFailed: Bool { flags & UInt32(IFA_F_DADFAILED) != 0 }
}

extension IPFamily {
    var af: Int32 { self == .v4 ? AF_INET : AF_INET6 }
}

extension NetlinkSocket {
    static func ifaddr(_ a: IPNetwork, index: Int32, flags: UInt32 = 0) -> ifaddrmsg {
        var m = ifaddrmsg()
        m.ifa_family = UInt8(a.family.af)
        m.ifa_prefixlen = UInt8(a.prefixLength)
        m.ifa_flags = UInt8(truncatingIfNeeded: flags)
        m.ifa_scope = UInt8(RT_SCOPE_UNIVERSE.rawValue)
        m.ifa_index = UInt32(bitPattern: index)
        return m
    }

    /// Adds an address to a link. `noDAD` skips IPv6 duplicate address detection (the
    /// address is usable at once). With `replace`, an existing identical address is not an error.
    public func addAddress(index: Int32, _ a: IPNetwork, noDAD: Bool = false, replace: Bool = false) throws(NetlinkError) {
        let flags = replace ? Int32(NLM_F_CREATE | NLM_F_REPLACE) : Int32(NLM_F_CREATE | NLM_F_EXCL)
        let r = NetlinkRequest(type: RTM_NEWADDR, flags: flags, operation: "add address \(a) to link #\(index)")
        let f: UInt32 = noDAD && a.family == .v6 ? UInt32(IFA_F_NODAD) : 0
        r.header(NetlinkSocket.ifaddr(a, index: index, flags: f))
        r.putBytes(Int(IFA_LOCAL), a.address.bytes)
        r.putBytes(Int(IFA_ADDRESS), a.address.bytes)
        if a.family == .v4 && a.prefixLength < 31 {
            r.putBytes(Int(IFA_BROADCAST), a.lastAddress.bytes)
        }
        if f != 0 { r.putU32(Int(IFA_FLAGS), f) }
        try execute(r)
    }

    /// Removes an address; an absent one is not an error. Returns whether it existed.
    @discardableResult
    public func deleteAddress(index: Int32, _ a: IPNetwork) throws(NetlinkError) -> Bool {
        let r = NetlinkRequest(type: RTM_DELADDR, flags: 0, operation: "remove address \(a) from link #\(index)")
        r.header(NetlinkSocket.ifaddr(a, index: index))
        r.putBytes(Int(IFA_LOCAL), a.address.bytes)
        do {
            try execute(r)
            return true
        } catch {
            if error.errno == EADDRNOTAVAIL || error.errno == ENODEV { return false }
            throw error
        }
    }

    /// Addresses, optionally of one link and/or one family.
    public func addresses(index: Int32? = nil, family: IPFamily? = nil) throws(NetlinkError) -> [AddressInfo] {
        let r = NetlinkRequest(type: RTM_GETADDR, flags: Int32(NLM_F_DUMP), operation: "list addresses")
        var m = ifaddrmsg()
        m.ifa_family = UInt8(family?.af ?? AF_UNSPEC)
        m.ifa_index = UInt32(bitPattern: index ?? 0)
        r.header(m)
        var out: [AddressInfo] = []
        for msg in try query(r) where msg.type == RTM_NEWADDR {
            guard let h = msg.header(ifaddrmsg.self) else { continue }
            if let index, Int32(bitPattern: h.ifa_index) != index { continue }
            let a = msg.attributes(after: ifaddrmsg.self)
            guard let raw = a.data(Int(IFA_LOCAL)) ?? a.data(Int(IFA_ADDRESS)),
                  let ip = IPAddress(bytes: raw),
                  let net = IPNetwork(address: ip, prefixLength: Int(h.ifa_prefixlen))
            else { continue }
            if let family, ip.family != family { continue }
            let flags = a.u32(Int(IFA_FLAGS)) ?? UInt32(h.ifa_flags)
            out.append(AddressInfo(index: Int32(bitPattern: h.ifa_index), address: net, flags: flags, scope: h.ifa_scope))
        }
        return out
    }
}
