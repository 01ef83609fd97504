// The overlay plugin: a bridge network (BridgeNetwork's logic) whose bridge also has a VXLAN
// port. Everything cluster-wide — the container's addresses, the network's definition, the
// container's registration that makes every host program how to reach it — is asked of this
// host's agent (AgentClient); the plugin itself never talks to etcd.

#if canImport(Glibc)
import Glibc
#endif
import BridgeNetwork
import Base
import CNI
import DNS
import HostLocalIPAM
import IPAM
import Netlink

public struct OverlayPlugin: CNIPlugin {
    public init() {}
    public static var knownArgs: Set<String> { ["IP", "MAC"] }

    // MARK: pieces

    /// The underlay link and this host's VTEP address on it.
    static func underlay(_ spec: String?, _ host: NetlinkSocket) throws -> (LinkInfo, IPAddress) {
        if let spec, let a = IPAddress(spec) {
            for addr in try host.addresses() where addr.address.address == a {
                if let l = try host.link(index: addr.index) { return (l, a) }
            }
            throw CNIError(.hostAddressMissing, "\"underlay\" \"\(spec)\": no interface of this host has that address")
        }
        let link: LinkInfo
        if let spec {
            guard let l = try host.link(named: spec) else {
                throw CNIError(.invalidConfig, "\"underlay\" \"\(spec)\": no such interface on this host")
            }
            link = l
        } else {
            guard let d = try host.routes(family: .v4).first(where: \.isMainDefault),
                  let idx = d.outputIndex, let l = try host.link(index: idx) else {
                throw CNIError(.invalidConfig, "\"underlay\" is not set and this host has no default route to take it from")
            }
            link = l
        }
        let addrs = try host.addresses(index: link.index).map(\.address.address).filter { !$0.isLinkLocalV6 }
        guard let a = addrs.first(where: { $0.isV4 }) ?? addrs.first else {
            throw CNIError(.invalidConfig, "\"underlay\" \(link.name) has no address to send VXLAN from")
        }
        return (link, a)
    }

    /// The underlay's MTU less VXLAN's overhead: 50 bytes over IPv4, 70 over IPv6.
    static func defaultMTU(_ underlay: LinkInfo, _ vtep: IPAddress) -> Int { underlay.mtu - (vtep.isV4 ? 50 : 70) }

    /// The bridge plugin's request for this overlay network.
    static func bridgeRequest(_ req: CNIRequest, _ cfg: OverlayConfig, mtu: Int, mac: MACAddress? = nil) throws -> CNIRequest {
        var o = req.config.object
        // ADD chooses the container's MAC up front (unless the configuration has one), so its
        // endpoint is registered in the transaction that claims its addresses.
        if let mac, o["mac"] == nil { o["mac"] = .string(mac.description) }
        for k in ["vni", "underlay", "etcd", "ipMasq", "internal", "mtu", "hostFirewall"] { o[k] = nil }
        o["type"] = "bridge"
        o["bridge"] = .string(cfg.bridgeName)
        o["isGateway"] = true
        o["allSubnetGateways"] = true
        o["isDefaultGateway"] = .bool(!cfg.isInternal)
        o["ipMasq"] = .bool(cfg.ipMasq)
        o["internal"] = .bool(cfg.isInternal)
        o["mtu"] = .int(mtu)
        if let h = cfg.hostFirewall { o["hostFirewall"] = .string(h) }
        // Addresses come from the agent's store in etcd (AgentIPAM), not from an etcd section.
        var ipam = cfg.ipam
        ipam["etcd"] = nil
        o["ipam"] = .object(ipam)
        let json = JSON.object(o)
        return try CNIRequest(env: req.env, configBytes: json.serializedBytes(), json: json)
    }

    /// The network's definition (VNI, subnets): recorded cluster-wide by the agent on its
    /// first ADD anywhere; later ADDs must match it, and no other network may share its VNI
    /// or overlap its subnets (code 7 otherwise).
    static func define(_ cfg: OverlayConfig, _ settings: OverlayLocal.AgentSettings) throws {
        let body: JSON = ["network": .string(cfg.network), "vni": .int(Int(cfg.vni)),
                          "subnets": .array(cfg.subnets.map { .string($0.description) })]
        _ = try AgentClient.call("define", body, settings: settings)
    }

    /// The host-local IPAM of this process goes to the agent.
    static func routeIPAM() { Delegate.routed["host-local"] = AgentIPAM() }

    /// The agent's settings for this configuration: from the underlay, else (DEL, GC on a host
    /// whose underlay is gone) those the agent runs with, if for the same cluster.
    static func settings(_ cfg: OverlayConfig, underlay ul: (LinkInfo, IPAddress)?) -> OverlayLocal.AgentSettings? {
        if let (_, vtep) = ul {
            return OverlayLocal.AgentSettings(etcd: cfg.etcd, host: SuitePaths.hostID, vtep: vtep)
        }
        if let s = OverlayLocal.readAgentSettings(), s.etcd.endpoints == cfg.etcd.endpoints, s.etcd.prefix == cfg.etcd.prefix { return s }
        return nil
    }

    static func endpointKey(_ req: CNIRequest) -> JSON {
        ["network": .string(req.name), "containerID": .string(req.containerID), "ifname": .string(req.ifname)]
    }

    /// Creates the VXLAN device (or checks the one there) and makes it a port of the bridge.
    static func ensureVxlan(_ host: NetlinkSocket, _ cfg: OverlayConfig, underlay: LinkInfo, vtep: IPAddress, bridge: Int32,
                            mtu: Int) throws -> Bool {
        if let have = try host.vxlan(named: cfg.vxlanName) {
            if have.vni != cfg.vni {
                throw CNIError(.conflict, "\(cfg.vxlanName) exists with VNI \(have.vni), not \(cfg.vni)")
            }
            if let l = try host.link(named: cfg.vxlanName), l.master != bridge || !l.isUp {
                try host.setLink(index: l.index, LinkSettings(up: true, master: bridge))
            }
            return false
        }
        try host.addVxlan(name: cfg.vxlanName, vni: cfg.vni, local: vtep, underlay: underlay.index,
                          settings: LinkSettings(mtu: mtu, alias: "swiftcni overlay \(cfg.network)"))
        guard let l = try host.link(named: cfg.vxlanName) else { throw CNIError(.kernel, "\(cfg.vxlanName) vanished right after it was created") }
        // A bridge port needs no IPv6 link-local address (set while down; best effort).
        try? host.setLink(index: l.index, LinkSettings(noIPv6LinkLocal: true))
        try host.setLink(index: l.index, LinkSettings(up: true, master: bridge))
        // Frames for unknown destinations are not flooded to the VXLAN port's learning.
        try host.setBridgePort(index: l.index, learning: false)
        return true
    }

    /// Removes the VXLAN device and the bridge when no container is left on the bridge.
    static func removeIdle(_ host: NetlinkSocket, _ cfg: OverlayConfig) throws -> Bool {
        try Bridge.withBridgeLock(cfg.bridgeName) {
            guard let br = try host.link(named: cfg.bridgeName) else {
                if let vx = try host.link(named: cfg.vxlanName) { _ = try host.deleteLink(index: vx.index) }
                return true
            }
            let ports = try host.ports(of: br.index)
            guard ports.allSatisfy({ $0.name == cfg.vxlanName }) else { return false }
            for p in ports { _ = try host.deleteLink(index: p.index) }
            _ = try host.deleteLink(index: br.index)
            return true
        }
    }

    static func aliases(_ req: CNIRequest) -> [String] {
        guard let a = req.runtimeConfig?["aliases"] else { return [] }
        switch a {
        case .array(let l): return l.compactMap(\.stringValue)
        case .object(let o): return o[req.name]?.arrayValue?.compactMap(\.stringValue) ?? []
        default: return []
        }
    }

    // MARK: CNI

    public func add(_ req: CNIRequest) throws -> CNIResult {
        let cfg = try OverlayConfig(req)
        let host = try NetlinkSocket()
        let (ul, vtep) = try OverlayPlugin.underlay(cfg.underlay, host)
        let mtu = cfg.mtu ?? OverlayPlugin.defaultMTU(ul, vtep)
        let breq = try OverlayPlugin.bridgeRequest(req, cfg, mtu: mtu, mac: MACAddress.random())
        _ = try HostLocalConfig(breq)  // IPAM errors before anything is created
        PhaseTrace.mark("overlay config")
        OverlayPlugin.routeIPAM()
        let me = SuitePaths.hostID
        let name = req.env.arg("K8S_POD_NAME").flatMap { $0.isEmpty ? nil : $0 } ?? req.runtimeConfig.flatMap { try? $0.string("name") }
        // The endpoint as registered with the addresses, if the MAC stays the configuration's
        // (CNI_ARGS, args or runtimeConfig may name another: then it is registered again).
        let preMAC = (try? breq.config.string("mac")).flatMap { $0 }.flatMap(MACAddress.init)
        let pre = preMAC.map {
            EndpointRecord(network: req.name, host: me, containerID: req.containerID, ifname: req.ifname, vtep: vtep,
                           mac: $0, ips: [], name: name, aliases: OverlayPlugin.aliases(req))
        }
        AgentIPAM.record = pre
        let agentSettings = OverlayLocal.AgentSettings(etcd: cfg.etcd, host: me, vtep: vtep)
        // The network is on this host from now on: the agent, idle without one, stays while
        // this ADD is on its way. Undone below when the ADD fails and leaves no container of
        // the network here (and written again once the VXLAN port exists, in case a failing
        // ADD of the same network undid it meanwhile).
        try OverlayLocal.write(cfg)
        var result: CNIResult? = nil
        var created = false
        do {
            // The host's agent first: one of another namespace fails the ADD before anything
            // is written to etcd.
            try AgentClient.ensureAgent(agentSettings)
            PhaseTrace.mark("overlay agent")
            try OverlayPlugin.define(cfg, agentSettings)
            PhaseTrace.mark("overlay define")
            let added = try Bridge().add(breq)
            result = added
            PhaseTrace.mark("overlay bridge")
            guard let br = try host.link(named: cfg.bridgeName) else { throw CNIError(.kernel, "bridge \(cfg.bridgeName) vanished") }
            created = try Bridge.withBridgeLock(cfg.bridgeName) {
                // The gateways of every subnet, not just this container's.
                let have = Set(try host.addresses(index: br.index).map(\.address))
                for g in cfg.gateways where !have.contains(g) {
                    do { try host.addAddress(index: br.index, g, noDAD: true) } catch let e as NetlinkError { if e.errno != EEXIST { throw e } }
                }
                return try OverlayPlugin.ensureVxlan(host, cfg, underlay: ul, vtep: vtep, bridge: br.index, mtu: mtu)
            }
            try OverlayLocal.write(cfg)
            guard let cont = added.interfaces.first(where: { $0.name == req.ifname && $0.sandbox == req.netns }),
                  let mac = cont.mac.flatMap(MACAddress.init) else {
                throw CNIError(.internal, "the bridge result has no container interface")
            }
            let record = EndpointRecord(network: req.name, host: me, containerID: req.containerID, ifname: req.ifname, vtep: vtep,
                                        mac: mac, ips: added.containerAddresses, name: name, aliases: OverlayPlugin.aliases(req))
            // The agent answers once it has programmed every endpoint registered before this
            // one, from its one consistent view of etcd (list, then watch from that revision)
            // — never from a second, separate read that could undo what it programmed since.
            var registered = pre
            registered?.ips = record.ips
            if registered == record, let rev = AgentIPAM.revision {
                _ = try AgentClient.call("register", ["network": .string(req.name), "revision": .int(Int(rev))], settings: agentSettings)
            } else {
                _ = try AgentClient.call("register", ["network": .string(req.name), "record": record.json], settings: agentSettings)
            }
            PhaseTrace.mark("overlay register")
            return added
        } catch {
            // The endpoint went in with the addresses (undone by the bridge's own undo, or here).
            if result != nil || AgentIPAM.revision != nil {
                _ = try? AgentClient.call("deregister", OverlayPlugin.endpointKey(req), settings: agentSettings)
            }
            if result != nil { _ = try? Bridge().del(breq) }
            if created || (try? host.link(named: cfg.bridgeName)) == nil {
                if (try? OverlayPlugin.removeIdle(host, cfg)) == true { OverlayLocal.remove(req.name) }
            }
            throw error
        }
    }

    public func del(_ req: CNIRequest) throws {
        let cfg = try OverlayConfig(req)
        let host = try NetlinkSocket()
        let ul = try? OverlayPlugin.underlay(cfg.underlay, host)
        let breq = try OverlayPlugin.bridgeRequest(req, cfg, mtu: cfg.mtu ?? ((ul?.0.mtu ?? 1500) - 50))
        OverlayPlugin.routeIPAM()
        let settings = OverlayPlugin.settings(cfg, underlay: ul)
        // Local first (firewall, veth, then the addresses, which the agent releases in etcd),
        // then the endpoint: with etcd down the container is gone locally, the idle devices
        // go too, and DEL fails with code 11 so the runtime retries what is left.
        var t = try Bridge().teardown(breq)
        t.add("endpoint in etcd") {
            _ = try AgentClient.call("deregister", OverlayPlugin.endpointKey(req), settings: settings)
        }
        t.add("idle overlay devices") {
            if try OverlayPlugin.removeIdle(host, cfg) {
                OverlayLocal.remove(req.name)
                _ = try? OverlayProgramming.writeDNS(DNSState(), network: req.name, remote: [])
            }
        }
        try t.run()
    }

    public func check(_ req: CNIRequest) throws {
        let cfg = try OverlayConfig(req)
        let host = try NetlinkSocket()
        let (ul, vtep) = try OverlayPlugin.underlay(cfg.underlay, host)
        let breq = try OverlayPlugin.bridgeRequest(req, cfg, mtu: cfg.mtu ?? OverlayPlugin.defaultMTU(ul, vtep))
        OverlayPlugin.routeIPAM()
        // The agent keeps remote entries current: it must run (it is started if not).
        let settings = OverlayLocal.AgentSettings(etcd: cfg.etcd, host: SuitePaths.hostID, vtep: vtep)
        try AgentClient.ensureAgent(settings)
        try Bridge().check(breq)
        guard let vx = try host.vxlan(named: cfg.vxlanName), vx.vni == cfg.vni else {
            throw CNIError(.checkFailed, "VXLAN device \(cfg.vxlanName) (VNI \(cfg.vni)) is missing")
        }
        guard let br = try host.link(named: cfg.bridgeName), let l = try host.link(named: cfg.vxlanName), l.master == br.index else {
            throw CNIError(.checkFailed, "\(cfg.vxlanName) is not a port of \(cfg.bridgeName)")
        }
        // The agent checks the registration and, once it has programmed at least what etcd
        // holds now, names the remote endpoints whose entries must be there.
        let remote = try AgentClient.call("check", OverlayPlugin.endpointKey(req), settings: settings)["remote"]?.arrayValue ?? []
        let fdb = Set(try host.fdb(index: l.index).map(\.mac))
        for r in remote {
            guard let mac = r["mac"]?.stringValue.flatMap(MACAddress.init) else { continue }
            if !fdb.contains(mac) {
                throw CNIError(.checkFailed, "no forwarding entry for \(r["containerID"]?.stringValue ?? "?") (\(mac)) on host \(r["host"]?.stringValue ?? "?")")
            }
        }
    }

    public func gc(_ req: CNIRequest) throws {
        let cfg = try OverlayConfig(req)
        let host = try NetlinkSocket()
        let ul = try? OverlayPlugin.underlay(cfg.underlay, host)
        let breq = try OverlayPlugin.bridgeRequest(req, cfg, mtu: cfg.mtu ?? ((ul?.0.mtu ?? 1500) - 50))
        OverlayPlugin.routeIPAM()
        let settings = OverlayPlugin.settings(cfg, underlay: ul)
        if let settings { try AgentClient.ensureAgent(settings) }
        try Bridge().gc(breq)
        let valid = try req.validAttachments()
        let body: JSON = ["network": .string(req.name),
                          "valid": .array(valid.map { ["containerID": .string($0.containerID), "ifname": .string($0.ifname)] })]
        _ = try AgentClient.call("gc", body, settings: settings)
        if try OverlayPlugin.removeIdle(host, cfg) { OverlayLocal.remove(req.name) }
    }

    public func status(_ req: CNIRequest) throws {
        let cfg = try OverlayConfig(req)
        let host = try NetlinkSocket()
        let ul = try? OverlayPlugin.underlay(cfg.underlay, host)
        OverlayPlugin.routeIPAM()
        guard let settings = OverlayPlugin.settings(cfg, underlay: ul) else {
            throw CNIError(.notAvailable, "overlay: \"underlay\" \(cfg.underlay ?? "(the default route's interface)") has no address")
        }
        do {
            try AgentClient.ensureAgent(settings)
            _ = try AgentClient.call("health", ["network": .string(cfg.network)], settings: settings)
        } catch let e as CNIError where e.code != .invalidConfig {
            throw CNIError(.notAvailable, "overlay: \(e.msg)")
        }
        try Bridge().status(try OverlayPlugin.bridgeRequest(req, cfg, mtu: cfg.mtu ?? ((ul?.0.mtu ?? 1500) - 50)))
    }
}
