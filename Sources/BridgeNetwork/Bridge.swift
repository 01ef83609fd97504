#if canImport(Glibc)
import Glibc
#endif
import Base
import CNI
import Firewall
import Netlink

/// Marks the bridges this plugin creates, so that it removes only its own.
public let bridgeAlias = "swiftcni bridge"

public struct Bridge: CNIPlugin {
    public init() {}
    public static var knownArgs: Set<String> { ["IP", "MAC"] }

    public func add(_ req: CNIRequest) throws -> CNIResult {
        let cfg = try BridgeConfig(req)
        if let e = cfg.unsupported() { throw e }
        let ns = try NetworkNamespace.open(req.netns)
        PhaseTrace.mark("ns open")
        let cont = try NetlinkSocket.inNamespace(ns)
        PhaseTrace.mark("ns socket")
        if try cont.link(named: req.ifname) != nil {
            throw CNIError(.interfaceExists, "interface \"\(req.ifname)\" already exists in the container (\(req.netns))")
        }
        let host = try NetlinkSocket()

        var undo = Teardown()
            PhaseTrace.mark("netns+sockets")

        do {
            var result = CNIResult(cniVersion: req.cniVersion)
            if !cfg.ipamType.isEmpty {
                let ipam = try Delegate.add(cfg.ipamType, req)
                undo.add("release the address") { try Delegate.del(cfg.ipamType, req) }
                if ipam.ips.isEmpty {
                    throw CNIError(.delegateFailed, "IPAM plugin \"\(cfg.ipamType)\" returned no IP configuration")
                }
                result.ips = ipam.ips
            PhaseTrace.mark("ipam")
                result.routes = ipam.routes
                result.dns = ipam.dns
            }
            let gateways = Bridge.gateways(&result, cfg)
            if cfg.internal {
                // No way out of an internal network: no default route, whatever IPAM said.
                result.routes.removeAll { $0.dst.prefixLength == 0 }
            }

            // Bridge and veth under the bridge's lock, so a DEL removing an idle bridge
            // never races an ADD attaching to it.
            let hostMAC = MACAddress.random()
            let contMAC = cfg.mac ?? MACAddress.random()
            let (br, hostName) = try Bridge.withBridgeLock(cfg.bridge) {
                PhaseTrace.mark("lock")
                let (br, created) = try host.ensureBridge(name: cfg.bridge, mtu: cfg.mtu, promiscuous: cfg.promiscMode,
                                                          vlanFiltering: cfg.vlan != 0 || !cfg.vlanTrunk.isEmpty, alias: bridgeAlias)
                if created {
                    undo.add("remove the bridge") { Bridge.removeIdleBridge(host, name: cfg.bridge) }
                }
                let hostName = try host.createVethPair(
                    hostSettings: LinkSettings(up: true, mtu: cfg.mtu, mac: hostMAC, master: br.index, noIPv6LinkLocal: true),
                    containerName: req.ifname, container: ns,
                    containerSettings: LinkSettings(mtu: cfg.mtu, mac: contMAC))
                undo.add("delete the veth") { try host.deleteLink(named: hostName) }
                return (br, hostName)
            }
            PhaseTrace.mark("veth")

            guard let hostLink = try host.link(named: hostName), let contLink = try cont.link(named: req.ifname) else {
                throw CNIError(.kernel, "veth pair \(hostName)/\(req.ifname) vanished right after it was created")
            }

            // The firewall before the container's end comes up: it never sends a packet the
            // network's policy does not govern.
            let me = AttachmentID(network: req.name, containerID: req.containerID, ifname: req.ifname)
            let addresses = result.ips.map(\.address.address)
            let fw = try FirewallDriver()
            do {
                try fw.attach(cfg.policy(network: req.name), me, addresses: addresses, port: hostName, mode: cfg.hostFirewall)
            } catch let e as FirewallError where e.kind == .hostFirewall {
                throw CNIError(.hostFirewall, e.description + "; set \"hostFirewall\": \"iptables\" to let swiftcni accept it in iptables' FORWARD chains, or \"ignore\" if your own rules accept it")
            }
            undo.add("remove the firewall elements") { try fw.detach(network: req.name, bridge: cfg.bridge, me, addresses: addresses) }
            PhaseTrace.mark("firewall")
            if cfg.hairpinMode || cfg.portIsolation {
                try host.setBridgePort(index: hostLink.index, hairpin: cfg.hairpinMode ? true : nil,
                                       isolated: cfg.portIsolation ? true : nil)
            }
            try Bridge.configureVlans(host, port: hostLink.index, cfg)
            PhaseTrace.mark("lookups")

            if !cfg.disableContainerInterface {
                try cont.setLink(index: contLink.index, LinkSettings(up: true))
            }
            if !cfg.ipamType.isEmpty {
                try? cont.setIPv4DeviceConf(index: contLink.index, IPv4DeviceConf.arpNotify, 1)
                result.routes = try ContainerInterface.configure(cont, index: contLink.index, result: result, resultIndex: 2,
                                                                 noDAD: !cfg.enabledad)
                if cfg.enabledad { try ContainerInterface.settle(cont, index: contLink.index) }
            }

            var brMAC = br.mac
            PhaseTrace.mark("container config")
            if cfg.isGateway && !gateways.isEmpty {
                if cfg.vlan != 0 {
                    // As the reference: the gateway of a VLAN lives on "<bridge>.<vlan>", an
                    // access port of that VLAN on the bridge.
                    let gwLink = try Bridge.ensureVlanGateway(host, bridge: br, cfg: cfg)
                    _ = try Bridge.ensureGatewayAddresses(host, bridge: gwLink, gateways: gateways, cfg: cfg)
                    result.interfaces.append(CNIInterface(name: gwLink.name, mac: gwLink.mac?.description))
                } else {
                    brMAC = try Bridge.ensureGatewayAddresses(host, bridge: br, gateways: gateways, cfg: cfg)
                }
                for fam in Set(gateways.map(\.family)) {
                    try Sysctl.set(fam == .v4 ? "net/ipv4/ip_forward" : "net/ipv6/conf/all/forwarding", "1")
                }
            }

            PhaseTrace.mark("gateway")
            result.interfaces = [
                CNIInterface(name: cfg.bridge, mac: brMAC?.description),
                CNIInterface(name: hostName, mac: hostMAC.description),
                CNIInterface(name: req.ifname, mac: contMAC.description, sandbox: req.netns),
            ] + result.interfaces
            if let dns = cfg.dns { result.dns = dns }
            if let r = cfg.runtimeDNS { result.dns.merge(r) }
            return result
        } catch {
            undo.undo()
            throw error
        }
    }

    public func del(_ req: CNIRequest) throws {
        try teardown(req).run()
    }

    /// DEL's steps: firewall elements before any link (a link gone with live rules leaks
    /// traffic), then the container end (deleting it removes the host end too), then the
    /// address — each only once the one before it is done; the idle bridge last, whatever
    /// happened before.
    public func teardown(_ req: CNIRequest) throws -> Teardown {
        let cfg = try BridgeConfig(req)
        let me = AttachmentID(network: req.name, containerID: req.containerID, ifname: req.ifname)
        let prev = try? req.prevResult()
        // The firewall socket stays open until the end: closing it waits for the kernel to
        // free what the batch removed (an RCU grace period), which then overlaps with the
        // link deletion's own wait instead of adding to it.
        let fw = try FirewallDriver()
        var t = Teardown()
        t.add("firewall", onFailure: .stop) {
            try fw.detach(network: req.name, bridge: cfg.bridge, me, addresses: prev?.ips.map(\.address.address))
            PhaseTrace.mark("del: firewall")
        }
        if !req.netns.isEmpty {
            t.add("container interface", onFailure: .stop) {
                do {
                    let ns = try NetworkNamespace.open(req.netns)
                    let cont = try NetlinkSocket.inNamespace(ns)
                    PhaseTrace.mark("del: socket")
                    if let l = try cont.link(named: req.ifname), l.kind == "veth" {
                        try cont.deleteLink(index: l.index)
                    }
                    PhaseTrace.mark("del: link deleted")
                } catch is NetworkNamespace.OpenError {
                    // The namespace is gone (or was never one): its links went with it.
                }
            }
        }
        if !cfg.ipamType.isEmpty {
            t.add("IPAM (\(cfg.ipamType))") {
                try Delegate.del(cfg.ipamType, req)
                PhaseTrace.mark("del: ipam")
            }
        }
        t.add("idle bridge") {
            Bridge.removeIdleBridge(try NetlinkSocket(), name: cfg.bridge)
            withExtendedLifetime(fw) {}
        }
        return t
    }

    public func check(_ req: CNIRequest) throws {
        let cfg = try BridgeConfig(req)
        guard let prev = try req.prevResult() else {
            throw CNIError(.invalidConfig, "\"prevResult\" is required for CHECK")
        }
        if !cfg.ipamType.isEmpty { try Delegate.check(cfg.ipamType, req) }

        let host = try NetlinkSocket()
        guard let br = try host.link(named: cfg.bridge), br.kind == "bridge" else {
            throw CNIError(.checkFailed, "bridge \(cfg.bridge) does not exist")
        }
        if let want = prev.interfaces.first(where: { $0.name == cfg.bridge && ($0.sandbox ?? "").isEmpty })?.mac,
           let have = br.mac, want != have.description {
            throw CNIError(.checkFailed, "bridge \(cfg.bridge) has MAC \(have), the previous result says \(want)")
        }
        if br.isPromiscuous != cfg.promiscMode {
            throw CNIError(.checkFailed, "bridge \(cfg.bridge) promiscuous mode is \(br.isPromiscuous), configured \(cfg.promiscMode)")
        }
        guard let contIdx = prev.interfaces.firstIndex(where: { $0.name == req.ifname && $0.sandbox == req.netns }) else {
            throw CNIError(.checkFailed, "the previous result has no interface \(req.ifname) in sandbox \(req.netns)")
        }
        let ns = try NetworkNamespace.open(req.netns)
        let cont = try NetlinkSocket.inNamespace(ns)
        guard let cl = try cont.link(named: req.ifname) else {
            throw CNIError(.checkFailed, "interface \(req.ifname) is missing from the container")
        }
        guard cl.kind == "veth" else {
            throw CNIError(.checkFailed, "interface \(req.ifname) in the container is not a veth (kind \(cl.kind ?? "none"))")
        }
        if let want = prev.interfaces[contIdx].mac, let have = cl.mac, want != have.description {
            throw CNIError(.checkFailed, "interface \(req.ifname) has MAC \(have), the previous result says \(want)")
        }
        // The host end: a veth of the previous result, port of the bridge, peer of ours.
        let hostEnds = prev.interfaces.filter { ($0.sandbox ?? "").isEmpty && $0.name != cfg.bridge }
        var found = false
        for h in hostEnds {
            guard let hl = try host.link(named: h.name), hl.kind == "veth" else { continue }
            if hl.master == br.index && hl.peerIndex == cl.index && cl.peerIndex == hl.index {
                if let want = h.mac, let have = hl.mac, want != have.description {
                    throw CNIError(.checkFailed, "host interface \(h.name) has MAC \(have), the previous result says \(want)")
                }
                found = true
                break
            }
        }
        if !found {
            throw CNIError(.checkFailed, "the host end of \(req.ifname) is missing or no longer a port of bridge \(cfg.bridge)")
        }
        try ContainerInterface.verify(cont, index: cl.index, ifname: req.ifname, result: prev, resultIndex: contIdx)
        let me = AttachmentID(network: req.name, containerID: req.containerID, ifname: req.ifname)
        let hostEnd = hostEnds.first { h in (try? host.link(named: h.name))?.peerIndex == cl.index }?.name
        try FirewallDriver().check(cfg.policy(network: req.name), me, addresses: prev.ips.filter { $0.interface == nil || $0.interface == contIdx }.map(\.address.address),
                             port: hostEnd, mode: cfg.hostFirewall)
        if cfg.isGateway {
            let have = try host.addresses(index: br.index)
            for ip in prev.ips where ip.interface == nil || ip.interface == contIdx {
                guard let gw = ip.gateway else { continue }
                if !have.contains(where: { $0.address.address == gw }) {
                    throw CNIError(.checkFailed, "gateway address \(gw) is missing from bridge \(cfg.bridge)")
                }
            }
        }
    }

    public func gc(_ req: CNIRequest) throws {
        let cfg = try BridgeConfig(req)
        let valid = try req.validAttachments()
        let host = try NetlinkSocket()
        try FirewallDriver().gc(network: req.name, bridge: cfg.bridge, valid: valid, existingLinks: Set(try host.links().map(\.name)))
        if !cfg.ipamType.isEmpty { try Delegate.gc(cfg.ipamType, req) }
        Bridge.removeIdleBridge(host, name: cfg.bridge)
    }

    public func status(_ req: CNIRequest) throws {
        let cfg = try BridgeConfig(req)
        if let e = cfg.unsupported() { throw CNIError(.notAvailable, e.msg) }
        let fw: FirewallDriver
        do { fw = try FirewallDriver() } catch { throw CNIError(.notAvailable, "nftables is not usable: \(error)") }
        if cfg.hostFirewall == .check, let c = try fw.foreignForwardDrops().first {
            throw CNIError(.limitedConnectivity, "host firewall: \(c.family.map(\.description) ?? "?") \(c.table) chain \(c.name) (hook forward, policy drop) drops this network's traffic (see \"hostFirewall\")")
        }
        if !cfg.ipamType.isEmpty { try Delegate.status(cfg.ipamType, req) }
    }

    // MARK: helpers

    struct Gateway {
        var address: IPNetwork
        var family: IPFamily { address.family }
    }

    /// Fills gateways the IPAM result lacks (the subnet's first address) when the bridge is
    /// the gateway, adds default routes for isDefaultGateway, points IPs at interface 2.
    static func gateways(_ result: inout CNIResult, _ cfg: BridgeConfig) -> [Gateway] {
        var gws: [Gateway] = []
        for i in result.ips.indices {
            result.ips[i].interface = 2
            let addr = result.ips[i].address
            if cfg.gatewayMode(addr.family) == .isolated {
                // No gateway of this family: no address on the bridge, none handed out.
                result.ips[i].gateway = nil
                continue
            }
            if result.ips[i].gateway == nil && cfg.isGateway {
                result.ips[i].gateway = addr.networkAddress.next()
            }
            guard let gw = result.ips[i].gateway else { continue }
            if cfg.isDefaultGateway {
                let zero = IPNetwork.everything(addr.family)
                if !result.routes.contains(where: { $0.dst == zero && $0.gw != nil }) {
                    result.routes.append(CNIRoute(dst: zero, gw: gw))
                }
            }
            if cfg.isGateway {
                let g = Gateway(address: IPNetwork(address: gw, prefixLength: addr.prefixLength)!)
                if !gws.contains(where: { $0.address == g.address }) { gws.append(g) }
            }
        }
        return gws
    }

    /// Puts the gateway addresses on the bridge (reference `ensureAddr`): an IPv4 bridge
    /// holds one address; a different one is replaced only with forceAddress.
    static func ensureGatewayAddresses(_ host: NetlinkSocket, bridge: LinkInfo, gateways: [Gateway], cfg: BridgeConfig) throws -> MACAddress? {
        try withBridgeLock(cfg.bridge) { try ensureGatewayAddressesLocked(host, bridge: bridge, gateways: gateways, cfg: cfg) }
    }

    static func ensureGatewayAddressesLocked(_ host: NetlinkSocket, bridge: LinkInfo, gateways: [Gateway], cfg: BridgeConfig) throws -> MACAddress? {
        for gw in gateways {
            let have = try host.addresses(index: bridge.index, family: gw.family)
            if have.contains(where: { $0.address == gw.address }) { continue }
            for a in have where !a.address.address.isLinkLocalV6 {
                let sameSubnet = a.address.contains(gw.address.address) || gw.address.contains(a.address.address)
                let clash = (gw.family == .v4 && !cfg.allSubnetGateways) || sameSubnet
                guard clash else { continue }
                if cfg.forceAddress {
                    try host.deleteAddress(index: bridge.index, a.address)
                } else {
                    throw CNIError(.conflict, "bridge \(cfg.bridge) already has address \(a.address), different from gateway \(gw.address) (set \"forceAddress\" to replace it)")
                }
            }
            do {
                try host.addAddress(index: bridge.index, gw.address, noDAD: true)
            } catch {
                if error.errno != EEXIST { throw error }
            }
        }
        // A bridge we did not create takes the lowest port MAC unless its MAC is set: pin it.
        let now = try host.link(index: bridge.index) ?? bridge
        if now.alias != bridgeAlias, now.mac?.hasPrefix(NetlinkSocket.bridgeMACPrefix) != true,
           let mac = now.mac, !mac.isMulticast, mac.bytes.contains(where: { $0 != 0 }) {
            try host.setLink(index: bridge.index, LinkSettings(mac: mac))
        }
        return now.mac
    }

    /// The VLAN gateway interface `<bridge>.<vlan>`: a veth whose peer is an access port of
    /// the VLAN on the bridge.
    static func ensureVlanGateway(_ host: NetlinkSocket, bridge: LinkInfo, cfg: BridgeConfig) throws -> LinkInfo {
        let name = "\(cfg.bridge).\(cfg.vlan)"
        if let l = try host.link(named: name) { return l }
        if let why = CNIEnvironment.interfaceNameProblem(name) {
            throw CNIError(.invalidConfig, "VLAN gateway interface \"\(name)\" cannot be created: \(why)")
        }
        var g = SystemRandomNumberGenerator()
        var hex = String(UInt32.random(in: 0...UInt32.max, using: &g), radix: 16)
        while hex.count < 8 { hex = "0" + hex }
        let port = "veth" + hex
        try host.addVeth(name: port, settings: LinkSettings(up: true, mtu: cfg.mtu, master: bridge.index),
                         peerName: name, peerNamespace: nil, peerSettings: LinkSettings(up: true, mtu: cfg.mtu))
        guard let p = try host.link(named: port), let l = try host.link(named: name) else {
            throw CNIError(.kernel, "VLAN gateway pair \(name)/\(port) vanished right after it was created")
        }
        try configureVlans(host, port: p.index, cfg)
        return l
    }

    static func configureVlans(_ host: NetlinkSocket, port: Int32, _ cfg: BridgeConfig) throws {
        guard cfg.vlan != 0 || !cfg.vlanTrunk.isEmpty else { return }
        if !cfg.preserveDefaultVlan {
            for v in try host.bridgeVlans(index: port) {
                try host.bridgeVlan(index: port, vid: v.vid, delete: true)
            }
        }
        if cfg.vlan != 0 {
            try host.bridgeVlan(index: port, vid: cfg.vlan, pvid: true, untagged: true)
        }
        for v in cfg.vlanTrunk {
            try host.bridgeVlan(index: port, vid: v)
        }
    }

    /// Runs `body` holding the bridge's lock (a file lock, so it orders every process).
    public static func withBridgeLock<T>(_ bridge: String, _ body: () throws -> T) throws -> T {
        let lock = try SuitePaths.lock("bridge-\(bridge)")
        defer { lock.unlock() }
        return try body()
    }

    /// Deletes the bridge if this suite created it and nothing is attached any more.
    public static func removeIdleBridge(_ host: NetlinkSocket, name: String) {
        _ = try? withBridgeLock(name) {
            guard let br = try? host.link(named: name), br.kind == "bridge",
                  br.alias == bridgeAlias || br.mac?.hasPrefix(NetlinkSocket.bridgeMACPrefix) == true,
                  let ports = try? host.ports(of: br.index), ports.isEmpty
            else { return }
            _ = try? host.deleteLink(index: br.index)
        }
    }
}
