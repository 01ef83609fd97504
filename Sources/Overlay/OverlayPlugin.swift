// The overlay plugin: a bridge network (BridgeNetwork's logic, with IPAM in etcd) whose
// bridge also has a VXLAN port, and the container registered in etcd so that every host
// programs how to reach it.

#if canImport(Glibc)
import Glibc
#endif
import BridgeNetwork
import Base
import CNI
import DNS
import Etcd
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
            guard let d = try host.routes(family: .v4).first(where: { $0.dst.prefixLength == 0 && $0.effectiveTable == 254 }),
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

    /// The bridge plugin's request for this overlay network.
    static func bridgeRequest(_ req: CNIRequest, _ cfg: OverlayConfig, mtu: Int) throws -> CNIRequest {
        var o = req.config.object
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
        var ipam = cfg.ipam
        if ipam["etcd"] == nil { ipam["etcd"] = cfg.etcd.json }
        o["ipam"] = .object(ipam)
        let json = JSON.object(o)
        return try CNIRequest(env: req.env, configBytes: json.serializedBytes(), json: json)
    }

    /// Records the network's definition in etcd on its first ADD anywhere; later ADDs must
    /// match it. Another network may not use the same VNI or overlapping subnets.
    static func define(_ etcd: EtcdClient, _ keys: OverlayKeys, _ cfg: OverlayConfig) throws {
        let mine: JSON = ["vni": .int(Int(cfg.vni)), "subnets": .array(cfg.subnets.map { .string($0.description) })]
        if let existing = try etcd.get(keys.netconfig(cfg.network)) {
            guard let j = try? JSON.parse(existing.value), j["vni"]?.intValue == Int(cfg.vni) else {
                throw CNIError(.invalidConfig, "\"vni\" \(cfg.vni): network \(cfg.network) is defined in etcd with another VNI (\(existing.text))")
            }
            let theirs = Set((j["subnets"]?.arrayValue ?? []).compactMap(\.stringValue))
            if theirs != Set(cfg.subnets.map(\.description)) {
                throw CNIError(.invalidConfig, "\"ipam\": network \(cfg.network) is defined in etcd with subnets \(theirs.sorted().joined(separator: ", "))")
            }
            return
        }
        let (others, _) = try etcd.range(prefix: keys.netconfigs)
        for kv in others {
            let name = String(kv.key.dropFirst(keys.netconfigs.count))
            guard name != cfg.network, let j = try? JSON.parse(kv.value) else { continue }
            if j["vni"]?.intValue == Int(cfg.vni) {
                throw CNIError(.invalidConfig, "\"vni\" \(cfg.vni) is already used by overlay network \(name)")
            }
            for s in (j["subnets"]?.arrayValue ?? []).compactMap({ $0.stringValue.flatMap(IPNetwork.init) }) {
                if let clash = cfg.subnets.first(where: { $0.overlaps(s) }) {
                    throw CNIError(.invalidConfig, "\"ipam\": subnet \(clash) overlaps subnet \(s) of overlay network \(name)")
                }
            }
        }
        if !(try etcd.create(keys.netconfig(cfg.network), mine.serializedBytes())) {
            try define(etcd, keys, cfg)  // someone defined it meanwhile: compare with theirs
        }
    }

    /// The remote endpoints of `network` on hosts that are alive (their key exists), read
    /// as of one revision, and the newest revision among the keys read: an agent whose watch
    /// has followed etcd that far has seen every one of them (a store revision could be
    /// newer than any event under the prefix, and never be reached).
    public static func remoteEndpoints(_ etcd: EtcdClient, _ keys: OverlayKeys, network: String,
                                       me: String) throws -> (endpoints: [EndpointRecord], revision: Int64) {
        let (lists, _) = try etcd.snapshot([keys.hosts, keys.endpoints(network)])
        let rev = (lists[0] + lists[1]).map(\.modRevision).max() ?? 0
        let alive = Set(lists[0].compactMap { keys.parseHost($0.key) })
        let eps = lists[1].compactMap { kv -> EndpointRecord? in
            guard let ep = keys.parseEndpoint(kv.key), ep.host != me, alive.contains(ep.host) else { return nil }
            return EndpointRecord(network: network, bytes: kv.value)
        }
        return (eps, rev)
    }

    static var agentPath: String {
        Posix.join(Posix.dirname(of: Posix.executablePath() ?? "/opt/cni/bin/overlay"), "swiftcni-overlay-agent")
    }

    static var agent: Daemon { Daemon(root: OverlayLocal.agentRoot, role: .overlayAgent) }

    /// Writes the agent's settings (one etcd cluster per host) and makes sure it runs.
    static func ensureAgent(_ settings: OverlayLocal.AgentSettings) throws {
        if let existing = OverlayLocal.readAgentSettings(), existing != settings {
            if existing.etcd.endpoints != settings.etcd.endpoints || existing.etcd.prefix != settings.etcd.prefix {
                throw CNIError(.invalidConfig, "\"etcd\": this host's overlay networks use \(existing.etcd.endpoints.map(\.description).joined(separator: ",")) (prefix \(existing.etcd.prefix)); all overlay networks of a host must share one etcd cluster")
            }
        }
        if OverlayLocal.readAgentSettings() != settings {
            try Posix.makeDirectories(OverlayLocal.agentRoot)
            try Posix.writeFileAtomically(OverlayLocal.agentConfig, settings.json.serializedBytes(), mode: 0o600)
            // A running agent with other settings (a new VTEP address) restarts with these:
            // it is stopped, and gone (its lock free) before a new one starts.
            if let pid = agent.pid() {
                kill(pid, SIGTERM)
                let deadline = Posix.monotonicNanos() + 3_000_000_000
                while kill(pid, 0) == 0 && Posix.monotonicNanos() < deadline { usleep(2000) }
            }
        }
        var env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "SWIFTCNI_RUN_DIR=\(SuitePaths.runDirectory)",
                   "SWIFTCNI_STATE_DIR=\(SuitePaths.stateDirectory)"]
        if let h = Posix.getenv("SWIFTCNI_HOST_ID") { env.append("SWIFTCNI_HOST_ID=\(h)") }
        try agent.ensureRunning(executable: agentPath, arguments: [], environment: env)
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

    /// Asks the agent to program `network` once its view of etcd reached `revision`. An agent
    /// that died meanwhile (killed, or exiting as the last network left) is started again
    /// once, and asked again.
    static func syncAgent(network: String, revision: Int64, settings: OverlayLocal.AgentSettings) throws {
        var reply = ""
        for attempt in 0..<2 {
            do {
                reply = try agent.request("sync \(network) \(revision)", timeoutMs: 8000)
                break
            } catch let e as DaemonUnavailable {
                if attempt == 1 { throw CNIError(.overlayAgent, "overlay agent: \(e)") }
                try ensureAgent(settings)
            }
        }
        guard reply.hasPrefix("ok") else {
            let why = reply.hasPrefix("error ") ? String(reply.dropFirst(6)) : reply
            throw CNIError(why.contains("behind") ? .tryAgainLater : .overlayAgent, "overlay agent: \(why)")
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
        let mtu = cfg.mtu ?? (ul.mtu - 50)
        let breq = try OverlayPlugin.bridgeRequest(req, cfg, mtu: mtu)
        _ = try HostLocalConfig(breq)  // IPAM errors before anything is created
        PhaseTrace.mark("overlay config")
        let etcd = EtcdClient(cfg.etcd)
        let keys = OverlayKeys(cfg.etcd.prefix)
        let me = SuitePaths.hostID
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
            try OverlayPlugin.ensureAgent(agentSettings)
            PhaseTrace.mark("overlay agent")
            try OverlayPlugin.define(etcd, keys, cfg)
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
            let name = req.env.arg("K8S_POD_NAME").flatMap { $0.isEmpty ? nil : $0 } ?? req.runtimeConfig.flatMap { try? $0.string("name") }
            let record = EndpointRecord(network: req.name, host: me, containerID: req.containerID, ifname: req.ifname, vtep: vtep,
                                        mac: mac, ips: added.containerAddresses, name: name, aliases: OverlayPlugin.aliases(req))
            let rev = try etcd.put(keys.endpoint(req.name, host: me, containerID: req.containerID, ifname: req.ifname),
                                   record.json.serializedBytes())
            PhaseTrace.mark("overlay register")
            // Every endpoint registered before this one, programmed here by the agent from its
            // one consistent view of etcd (list, then watch from that revision) — never from a
            // second, separate read that could undo what the agent programmed since.
            try OverlayPlugin.syncAgent(network: req.name, revision: rev, settings: agentSettings)
            PhaseTrace.mark("overlay program")
            return added
        } catch {
            if result != nil {
                _ = try? etcd.delete(keys.endpoint(req.name, host: me, containerID: req.containerID, ifname: req.ifname))
                _ = try? Bridge().del(breq)
            }
            if created || (try? host.link(named: cfg.bridgeName)) == nil {
                if (try? OverlayPlugin.removeIdle(host, cfg)) == true { OverlayLocal.remove(req.name) }
            }
            throw error
        }
    }

    public func del(_ req: CNIRequest) throws {
        let cfg = try OverlayConfig(req)
        let host = try NetlinkSocket()
        let etcd = EtcdClient(cfg.etcd)
        let keys = OverlayKeys(cfg.etcd.prefix)
        let me = SuitePaths.hostID
        let ul = try? OverlayPlugin.underlay(cfg.underlay, host)
        let breq = try OverlayPlugin.bridgeRequest(req, cfg, mtu: cfg.mtu ?? ((ul?.0.mtu ?? 1500) - 50))
        // Local first (firewall, veth, then IPAM in etcd), then the endpoint: with etcd down
        // the container is gone locally, the idle devices go too, and DEL fails with code 11
        // so the runtime retries what is left.
        var t = try Bridge().teardown(breq)
        t.add("endpoint in etcd") {
            try etcd.delete(keys.endpoint(req.name, host: me, containerID: req.containerID, ifname: req.ifname))
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
        let breq = try OverlayPlugin.bridgeRequest(req, cfg, mtu: cfg.mtu ?? (ul.mtu - 50))
        try Bridge().check(breq)
        guard let vx = try host.vxlan(named: cfg.vxlanName), vx.vni == cfg.vni else {
            throw CNIError(.checkFailed, "VXLAN device \(cfg.vxlanName) (VNI \(cfg.vni)) is missing")
        }
        guard let br = try host.link(named: cfg.bridgeName), let l = try host.link(named: cfg.vxlanName), l.master == br.index else {
            throw CNIError(.checkFailed, "\(cfg.vxlanName) is not a port of \(cfg.bridgeName)")
        }
        let etcd = EtcdClient(cfg.etcd)
        let keys = OverlayKeys(cfg.etcd.prefix)
        let me = SuitePaths.hostID
        guard try etcd.get(keys.endpoint(req.name, host: me, containerID: req.containerID, ifname: req.ifname)) != nil else {
            throw CNIError(.checkFailed, "the endpoint of \(req.containerID) (\(req.ifname)) is not registered in etcd")
        }
        // The agent keeps remote entries current: it must run (it is started if not), and
        // have programmed at least what etcd holds now before the entries are compared.
        let settings = OverlayLocal.AgentSettings(etcd: cfg.etcd, host: me, vtep: vtep)
        try OverlayPlugin.ensureAgent(settings)
        let (remote, rev) = try OverlayPlugin.remoteEndpoints(etcd, keys, network: req.name, me: me)
        try OverlayPlugin.syncAgent(network: req.name, revision: rev, settings: settings)
        let fdb = Set(try host.fdb(index: l.index).map(\.mac))
        for r in remote where !fdb.contains(r.mac) {
            throw CNIError(.checkFailed, "no forwarding entry for \(r.containerID) (\(r.mac)) on host \(r.host)")
        }
    }

    public func gc(_ req: CNIRequest) throws {
        let cfg = try OverlayConfig(req)
        let host = try NetlinkSocket()
        let ul = try? OverlayPlugin.underlay(cfg.underlay, host)
        let breq = try OverlayPlugin.bridgeRequest(req, cfg, mtu: cfg.mtu ?? ((ul?.0.mtu ?? 1500) - 50))
        try Bridge().gc(breq)
        let valid = try req.validAttachments()
        let etcd = EtcdClient(cfg.etcd)
        let keys = OverlayKeys(cfg.etcd.prefix)
        let me = SuitePaths.hostID
        let (mine, _) = try etcd.range(prefix: keys.endpoints(req.name, host: me))
        for kv in mine {
            let id = String(kv.key.dropFirst(keys.endpoints(req.name, host: me).count))
            guard let c = id.lastIndex(of: ":") else { continue }
            if !valid.contains(Attachment(containerID: String(id[..<c]), ifname: String(id[id.index(after: c)...]))) {
                try etcd.delete(kv.key)
            }
        }
        if try OverlayPlugin.removeIdle(host, cfg) { OverlayLocal.remove(req.name) }
    }

    public func status(_ req: CNIRequest) throws {
        let cfg = try OverlayConfig(req)
        do { _ = try EtcdClient(cfg.etcd).get(OverlayKeys(cfg.etcd.prefix).netconfig(cfg.network)) } catch {
            throw CNIError(.notAvailable, "overlay: \(error)")
        }
        let host = try NetlinkSocket()
        let ul = try? OverlayPlugin.underlay(cfg.underlay, host)
        try Bridge().status(try OverlayPlugin.bridgeRequest(req, cfg, mtu: cfg.mtu ?? ((ul?.0.mtu ?? 1500) - 50)))
    }
}

extension CNIErrorCode {
    /// The overlay agent could not be started.
    public static let overlayAgent = CNIErrorCode(rawValue: 111)
}
