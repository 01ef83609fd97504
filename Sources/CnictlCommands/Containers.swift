import Base
import CNI
import CNIRuntime
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Netlink

/// Containers as named network namespaces, attached to networks through the CNI runtime.
struct Containers {
    let cni: CNIOptions
    let store: Store

    var networks: Networks { Networks(cni: cni, store: store) }

    /// The predefined network `bridge` (Docker's default bridge: no name resolution),
    /// created on first use.
    func ensureDefaultNetwork() throws {
        if networks.exists("bridge") { return }
        var spec = NetworkSpec(name: "bridge")
        spec.options = [(DockerOption.bridgeName, "swiftcni0")]
        // Docker's daemon option --icc=false: cnictl's config `"icc": false`.
        if store.config()["icc"] == "false" { spec.options.append((DockerOption.icc, "false")) }
        spec.dns = false
        let n = try networks.plan(spec)
        try networks.write(n, conflist: networks.conflist(n, kv: nil, underlay: nil, dns: false))
    }

    /// ADDs the container to `network` on its next free interface; records the endpoint. A
    /// stopped container only records it: `start` attaches it.
    @discardableResult
    func attach(_ c: inout ContainerRecord, network: String, ip: String?, ip6: String?, mac: String? = nil, aliases: [String], links: [String],
                ports: [PortSpec], gwPriority: Int = 0, timing: Timing? = nil) throws -> JSON {
        if c.endpoint(network) != nil { throw CLIError("container \(c.name) is already connected to network \(network)") }
        var ep = ContainerRecord.Endpoint(network: network, ifname: c.nextIfname, ip: ip, ip6: ip6, aliases: aliases, links: links, ports: ports)
        ep.mac = mac
        ep.gwPriority = gwPriority
        guard c.running else {
            _ = try cni.load(network)
            try Containers.validate(ep)
            c.endpoints.append(ep)
            try store.save(c)
            return .object(JSONObject())
        }
        let result = try add(c, ep, timing: timing)
        c.endpoints.append(ep)
        try store.save(c)
        if let o = resolvOverrides(c) { NetnsResolvConf.update(cni.runtime(), netns: c.netns, overrides: o) }
        // A second network's default route goes where --gw-priority says (the first's: as it is).
        if c.endpoints.count > 1 { try GatewayPriority(ctrs: self, store: store).apply(c) }
        // An isolated network's names live in its containers' hosts files.
        if isIsolated(network) { LegacyLinks(ctrs: self, store: store).refresh() }
        timing?.mark("attach: record")
        return result
    }

    static func validate(_ ep: ContainerRecord.Endpoint) throws {
        for a in [ep.ip, ep.ip6].compactMap({ $0 }) where IPAddress(a) == nil { throw CLIError("\"\(a)\" is not an IP address") }
        if let mac = ep.mac, MACAddress(mac) == nil { throw CLIError("\(mac) is not a valid mac address") }
    }

    /// The CNI ADD of an endpoint: its requested addresses and MAC, names, links and ports.
    func add(_ c: ContainerRecord, _ ep: ContainerRecord.Endpoint, timing: Timing? = nil) throws -> JSON {
        try Containers.validate(ep)
        let list = try cni.load(ep.network)
        var args: [(String, String)] = [("IgnoreUnknown", "1"), ("K8S_POD_NAME", c.name)]
        let ips = [ep.ip, ep.ip6].compactMap { $0 }
        if !ips.isEmpty { args.append(("IP", ips.joined(separator: ","))) }
        if let mac = ep.mac ?? ep.lastMAC { args.append(("MAC", mac)) }
        var caps = JSONObject()
        if !ep.aliases.isEmpty { caps["aliases"] = .object(JSONObject([(ep.network, .array(ep.aliases.map { .string($0) }))])) }
        if !ep.links.isEmpty { caps["links"] = .array(ep.links.map { .string($0) }) }
        if !ep.ports.isEmpty { caps["portMappings"] = .array(ep.ports.map(\.capability)) }
        // Capability dns (only dns-alias asks for it): the container's --dns servers.
        if !c.dns.nameservers.isEmpty { caps["dns"] = ["servers": .array(c.dns.nameservers.map { .string($0) })] }
        let rt = Runtime.Attachment(containerID: c.id, netns: c.netns, ifname: ep.ifname, args: args, capabilityArgs: caps)
        var runtime = cni.runtime()
        timing?.mark("attach: prepare")
        let result = try runtime.add(list, rt)
        timing?.plugins += runtime.steps.reduce(0) { $0 + $1.nanos }
        timing?.mark("attach: CNI ADD (plugins \(runtime.steps.map(\.type).joined(separator: ", ")))")
        return result
    }

    /// Gateway mode isolated in each of its families: no gateway, no embedded DNS.
    func isIsolated(_ network: String) -> Bool { ((try? store.network(network)) ?? nil)?.isIsolated ?? false }

    /// Whether the network answers names itself (its conflist chains dns-alias).
    func hasEmbeddedDNS(_ network: String) -> Bool {
        (try? cni.load(network))?.plugins.contains { $0["type"]?.stringValue == "dns-alias" } ?? false
    }

    /// What the container's --dns, --dns-search and --dns-option change in its resolv.conf.
    /// With a network of the embedded DNS the servers are not nameservers there: the
    /// embedded DNS forwards the container's other queries to them (as Docker's).
    func resolvOverrides(_ c: ContainerRecord) -> CNIDNS? {
        guard var o = c.dnsOverrides else { return nil }
        if c.endpoints.contains(where: { hasEmbeddedDNS($0.network) }) { o.nameservers = [] }
        return o == CNIDNS() ? nil : o
    }

    /// DELs the container from `network`. With `force`, a DEL that fails (broken state, a
    /// namespace gone) does not stop it: the endpoint is dropped and the network's plugins
    /// are asked to garbage-collect everything no known container holds.
    func detach(_ c: inout ContainerRecord, network: String, force: Bool) throws {
        guard let ep = c.endpoint(network) else { throw CLIError("container \(c.name) is not connected to network \(network)") }
        if c.running { try remove(c, ep, force: force) }
        c.endpoints.removeAll { $0.network == network }
        try store.save(c)
        if c.running {
            NetnsResolvConf.update(cni.runtime(), netns: c.netns, overrides: resolvOverrides(c))
            // The default route moves to the next network in priority.
            try? GatewayPriority(ctrs: self, store: store).apply(c)
            if isIsolated(network) { LegacyLinks(ctrs: self, store: store).refresh() }
        }
    }

    /// The CNI DEL of an endpoint (the record keeps it).
    func remove(_ c: ContainerRecord, _ ep: ContainerRecord.Endpoint, force: Bool) throws {
        let network = ep.network
        let rt = Runtime.Attachment(containerID: c.id, netns: c.netns, ifname: ep.ifname)
        do {
            let list = try cni.load(network)
            var runtime = cni.runtime()
            try runtime.del(list, rt)
        } catch {
            guard force else { throw error }
            var runtime = cni.runtime()
            try? FileManager.default.removeItem(atPath: runtime.cachePath(network, rt))
            if let list = try? cni.load(network) {
                let valid = store.containers().flatMap { o in
                    o.endpoints.filter { $0.network == network && !(o.id == c.id && $0.ifname == ep.ifname) }
                        .map { Base.Attachment(containerID: o.id, ifname: $0.ifname) }
                }
                try? runtime.gc(list, valid: valid)
            }
        }
    }

    /// Runs `body` on each container `refs` names, in order, under cnictl's lock (as
    /// `reporting` does: an error ends it with a one-line message), printing each one done
    /// (as given, or with `name` by its name).
    static func each(_ refs: [String], cni: CNIOptions, name: Bool = false, _ body: (Lifecycle, inout ContainerRecord) throws -> Void) throws {
        try reporting {
            let store = Store()
            let lock = try store.lock()
            defer { lock.unlock() }
            let l = Lifecycle(ctrs: Containers(cni: cni, store: store), store: store)
            for ref in refs {
                var c = try l.ctrs.find(ref)
                try body(l, &c)
                print(name ? c.name : ref)
            }
        }
    }

    /// Finds a container by name or ID prefix.
    func find(_ ref: String) throws -> ContainerRecord {
        if let c = try store.container(ref) { return c }
        let byID = store.containers().filter { $0.id.hasPrefix(ref) }
        if byID.count == 1 { return byID[0] }
        throw CLIError("no such container: \(ref)")
    }

    /// The cached CNI result of an endpoint.
    func result(_ c: ContainerRecord, _ ep: ContainerRecord.Endpoint) -> CNIResult? {
        let rt = Runtime.Attachment(containerID: c.id, netns: c.netns, ifname: ep.ifname)
        guard let o = cni.runtime().readCache(ep.network, rt), let r = o["result"] else { return nil }
        return try? CNIResult(json: r, path: "cached result")
    }
}

/// Where cnictl's time goes (for `--timing`).
final class Timing {
    let start = Posix.monotonicNanos()
    var plugins: UInt64 = 0
    var marks: [(String, UInt64)] = []
    func mark(_ s: String) { marks.append((s, Posix.monotonicNanos())) }

    func report(processStart: UInt64?) -> String {
        let end = Posix.monotonicNanos()
        let total = Double(end - start) / 1e6
        let plug = Double(plugins) / 1e6
        var s = "timing: command \(ms(total)) ms = plugin execs \(ms(plug)) ms + cnictl \(ms(total - plug)) ms"
        if let p = processStart { s += " (plus \(ms(Double(start - p) / 1e6)) ms from process start to the command)" }
        var last = start
        for (n, t) in marks {
            s += "\n  \(n): +\(ms(Double(t - last) / 1e6)) ms"
            last = t
        }
        return s
    }

    /// Two decimals.
    func ms(_ v: Double) -> String {
        let c = Int((v * 100).rounded())
        let frac = abs(c % 100)
        return "\(c / 100).\(frac < 10 ? "0" : "")\(frac)"
    }
}
