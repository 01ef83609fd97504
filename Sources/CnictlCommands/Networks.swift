import Base
import Firewall
import CNI
import CNIRuntime
import EtcdSettings
import HostLocalIPAM
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Netlink

/// Docker's network options (`-o`) that cnictl understands.
enum DockerOption {
    static let bridgeName = "com.docker.network.bridge.name"
    static let masquerade = "com.docker.network.bridge.enable_ip_masquerade"
    static let icc = "com.docker.network.bridge.enable_icc"
    static let hostBinding = "com.docker.network.bridge.host_binding_ipv4"
    static let mtu = "com.docker.network.driver.mtu"
    static let gatewayModeV4 = "com.docker.network.bridge.gateway_mode_ipv4"
    static let gatewayModeV6 = "com.docker.network.bridge.gateway_mode_ipv6"
    static let vxlanID = "com.docker.network.driver.overlay.vxlanid_list"
    static let underlay = "swiftcni.overlay.underlay"
    static let bridgeKeys: Set<String> = [bridgeName, masquerade, icc, hostBinding, mtu, gatewayModeV4, gatewayModeV6]
    static let overlayKeys: Set<String> = [mtu, vxlanID, underlay]

    /// The gateway mode `options` give the family (nil: none, or not one).
    static func gatewayMode(_ f: IPFamily, in options: [(String, String)]) -> GatewayMode? {
        let key = f == .v4 ? gatewayModeV4 : gatewayModeV6
        return options.first { $0.0 == key }.flatMap { GatewayMode(rawValue: $0.1) }
    }
}

/// What `network create` was asked for.
struct NetworkSpec {
    var name: String
    var driver = "bridge"
    var subnets: [IPNetwork] = []
    var gateways: [IPAddress] = []
    var ipRanges: [IPNetwork] = []
    var aux: [(String, IPAddress)] = []
    var isInternal = false
    var ipv6 = false
    var ipv4 = true
    var options: [(String, String)] = []
    var labels: [(String, String)] = []
    var force = false
    var kv: [String] = []
    /// Networks predefined by cnictl (the default "bridge") get no DNS, as Docker's.
    var dns = true
}

struct Networks {
    let cni: CNIOptions
    let store: Store

    var confDir: String { cni.resolvedConfDir }

    /// Every network of the conf dir with its subnets (whoever made it).
    func all() -> [(name: String, subnets: [IPNetwork], driver: String)] {
        var out: [(String, [IPNetwork], String)] = []
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: confDir)) ?? []).sorted()
        for f in files where f.hasSuffix(".conflist") || f.hasSuffix(".conf") || f.hasSuffix(".json") {
            guard let b = try? Posix.readFile(Posix.join(confDir, f)), let list = try? Conflist(bytes: b, path: f) else { continue }
            var subs: [IPNetwork] = []
            for p in list.plugins {
                guard let ipam = p["ipam"]?.objectValue else { continue }
                for set in ipam["ranges"]?.arrayValue ?? [] {
                    for r in set.arrayValue ?? [] { if let s = r["subnet"]?.stringValue.flatMap(IPNetwork.init) { subs.append(s.network) } }
                }
                if let s = ipam["subnet"]?.stringValue.flatMap(IPNetwork.init) { subs.append(s.network) }
            }
            out.append((list.name, subs, list.plugins.first?["type"]?.stringValue ?? "?"))
        }
        return out
    }

    func exists(_ name: String) -> Bool {
        all().contains { $0.name == name } || (try? store.network(name)) != nil
    }

    /// The host's routes (of the namespace cnictl runs in) that a new subnet must not overlap.
    func hostRoutes() -> [IPNetwork] {
        guard let s = try? NetlinkSocket() else { return [] }
        return ((try? s.routes(family: .v4)) ?? []).map(\.dst).filter { $0.prefixLength > 0 }
    }

    /// A free private IPv4 subnet: Docker's default pools (172.17–31.0.0/16, then
    /// 192.168.x.0/20), skipping what other networks and the host's routes use.
    func freeSubnet(overlay: Bool) throws -> IPNetwork {
        let used = all().flatMap(\.subnets) + hostRoutes()
        var candidates: [IPNetwork] = []
        if overlay {
            for i in 0..<256 { candidates.append(IPNetwork("10.\(i).0.0/24")!) }
        } else {
            for i in 17...31 { candidates.append(IPNetwork("172.\(i).0.0/16")!) }
            for i in stride(from: 0, to: 256, by: 16) { candidates.append(IPNetwork("192.168.\(i).0/20")!) }
        }
        guard let free = candidates.first(where: { c in !used.contains { $0.overlaps(c) } }) else {
            throw CLIError("no free private subnet left; give one with --subnet")
        }
        return free
    }

    /// Validates a spec and turns it into a record (IDs, pools, defaults).
    func plan(_ spec0: NetworkSpec) throws -> NetworkRecord {
        var spec = spec0
        let nameOK = isDockerName(spec.name) && spec.name.utf8.count <= 64
        guard nameOK else { throw CLIError("invalid network name \"\(spec.name)\": use letters, digits, '_', '.', '-' (starting with a letter or digit)") }
        guard ["bridge", "overlay"].contains(spec.driver) else { throw CLIError("driver \"\(spec.driver)\" is not supported (bridge, overlay)") }
        if exists(spec.name) { throw CLIError("network with name \(spec.name) already exists") }
        let allowed = spec.driver == "bridge" ? DockerOption.bridgeKeys : DockerOption.overlayKeys
        for (k, v) in spec.options {
            guard allowed.contains(k) else {
                throw CLIError("option \(k) is not supported by the \(spec.driver) driver (supported: \(allowed.sorted().joined(separator: ", ")))")
            }
            switch k {
            case DockerOption.masquerade, DockerOption.icc:
                guard v == "true" || v == "false" else { throw CLIError("option \(k)=\(v): expected true or false") }
            case DockerOption.hostBinding:
                guard let a = IPAddress(v), a.isV4 else { throw CLIError("option \(k)=\(v): not an IPv4 address") }
            case DockerOption.mtu:
                guard let m = Int(v), (576...65000).contains(m) else { throw CLIError("option \(k)=\(v): MTU must be 576-65000") }
            case DockerOption.bridgeName:
                if let why = CNIEnvironment.interfaceNameProblem(v) { throw CLIError("option \(k)=\(v): \(why)") }
            case DockerOption.gatewayModeV4, DockerOption.gatewayModeV6:
                // Docker's words.
                guard let m = GatewayMode(rawValue: v) else { throw CLIError("failed to parse \(k) value: \(v) (unknown gateway mode \(v))") }
                if m == .isolated && !spec.isInternal {
                    throw CLIError("gateway mode 'isolated' can only be used for an internal network")
                }
            case DockerOption.vxlanID:
                guard let n = Int(v), (1...16_777_215).contains(n) else { throw CLIError("option \(k)=\(v): VNI must be 1-16777215") }
            default: break
            }
        }
        if !spec.ipv4 {
            // Docker's IPv6-only network (--ipv6 --ipv4=false).
            if !spec.ipv6 { throw CLIError("IPv4 or IPv6 must be enabled") }
            if let s = spec.subnets.first(where: { $0.family == .v4 }) {
                throw CLIError("IPv4 subnet \(s) given, but IPv4 is disabled (--ipv4=false)")
            }
        }
        if spec.subnets.isEmpty && spec.ipv4 {
            if !spec.gateways.isEmpty || !spec.ipRanges.isEmpty || !spec.aux.isEmpty {
                throw CLIError("--gateway, --ip-range and --aux-address need --subnet")
            }
            spec.subnets = [try freeSubnet(overlay: spec.driver == "overlay")]
        }
        let v4 = spec.subnets.filter { $0.family == .v4 }, v6 = spec.subnets.filter { $0.family == .v6 }
        if spec.driver == "bridge" && (v4.count > 1 || v6.count > 1) {
            throw CLIError("the bridge driver takes one IPv4 subnet (and one IPv6 subnet with --ipv6); several subnets need -d overlay")
        }
        if !v6.isEmpty && !spec.ipv6 { throw CLIError("IPv6 subnet \(v6[0]) needs --ipv6") }
        if spec.ipv6 && v6.isEmpty {
            var g = SystemRandomNumberGenerator()
            let r = UInt128(g.next() & 0xFF_FFFF_FFFF) << 80
            spec.subnets.append(IPNetwork(address: IPAddress(v6: (UInt128(0xFD) << 120) | r), prefixLength: 64)!)
        }
        for (i, a) in spec.subnets.enumerated() {
            if a.hasHostBits { throw CLIError("subnet \(a) has host bits set (did you mean \(a.network)?)") }
            for b in spec.subnets[(i + 1)...] where a.overlaps(b) { throw CLIError("subnets \(a) and \(b) overlap") }
        }
        if !spec.force {
            for other in all() {
                for s in spec.subnets {
                    if let o = other.subnets.first(where: { $0.overlaps(s) }) {
                        throw CLIError("subnet \(s) overlaps \(o) of network \(other.name) (use --force to create it anyway)")
                    }
                }
            }
        }
        var pools = spec.subnets.map { IPAMPool(subnet: $0, gateway: nil, ipRange: nil, aux: []) }
        for g in spec.gateways {
            guard let i = pools.firstIndex(where: { $0.subnet.contains(g) }) else {
                throw CLIError("gateway \(g) is not in any subnet (\(spec.subnets.map(\.description).joined(separator: ", ")))")
            }
            if pools[i].gateway != nil { throw CLIError("subnet \(pools[i].subnet) has two gateways") }
            if g == pools[i].subnet.networkAddress || (g.isV4 && g == pools[i].subnet.lastAddress) {
                throw CLIError("gateway \(g) is the network or broadcast address of \(pools[i].subnet)")
            }
            pools[i].gateway = g
        }
        for r in spec.ipRanges {
            guard let i = pools.firstIndex(where: { $0.subnet.contains(r.networkAddress) && $0.subnet.contains(r.lastAddress) }) else {
                throw CLIError("ip-range \(r) is not inside any subnet (\(spec.subnets.map(\.description).joined(separator: ", ")))")
            }
            if pools[i].ipRange != nil { throw CLIError("subnet \(pools[i].subnet) has two ip-ranges") }
            pools[i].ipRange = r
        }
        for (n, a) in spec.aux {
            guard let i = pools.firstIndex(where: { $0.subnet.contains(a) }) else {
                throw CLIError("aux-address \(n)=\(a) is not in any subnet")
            }
            pools[i].aux.append((n, a))
        }
        // An isolated family has no gateway (Docker allocates none).
        for i in pools.indices {
            if DockerOption.gatewayMode(pools[i].subnet.family, in: spec.options) == .isolated {
                if let g = pools[i].gateway { throw CLIError("gateway \(g): subnet \(pools[i].subnet) has gateway mode 'isolated', which has no gateway") }
            } else if pools[i].gateway == nil {
                pools[i].gateway = pools[i].subnet.networkAddress.next()
            }
        }
        var vni: Int? = nil
        if spec.driver == "overlay" {
            if let v = spec.options.first(where: { $0.0 == DockerOption.vxlanID }).map({ Int($0.1)! }) { vni = v } else {
                let used = Set(store.networks().compactMap(\.vni))
                vni = (4096...).first { !used.contains($0) }
            }
        }
        var record = NetworkRecord(name: spec.name, id: randomID(), created: nowTimestamp(), driver: spec.driver, ipv6: spec.ipv6,
                                   isInternal: spec.isInternal, pools: pools, options: spec.options, labels: spec.labels, vni: vni)
        record.ipv4 = spec.ipv4
        record.hostFirewall = Networks.hostFirewall(for: spec.name)
        return record
    }

    /// On a host whose iptables FORWARD chains drop by policy (any host running Docker), the
    /// network's traffic must be accepted there: the bridge's `hostFirewall` "iptables"
    /// (its rules go with the network's last container). Says so in one line. A dropping
    /// forward chain of another table is only reported: its owner's rules must admit the traffic.
    static func hostFirewall(for network: String) -> String? {
        guard let drops = try? FirewallDriver().foreignForwardDrops(), !drops.isEmpty else { return nil }
        let names = drops.map { "\($0.family.map(\.description) ?? "?") \($0.table) \($0.name)" }.joined(separator: ", ")
        let iptables = Set(Plan.iptablesForward.map(\.name))
        if drops.allSatisfy({ iptables.contains($0.table) && $0.name == "FORWARD" }) {
            Posix.writeStderr("cnictl: this host's \(names) chain drops forwarded traffic (as on a Docker host): network \(network) accepts its own in iptables' FORWARD chains (\"hostFirewall\": \"iptables\")\n")
            return HostFirewallMode.iptables.rawValue
        }
        Posix.writeStderr("cnictl: warning: this host's \(names) chain drops forwarded traffic by policy; network \(network)'s containers are refused (code 108) unless rules there accept it\n")
        return nil
    }

    /// The conflist of a network record.
    func conflist(_ n: NetworkRecord, kv: EtcdConfig?, underlay: String?, dns: Bool) -> JSON {
        let v4 = n.pools.filter { $0.subnet.family == .v4 }, v6 = n.pools.filter { $0.subnet.family == .v6 }
        func range(_ p: IPAMPool) -> JSON {
            var o: [(String, JSON)] = [("subnet", .string(p.subnet.description))]
            if let g = p.gateway { o.append(("gateway", .string(g.description))) }
            if let r = p.ipRange { o.append(("ipRange", .string(r.description))) }
            return .object(JSONObject(o))
        }
        // cnictl's networks keep their allocations under its state root (as Docker keeps
        // its own), so they survive restarts and stay apart from other tools' networks.
        var ipam: [(String, JSON)] = [("type", "host-local"), ("dataDir", .string(Posix.join(SuitePaths.stateDirectory, "ipam")))]
        if n.driver == "overlay" {
            // Docker's several subnets: several ranges of one range set (one address each).
            ipam.append(("ranges", .array((v4.isEmpty ? [] : [.array(v4.map(range))]) + (v6.isEmpty ? [] : [.array(v6.map(range))]))))
        } else {
            ipam.append(("ranges", .array(v4.map { .array([range($0)]) } + v6.map { .array([range($0)]) })))
        }
        let aux = n.pools.flatMap(\.aux)
        if !aux.isEmpty { ipam.append(("auxAddresses", .object(JSONObject(aux.map { ($0.0, .string($0.1.description)) })))) }

        var plugins: [JSON] = []
        let mtu = n.option(DockerOption.mtu).flatMap { Int($0) }
        if n.driver == "bridge" {
            var b: [(String, JSON)] = [
                ("type", "bridge"), ("bridge", .string(n.option(DockerOption.bridgeName) ?? "br-" + n.id.prefix(12))),
                ("isGateway", true), ("isDefaultGateway", .bool(!n.isInternal)),
                ("ipMasq", .bool(!n.isInternal && n.option(DockerOption.masquerade) != "false")),
                ("icc", .bool(n.option(DockerOption.icc) != "false")), ("internal", .bool(n.isInternal)),
            ]
            if let m = n.option(DockerOption.gatewayModeV4) { b.append(("gatewayModeIPv4", .string(m))) }
            if let m = n.option(DockerOption.gatewayModeV6) { b.append(("gatewayModeIPv6", .string(m))) }
            if let h = n.hostFirewall { b.append(("hostFirewall", .string(h))) }
            if let mtu { b.append(("mtu", .int(mtu))) }
            b.append(("ipam", .object(JSONObject(ipam))))
            b.append(("capabilities", ["ips": true, "mac": true]))
            plugins.append(.object(JSONObject(b)))
            var pm: [(String, JSON)] = [("type", "portmap"), ("capabilities", ["portMappings": true])]
            if let h = n.option(DockerOption.hostBinding) { pm.append(("hostBindingIPv4", .string(h))) }
            plugins.append(.object(JSONObject(pm)))
        } else {
            var o: [(String, JSON)] = [("type", "overlay"), ("vni", .int(n.vni ?? 4096))]
            if let u = underlay { o.append(("underlay", .string(u))) }
            if let mtu { o.append(("mtu", .int(mtu))) }
            if let kv { o.append(("etcd", kv.json)) }
            o.append(("internal", .bool(n.isInternal)))
            if let h = n.hostFirewall { o.append(("hostFirewall", .string(h))) }
            o.append(("ipam", .object(JSONObject(ipam))))
            o.append(("capabilities", ["ips": true, "aliases": true]))
            plugins.append(.object(JSONObject(o)))
        }
        // The embedded DNS listens on the network's gateways: an isolated network has none.
        if dns && !n.isIsolated {
            // dns: a container's --dns servers, the embedded DNS's upstreams for it.
            plugins.append(["type": "dns-alias", "capabilities": ["aliases": true, "links": true, "dns": true]])
        }
        return ["cniVersion": "1.1.0", "name": .string(n.name), "plugins": .array(plugins)]
    }

    /// etcd settings for overlay networks: --kv etcd://host:port,… or cnictl's config
    /// ("kv"); TLS with Docker's --cluster-store-opt names, from --kv-opt or the config
    /// ("kv.cacertfile", "kv.certfile", "kv.keyfile"): with any of them the members are
    /// reached over TLS (mutual TLS with a certificate and key).
    func kvConfig(_ kv: [String], options: [(String, String)] = []) throws -> EtcdConfig {
        let stored = store.config()
        var eps = kv.flatMap { $0.split(separator: ",").map(String.init) }
        if eps.isEmpty, let c = stored["kv"] { eps = c.split(separator: ",").map(String.init) }
        guard !eps.isEmpty else {
            throw CLIError("an overlay network needs a key-value store: --kv etcd://HOST:PORT[,…] (or \"kv\" in \(store.configFile))")
        }
        var tls: [String: String] = [:]
        for k in ["kv.cacertfile", "kv.certfile", "kv.keyfile"] { tls[k] = stored[k] }
        for (k, v) in options {
            guard ["kv.cacertfile", "kv.certfile", "kv.keyfile"].contains(k) else {
                throw CLIError("--kv-opt \(k): expected kv.cacertfile, kv.certfile or kv.keyfile")
            }
            tls[k] = v
        }
        for (k, f) in tls.sorted(by: { $0.key < $1.key }) where !(f.hasPrefix("/") && Posix.isReadable(f)) {
            throw CLIError("--kv-opt \(k)=\(f): not a readable file (an absolute path)")
        }
        if (tls["kv.certfile"] == nil) != (tls["kv.keyfile"] == nil) {
            throw CLIError("--kv-opt kv.certfile and kv.keyfile go together (the client's certificate and its key)")
        }
        let secure = !tls.isEmpty
        var out: [EtcdConfig.Endpoint] = []
        for e in eps {
            guard var ep = EtcdConfig.endpoint(e) else { throw CLIError("--kv \(e): expected etcd://IP:PORT") }
            if secure { ep.secure = true }
            out.append(ep)
        }
        return EtcdConfig(endpoints: out, caFile: tls["kv.cacertfile"], certFile: tls["kv.certfile"], keyFile: tls["kv.keyfile"])
    }

    func conflistPath(_ name: String) -> String { Posix.join(confDir, "\(name).conflist") }

    func write(_ n: NetworkRecord, conflist: JSON) throws {
        try Posix.makeDirectories(confDir)
        try Posix.writeFileAtomically(conflistPath(n.name), conflist.serializedBytes(indent: 2) + [10])
        try store.save(n)
    }
}
