#if canImport(Glibc)
import Glibc
#endif
import CMnl
import Base

/// A route as added to or read from the kernel.
public struct RouteInfo: Sendable, Equatable {
    public var dst: IPNetwork
    public var gateway: IPAddress?
    public var outputIndex: Int32?
    public var table: UInt32?
    public var priority: UInt32?
    public var scope: UInt8?
    public var mtu: UInt32?
    public var advmss: UInt32?
    public var source: IPAddress?
    public var type: UInt8

    public init(dst: IPNetwork, gateway: IPAddress? = nil, outputIndex: Int32? = nil, table: UInt32? = nil,
                priority: UInt32? = nil, scope: UInt8? = nil, mtu: UInt32? = nil, advmss: UInt32? = nil,
                source: IPAddress? = nil, type: UInt8 = UInt8(RTN_UNICAST)) {
        self.dst = dst.network; self.gateway = gateway; self.outputIndex = outputIndex; self.table = table
        self.priority = priority; self.scope = scope; self.mtu = mtu; self.advmss = advmss
        self.source = source; self.type = type
    }

    public var family: IPFamily { dst.family }
    public var effectiveTable: UInt32 { table ?? RouteInfo.mainTable }
    /// A default route of the main table.
    public var isMainDefault: Bool { dst.prefixLength == 0 && effectiveTable == RouteInfo.mainTable }
    /// The kernel's main routing table.
    public static let mainTable = UInt32(RT_TABLE_MAIN.rawValue)
}

extension NetlinkSocket {
    static func rtmsgFor(_ rt: RouteInfo, forDelete: Bool = false) -> rtmsg {
        var m = rtmsg()
        m.rtm_family = UInt8(rt.family.af)
        m.rtm_dst_len = UInt8(rt.dst.prefixLength)
        let table = rt.effectiveTable
        m.rtm_table = table < 256 ? UInt8(table) : UInt8(RT_TABLE_UNSPEC.rawValue)
        m.rtm_protocol = UInt8(RTPROT_BOOT)
        let defaultScope = rt.gateway == nil ? RT_SCOPE_LINK.rawValue : RT_SCOPE_UNIVERSE.rawValue
        m.rtm_scope = forDelete ? UInt8(RT_SCOPE_NOWHERE.rawValue) : (rt.scope ?? UInt8(defaultScope))
        m.rtm_type = rt.type
        return m
    }

    static func putRoute(_ rt: RouteInfo, into r: NetlinkRequest) {
        if rt.dst.prefixLength > 0 { r.putBytes(Int(RTA_DST.rawValue), rt.dst.networkAddress.bytes) }
        if let gw = rt.gateway { r.putBytes(Int(RTA_GATEWAY.rawValue), gw.bytes) }
        if let oif = rt.outputIndex { r.putU32(Int(RTA_OIF.rawValue), u32(oif)) }
        if let p = rt.priority { r.putU32(Int(RTA_PRIORITY.rawValue), p) }
        if let s = rt.source { r.putBytes(Int(RTA_PREFSRC.rawValue), s.bytes) }
        r.putU32(Int(RTA_TABLE.rawValue), rt.effectiveTable)
        if rt.mtu != nil || rt.advmss != nil {
            let n = r.nest(Int(RTA_METRICS.rawValue))
            if let mtu = rt.mtu { r.putU32(Int(RTAX_MTU), mtu) }
            if let a = rt.advmss { r.putU32(Int(RTAX_ADVMSS), a) }
            r.end(n)
        }
    }

    /// Adds a route. With `replace`, an existing route to the same destination is replaced.
    public func addRoute(_ rt: RouteInfo, replace: Bool = false) throws(NetlinkError) {
        let flags = replace ? Int32(NLM_F_CREATE | NLM_F_REPLACE) : Int32(NLM_F_CREATE | NLM_F_EXCL)
        let via = rt.gateway.map { " via \($0)" } ?? ""
        let r = NetlinkRequest(type: RTM_NEWROUTE, flags: flags, operation: "add route \(rt.dst)\(via)")
        r.header(NetlinkSocket.rtmsgFor(rt))
        NetlinkSocket.putRoute(rt, into: r)
        try execute(r)
    }

    /// Deletes a route; an absent one is not an error. Returns whether it existed.
    @discardableResult
    public func deleteRoute(_ rt: RouteInfo) throws(NetlinkError) -> Bool {
        let r = NetlinkRequest(type: RTM_DELROUTE, flags: 0, operation: "delete route \(rt.dst)")
        r.header(NetlinkSocket.rtmsgFor(rt, forDelete: true))
        NetlinkSocket.putRoute(rt, into: r)
        do {
            try execute(r)
            return true
        } catch {
            if error.errno == ESRCH || error.errno == ENOENT { return false }
            throw error
        }
    }

    /// Routes of a family in every table (local/broadcast entries excluded unless asked).
    public func routes(family: IPFamily, includeLocal: Bool = false) throws(NetlinkError) -> [RouteInfo] {
        let r = NetlinkRequest(type: RTM_GETROUTE, flags: Int32(NLM_F_DUMP), operation: "list routes")
        var m = rtmsg()
        m.rtm_family = UInt8(family.af)
        r.header(m)
        var out: [RouteInfo] = []
        for msg in try query(r) where msg.type == RTM_NEWROUTE {
            guard let h = msg.header(rtmsg.self) else { continue }
            if !includeLocal && h.rtm_type != UInt8(RTN_UNICAST) { continue }
            let a = msg.attributes(after: rtmsg.self)
            let zero = IPAddress(family: family, value: 0)
            let dstIP = a.data(Int(RTA_DST.rawValue)).flatMap { IPAddress(bytes: $0) } ?? zero
            guard let dst = IPNetwork(address: dstIP, prefixLength: Int(h.rtm_dst_len)) else { continue }
            let metrics = a.nested(Int(RTA_METRICS.rawValue))
            out.append(RouteInfo(
                dst: dst,
                gateway: a.data(Int(RTA_GATEWAY.rawValue)).flatMap { IPAddress(bytes: $0) },
                outputIndex: a.i32(Int(RTA_OIF.rawValue)),
                table: a.u32(Int(RTA_TABLE.rawValue)) ?? UInt32(h.rtm_table),
                priority: a.u32(Int(RTA_PRIORITY.rawValue)),
                scope: h.rtm_scope,
                mtu: metrics?.u32(Int(RTAX_MTU)),
                advmss: metrics?.u32(Int(RTAX_ADVMSS)),
                source: a.data(Int(RTA_PREFSRC.rawValue)).flatMap { IPAddress(bytes: $0) },
                type: h.rtm_type))
        }
        return out
    }
}

extension NetlinkSocket {
    /// The route the kernel would use to reach `dst` (`ip route get`).
    public func routeGet(_ dst: IPAddress) throws(NetlinkError) -> RouteInfo? {
        let r = NetlinkRequest(type: RTM_GETROUTE, flags: 0, operation: "get route to \(dst)")
        var m = rtmsg()
        m.rtm_family = UInt8(dst.family.af)
        m.rtm_dst_len = UInt8(dst.family.bits)
        r.header(m)
        r.putBytes(Int(RTA_DST.rawValue), dst.bytes)
        guard let msg = try query(r).first(where: { $0.type == RTM_NEWROUTE }), let h = msg.header(rtmsg.self) else { return nil }
        let a = msg.attributes(after: rtmsg.self)
        return RouteInfo(dst: IPNetwork(address: dst, prefixLength: dst.family.bits)!,
                         gateway: a.data(Int(RTA_GATEWAY.rawValue)).flatMap { IPAddress(bytes: $0) },
                         outputIndex: a.i32(Int(RTA_OIF.rawValue)), table: a.u32(Int(RTA_TABLE.rawValue)),
                         source: a.data(Int(RTA_PREFSRC.rawValue)).flatMap { IPAddress(bytes: $0) }, type: h.rtm_type)
    }
}
