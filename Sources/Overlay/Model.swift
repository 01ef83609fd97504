// The overlay network's shared nouns: its configuration, the records each host publishes,
// and the local state the agent reads. The keys in etcd are `Etcd.ClusterKeys`'s.

import CNI
import Etcd

public struct OverlayConfig: Sendable {
    public var network: String
    public var vni: UInt32
    /// Interface name or address of the underlay; nil: the default route's interface.
    public var underlay: String?
    public var mtu: Int?
    public var etcd: EtcdConfig
    public var isInternal: Bool
    public var ipMasq: Bool
    public var hostFirewall: String?
    /// The `ipam` section as given.
    public var ipam: JSONObject
    /// Subnets of the IPAM ranges (for the network's definition in etcd).
    public var subnets: [IPNetwork]
    /// The gateway of every subnet (as an address on the subnet): every host's bridge holds
    /// them all, so containers in one subnet reach those in another on any host.
    public var gateways: [IPNetwork]

    public static let maxVNI: UInt32 = 16_777_215

    public init(_ req: CNIRequest) throws(CNIError) {
        let c = req.config
        network = req.name
        guard c.has("vni") else { throw CNIError(.invalidConfig, "\"vni\" is required (1 to \(OverlayConfig.maxVNI))") }
        guard let v = try c.int("vni"), v >= 1, v <= Int(OverlayConfig.maxVNI) else {
            throw c.invalid("vni", "must be between 1 and \(OverlayConfig.maxVNI)")
        }
        vni = UInt32(v)
        guard let e = try c.object("etcd") else {
            throw CNIError(.invalidConfig, "\"etcd\" is required: {\"endpoints\": [\"http://IP:2379\", …]}")
        }
        etcd = try EtcdConfig(e)
        guard let ip = try c.object("ipam") else { throw CNIError(.invalidConfig, "\"ipam\" is required") }
        // The VNI, etcd and IPAM name what DEL and GC remove; the rest they may do without.
        let teardown = req.isTeardown
        func optional<T>(_ read: () throws(CNIError) -> T?) throws(CNIError) -> T? {
            if teardown { return try? read() }
            return try read()
        }
        underlay = try optional { () throws(CNIError) in try c.string("underlay") }.flatMap { $0.isEmpty ? nil : $0 }
        mtu = try optional { () throws(CNIError) in try c.int("mtu", in: 576...65000) }
        isInternal = try optional { () throws(CNIError) in try c.bool("internal") } ?? false
        ipMasq = try optional { () throws(CNIError) in try c.bool("ipMasq") } ?? false
        hostFirewall = try optional { () throws(CNIError) in try c.string("hostFirewall") }
        ipam = ip.object
        var subs: [IPNetwork] = []
        var gws: [IPNetwork] = []
        var ranges: [JSONReader] = []
        for (i, set) in (try ip.array("ranges") ?? []).enumerated() {
            for (j, r) in (set.arrayValue ?? []).enumerated() { ranges.append(try JSONReader(r, path: "ipam.ranges[\(i)][\(j)]")) }
        }
        if ip.has("subnet") { ranges.append(ip) }
        // host-local validates the ranges; here they only name the subnets and gateways.
        for r in ranges {
            guard let n = try? r.ipNetwork("subnet") else { continue }
            subs.append(n.network)
            let g = (try? r.ipAddress("gateway")) ?? n.networkAddress.next()
            if n.contains(g), let gn = IPNetwork(address: g, prefixLength: n.prefixLength) { gws.append(gn) }
        }
        subnets = subs
        gateways = gws
    }

    /// Device names on each host (≤ 15 bytes).
    public var bridgeName: String { "ovbr\(vni)" }
    public var vxlanName: String { "ovvx\(vni)" }
}

/// The cluster's keys (the layout is `Etcd.ClusterKeys`'s).
public typealias OverlayKeys = ClusterKeys

/// What a host publishes about one of its containers.
public struct EndpointRecord: Equatable, Sendable {
    public var network: String
    public var host: String
    public var containerID: String
    public var ifname: String
    public var vtep: IPAddress
    public var mac: MACAddress
    public var ips: [IPAddress]
    public var name: String?
    public var aliases: [String]

    public init(network: String, host: String, containerID: String, ifname: String, vtep: IPAddress, mac: MACAddress,
                ips: [IPAddress], name: String?, aliases: [String]) {
        self.network = network; self.host = host; self.containerID = containerID; self.ifname = ifname
        self.vtep = vtep; self.mac = mac; self.ips = ips; self.name = name; self.aliases = aliases
    }

    public var json: JSON {
        var o: [(String, JSON)] = [("containerID", .string(containerID)), ("ifname", .string(ifname)), ("host", .string(host)),
                                   ("vtep", .string(vtep.description)), ("mac", .string(mac.description)),
                                   ("ips", .array(ips.map { .string($0.description) }))]
        if let n = name { o.append(("name", .string(n))) }
        o.append(("aliases", .array(aliases.map { .string($0) })))
        return .object(JSONObject(o))
    }

    public init?(network: String, bytes: [UInt8]) {
        guard let j = try? JSON.parse(bytes), let cid = j["containerID"]?.stringValue, let ifn = j["ifname"]?.stringValue,
              let host = j["host"]?.stringValue, let vtep = j["vtep"]?.stringValue.flatMap(IPAddress.init),
              let mac = j["mac"]?.stringValue.flatMap(MACAddress.init) else { return nil }
        self.init(network: network, host: host, containerID: cid, ifname: ifn, vtep: vtep, mac: mac,
                  ips: (j["ips"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap(IPAddress.init) },
                  name: j["name"]?.stringValue, aliases: (j["aliases"]?.arrayValue ?? []).compactMap(\.stringValue))
    }
}

/// Local state of a host: which overlay networks it has (for the agent), and the agent's
/// own settings. Under the state and run directories, so simulated hosts keep their own.
public enum OverlayLocal {
    public static var networksDirectory: String { Posix.join(Posix.join(SuitePaths.stateDirectory, "overlay"), "networks") }
    public static var agentRoot: String { Posix.join(SuitePaths.runDirectory, "overlay") }
    public static var agentConfig: String { Posix.join(agentRoot, "agent.json") }

    public struct Network: Equatable, Sendable {
        public var name: String
        public var vni: UInt32
        public var vxlan: String
        public var bridge: String
    }

    public static func write(_ cfg: OverlayConfig) throws {
        try Posix.makeDirectories(networksDirectory)
        let j: JSON = ["vni": .int(Int(cfg.vni)), "vxlan": .string(cfg.vxlanName), "bridge": .string(cfg.bridgeName)]
        try Posix.writeFileAtomically(Posix.join(networksDirectory, cfg.network), j.serializedBytes())
    }

    public static func remove(_ network: String) {
        _ = try? Posix.remove(Posix.join(networksDirectory, network))
        // Plugins write this file under no common lock: only dead writers' leftovers go.
        _ = try? Posix.removeTemporaries(in: networksDirectory, of: network, deadWritersOnly: true)
    }

    public static func networks() -> [Network] {
        var out: [Network] = []
        for n in ((try? Posix.listDirectory(networksDirectory)) ?? nil) ?? [] where !n.hasPrefix(".") && Posix.temporaryTarget(n) == nil {
            guard let b = (try? Posix.readFile(Posix.join(networksDirectory, n))) ?? nil, let j = try? JSON.parse(b),
                  let vni = j["vni"]?.intValue, let vx = j["vxlan"]?.stringValue, let br = j["bridge"]?.stringValue else { continue }
            out.append(Network(name: n, vni: UInt32(vni), vxlan: vx, bridge: br))
        }
        return out.sorted { $0.name < $1.name }
    }

    /// The agent's settings: one etcd cluster per host, the host's identity and VTEP.
    public struct AgentSettings: Equatable, Sendable {
        public var etcd: EtcdConfig
        public var host: String
        public var vtep: IPAddress

        public var json: JSON { ["etcd": etcd.json, "host": .string(host), "vtep": .string(vtep.description)] }

        public init(etcd: EtcdConfig, host: String, vtep: IPAddress) { self.etcd = etcd; self.host = host; self.vtep = vtep }

        public init?(bytes: [UInt8]) {
            guard let j = try? JSON.parse(bytes), let e = j["etcd"], let r = try? JSONReader(e, path: "etcd"),
                  let cfg = try? EtcdConfig(r), let h = j["host"]?.stringValue,
                  let v = j["vtep"]?.stringValue.flatMap(IPAddress.init) else { return nil }
            self.init(etcd: cfg, host: h, vtep: v)
        }
    }

    public static func readAgentSettings() -> AgentSettings? {
        ((try? Posix.readFile(agentConfig)) ?? nil).flatMap { AgentSettings(bytes: $0) }
    }
}
