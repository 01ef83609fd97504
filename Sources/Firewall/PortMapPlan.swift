// Published ports: DNAT looked up in maps keyed by (host address, protocol, port) — one map
// lookup per new connection whatever the number of published ports — and the SNAT that
// hairpin and localhost traffic need.
//
//   table inet swiftcni
//     map pm4     { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service }
//     map pm4any  { type inet_proto . inet_service : ipv4_addr . inet_service }   (all addresses)
//     map pm6, pm6any                                                            (IPv6 alike)
//     map hairpin  { type ifname : verdict }      bridge → jump <network>-hairpin (snat)
//     set localnet { type ifname }               bridges that take 127.0.0.0/8 sources (snat)
//     set masqall  { type ifname }               bridges whose published traffic is always masqueraded
//     chain prerouting { type nat hook prerouting priority -100 }  fib daddr type local jump portmap
//     chain output     { type nat hook output priority -100 }      fib daddr type local jump portmap
//     chain portmap
//         [per network with conditions: <conditions> dnat … map @n-<name>-<hash>-pm4 …]
//         dnat ip to ip daddr . meta l4proto . th dport map @pm4
//         dnat ip to meta l4proto . th dport map @pm4any
//         dnat ip6 to ip6 daddr . meta l4proto . th dport map @pm6
//         dnat ip6 to meta l4proto . th dport map @pm6any
//     chain postrouting (shared with masquerade):
//         ct status dnat oifname vmap @hairpin
//         ct status dnat oifname @localnet ip saddr 127.0.0.0/8 masquerade
//         ct status dnat oifname @masqall masquerade
//     per network: chain <network>-hairpin
//         ip saddr @<network>-a4 masquerade        a container of the network reaching a port
//         ip6 saddr @<network>-a6 masquerade       published on the same network (hairpin)
//
// The hairpin test keys on the output interface only, because with br_netfilter a DNAT'd
// packet going back into its own bridge is bridged, and in that path the input interface is
// not known to the postrouting hook. The address sets are the bridge plugin's (every
// container of the network); with another main plugin, portmap adds the publishing
// container's own addresses.
//
// Each map element is one published port of one attachment, commented
// "<network>/<containerID>/<ifname>".
import Base

public enum PortProtocol: String, Sendable, CaseIterable {
    case tcp, udp, sctp
    public var number: UInt8 {
        switch self {
        case .tcp: return 6
        case .udp: return 17
        case .sctp: return 132
        }
    }
}

/// One published port, resolved: the host address it binds (nil: every address of the
/// family), and the container address it goes to.
public struct PublishedPort: Hashable, Sendable, CustomStringConvertible {
    public var hostIP: IPAddress?
    public var family: IPFamily
    public var hostPort: UInt16
    public var proto: PortProtocol
    public var container: IPAddress
    public var containerPort: UInt16

    public init(hostIP: IPAddress?, family: IPFamily, hostPort: UInt16, proto: PortProtocol, container: IPAddress, containerPort: UInt16) {
        self.hostIP = hostIP; self.family = family; self.hostPort = hostPort; self.proto = proto
        self.container = container; self.containerPort = containerPort
    }

    /// "tcp 0.0.0.0:8080" / "udp 192.0.2.1:53" / "tcp [::]:80"
    public var binding: String {
        let a = hostIP?.description ?? (family == .v4 ? "0.0.0.0" : "::")
        return "\(proto.rawValue) \(family == .v6 ? "[\(a)]" : a):\(hostPort)"
    }

    public var description: String {
        "\(binding) → \(family == .v6 ? "[\(container)]" : container.description):\(containerPort)"
    }

    static func portBytes(_ p: UInt16) -> [UInt8] { [UInt8(p >> 8), UInt8(p & 0xFF), 0, 0] }

    /// The map this port lives in (shared, or the network's own when it has conditions).
    public func map(network: String?) -> String {
        let base = (family == .v4 ? "pm4" : "pm6") + (hostIP == nil ? "any" : "")
        return network.map { Plan.name($0, base) } ?? base
    }

    public var key: [UInt8] {
        var k: [UInt8] = hostIP?.bytes ?? []
        k += [proto.number, 0, 0, 0]
        k += PublishedPort.portBytes(hostPort)
        return k
    }

    public var data: [UInt8] { container.bytes + PublishedPort.portBytes(containerPort) }

    public func element(comment: String?) -> Element {
        Element(key: key, keyText: "\(hostIP.map { "\($0) . " } ?? "")\(proto.rawValue) . \(hostPort)",
                data: data, comment: comment)
    }
}

/// What one network asks of port publishing (the portmap plugin's configuration).
public struct PortmapPolicy: Equatable, Sendable {
    public var network: String
    /// The bridge (the host interface towards the container), for hairpin and localhost SNAT.
    public var bridge: String?
    public var snat: Bool
    public var masqAll: Bool
    /// Extra matches: only traffic matching them is published (reference conditionsV4/V6).
    public var conditions4: [Statement]
    public var conditions6: [Statement]

    public init(network: String, bridge: String?, snat: Bool = true, masqAll: Bool = false,
                conditions4: [Statement] = [], conditions6: [Statement] = []) {
        self.network = network; self.bridge = bridge; self.snat = snat; self.masqAll = masqAll
        self.conditions4 = conditions4; self.conditions6 = conditions6
    }

    public var hasConditions: Bool { !conditions4.isEmpty || !conditions6.isEmpty }
    /// Maps of a network with conditions are its own; nil: the shared ones.
    public var mapNetwork: String? { hasConditions ? network : nil }
}

extension Plan {
    public static let portmapMaps = ["pm4", "pm4any", "pm6", "pm6any"]

    static func mapSpecs(_ t: TableRef, prefix: (String) -> String) -> [SetSpec] {
        [
            SetSpec(t, prefix("pm4"), key: [.ipv4, .inetProto, .inetService], data: [.ipv4, .inetService]),
            SetSpec(t, prefix("pm4any"), key: [.inetProto, .inetService], data: [.ipv4, .inetService]),
            SetSpec(t, prefix("pm6"), key: [.ipv6, .inetProto, .inetService], data: [.ipv6, .inetService]),
            SetSpec(t, prefix("pm6any"), key: [.inetProto, .inetService], data: [.ipv6, .inetService]),
        ]
    }

    /// The shared portmap objects (part of the base tables).
    static func portmapBase() -> [Operation] {
        let t = table
        return mapSpecs(t) { $0 }.map { .addSet($0) } + [
            .addSet(SetSpec(t, "hairpin", key: [.ifname], data: [.verdict])),
            .addSet(SetSpec(t, "localnet", key: [.ifname])),
            .addSet(SetSpec(t, "masqall", key: [.ifname])),
            .addChain(ChainSpec(t, "prerouting", base: BaseChainSpec(type: "nat", hook: .prerouting, priority: -100))),
            .addChain(ChainSpec(t, "output", base: BaseChainSpec(type: "nat", hook: .output, priority: -100))),
            .addChain(ChainSpec(t, "portmap")),
        ]
    }

    static func portmapBaseRules() -> [Operation] {
        let t = table
        return [
            .addRule(t, Rule("prerouting", [.fibDaddrLocal, .verdict(.jump("portmap"))])),
            .addRule(t, Rule("output", [.fibDaddrLocal, .verdict(.jump("portmap"))])),
            .addRule(t, Rule("portmap", [.dnatMap(.v4, "pm4", withAddress: true)])),
            .addRule(t, Rule("portmap", [.dnatMap(.v4, "pm4any", withAddress: false)])),
            .addRule(t, Rule("portmap", [.dnatMap(.v6, "pm6", withAddress: true)])),
            .addRule(t, Rule("portmap", [.dnatMap(.v6, "pm6any", withAddress: false)])),
            .addRule(t, Rule("postrouting", [.ctStatusDNAT(.eq), .oifnameVmap("hairpin")])),
            .addRule(t, Rule("postrouting", [.ctStatusDNAT(.eq), .oifnameIn("localnet", .eq), .saddrPrefix(.eq, IPNetwork("127.0.0.0/8")!), .masquerade])),
            .addRule(t, Rule("postrouting", [.ctStatusDNAT(.eq), .oifnameIn("masqall", .eq), .masquerade])),
        ]
    }

    public static func hairpinChain(_ n: String) -> String { name(n, "hairpin") }

    /// A network's publishing setup: SNAT memberships (and the hairpin chain, when the
    /// network has none yet: `fresh`), the publishing container's addresses in the
    /// network's address sets. Additions only.
    public static func portmapNetwork(_ p: PortmapPolicy, _ a: AttachmentID, addresses: [IPAddress], fresh: Bool) -> [Operation] {
        let t = table
        var ops: [Operation] = []
        guard let br = p.bridge else { return ops }
        let c = "portmap:\(p.network)"
        if p.snat {
            let hp = hairpinChain(p.network)
            // Only when missing: re-adding an existing chain is an update transaction, which
            // makes the commit (and the socket's close) wait for an RCU grace period.
            if fresh {
                ops += [
                    .addSet(SetSpec(t, addrSet(p.network, .v4), key: [.ipv4])),
                    .addSet(SetSpec(t, addrSet(p.network, .v6), key: [.ipv6])),
                    .addChain(ChainSpec(t, hp)),
                ]
                ops.append(.addRule(t, Rule(hp, [.saddrIn(.v4, addrSet(p.network, .v4)), .masquerade])))
                ops.append(.addRule(t, Rule(hp, [.saddrIn(.v6, addrSet(p.network, .v6)), .masquerade])))
            }
            ops.append(.addElements(t, "hairpin", [.ifname(br, verdict: .jump(hp), comment: c)]))
            ops.append(.addElements(t, "localnet", [.ifname(br, comment: c)]))
            ops += attachmentElements(a, addresses: addresses, iccOffPort: nil).map { .addElements($0.0, $0.1, $0.2) }
        }
        if p.masqAll { ops.append(.addElements(t, "masqall", [.ifname(br, comment: c)])) }
        return ops
    }

    /// The conditional network's own maps and rules (created once, with a comment naming
    /// the network so teardown finds them).
    public static func portmapConditional(_ p: PortmapPolicy) -> [Operation] {
        let t = table
        var ops: [Operation] = mapSpecs(t) { name(p.network, $0) }.map { .addSet($0) }
        let c = "portmap:\(p.network)"
        for (f, conds) in [(IPFamily.v4, p.conditions4), (.v6, p.conditions6)] {
            let s = f == .v4 ? "pm4" : "pm6"
            ops.append(.insertRule(t, Rule("portmap", conds + [.dnatMap(f, name(p.network, s + "any"), withAddress: false)], comment: c)))
            ops.append(.insertRule(t, Rule("portmap", conds + [.dnatMap(f, name(p.network, s), withAddress: true)], comment: c)))
        }
        return ops
    }

    /// Elements of an attachment's published ports: the DNAT of each host port (not in the
    /// `routed` families, where host ports are not used), and each container port in the
    /// family's open set (what a routed network lets in).
    /// `open`: false for what a version before the open sets published (no such elements).
    public static func publish(_ ports: [PublishedPort], _ a: AttachmentID, mapNetwork: String?,
                               routed: Set<IPFamily> = [], open: Bool = true) -> [Operation] {
        var bySet: [String: [Element]] = [:]
        var order: [String] = []
        func add(_ set: String, _ e: Element) {
            if bySet[set] == nil { order.append(set); bySet[set] = [] }
            if !bySet[set]!.contains(where: { $0.key == e.key }) { bySet[set]!.append(e) }
        }
        for p in ports {
            if !routed.contains(p.family) { add(p.map(network: mapNetwork), p.element(comment: a.description)) }
        }
        for p in ports where open {
            add(openSet(p.family), .addressPort(p.container, proto: p.proto.number, port: p.containerPort, comment: a.description))
        }
        return order.map { .addElements(table, $0, bySet[$0]!) }
    }

    /// Removes a network's publishing setup (SNAT memberships, conditional maps).
    public static func portmapTeardown(network: String, bridge: String?, conditionalRules: [UInt64]) -> [Operation] {
        let t = table
        var ops: [Operation] = []
        if let br = bridge {
            let hp = hairpinChain(network)
            ops.append(.addChain(ChainSpec(t, hp)))
            ops.append(.destroyElements(t, "hairpin", [.ifname(br, verdict: .jump(hp))]))
            ops.append(.destroyElements(t, "localnet", [.ifname(br)]))
            ops.append(.destroyElements(t, "masqall", [.ifname(br)]))
            ops.append(.destroyChain(t, hp))
        }
        for h in conditionalRules { ops.append(.deleteRule(t, "portmap", handle: h)) }
        if !conditionalRules.isEmpty {
            for s in mapSpecs(t, prefix: { name(network, $0) }) { ops.append(.destroySet(s)) }
        }
        return ops
    }
}
