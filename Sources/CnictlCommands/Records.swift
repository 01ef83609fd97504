import Base
import CNI
import CNIRuntime
import Firewall
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// cnictl's own records, under `$SWIFTCNI_STATE_DIR/cnictl` (default /var/lib/swiftcni/cnictl),
/// so every command works the same after a restart: the networks it created (Docker's view
/// of them: ID, driver, IPAM, options, labels) and its containers (named network namespaces
/// and the networks they joined). The CNI side of each — conflists, cached results — lives
/// where runtimes keep it.
struct Store {
    let root: String

    init(root: String? = nil) {
        self.root = root ?? ProcessInfo.processInfo.environment["CNICTL_STATE_DIR"].flatMap { $0.isEmpty ? nil : $0 }
            ?? Posix.join(SuitePaths.stateDirectory, "cnictl")
    }

    var networksDir: String { Posix.join(root, "networks") }
    var containersDir: String { Posix.join(root, "containers") }
    var configFile: String { Posix.join(root, "config.json") }

    func read<T>(_ dir: String, _ name: String, _ make: (JSON) throws -> T) throws -> T? {
        guard let b = try Posix.readFile(Posix.join(dir, name + ".json")) else { return nil }
        return try make(JSON.parse(b))
    }

    func write(_ dir: String, _ name: String, _ j: JSON) throws {
        try Posix.makeDirectories(dir)
        // Renamed into place (whole or not at all); not fsync'ed, as libcni's cache.
        try Posix.writeFileAtomically(Posix.join(dir, name + ".json"), j.serializedBytes(indent: 2), mode: 0o600, sync: false)
    }

    func names(_ dir: String) -> [String] {
        (((try? Posix.listDirectory(dir)) ?? nil) ?? []).filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }
            .map { String($0.dropLast(5)) }.sorted()
    }

    func network(_ name: String) throws -> NetworkRecord? { try read(networksDir, name, NetworkRecord.init(json:)) }
    func save(_ n: NetworkRecord) throws { try write(networksDir, n.name, n.json) }
    func removeNetwork(_ name: String) { _ = try? Posix.remove(Posix.join(networksDir, name + ".json")) }
    func networks() -> [NetworkRecord] { names(networksDir).compactMap { try? network($0) } }

    func container(_ name: String) throws -> ContainerRecord? { try read(containersDir, name, ContainerRecord.init(json:)) }
    func save(_ c: ContainerRecord) throws { try write(containersDir, c.name, c.json) }
    func removeContainer(_ name: String) { _ = try? Posix.remove(Posix.join(containersDir, name + ".json")) }
    func containers() -> [ContainerRecord] { names(containersDir).compactMap { try? container($0) } }

    /// cnictl's settings ({"kv": "etcd://…", "underlay": "eth0"}).
    func config() -> [String: String] {
        guard let b = try? Posix.readFile(configFile), let j = try? JSON.parse(b), case .object(let o) = j else { return [:] }
        var out: [String: String] = [:]
        for m in o {
            if let s = m.value.stringValue { out[m.key] = s } else if let b = m.value.boolValue { out[m.key] = b ? "true" : "false" }
        }
        return out
    }

    /// One lock for cnictl's records (commands from several shells do not interleave).
    func lock() throws -> FileLock {
        try Posix.makeDirectories(root)
        return try FileLock(path: Posix.join(root, "lock"))
    }
}

/// Docker's IPAM config entry.
struct IPAMPool: Equatable {
    var subnet: IPNetwork
    var gateway: IPAddress?
    var ipRange: IPNetwork?
    var aux: [(String, IPAddress)] = []

    static func == (a: IPAMPool, b: IPAMPool) -> Bool {
        a.subnet == b.subnet && a.gateway == b.gateway && a.ipRange == b.ipRange && a.aux.map(\.0) == b.aux.map(\.0) && a.aux.map(\.1) == b.aux.map(\.1)
    }

    var json: JSON {
        var o: [(String, JSON)] = [("Subnet", .string(subnet.description))]
        if let g = gateway { o.append(("Gateway", .string(g.description))) }
        if let r = ipRange { o.append(("IPRange", .string(r.description))) }
        if !aux.isEmpty { o.append(("AuxiliaryAddresses", .object(JSONObject(aux.map { ($0.0, .string($0.1.description)) })))) }
        return .object(JSONObject(o))
    }

    init(subnet: IPNetwork, gateway: IPAddress?, ipRange: IPNetwork?, aux: [(String, IPAddress)]) {
        self.subnet = subnet; self.gateway = gateway; self.ipRange = ipRange; self.aux = aux
    }

    init?(json j: JSON) {
        guard let s = j["Subnet"]?.stringValue.flatMap(IPNetwork.init) else { return nil }
        subnet = s
        gateway = j["Gateway"]?.stringValue.flatMap(IPAddress.init)
        ipRange = j["IPRange"]?.stringValue.flatMap(IPNetwork.init)
        aux = (j["AuxiliaryAddresses"]?.objectValue ?? JSONObject()).compactMap { m in m.value.stringValue.flatMap(IPAddress.init).map { (m.key, $0) } }
    }
}

struct NetworkRecord {
    var name: String
    var id: String
    var created: String
    var driver: String
    var ipv6: Bool
    /// False for an IPv6-only network (--ipv4=false).
    var ipv4 = true
    /// The bridge plugin's `hostFirewall`, when cnictl found the host's forward policy
    /// dropping (a host running Docker): "iptables".
    var hostFirewall: String?
    var isInternal: Bool
    var pools: [IPAMPool]
    var options: [(String, String)]
    var labels: [(String, String)]
    /// Overlay: the VNI.
    var vni: Int?

    var scope: String { driver == "overlay" ? "global" : "local" }

    var json: JSON {
        var o: [(String, JSON)] = [
            ("Name", .string(name)), ("Id", .string(id)), ("Created", .string(created)), ("Driver", .string(driver)),
            ("EnableIPv4", .bool(ipv4)), ("EnableIPv6", .bool(ipv6)), ("Internal", .bool(isInternal)), ("IPAM", .array(pools.map(\.json))),
            ("Options", .object(JSONObject(options.map { ($0.0, .string($0.1)) }))),
            ("Labels", .object(JSONObject(labels.map { ($0.0, .string($0.1)) }))),
        ]
        if let v = vni { o.append(("VNI", .int(v))) }
        if let h = hostFirewall { o.append(("HostFirewall", .string(h))) }
        return .object(JSONObject(o))
    }

    init(name: String, id: String, created: String, driver: String, ipv6: Bool, isInternal: Bool, pools: [IPAMPool],
         options: [(String, String)], labels: [(String, String)], vni: Int?) {
        self.name = name; self.id = id; self.created = created; self.driver = driver; self.ipv6 = ipv6
        self.isInternal = isInternal; self.pools = pools; self.options = options; self.labels = labels; self.vni = vni
    }

    init(json j: JSON) throws {
        guard let n = j["Name"]?.stringValue, let id = j["Id"]?.stringValue else { throw CLIError("corrupt network record") }
        self.init(name: n, id: id, created: j["Created"]?.stringValue ?? "", driver: j["Driver"]?.stringValue ?? "bridge",
                  ipv6: j["EnableIPv6"]?.boolValue ?? false, isInternal: j["Internal"]?.boolValue ?? false,
                  pools: (j["IPAM"]?.arrayValue ?? []).compactMap(IPAMPool.init(json:)),
                  options: (j["Options"]?.objectValue ?? JSONObject()).compactMap { m in m.value.stringValue.map { (m.key, $0) } },
                  labels: (j["Labels"]?.objectValue ?? JSONObject()).compactMap { m in m.value.stringValue.map { (m.key, $0) } },
                  vni: j["VNI"]?.intValue)
        ipv4 = j["EnableIPv4"]?.boolValue ?? true
        hostFirewall = j["HostFirewall"]?.stringValue
    }

    func option(_ k: String) -> String? { options.first { $0.0 == k }?.1 }

    func gatewayMode(_ f: IPFamily) -> GatewayMode? { DockerOption.gatewayMode(f, in: options) }

    /// Isolated in each of its families (gateway mode "isolated"): no gateway address at all.
    var isIsolated: Bool {
        let fams = Set(pools.map(\.subnet.family))
        return !fams.isEmpty && fams.allSatisfy { gatewayMode($0) == .isolated }
    }
}

/// A container: a named network namespace and the networks it joined (in order).
struct ContainerRecord {
    struct Endpoint {
        var network: String
        var ifname: String
        var ip: String?
        var ip6: String?
        var aliases: [String]
        var links: [String]
        var ports: [PortSpec]
        /// A MAC address asked for (--mac-address).
        var mac: String?
        /// The MAC it had when stopped (given again at start unless `mac` is set).
        var lastMAC: String?
        /// Docker's --gw-priority: the highest carries the container's default route.
        var gwPriority = 0

        var json: JSON {
            var o: [(String, JSON)] = [("Network", .string(network)), ("Ifname", .string(ifname))]
            if let ip { o.append(("IP", .string(ip))) }
            if let ip6 { o.append(("IP6", .string(ip6))) }
            if let mac { o.append(("MAC", .string(mac))) }
            if let lastMAC { o.append(("LastMAC", .string(lastMAC))) }
            if gwPriority != 0 { o.append(("GwPriority", .int(gwPriority))) }
            o.append(("Aliases", .array(aliases.map { .string($0) })))
            o.append(("Links", .array(links.map { .string($0) })))
            o.append(("Ports", .array(ports.map { .string($0.description) })))
            return .object(JSONObject(o))
        }

        init(network: String, ifname: String, ip: String?, ip6: String?, aliases: [String], links: [String], ports: [PortSpec]) {
            self.network = network; self.ifname = ifname; self.ip = ip; self.ip6 = ip6; self.aliases = aliases
            self.links = links; self.ports = ports
        }

        init?(json j: JSON) {
            guard let n = j["Network"]?.stringValue, let i = j["Ifname"]?.stringValue else { return nil }
            self.init(network: n, ifname: i, ip: j["IP"]?.stringValue, ip6: j["IP6"]?.stringValue,
                      aliases: (j["Aliases"]?.arrayValue ?? []).compactMap(\.stringValue),
                      links: (j["Links"]?.arrayValue ?? []).compactMap(\.stringValue),
                      ports: (j["Ports"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap { try? PortSpec($0) } })
            mac = j["MAC"]?.stringValue
            lastMAC = j["LastMAC"]?.stringValue
            gwPriority = j["GwPriority"]?.intValue ?? 0
        }
    }

    var name: String
    var id: String
    var created: String
    var endpoints: [Endpoint]
    /// On Docker's `host` or `none` network (then `endpoints` is empty), else nil.
    var mode: BuiltinNetwork?
    /// False once stopped: its endpoints are recorded, not attached, until `start`.
    var running = true
    /// `-e KEY=VALUE`, in order.
    var env: [(String, String)] = []
    /// `--expose PORT[/PROTO]`.
    var exposed: [(Int, String)] = []
    /// Docker's legacy links on the default bridge (`--link TARGET[:ALIAS]`).
    var legacyLinks: [(target: String, alias: String)] = []
    /// `--dns`, `--dns-search`, `--dns-option`: over what the networks hand out.
    var dns = CNIDNS()
    var dnsOverrides: CNIDNS? { dns == CNIDNS() ? nil : dns }

    var netns: String { "/run/netns/\(name)" }
    /// Whether the container has a namespace of its own (not on `host`).
    var hasNamespace: Bool { mode != .host }
    /// The networks it is on, as `ps` and Docker show them.
    var networkNames: [String] { mode.map { [$0.rawValue] } ?? endpoints.map(\.network) }

    var json: JSON {
        var o: [(String, JSON)] = [("Name", .string(name)), ("Id", .string(id)), ("Created", .string(created)),
                                   ("Endpoints", .array(endpoints.map(\.json)))]
        if let mode { o.append(("NetworkMode", .string(mode.rawValue))) }
        if !running { o.append(("Running", false)) }
        if !env.isEmpty { o.append(("Env", .array(env.map { .string("\($0.0)=\($0.1)") }))) }
        if !exposed.isEmpty { o.append(("Exposed", .array(exposed.map { .string("\($0.0)/\($0.1)") }))) }
        if !legacyLinks.isEmpty { o.append(("LegacyLinks", .array(legacyLinks.map { .string("\($0.target):\($0.alias)") }))) }
        if !dns.nameservers.isEmpty { o.append(("Dns", .array(dns.nameservers.map { .string($0) }))) }
        if !dns.search.isEmpty { o.append(("DnsSearch", .array(dns.search.map { .string($0) }))) }
        if !dns.options.isEmpty { o.append(("DnsOptions", .array(dns.options.map { .string($0) }))) }
        return .object(JSONObject(o))
    }

    init(name: String, id: String, created: String, endpoints: [Endpoint], mode: BuiltinNetwork? = nil) {
        self.name = name; self.id = id; self.created = created; self.endpoints = endpoints; self.mode = mode
    }

    init(json j: JSON) throws {
        guard let n = j["Name"]?.stringValue, let id = j["Id"]?.stringValue else { throw CLIError("corrupt container record") }
        self.init(name: n, id: id, created: j["Created"]?.stringValue ?? "",
                  endpoints: (j["Endpoints"]?.arrayValue ?? []).compactMap(Endpoint.init(json:)),
                  mode: j["NetworkMode"]?.stringValue.flatMap(BuiltinNetwork.init(name:)))
        running = j["Running"]?.boolValue ?? true
        env = (j["Env"]?.arrayValue ?? []).compactMap(\.stringValue).compactMap { e in
            e.firstIndex(of: "=").map { (String(e[..<$0]), String(e[e.index(after: $0)...])) }
        }
        exposed = (j["Exposed"]?.arrayValue ?? []).compactMap(\.stringValue).compactMap { e in
            let p = e.split(separator: "/")
            return p.count == 2 ? Int(p[0]).map { ($0, String(p[1])) } : nil
        }
        legacyLinks = (j["LegacyLinks"]?.arrayValue ?? []).compactMap(\.stringValue).compactMap { try? LegacyLinks.parse($0) }
        dns = CNIDNS(nameservers: (j["Dns"]?.arrayValue ?? []).compactMap(\.stringValue),
                     search: (j["DnsSearch"]?.arrayValue ?? []).compactMap(\.stringValue),
                     options: (j["DnsOptions"]?.arrayValue ?? []).compactMap(\.stringValue))
    }

    func endpoint(_ network: String) -> Endpoint? { endpoints.first { $0.network == network } }

    /// The next free interface name (eth0, eth1, …).
    var nextIfname: String {
        var i = 0
        while endpoints.contains(where: { $0.ifname == "eth\(i)" }) { i += 1 }
        return "eth\(i)"
    }
}

/// `-p [HOSTIP:]HOSTPORT:PORT[/PROTO]`.
struct PortSpec: CustomStringConvertible, Equatable {
    var hostIP: String?
    var hostPort: Int
    var containerPort: Int
    var proto: String

    init(_ s: String) throws {
        var spec = Substring(s)
        proto = "tcp"
        if let slash = spec.lastIndex(of: "/") {
            proto = spec[spec.index(after: slash)...].lowercased()
            spec = spec[..<slash]
        }
        guard ["tcp", "udp", "sctp"].contains(proto) else { throw CLIError("-p \(s): protocol must be tcp, udp or sctp") }
        var parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        // An IPv6 host address in brackets: [::1]:8080:80
        if spec.hasPrefix("["), let close = spec.firstIndex(of: "]") {
            hostIP = String(spec[spec.index(after: spec.startIndex)..<close])
            parts = spec[spec.index(after: close)...].dropFirst().split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        } else if parts.count == 3 {
            hostIP = parts.removeFirst()
        }
        guard parts.count == 2, let hp = Int(parts[0]), let cp = Int(parts[1]), (1...65535).contains(hp), (1...65535).contains(cp) else {
            throw CLIError("-p \(s): expected [HOSTIP:]HOSTPORT:PORT[/PROTO] with ports 1-65535")
        }
        if let h = hostIP, !h.isEmpty, IPAddress(h) == nil { throw CLIError("-p \(s): \"\(h)\" is not an IP address") }
        if hostIP == "" { hostIP = nil }
        hostPort = hp
        containerPort = cp
    }

    var description: String {
        let h = hostIP.map { $0.contains(":") ? "[\($0)]:" : "\($0):" } ?? ""
        return "\(h)\(hostPort):\(containerPort)/\(proto)"
    }

    var capability: JSON {
        var o: [(String, JSON)] = [("hostPort", .int(hostPort)), ("containerPort", .int(containerPort)), ("protocol", .string(proto))]
        if let h = hostIP { o.append(("hostIP", .string(h))) }
        return .object(JSONObject(o))
    }
}

/// Docker's names: [a-zA-Z0-9][a-zA-Z0-9_.-]* (no regular expression: ICU costs a
/// millisecond to load).
func isDockerName(_ s: String) -> Bool {
    let u = Array(s.utf8)
    guard let f = u.first else { return false }
    func alnum(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) }
    return alnum(f) && u.dropFirst().allSatisfy { alnum($0) || $0 == 95 || $0 == 46 || $0 == 45 }
}

/// 64 hex digits, as Docker's IDs.
func randomID() -> String {
    var g = SystemRandomNumberGenerator()
    return (0..<4).map { _ in
        let s = String(g.next(), radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }.joined()
}

func nowTimestamp() -> String {
    Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
}

/// Aligned columns (or JSON with --format json).
func printTable(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in i == cells.count - 1 ? c : c + String(repeating: " ", count: widths[i] + 3 - c.count) }.joined()
    }
    print(line(header))
    for r in rows { print(line(r)) }
}

enum OutputFormat: String, ExpressibleByArgument {
    case table, json
}

import ArgumentParser
