// The bridge plugin's compound link operations: a bridge that exists and is up, a veth pair
// from the bridge into the container, the container interface configured from the CNI
// result, and CHECK's verification of the same (the overlay plugin uses them through the
// bridge logic).

#if canImport(Glibc)
import Glibc
#endif
import Base
import CNI
import Netlink

extension NetlinkSocket {
    /// The MAC prefix of the bridges the suite creates ("sc", locally administered): set in
    /// the same message that creates the bridge, so a bridge is recognisably ours even if the
    /// creating process dies before it sets the alias.
    public static let bridgeMACPrefix: [UInt8] = [0x02, 0x73, 0x63]

    /// The bridge `name`, created (up, with a fixed random MAC so it never changes as ports
    /// come and go, marked with `alias`) if missing. Fails if a non-bridge link has the name.
    public func ensureBridge(name: String, mtu: Int?, promiscuous: Bool, vlanFiltering: Bool, alias: String) throws -> (link: LinkInfo, created: Bool) {
        if let l = try link(named: name) {
            guard l.kind == "bridge" else {
                throw CNIError(.invalidConfig, "\"bridge\" \"\(name)\": a link with that name exists and is not a bridge (kind \(l.kind ?? "none"))")
            }
            var s = LinkSettings()
            if !l.isUp { s.up = true }
            if promiscuous && !l.isPromiscuous { s.promiscuous = true }
            if s.up != nil || s.promiscuous != nil { try setLink(index: l.index, s) }
            if vlanFiltering {
                do { try setBridgeVlanFiltering(index: l.index, true) } catch {
                    throw NetlinkSocket.vlanError(error)
                }
            }
            return (try link(index: l.index) ?? l, false)
        }
        var s = LinkSettings(up: true, mtu: mtu, mac: MACAddress.random(prefix: NetlinkSocket.bridgeMACPrefix))
        if promiscuous { s.promiscuous = true }
        do {
            try addBridge(name: name, settings: s, vlanFiltering: vlanFiltering ? true : nil)
        } catch {
            if vlanFiltering && error.errno == EOPNOTSUPP { throw NetlinkSocket.vlanError(error) }
            // Another ADD created it first.
            if error.errno != EEXIST { throw error }
            return try ensureBridge(name: name, mtu: mtu, promiscuous: promiscuous, vlanFiltering: vlanFiltering, alias: alias)
        }
        guard var l = try link(named: name) else {
            throw CNIError(.kernel, "bridge \(name) vanished right after it was created")
        }
        // The alias is applied by a SETLINK (RTM_NEWLINK ignores it at creation).
        try setLink(index: l.index, LinkSettings(alias: alias))
        l.alias = alias
        // The bridge's own router advertisements handling: we own its routes.
        try? Sysctl.set("net/ipv6/conf/\(name)/accept_ra", "0")
        return (l, true)
    }

    static func vlanError(_ e: NetlinkError) -> any Error {
        if e.errno == EOPNOTSUPP {
            return CNIError(.unsupportedField, "\"vlan\"/\"vlanTrunk\": this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)")
        }
        return e
    }

    /// Creates a veth pair: a host end named `<prefix><8 hex>` here (up, `hostSettings`),
    /// and `containerName` inside `container` (with `containerSettings`, except `up`: the
    /// kernel cannot bring a veth peer up before the pair is joined, so the caller brings the
    /// container end up with its own socket). Retries with
    /// another host name on a clash; a clash inside the container is `interfaceExists`.
    public func createVethPair(prefix: String = "veth", hostSettings: LinkSettings, containerName: String,
                               container: NetworkNamespace, containerSettings: LinkSettings) throws -> String {
        var g = SystemRandomNumberGenerator()
        for attempt in 0..<5 {
            let n = UInt32.random(in: 0...UInt32.max, using: &g)
            var hex = String(n, radix: 16)
            while hex.count < 8 { hex = "0" + hex }
            let hostName = prefix + hex
            var peer = containerSettings
            peer.up = nil
            var host = hostSettings
            // IPv6 address generation is set while the link is down (the kernel takes
            // IFLA_AF_SPEC only on an existing link, and generates the link-local address
            // when it comes up), then the host end comes up.
            let later = host.noIPv6LinkLocal ? host.up : nil
            if host.noIPv6LinkLocal { host.up = nil; host.noIPv6LinkLocal = false }
            do {
                try addVeth(name: hostName, settings: host, peerName: containerName, peerNamespace: container,
                            peerSettings: peer)
            } catch {
                guard error.errno == EEXIST else { throw error }
                if try link(named: hostName) == nil || attempt == 4 {
                    throw CNIError(.interfaceExists, "interface \"\(containerName)\" already exists in the container (\(container.path))")
                }
                continue
            }
            if let up = later {
                guard let l = try link(named: hostName) else {
                    throw CNIError(.kernel, "veth \(hostName) vanished right after it was created")
                }
                try setLink(index: l.index, LinkSettings(noIPv6LinkLocal: true))
                try setLink(index: l.index, LinkSettings(up: up))
            }
            return hostName
        }
        throw CNIError(.kernel, "could not find a free host interface name for the veth pair")
    }
}

/// Applying and verifying a CNI result on a container interface.
public enum ContainerInterface {
    /// Adds the result's addresses for interface `resultIndex` to link `index` and the
    /// result's routes (a route without `gw` goes via the gateway of its family's address,
    /// as the reference's ConfigureIface does). Returns the routes as installed: when the
    /// container already has a route to the same destination (a default route from another
    /// network), ours is added behind it with a higher metric — the first network keeps the
    /// default, as with Docker — and the result records that priority.
    @discardableResult
    public static func configure(_ sock: NetlinkSocket, index: Int32, result: CNIResult, resultIndex: Int, noDAD: Bool) throws -> [CNIRoute] {
        var gw4: IPAddress?
        var gw6: IPAddress?
        for ip in result.ips where ip.interface == nil || ip.interface == resultIndex {
            try sock.addAddress(index: index, ip.address, noDAD: noDAD)
            if let g = ip.gateway {
                if g.isV4 { gw4 = gw4 ?? g } else { gw6 = gw6 ?? g }
            }
        }
        var installed: [CNIRoute] = []
        for r in result.routes {
            let gw = r.gw ?? (r.dst.family == .v4 ? gw4 : gw6)
            var route = RouteInfo(dst: r.dst, gateway: gw, outputIndex: index, table: r.table.map { UInt32($0) },
                                  priority: r.priority.map { UInt32($0) }, scope: r.scope.map { UInt8($0) },
                                  mtu: r.mtu.map { UInt32($0) }, advmss: r.advmss.map { UInt32($0) })
            var out = r
            do {
                try sock.addRoute(route)
            } catch let e where e.errno == EEXIST && r.priority == nil {
                // Behind the existing route(s) to this destination.
                let existing = try sock.routes(family: r.dst.family).filter { $0.dst == r.dst.network && $0.effectiveTable == route.effectiveTable }
                let metric = (existing.compactMap(\.priority).max() ?? (r.dst.family == .v6 ? 1024 : 0)) + 1
                route.priority = metric
                do {
                    try sock.addRoute(route)
                } catch {
                    throw CNIError(.kernel, "failed to add route \(r.dst)\(gw.map { " via \($0)" } ?? "") dev #\(index) metric \(metric): \(error)")
                }
                out.priority = Int(metric)
            } catch {
                throw CNIError(.kernel, "failed to add route \(r.dst)\(gw.map { " via \($0)" } ?? "") dev #\(index): \(error)")
            }
            installed.append(out)
        }
        return installed
    }

    /// Waits (up to `timeout` ms) until no address of the link is tentative (IPv6 DAD).
    public static func settle(_ sock: NetlinkSocket, index: Int32, timeoutMillis: Int = 5000) throws {
        var waited = 0
        while true {
            let addrs = try sock.addresses(index: index, family: .v6)
            if let bad = addrs.first(where: \.isDADFailed) {
                throw CNIError(.kernel, "duplicate address detection failed for \(bad.address)")
            }
            if !addrs.contains(where: { $0.isTentative && !$0.address.address.isLinkLocalV6 }) { return }
            if waited >= timeoutMillis {
                throw CNIError(.kernel, "addresses still tentative after \(timeoutMillis) ms")
            }
            usleep(10_000)
            waited += 10
        }
    }

    /// CHECK: every address of the result for interface `resultIndex` is on link `index`,
    /// and every route of the result is present.
    public static func verify(_ sock: NetlinkSocket, index: Int32, ifname: String, result: CNIResult, resultIndex: Int) throws {
        let have = try sock.addresses(index: index)
        for ip in result.ips where ip.interface == nil || ip.interface == resultIndex {
            if !have.contains(where: { $0.address.address == ip.address.address && $0.address.prefixLength == ip.address.prefixLength }) {
                throw CNIError(.checkFailed, "address \(ip.address) is missing from interface \(ifname) in the container")
            }
        }
        var gw4: IPAddress?
        var gw6: IPAddress?
        for ip in result.ips where ip.interface == nil || ip.interface == resultIndex {
            if let g = ip.gateway { if g.isV4 { gw4 = gw4 ?? g } else { gw6 = gw6 ?? g } }
        }
        var byFamily: [IPFamily: [RouteInfo]] = [:]
        for r in result.routes {
            if byFamily[r.dst.family] == nil { byFamily[r.dst.family] = try sock.routes(family: r.dst.family) }
            let gw = r.gw ?? (r.dst.family == .v4 ? gw4 : gw6)
            let table = r.table.map { UInt32($0) } ?? RouteInfo.mainTable
            let found = byFamily[r.dst.family]!.contains { k in
                k.dst == r.dst.network && k.gateway == gw && k.effectiveTable == table
            }
            if !found {
                throw CNIError(.checkFailed, "route \(r.dst)\(gw.map { " via \($0)" } ?? "") is missing in the container")
            }
        }
    }
}
