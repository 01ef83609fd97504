import ArgumentParser
import Base
import CNI
import CNIRuntime
import EtcdSettings
import HostLocalIPAM
import Overlay
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Netlink

/// `docker network`-style commands over CNI, with named network namespaces as containers.
struct NetworkGroup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "network",
        abstract: "Manage networks the way `docker network` does (bridge and overlay).",
        subcommands: [Create.self, Ls.self, Inspect.self, NetRm.self, Prune.self, Connect.self, Disconnect.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a network: writes a conflist (bridge + host-local + portmap + dns-alias, or overlay + dns-alias).",
            discussion: """
                Examples:
                  cnictl network create simple-network
                  cnictl network create -d bridge --subnet 172.25.0.0/16 isolated_nw
                  cnictl network create -o com.docker.network.bridge.host_binding_ipv4=172.233.0.1 simple-network2
                  cnictl network create --ipv6 --subnet 2001:db8::/64 \
                      -o com.docker.network.bridge.gateway_mode_ipv6=routed mynet   (IPv6 routed, IPv4 nat)
                  cnictl network create --internal -o com.docker.network.bridge.gateway_mode_ipv4=isolated quiet
                  cnictl network create -d overlay --kv etcd://10.0.0.10:2379 \\
                      --subnet 192.168.0.0/16 --subnet 192.170.0.0/16 \\
                      --gateway 192.168.0.100 --gateway 192.170.0.100 --ip-range 192.168.1.0/24 \\
                      --aux-address my-router=192.168.1.5 my-multihost-network
                Options (-o): com.docker.network.bridge.name, .enable_ip_masquerade, .enable_icc,
                .host_binding_ipv4, .gateway_mode_ipv4 and .gateway_mode_ipv6 (nat, nat-unprotected,
                routed, isolated), com.docker.network.driver.mtu (bridge); driver.mtu,
                com.docker.network.driver.overlay.vxlanid_list, swiftcni.overlay.underlay (overlay).
                Without --subnet a free private subnet is picked (not overlapping other networks or
                this host's routes).
                """)
        @OptionGroup var cni: CNIOptions
        @Option(name: [.short, .customLong("driver")], help: "bridge (default) or overlay") var driver = "bridge"
        @Option(name: .customLong("subnet"), help: "Subnet in CIDR form (repeatable for overlay).") var subnets: [String] = []
        @Option(name: .customLong("gateway"), help: "Gateway of a subnet (repeatable).") var gateways: [String] = []
        @Option(name: .customLong("ip-range"), help: "Allocate container addresses from this sub-range.") var ipRanges: [String] = []
        @Option(name: .customLong("aux-address"), help: "NAME=IP never handed out (repeatable).") var aux: [String] = []
        @Flag(name: .customLong("internal"), help: "No traffic to or from outside the network.") var isInternal = false
        @Flag(name: .customLong("ipv6"), help: "Also an IPv6 subnet.") var ipv6 = false
        @Option(name: .customLong("ipv4"), help: "IPv4 addresses (true, the default; --ipv4=false with --ipv6: IPv6 only).") var ipv4 = true
        @Option(name: [.short, .customLong("opt")], help: "Driver option KEY=VALUE (repeatable).") var opts: [String] = []
        @Option(name: .customLong("label"), help: "Label KEY=VALUE (repeatable).") var labels: [String] = []
        @Option(name: .customLong("kv"), help: "Overlay: etcd endpoints, etcd://HOST:PORT[,…].") var kv: [String] = []
        @Option(name: .customLong("kv-opt"), help: "Overlay: kv.cacertfile=, kv.certfile=, kv.keyfile= (TLS to etcd; repeatable).")
        var kvOpts: [String] = []
        @Flag(name: .customLong("force"), help: "Create even if the subnet overlaps another network's.") var force = false
        @Argument(help: "The network's name.") var name: String

        static func pairs(_ list: [String], _ what: String) throws -> [(String, String)] {
            try list.map { s in
                guard let eq = s.firstIndex(of: "="), eq != s.startIndex else { throw CLIError("\(what) \"\(s)\": expected KEY=VALUE") }
                return (String(s[..<eq]), String(s[s.index(after: eq)...]))
            }
        }

        func run() throws {
            try reporting {
                let store = Store()
                let lock = try store.lock()
                defer { lock.unlock() }
                if BuiltinNetwork(name: name) != nil { throw CLIError("network with name \(name) already exists") }
                var spec = NetworkSpec(name: name)
                spec.driver = driver
                spec.subnets = try subnets.map { s in
                    guard let n = IPNetwork(s) else { throw CLIError("--subnet \(s): not a CIDR subnet") }
                    return n
                }
                spec.gateways = try gateways.map { g in
                    guard let a = IPAddress(g) else { throw CLIError("--gateway \(g): not an IP address") }
                    return a
                }
                spec.ipRanges = try ipRanges.map { r in
                    guard let n = IPNetwork(r) else { throw CLIError("--ip-range \(r): not a CIDR range") }
                    return n
                }
                spec.aux = try Create.pairs(aux, "--aux-address").map { k, v in
                    guard let a = IPAddress(v) else { throw CLIError("--aux-address \(k)=\(v): not an IP address") }
                    return (k, a)
                }
                spec.isInternal = isInternal
                spec.ipv6 = ipv6
                spec.ipv4 = ipv4
                spec.options = try Create.pairs(opts, "-o")
                spec.labels = try Create.pairs(labels, "--label")
                spec.force = force
                // As Docker's, the default bridge network exists before any other (and takes
                // the first default pool, 172.17.0.0/16).
                if name != "bridge" { try Containers(cni: cni, store: store).ensureDefaultNetwork() }
                let nets = Networks(cni: cni, store: store)
                var kvConfig: EtcdConfig? = nil
                var underlay: String? = nil
                if driver == "overlay" {
                    kvConfig = try nets.kvConfig(kv, options: try Create.pairs(kvOpts, "--kv-opt"))
                    underlay = spec.options.first { $0.0 == DockerOption.underlay }?.1 ?? store.config()["underlay"]
                    // A network another host created: take its definition (global scope).
                    if let shared = try OverlayShared.fetch(kvConfig!, name: name) {
                        if nets.exists(name) { throw CLIError("network with name \(name) already exists") }
                        try nets.write(shared, conflist: nets.conflist(shared, kv: kvConfig, underlay: underlay, dns: true))
                        print(shared.id)
                        return
                    }
                }
                let n = try nets.plan(spec)
                if let kvConfig { try OverlayShared.publish(kvConfig, n) }
                try nets.write(n, conflist: nets.conflist(n, kv: kvConfig, underlay: underlay, dns: spec.dns))
                print(n.id)
            }
        }
    }

    struct Ls: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List networks.", discussion: """
            Filters (-f KEY=VALUE, repeatable; values of one key are alternatives): driver=, name= (part of
            the name), id= (part of the ID), label=KEY or label=KEY=VALUE, scope=local|global,
            type=custom|builtin, dangling=true|false (no container uses it; never a predefined network).
            Formats: table (default), json (one object per line), table TEMPLATE, or a Go template.
            Examples:
              cnictl network ls
              cnictl network ls -q --filter driver=bridge
              cnictl network ls --filter type=custom --format '{{.Name}}\\t{{.Driver}}'
              cnictl network ls --format 'table {{.Name}}\\t{{.Scope}}'
              cnictl network ls --no-trunc --format json
            """)
        @OptionGroup var cni: CNIOptions
        @Option(name: .customLong("format"), help: "table, json, table TEMPLATE or a Go template") var format: String?
        @Flag(name: [.short, .customLong("quiet")], help: "Only the network IDs.") var quiet = false
        @Flag(name: .customLong("no-trunc"), help: "Do not truncate the IDs.") var noTrunc = false
        @Option(name: [.short, .customLong("filter")], help: "KEY=VALUE (repeatable).") var filters: [String] = []

        static let listing = Listing(
            headers: ["ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4", "IPv6": "IPV6",
                      "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"],
            columns: ["ID", "Name", "Driver", "Scope"])

        func run() throws {
            try reporting {
                let store = Store()
                let f = try Filters(filters, accepted: ["driver", "name", "id", "label", "scope", "type", "dangling"])
                for t in f.values["type"] ?? [] where t != "custom" && t != "builtin" {
                    throw CLIError("invalid filter: 'type'='\(t)'")
                }
                for d in f.values["dangling"] ?? [] where !["true", "false", "1", "0"].contains(d.lowercased()) {
                    throw CLIError("invalid filter 'dangling=\(d)'")
                }
                // The default bridge network is predefined, as Docker's.
                do {
                    let lock = try store.lock()
                    defer { lock.unlock() }
                    try Containers(cni: cni, store: store).ensureDefaultNetwork()
                }
                let nets = Networks(cni: cni, store: store)
                OverlayShared.materialize(nets)
                let containers = store.containers()
                let used = Set(containers.flatMap(\.networkNames))
                var all: [(id: String, name: String, driver: String, scope: String, record: NetworkRecord?)] = BuiltinNetwork.allCases.map {
                    ($0.id, $0.rawValue, $0.driver, "local", nil)
                }
                for n in nets.all() where BuiltinNetwork(name: n.name) == nil {
                    let r = try? store.network(n.name)
                    let driver = r?.driver ?? (n.driver == "overlay" ? "overlay" : n.driver == "bridge" ? "bridge" : n.driver)
                    all.append((r?.id ?? String(stableHash(n.name)), n.name, driver, r?.scope ?? "local", r))
                }
                let predefined: Set<String> = ["bridge", "host", "none"]
                var rows: [JSONObject] = []
                for n in all.sorted(by: { $0.name < $1.name }) {
                    guard f.allows("driver", { $0 == n.driver }), f.allows("name", { n.name.contains($0) }),
                          f.allows("id", { n.id.contains($0) }), f.allows("scope", { $0 == n.scope }),
                          f.allows("type", { ($0 == "builtin") == predefined.contains(n.name) }),
                          f.allows("dangling", { d in
                              let want = d.lowercased() == "true" || d == "1"
                              return want ? !predefined.contains(n.name) && !used.contains(n.name) : used.contains(n.name) || predefined.contains(n.name)
                          }),
                          f.labels(n.record?.labels ?? []) else { continue }
                    let id = noTrunc ? n.id : String(n.id.prefix(12))
                    let labels = (n.record?.labels ?? []).map { "\($0.0)=\($0.1)" }.joined(separator: ",")
                    let v4 = n.record?.ipv4 ?? true
                    rows.append(JSONObject([
                        ("ID", .string(id)), ("Name", .string(n.name)), ("Driver", .string(n.driver)), ("Scope", .string(n.scope)),
                        ("IPv4", .string(String(v4))), ("IPv6", .string(String(n.record?.ipv6 ?? false))),
                        ("Internal", .string(String(n.record?.isInternal ?? false))), ("Labels", .string(labels)),
                        ("CreatedAt", .string(n.record?.created ?? "")),
                    ]))
                }
                if quiet {
                    for r in rows { print(r["ID"]?.stringValue ?? "") }
                    return
                }
                do { print(try Ls.listing.render(rows, format: format), terminator: "") } catch let e as GoTemplate.TemplateError {
                    throw CLIError(e.description)
                }
            }
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show networks in detail (JSON, Docker's shape).", discussion: """
            Examples:
              cnictl network inspect isolated_nw
              cnictl network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' isolated_nw
              cnictl network inspect -f '{{json .Containers}}' isolated_nw
            """)
        @OptionGroup var cni: CNIOptions
        @Option(name: [.short, .customLong("format")], help: "A Go template, applied to each network.") var format: String?
        @Argument(help: "Network names.") var names: [String]

        func run() throws {
            try reporting {
                let store = Store()
                let ctrs = Containers(cni: cni, store: store)
                var out: [JSON] = []
                for name in names {
                    if let b = BuiltinNetwork(name: name) {
                        out.append(b.inspect(store))
                        continue
                    }
                    let nets = Networks(cni: cni, store: store)
                    if !nets.exists(name) { OverlayShared.materialize(nets) }
                    let list = try cni.load(name)
                    let r = try store.network(name)
                    var containers: [(String, JSON)] = []
                    for c in store.containers() {
                        guard let ep = c.endpoint(name), let res = ctrs.result(c, ep) else { continue }
                        let iface = res.interfaces.first { $0.name == ep.ifname && $0.sandbox == c.netns }
                        let v4 = res.ips.first { $0.address.family == .v4 }?.address.description ?? ""
                        let v6 = res.ips.first { $0.address.family == .v6 }?.address.description ?? ""
                        containers.append((c.id, ["Name": .string(c.name), "EndpointID": .string(String(stableHash(c.id + ep.ifname))),
                                                  "MacAddress": .string(iface?.mac ?? ""), "IPv4Address": .string(v4), "IPv6Address": .string(v6)]))
                    }
                    let first = list.plugins.first ?? JSONObject()
                    let driver = r?.driver ?? (first["type"]?.stringValue ?? "")
                    let pools = r?.pools.map(\.json) ?? []
                    var o: [(String, JSON)] = [
                        ("Name", .string(name)), ("Id", .string(r?.id ?? String(stableHash(name)))), ("Created", .string(r?.created ?? "")),
                        ("Scope", .string(r?.scope ?? "local")), ("Driver", .string(driver)), ("EnableIPv4", .bool(r?.ipv4 ?? true)),
                        ("EnableIPv6", .bool(r?.ipv6 ?? false)),
                        ("IPAM", ["Driver": "default", "Options": .object(JSONObject()), "Config": .array(pools)]),
                        ("Internal", .bool(r?.isInternal ?? (first["internal"]?.boolValue ?? false))),
                        ("Attachable", false), ("Ingress", false), ("ConfigFrom", ["Network": ""]), ("ConfigOnly", false),
                        ("Containers", .object(JSONObject(containers))),
                        ("Options", .object(JSONObject((r?.options ?? []).map { ($0.0, .string($0.1)) }))),
                        ("Labels", .object(JSONObject((r?.labels ?? []).map { ($0.0, .string($0.1)) }))),
                    ]
                    if let v = r?.vni { o.append(("VNI", .int(v))) }
                    o.append(("ConfList", .string(Networks(cni: cni, store: store).conflistPath(name))))
                    out.append(.object(JSONObject(o)))
                }
                try printInspected(out, format: format)
            }
        }
    }

    struct NetRm: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove networks (refused while containers are attached).",
                                                        discussion: "Example:\n  cnictl network rm isolated_nw")
        @OptionGroup var cni: CNIOptions
        @Argument(help: "Network names.") var names: [String]

        func run() throws {
            try reporting {
                let store = Store()
                let lock = try store.lock()
                defer { lock.unlock() }
                // As Docker's: each name removed or refused on its own; the status says whether all went.
                var failed = false
                for name in names {
                    do {
                        try NetworkGroup.remove(cni: cni, store: store, name: name)
                        print(name)
                    } catch {
                        failed = true
                        Posix.writeStderr("cnictl: \(error)\n")
                    }
                }
                if failed { throw ExitCode(1) }
            }
        }
    }

    static func remove(cni: CNIOptions, store: Store, name: String) throws {
        try BuiltinNetwork.refuseRemove(name)
        let nets = Networks(cni: cni, store: store)
        guard nets.exists(name) else { throw CLIError("network \(name) not found") }
        let users = store.containers().filter { $0.endpoint(name) != nil }
        if !users.isEmpty {
            let eps = users.map { "name:\"\($0.name)\" id:\"\($0.id.prefix(12))\"" }.joined(separator: ", ")
            throw CLIError("error while removing network: network \(name) has active endpoints (\(eps))")
        }
        let list = try? cni.load(name)
        if let r = try store.network(name), r.driver == "overlay", let list, let etcd = list.plugins.first?["etcd"],
           let cfg = try? EtcdConfig(JSONReader(etcd, path: "etcd")) {
            // A global network: refused while any host has a container on it.
            let remote = try OverlayShared.remoteEndpoints(cfg, name: name)
            if !remote.isEmpty {
                throw CLIError("error while removing network: network \(name) has active endpoints (\(remote.joined(separator: ", ")))")
            }
            try OverlayShared.unpublish(cfg, name: name)
        }
        let path = list?.path ?? nets.conflistPath(name)
        try? FileManager.default.removeItem(atPath: path.hasPrefix("/") ? path : Posix.join(nets.confDir, path))
        try? FileManager.default.removeItem(atPath: nets.conflistPath(name))
        store.removeNetwork(name)
    }

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove every network no container uses (never a predefined one).",
            discussion: """
                Filters: until=DURATION|TIMESTAMP (created before: 24h, 90m, 2026-12-01T10:00:00Z, Unix seconds),
                label=KEY, label=KEY=VALUE, label!=KEY, label!=KEY=VALUE. Without -f it asks first.
                Examples:
                  cnictl network prune -f
                  cnictl network prune -f --filter until=24h --filter label=env=dev
                """)
        @OptionGroup var cni: CNIOptions
        @Flag(name: [.short, .customLong("force")], help: "Do not ask.") var force = false
        @Option(name: .customLong("filter"), help: "until=… or label=… / label!=… (repeatable).") var filters: [String] = []

        func run() throws {
            try reporting {
                let f = try Filters(filters, accepted: ["until", "label", "label!"])
                let cutoff = try (f.values["until"] ?? []).map(Prune.cutoff).min()
                if !force {
                    print("WARNING! This will remove all custom networks not used by at least one container.")
                    print("Are you sure you want to continue? [y/N] ", terminator: "")
                    let answer = readLine()?.trimmingSpaces().lowercased() ?? ""
                    guard answer == "y" || answer == "yes" else { return }
                }
                let store = Store()
                let lock = try store.lock()
                defer { lock.unlock() }
                let used = Set(store.containers().flatMap(\.networkNames))
                var removed: [String] = []
                for r in store.networks() where r.name != "bridge" && BuiltinNetwork(name: r.name) == nil && !used.contains(r.name) {
                    if let cutoff, let created = Prune.date(r.created), created >= cutoff { continue }
                    guard f.labels(r.labels), !(f.values["label!"] ?? []).contains(where: { Filters.label($0, in: r.labels) }) else { continue }
                    try NetworkGroup.remove(cni: cni, store: store, name: r.name)
                    removed.append(r.name)
                }
                if !removed.isEmpty { print("Deleted Networks:\n" + removed.joined(separator: "\n")) }
            }
        }

        /// `until=`: a duration before now (Go's: 24h, 1h30m, 90s), RFC 3339 or Unix seconds.
        static func cutoff(_ v: String) throws -> Date {
            if let secs = Double(v) { return Date(timeIntervalSince1970: secs) }
            if let d = date(v) { return d }
            var total = 0.0, num = "", unit = ""
            func flush() -> Bool {
                guard let n = Double(num) else { return false }
                switch unit {
                case "h": total += n * 3600
                case "m": total += n * 60
                case "s": total += n
                case "ms": total += n / 1000
                default: return false
                }
                num = ""; unit = ""
                return true
            }
            for ch in v {
                if ch.isNumber || ch == "." {
                    if !unit.isEmpty, !flush() { throw CLIError("invalid filter 'until=\(v)'") }
                    num.append(ch)
                } else {
                    unit.append(ch)
                }
            }
            guard !num.isEmpty, flush() else { throw CLIError("invalid filter 'until=\(v)'") }
            return Date(timeIntervalSinceNow: -total)
        }

        static func date(_ s: String) -> Date? {
            (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(s)) ?? (try? Date.ISO8601FormatStyle().parse(s))
        }
    }

    struct Connect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Connect a container to a network (on its next free interface).",
            discussion: """
                Examples:
                  cnictl network connect isolated_nw container2
                  cnictl network connect --alias scoped-app local_alias container6
                  cnictl network connect --link container5:foo local_alias container4
                  cnictl network connect --ip 172.25.3.9 --mac-address 02:42:ac:19:03:09 isolated_nw container2
                  cnictl network connect --gw-priority 10 isolated_nw container1   (its default route moves there)
                """)
        @OptionGroup var cni: CNIOptions
        @Option(name: .customLong("ip"), help: "IPv4 address.") var ip: String?
        @Option(name: .customLong("ip6"), help: "IPv6 address.") var ip6: String?
        @Option(name: .customLong("alias"), help: "Network-scoped alias (repeatable).") var aliases: [String] = []
        @Option(name: .customLong("link"), help: "CONTAINER:ALIAS, for this container only (repeatable).") var links: [String] = []
        @Option(name: .customLong("mac-address"), help: "The container's MAC address on the network.") var mac: String?
        @Option(name: .customLong("gw-priority"), help: "The network's priority for the default gateway (highest wins).") var gwPriority = 0
        @Argument(help: "Network.") var network: String
        @Argument(help: "Container.") var container: String

        func run() throws {
            try reporting {
                let store = Store()
                let lock = try store.lock()
                defer { lock.unlock() }
                let ctrs = Containers(cni: cni, store: store)
                var c = try ctrs.find(container)
                if let why = BuiltinNetwork.connectRefusal(network: network, container: c) { throw CLIError(why) }
                if BuiltinNetwork(name: network) == nil, !ctrs.networks.exists(network) { OverlayShared.materialize(ctrs.networks) }
                if network == "none" {
                    // A container with no network left joins `none`: its namespace keeps lo only.
                    c.mode = BuiltinNetwork.none
                    try store.save(c)
                    return
                }
                try ctrs.attach(&c, network: network, ip: ip, ip6: ip6, mac: mac, aliases: aliases, links: links, ports: [], gwPriority: gwPriority)
            }
        }
    }

    struct Disconnect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Disconnect a container from a network.",
            discussion: """
                With -f, a stale endpoint (broken state, or a namespace that is gone) is cleared: DEL
                errors are ignored and the network's plugins garbage-collect what no known container holds.
                Examples:
                  cnictl network disconnect isolated_nw container2
                  cnictl network disconnect -f multihost redis_db
                """)
        @OptionGroup var cni: CNIOptions
        @Flag(name: [.short, .customLong("force")], help: "Clear a stale endpoint.") var force = false
        @Argument(help: "Network.") var network: String
        @Argument(help: "Container.") var container: String

        func run() throws {
            try reporting {
                let store = Store()
                let lock = try store.lock()
                defer { lock.unlock() }
                let ctrs = Containers(cni: cni, store: store)
                var c: ContainerRecord
                do { c = try ctrs.find(container) } catch {
                    // -f on a container cnictl no longer knows: clear any cached attachment of that name.
                    guard force else { throw error }
                    try NetworkGroup.forgetStale(cni: cni, store: store, network: network, name: container)
                    return
                }
                if network == "host" || c.mode == .host {
                    throw CLIError("container cannot be disconnected from host network or connected to host network")
                }
                if network == "none" {
                    guard c.mode == BuiltinNetwork.none else { throw CLIError("container \(c.name) is not connected to network none") }
                    // Off `none`, the container has no network; it may join another one now.
                    c.mode = nil
                    try store.save(c)
                    return
                }
                try ctrs.detach(&c, network: network, force: force)
            }
        }
    }

    /// `disconnect -f` for a container without a record: DEL (ignoring errors) every cached
    /// attachment of the network whose namespace was /run/netns/<name>, then GC.
    static func forgetStale(cni: CNIOptions, store: Store, network: String, name: String) throws {
        var runtime = cni.runtime()
        let list = try cni.load(network)
        var found = false
        for a in runtime.cachedAttachments() where a.network == network && a.rt.netns == NamedNamespaces.path(name) {
            found = true
            _ = try? runtime.del(list, a.rt)
            try? FileManager.default.removeItem(atPath: runtime.cachePath(network, a.rt))
        }
        let valid = store.containers().flatMap { o in o.endpoints.filter { $0.network == network }.map { Base.Attachment(containerID: o.id, ifname: $0.ifname) } }
        try? runtime.gc(list, valid: valid)
        if !found { Posix.writeStderr("cnictl: no endpoint of \(name) in network \(network); garbage-collected the network\n") }
    }
}

/// Overlay networks are global: their definition is shared through etcd so that every host
/// creating the same network gets the same VNI, subnets and ID. cnictl links no etcd client:
/// it runs the overlay agent's `kv` tool (next to cnictl, else in the CNI path) for these.
enum OverlayShared {
    static func key(_ cfg: EtcdConfig, _ name: String) -> String { ClusterKeys(cfg.prefix).cnictlNetwork(name) }

    static var searchPath: [String] { (Posix.getenv("CNI_PATH") ?? "/opt/cni/bin").split(separator: ":").map(String.init) }

    /// Runs one kv operation; its JSON answer.
    static func kv(_ cfg: EtcdConfig, _ op: [String]) throws -> JSON {
        let own = Posix.executablePath().map { Posix.dirname(of: $0) }
        guard let tool = ([own].compactMap { $0 } + searchPath).map({ Posix.join($0, "swiftcni-overlay-agent") })
            .first(where: Posix.isExecutableFile) else {
            throw CLIError("swiftcni-overlay-agent (which talks to etcd for cnictl) is neither next to cnictl nor in the CNI path")
        }
        let out: Exec.Output
        do { out = try Exec.run(tool, arguments: ["kv", cfg.json.serialized()] + op, environment: Posix.environment(), stdin: []) } catch {
            throw CLIError("running \(tool) kv: \(error)")
        }
        guard let j = try? JSON.parse(out.stdout) else {
            throw CLIError("\(tool) kv \(op.first ?? ""): exit status \(out.status), no answer")
        }
        if let e = j["error"]?.stringValue { throw CLIError(e) }
        return j
    }

    static func values(_ j: JSON) -> [String] { (j["kvs"]?.arrayValue ?? []).compactMap { $0["value"]?.stringValue } }

    static func fetch(_ cfg: EtcdConfig, name: String) throws -> NetworkRecord? {
        guard let v = values(try kv(cfg, ["get", key(cfg, name)])).first else { return nil }
        return try NetworkRecord(json: JSON.parse(Array(v.utf8)))
    }

    static func publish(_ cfg: EtcdConfig, _ n: NetworkRecord) throws {
        // VNI and subnets must not clash with other overlay networks of the cluster.
        for v in values(try kv(cfg, ["range", ClusterKeys(cfg.prefix).cnictlNetworks])) {
            guard let o = try? NetworkRecord(json: JSON.parse(Array(v.utf8))), o.name != n.name else { continue }
            if o.vni == n.vni { throw CLIError("VNI \(n.vni ?? 0) is already used by overlay network \(o.name)") }
            for p in n.pools { if let q = o.pools.first(where: { $0.subnet.overlaps(p.subnet) }) {
                throw CLIError("subnet \(p.subnet) overlaps \(q.subnet) of overlay network \(o.name)")
            } }
        }
        if try kv(cfg, ["create", key(cfg, n.name), String(decoding: n.json.serializedBytes(), as: UTF8.self)])["created"]?.boolValue != true {
            throw CLIError("network with name \(n.name) already exists in the cluster")
        }
    }

    /// Overlay networks are global: every shared definition this host does not have yet is
    /// written here (conflist and record), so `network ls`, `inspect`, `run` and `connect`
    /// see them without a `network create`. Only with a store in cnictl's config.json.
    static func materialize(_ nets: Networks) {
        guard nets.store.config()["kv"] != nil, let cfg = try? nets.kvConfig([]),
              let all = try? values(kv(cfg, ["range", ClusterKeys(cfg.prefix).cnictlNetworks])) else { return }
        for v in all {
            guard let n = try? NetworkRecord(json: JSON.parse(Array(v.utf8))), !nets.exists(n.name),
                  BuiltinNetwork(name: n.name) == nil else { continue }
            // The underlay is this host's: its own config's first.
            let underlay = nets.store.config()["underlay"] ?? n.option(DockerOption.underlay)
            try? nets.write(n, conflist: nets.conflist(n, kv: cfg, underlay: underlay, dns: true))
        }
    }

    /// The endpoints other hosts have on `name` (Docker refuses to remove a network in use).
    static func remoteEndpoints(_ cfg: EtcdConfig, name: String) throws -> [String] {
        let keys = ClusterKeys(cfg.prefix)
        return try (kv(cfg, ["range", keys.endpoints(name)])["kvs"]?.arrayValue ?? []).compactMap { kv -> String? in
            guard let k = kv["key"]?.stringValue, let ep = keys.parseEndpoint(k), ep.host != SuitePaths.hostID else { return nil }
            let rec = kv["value"]?.stringValue.flatMap { try? JSON.parse(Array($0.utf8)) }
            let name = rec?["name"]?.stringValue ?? ep.containerID
            return "name:\"\(name)\" id:\"\(ep.containerID.prefix(12))\" host:\"\(ep.host)\""
        }
    }

    /// Removes the shared definition when no host has a container on the network any more.
    static func unpublish(_ cfg: EtcdConfig, name: String) throws {
        let keys = ClusterKeys(cfg.prefix)
        if !values(try kv(cfg, ["range", keys.endpoints(name)])).isEmpty { return }
        _ = try kv(cfg, ["delete", key(cfg, name)])
        _ = try kv(cfg, ["delete", keys.netconfig(name)])
        _ = try kv(cfg, ["delete-prefix", keys.network(name)])
    }
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Create a container (a named network namespace with lo up) and attach it to a network.",
        discussion: """
            Without --network it joins the default network "bridge" (created on first use; like
            Docker's default bridge it has no name resolution). Prints the container's ID.
            Examples:
              cnictl run --name container1
              cnictl run --name container3 --network isolated_nw --ip 172.25.3.3
              cnictl run --name container4 --network isolated_nw --link container5:c5
              cnictl run --name container6 --network isolated_nw --network-alias app
              cnictl run --name web --network simple-network3 -p 8081:80
              cnictl run --name tools --network host     (the host's namespace, no CNI call)
              cnictl run --name web --network frontend --gw-priority 5
              cnictl run --name lookup --dns 10.0.0.53 --dns-search example.com --dns-option ndots:2
              cnictl run --name sealed --network none    (its own namespace, lo only)
            """)
    @OptionGroup var cni: CNIOptions
    @Option(name: .customLong("name"), help: "The container's (and its namespace's) name.") var name: String
    @Option(name: .customLong("network"), help: "Network to join (default: bridge; host, none: Docker's).") var network: String?
    @Option(name: .customLong("ip"), help: "IPv4 address.") var ip: String?
    @Option(name: .customLong("ip6"), help: "IPv6 address.") var ip6: String?
    @Option(name: .customLong("network-alias"), help: "Network-scoped alias (repeatable).") var aliases: [String] = []
    @Option(name: .customLong("link"), help: "CONTAINER:ALIAS (repeatable).") var links: [String] = []
    @Option(name: .customLong("mac-address"), help: "The container's MAC address on the network.") var mac: String?
    @Option(name: .customLong("gw-priority"), help: "The network's priority for the default gateway (highest wins).") var gwPriority = 0
    @Option(name: [.short, .customLong("env")], help: "KEY=VALUE in the container's environment (repeatable).") var env: [String] = []
    @Option(name: .customLong("expose"), help: "PORT[/PROTO] the container exposes (repeatable).") var expose: [String] = []
    @Option(name: .customLong("dns"), help: "Nameserver of the container (repeatable; with the embedded DNS: where it forwards this container's other queries).") var dnsServers: [String] = []
    @Option(name: .customLong("dns-search"), help: "Search domain of the container (repeatable).") var dnsSearch: [String] = []
    @Option(name: .customLong("dns-option"), help: "resolv.conf option of the container (repeatable).") var dnsOptions: [String] = []
    @Option(name: [.short, .customLong("publish")], help: "[HOSTIP:]HOSTPORT:PORT[/PROTO] (repeatable).") var publish: [String] = []
    @Flag(name: .customLong("timing"), help: "Print where the time went (stderr).") var timing = false

    func run() throws {
        try reporting {
            let t = Timing()
            let store = Store()
            let lock = try store.lock()
            defer { lock.unlock() }
            t.mark("lock")
            let ctrs = Containers(cni: cni, store: store)
            guard isDockerName(name), name.utf8.count <= 63 else {
                throw CLIError("invalid container name \"\(name)\": use letters, digits, '_', '.', '-'")
            }
            if try store.container(name) != nil { throw CLIError("container name \"\(name)\" is already in use") }
            var ports = try publish.map { try PortSpec($0) }
            let net = network ?? "bridge"
            let builtin = BuiltinNetwork(name: net)
            if let builtin {
                if !links.isEmpty && builtin == .host {
                    throw CLIError("conflicting options: host type networking can't be used with links. This would result in undefined behavior")
                }
                if ip != nil || ip6 != nil { throw CLIError("user specified IP address is supported on user defined networks only") }
                if mac != nil && builtin == .host { throw CLIError("conflicting options: mac-address and the network mode") }
                if !aliases.isEmpty { throw CLIError("network-scoped alias is supported only for containers in user defined networks") }
                if !links.isEmpty { throw CLIError("links are supported only for containers on the default bridge or user-defined networks") }
                if !ports.isEmpty {
                    Posix.writeStderr("WARNING: Published ports are discarded when using \(builtin.rawValue) network mode\n")
                    ports = []
                }
                if builtin == .host {
                    // The host's namespace: nothing to create, no CNI call.
                    var c = ContainerRecord(name: name, id: randomID(), created: nowTimestamp(), endpoints: [], mode: .host)
                    c.env = try env.map(LegacyLinks.parseEnv)
                    try store.save(c)
                    print(c.id)
                    return
                }
            }
            if network == nil { try ctrs.ensureDefaultNetwork() }
            if builtin == nil, (try? cni.load(net)) == nil {
                // A global (overlay) network another host created.
                OverlayShared.materialize(ctrs.networks)
                if (try? cni.load(net)) == nil { throw CLIError("network \(net) not found") }
            }
            // On the default bridge, --link is Docker's legacy link: its target must exist.
            var legacy: [(target: String, alias: String)] = []
            if net == "bridge" {
                for l in links {
                    let (target, alias) = try LegacyLinks.parse(l)
                    guard let tc = try? ctrs.find(target) else { throw CLIError("could not get container for \(target)") }
                    legacy.append((tc.name, alias))
                }
            } else {
                for l in links where l.split(separator: ":").count > 2 || l.isEmpty { throw CLIError("--link \(l): expected CONTAINER:ALIAS") }
            }
            for d in dnsServers where IPAddress(d) == nil { throw CLIError("\(d) is not an ip address") }
            if !dnsServers.isEmpty, builtin == nil, let list = try? cni.load(net),
               let alias = list.plugins.first(where: { $0["type"]?.stringValue == "dns-alias" }), alias["capabilities"]?["dns"] != true {
                // On the embedded DNS they are its upstreams for this container (capability dns).
                throw CLIError("--dns on network \(net): its conflist was written before the embedded DNS took a container's own servers (dns-alias lacks capability \"dns\"); create the network again")
            }
            let environment = try env.map(LegacyLinks.parseEnv)
            let exposing = try expose.flatMap(LegacyLinks.parseExpose)
            t.mark("checks")
            try NamedNamespaces.create(name)
            let lo = try? NetlinkSocket.inNamespace(path: NamedNamespaces.path(name))
            if let lo, let l = try lo.link(named: "lo") { try lo.setLink(index: l.index, LinkSettings(up: true)) }
            t.mark("netns")
            var c = ContainerRecord(name: name, id: randomID(), created: nowTimestamp(), endpoints: [], mode: builtin)
            c.env = environment
            c.exposed = exposing
            c.legacyLinks = legacy
            c.dns = CNIDNS(nameservers: dnsServers, search: dnsSearch, options: dnsOptions)
            do {
                try store.save(c)
                // On `none`: the namespace with lo only.
                if builtin == nil {
                    try ctrs.attach(&c, network: net, ip: ip, ip6: ip6, mac: mac, aliases: aliases, links: legacy.isEmpty ? links : [],
                                    ports: ports, gwPriority: gwPriority, timing: t)
                }
                if !legacy.isEmpty { LegacyLinks(ctrs: ctrs, store: store).refresh() }
            } catch {
                for ep in c.endpoints.reversed() { try? ctrs.detach(&c, network: ep.network, force: true) }
                store.removeContainer(name)
                NetnsResolvConf.remove(name)
                _ = try? NamedNamespaces.delete(name)
                throw error
            }
            t.mark("attach (with plugin execs)")
            print(c.id)
            if timing { Posix.writeStderr((t.report(processStart: processStartNanos()) + "\n")) }
        }
    }
}

/// When this process started (CLOCK_MONOTONIC, from /proc/self/stat), for --timing.
func processStartNanos() -> UInt64? {
    guard let s = (try? Posix.readText("/proc/self/stat")) ?? nil,
          let close = s.lastIndex(of: ")") else { return nil }
    let f = s[s.index(after: close)...].split(separator: " ")
    guard f.count > 19, let ticks = UInt64(f[19]) else { return nil }
    return ticks * (1_000_000_000 / UInt64(sysconf(Int32(_SC_CLK_TCK))))
}

struct ExecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command in a container's network namespace, as `ip netns exec` does (its resolv.conf in place).",
        discussion: "Examples:\n  cnictl exec container2 -- ping -c 1 container3\n  cnictl exec web -- ip addr")
    @Argument(help: "Container.") var container: String
    @Argument(parsing: .captureForPassthrough, help: "Command and arguments.") var command: [String] = []

    func run() throws {
        try reporting {
            var cmd = command
            if cmd.first == "--" { cmd.removeFirst() }
            guard !cmd.isEmpty else { throw CLIError("no command given (cnictl exec NAME -- CMD …)") }
            let store = Store()
            // exec takes no CNI options: the defaults (and the environment's CNI_* variables).
            let ctrs = Containers(cni: .defaults, store: store)
            let record = try? ctrs.find(container)
            if let record, !record.running { throw CLIError("container \(record.name) is not running") }
            // The container's environment (-e) and Docker's link variables, over this one's.
            if let record {
                for (k, v) in LegacyLinks(ctrs: ctrs, store: store).environment(record) { setenv(k, v, 1) }
            }
            if record?.mode == .host {
                // On the host network: the command runs here, in cnictl's own namespace.
                let cargs = cmd.map { strdup($0) } + [nil]
                execvp(cmd[0], cargs)
                throw CLIError("exec \(cmd[0]): \(String(cString: strerror(errno)))")
            }
            let name = record?.name ?? container
            guard Posix.exists(NamedNamespaces.path(name)) else { throw CLIError("no such container: \(container)") }
            let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "ip"
            let argv = [ip, "netns", "exec", name] + cmd
            // Replace this process, as ip does.
            let cargs = argv.map { strdup($0) } + [nil]
            execv(ip, cargs)
            throw CLIError("exec \(ip): \(String(cString: strerror(errno)))")
        }
    }
}

struct PsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "List containers.",
                                                    discussion: "Examples:\n  cnictl ps\n  cnictl ps --format json")
    @OptionGroup var cni: CNIOptions
    @Option(name: .customLong("format"), help: "table or json") var format = OutputFormat.table
    @Flag(name: [.short, .customLong("all")], help: "Stopped containers too.") var all = false

    func run() throws {
        try reporting {
            let store = Store()
            let ctrs = Containers(cni: cni, store: store)
            var rows: [[String]] = []
            var json: [JSON] = []
            for c in store.containers() where c.running || all {
                var addrs: [String] = []
                var nets: [(String, JSON)] = []
                for ep in c.endpoints {
                    let res = ctrs.result(c, ep)
                    let ips = res?.ips.map { $0.address.address.description } ?? []
                    addrs += ips
                    nets.append((ep.network, ["Ifname": .string(ep.ifname), "IPs": .array(ips.map { .string($0) })]))
                }
                let ports = c.endpoints.flatMap(\.ports).map(\.description)
                if let m = c.mode { nets.append((m.rawValue, ["Ifname": "", "IPs": .array([])])) }
                rows.append([String(c.id.prefix(12)), c.name, c.networkNames.joined(separator: ","),
                             addrs.joined(separator: ","), ports.joined(separator: ",")])
                json.append(["Id": .string(c.id), "Name": .string(c.name), "Created": .string(c.created),
                             "Networks": .object(JSONObject(nets)), "Ports": .array(ports.map { .string($0) })])
            }
            if format == .json { print(JSON.array(json).serialized(indent: 4)) } else {
                printTable(["CONTAINER ID", "NAME", "NETWORKS", "IP ADDRESSES", "PORTS"], rows)
            }
        }
    }
}

struct RmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove containers: detach from every network, then delete the namespace.",
        discussion: "With -f, DEL errors do not stop it (stale state is garbage-collected).\nExample:\n  cnictl rm container1 container2")
    @OptionGroup var cni: CNIOptions
    @Flag(name: [.short, .customLong("force")], help: "Remove even if a DEL fails.") var force = false
    @Argument(help: "Containers.") var containers: [String]

    func run() throws {
        try Containers.each(containers, cni: cni, name: true) { l, c in
            for ep in c.endpoints.reversed() { try l.ctrs.detach(&c, network: ep.network, force: force) }
            if c.hasNamespace {
                LegacyLinks.removeHostsFile(c.name)
                NetnsResolvConf.remove(c.name)
                try NamedNamespaces.delete(c.name)
            }
            l.store.removeContainer(c.name)
            LegacyLinks(ctrs: l.ctrs, store: l.store).refresh()
        }
    }
}
