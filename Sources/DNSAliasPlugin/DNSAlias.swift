// The dns-alias plugin's logic: registers a container's name, network aliases and links with the host's DNS
// server (swiftcni-dns, started on demand from next to this plugin) and hands the container
// the gateway as its nameserver. Chained after `bridge` (it needs prevResult).
#if canImport(Glibc)
import Glibc
#endif
import Base
import CNI
import DNS
import Firewall

public struct DNSAliasConfig {
    var domain: String?
    var upstream: [DNSUpstream]?
    var ttl: UInt32 = 5
    var isInternal: Bool?
    var aliases: [String] = []
    var links: [DNSLink] = []
    var name: String?
    /// The container's own nameservers (capability `dns`, a runtime's `--dns`): the server
    /// forwards this container's other queries to them, as Docker's embedded DNS does.
    var servers: [DNSUpstream] = []

    public init(_ req: CNIRequest) throws(CNIError) {
        let c = req.config
        if let d = try c.string("domainName"), !d.isEmpty {
            guard DNSName.isHostname(d), let n = DNSName(d) else { throw c.invalid("domainName", "not a DNS name") }
            domain = n.key
        }
        if let ups = try c.stringArray("upstream") {
            var out: [DNSUpstream] = []
            for (i, u) in ups.enumerated() {
                guard let up = DNSUpstream(u) else {
                    throw CNIError(.invalidConfig, "\"upstream[\(i)]\" \"\(u)\": not an address (IP, IP:port or [IPv6]:port)")
                }
                out.append(up)
            }
            upstream = out
        }
        if let t = try c.int("ttl", in: 0...86400) { ttl = UInt32(t) }
        isInternal = try c.bool("internal")
        // The container's name: CNI_ARGS K8S_POD_NAME (Podman, dnsname), else runtimeConfig.name.
        let rc = try c.object("runtimeConfig")
        if let n = req.env.arg("K8S_POD_NAME"), !n.isEmpty {
            guard DNSName.isHostname(n) else { throw CNIError(.invalidEnvironment, "CNI_ARGS K8S_POD_NAME \"\(n)\": not usable as a DNS name") }
            name = n
        } else if let n = try rc?.string("name"), !n.isEmpty {
            guard DNSName.isHostname(n) else { throw rc!.invalid("name", "not usable as a DNS name") }
            name = n
        }
        // Aliases: a list (CNI conventions) or a map of network name to list (Podman).
        if let rc, let a = rc["aliases"] {
            var list: [JSON] = []
            switch a {
            case .array(let l): list = l
            case .object(let o): list = o[req.name]?.arrayValue ?? []
            case .null: break
            default: throw rc.typeError("aliases", expected: "a list of names or a map of network name to list", got: a)
            }
            for (i, v) in list.enumerated() {
                guard case .string(let s) = v else { throw JSONReader.typeError("runtimeConfig.aliases[\(i)]", expected: "a DNS name", got: v) }
                guard DNSName.isHostname(s) else {
                    throw CNIError(.invalidConfig, "\"runtimeConfig.aliases[\(i)]\" \(v.excerpt()): not a DNS name")
                }
                aliases.append(s)
            }
        }
        if let rc, let d = try rc.object("dns"), let ss = try d.stringArray("servers") {
            for (i, v) in ss.enumerated() {
                guard let up = DNSUpstream(v) else {
                    throw CNIError(.invalidConfig, "\"runtimeConfig.dns.servers[\(i)]\" \"\(v)\": not an address (IP, IP:port or [IPv6]:port)")
                }
                if !servers.contains(up) { servers.append(up) }
            }
        }
        if let rc, let ls = try rc.stringArray("links") {
            for (i, l) in ls.enumerated() {
                guard let link = DNSLink(l) else {
                    throw CNIError(.invalidConfig, "\"runtimeConfig.links[\(i)]\" \"\(l)\": expected \"container:alias\"")
                }
                links.append(link)
            }
        }
    }
}

public struct DNSAlias: CNIPlugin {
    public init() {}
    let state = DNSState()
    var control: DNSControl { DNSControl(state: state) }

    /// The server executable: next to this plugin.
    var serverPath: String {
        Posix.join(Posix.dirname(of: Posix.executablePath() ?? "/opt/cni/bin/dns-alias"), "swiftcni-dns")
    }

    var serverEnvironment: [String] {
        var env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "SWIFTCNI_RUN_DIR=\(SuitePaths.runDirectory)"]
        if let t = Posix.getenv("SWIFTCNI_DNS_THREADS") { env.append("SWIFTCNI_DNS_THREADS=\(t)") }
        return env
    }

    /// The host's resolvers (the default upstream).
    func hostResolvers() -> [DNSUpstream] {
        ResolvConf.host().nameservers.compactMap { DNSUpstream($0) }
    }

    /// Tells the server; starts it first when `start`. Returns false when no server runs
    /// and `start` is false.
    @discardableResult
    func notify(_ request: String, start: Bool) throws -> Bool {
        for attempt in 0..<2 {
            if start { try control.ensureServer(executable: serverPath, environment: serverEnvironment) }
            do {
                let reply = try control.request(request)
                guard reply.hasPrefix("ok") else {
                    throw CNIError(.dnsServer, "DNS server: \(reply.hasPrefix("error ") ? String(reply.dropFirst(6)) : reply)")
                }
                return true
            } catch is DNSControlUnavailable {
                // The server may have been exiting (idle) just as we asked: start a new one.
                if !start { return false }
                if attempt == 1 { throw CNIError(.dnsServer, "DNS server: not answering on \(state.controlSocket)") }
            }
        }
        return false
    }

    /// This host's records of a network (an overlay agent adds "remote~…" ones for
    /// containers on other hosts; they go with the network).
    static func localKeys(_ state: DNSState, _ network: String) throws -> [String] {
        try state.endpointKeys(network).filter { !$0.hasPrefix("remote~") }
    }

    public func add(_ req: CNIRequest) throws -> CNIResult {
        let cfg = try DNSAliasConfig(req)
        guard var result = try req.prevResult() else {
            throw CNIError(.invalidConfig, "dns-alias needs \"prevResult\": chain it after the plugin that creates the interface")
        }
        let ips = result.containerIPs
        var gateways: [IPAddress] = []
        for ip in ips { if let g = ip.gateway, !gateways.contains(g) { gateways.append(g) } }
        guard !gateways.isEmpty else {
            throw CNIError(.invalidConfig, "dns-alias: prevResult has no gateway address to serve DNS on (the bridge needs \"isGateway\": true)")
        }
        // Internal: as configured, else as the bridge plugin set up the network's firewall.
        var isInternal = cfg.isInternal
        if isInternal == nil { isInternal = (try? FirewallDriver().isInternal(network: req.name)) ?? nil }
        // The container's own gateways: the server listens on each while a container uses
        // it (a network of several subnets has one per subnet).
        let me = DNSEndpoint(network: req.name, containerID: req.containerID, ifname: req.ifname, name: cfg.name,
                             aliases: cfg.aliases, links: cfg.links, addresses: ips.map(\.address.address), gateways: gateways,
                             upstream: cfg.servers)
        let lock = try SuitePaths.lock("dns-" + req.name)
        defer { lock.unlock() }
        // A network new to the server is read whole (an overlay agent may have put the
        // records of other hosts' containers there already).
        let existing = try state.readNetwork(req.name)
        let fresh = existing == nil
        let known = (existing?.gateways ?? []).filter { !gateways.contains($0) }
        let net = DNSNetwork(name: req.name, domain: cfg.domain, gateways: known + gateways, isInternal: isInternal ?? false,
                             upstream: cfg.upstream ?? hostResolvers(), ttl: cfg.ttl)
        try state.writeNetwork(net)
        try state.writeEndpoint(me)
        do {
            try notify(fresh ? "update \(req.name)" : "update \(req.name) \(me.key)", start: true)
        } catch {
            _ = try? state.removeEndpoint(network: req.name, key: me.key)
            if (try? DNSAlias.localKeys(state, req.name))?.isEmpty ?? true { try? state.removeNetwork(req.name) }
            _ = try? notify("update \(req.name)", start: false)
            throw error
        }
        let ns = gateways.map(\.description)
        result.dns.nameservers = ns + result.dns.nameservers.filter { !ns.contains($0) }
        if let d = cfg.domain {
            result.dns.search = [d] + result.dns.search.filter { $0 != d }
            if result.dns.domain == nil { result.dns.domain = d }
        }
        return result
    }

    /// Needs nothing of the configuration: the record is found by network and attachment.
    public func del(_ req: CNIRequest) throws {
        let key = "\(req.containerID):\(req.ifname)"
        let lock = try SuitePaths.lock("dns-" + req.name)
        defer { lock.unlock() }
        guard try state.removeEndpoint(network: req.name, key: key) else { return }
        if try DNSAlias.localKeys(state, req.name).isEmpty {
            try state.removeNetwork(req.name)
            try notify("update \(req.name)", start: false)
        } else {
            try notify("update \(req.name) \(key)", start: false)
        }
    }

    public func check(_ req: CNIRequest) throws {
        _ = try DNSAliasConfig(req)
        guard let prev = try req.prevResult() else {
            throw CNIError(.invalidConfig, "\"prevResult\" is required for CHECK")
        }
        let key = "\(req.containerID):\(req.ifname)"
        guard let mine = try state.readEndpoint(network: req.name, key: key) else {
            throw CNIError(.checkFailed, "dns-alias: no DNS record for \(key) in network \(req.name)")
        }
        let want = Set(prev.containerAddresses)
        if Set(mine.addresses) != want {
            throw CNIError(.checkFailed, "dns-alias: the DNS record of \(key) holds \(mine.addresses.map(\.description).joined(separator: ", ")), the container has \(want.sorted().map(\.description).joined(separator: ", "))")
        }
        // A server that died is brought back (with every record on disk) before checking.
        try control.ensureServer(executable: serverPath, environment: serverEnvironment)
        let reply = try control.request("has \(req.name) \(key)")
        if !reply.hasPrefix("ok") {
            throw CNIError(.checkFailed, "dns-alias: \(reply)")
        }
    }

    public func gc(_ req: CNIRequest) throws {
        let valid = try req.validAttachments()
        let lock = try SuitePaths.lock("dns-" + req.name)
        defer { lock.unlock() }
        try state.removeTemporaries(network: req.name)
        var removed = false
        for key in try DNSAlias.localKeys(state, req.name) {
            let parts = key.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            if !valid.contains(Attachment(containerID: parts[0], ifname: parts[1])) {
                _ = try state.removeEndpoint(network: req.name, key: key)
                removed = true
            }
        }
        if try DNSAlias.localKeys(state, req.name).isEmpty { try state.removeNetwork(req.name) }
        if removed { try notify("update \(req.name)", start: false) }
    }

    public func status(_ req: CNIRequest) throws {
        _ = try DNSAliasConfig(req)
        guard Posix.isExecutableFile(serverPath) else {
            throw CNIError(.notAvailable, "DNS server \(serverPath) is missing (install it next to dns-alias)")
        }
        // Not running is fine (ADD starts it); running but not answering is not.
        if Posix.exists(state.controlSocket), !control.isRunning(), let pid = control.daemon.pid() {
            throw CNIError(.notAvailable, "DNS server (pid \(pid)) does not answer on \(state.controlSocket)")
        }
    }
}

