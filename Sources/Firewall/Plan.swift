// Ruleset planning: what the suite's tables hold for a network and for one attachment, as
// pure data (no kernel). See README "Firewall" for the resulting ruleset.
//
//   table inet swiftcni
//     set bridges         { type ifname }                 one element per network (isolation)
//     map from, to        { type ifname : verdict }       bridge → jump <net>-from / <net>-to
//     map masq            { type ifname : verdict }       bridge → jump <net>-masq (ipMasq only)
//     chain forward       { type filter hook forward priority -10 }
//         ct state established,related accept
//         iifname vmap @from
//         oifname vmap @to
//     chain postrouting   { type nat hook postrouting priority 100 }
//         iifname vmap @masq
//     set open4, open6    { type ipv4_addr . inet_proto . inet_service }  published container
//                                                         ports (portmap), open from outside on
//                                                         "routed" networks
//     set routed4, routed6 { type ifname }                bridges of "routed" networks
//     set isolated4, isolated6 { type ifname }            bridges of "isolated" networks
//     chain isolated-in, isolated-out { type filter hook input / output priority -10 }
//         meta nfproto ipv4 iifname|oifname @isolated4 drop        (ipv6 alike): no traffic
//                                                         between the host and an isolated network
//     per network: chains <net>-from, <net>-to, <net>-masq; sets <net>-a4, <net>-a6 holding
//     the attachments' addresses, each element commented "<network>/<containerID>/<ifname>".
//   table bridge swiftcni
//     set icc_off         { type ifname }                 bridge ports (host veths) of attachments
//                                                         on networks with icc false, commented
//     set links           { type ipv4_addr . ipv4_addr . inet_proto . inet_service }
//                                                         Docker's legacy links with icc off: this
//                                                         container may reach that one's port
//     chain forward       { type filter hook forward priority -10 }
//         meta protocol arp accept                        (as Docker's icc off: ARP still passes)
//         ip saddr . ip daddr . meta l4proto . th dport @links accept
//         ip daddr . ip saddr . meta l4proto . th sport @links accept   (the answers)
//         iifname @icc_off drop                           frames between two ports: container to
//                                                         container; to the gateway is not forwarding
//
// Every packet is dispatched with one map lookup, so the cost per packet does not grow with
// the number of networks or attachments, and an ADD adds set elements, never rules.
import Base

/// Docker's gateway modes (bridge option `gateway_mode_ipv4` / `_ipv6`), per address family.
public enum GatewayMode: String, Sendable, CaseIterable {
    /// Masquerade; from outside only published ports, through the host's addresses.
    case nat
    /// Masquerade; every container port reachable from outside at the container's address.
    case natUnprotected = "nat-unprotected"
    /// No masquerade; from outside (and other networks) the published container ports at the
    /// container's own address, nothing else; host ports are not used.
    case routed
    /// No gateway address on the bridge, no traffic to or from the host or outside (internal
    /// networks only).
    case isolated
}

/// What one network needs from the firewall.
public struct NetworkPolicy: Equatable, Sendable {
    public var network: String
    public var bridge: String
    public var ipMasq: Bool
    public var icc: Bool
    public var isInternal: Bool
    /// Also accept this network's traffic in iptables' FORWARD chains (opt-in, see README).
    public var acceptInIptables: Bool
    /// Per family; nil: `ipMasq` decides (masquerade and published ports only, or neither).
    public var gatewayModeV4: GatewayMode?
    public var gatewayModeV6: GatewayMode?

    public init(network: String, bridge: String, ipMasq: Bool = false, icc: Bool = true, isInternal: Bool = false,
                acceptInIptables: Bool = false, gatewayModeV4: GatewayMode? = nil, gatewayModeV6: GatewayMode? = nil) {
        self.network = network; self.bridge = bridge; self.ipMasq = ipMasq; self.icc = icc
        self.isInternal = isInternal; self.acceptInIptables = acceptInIptables
        self.gatewayModeV4 = gatewayModeV4; self.gatewayModeV6 = gatewayModeV6
    }

    public func gatewayMode(_ f: IPFamily) -> GatewayMode? { f == .v4 ? gatewayModeV4 : gatewayModeV6 }

    /// Whether the family's traffic leaving through the host is masqueraded.
    public func masquerades(_ f: IPFamily) -> Bool {
        if isInternal { return false }
        switch gatewayMode(f) {
        case .nat?, .natUnprotected?: return true
        case .routed?, .isolated?: return false
        case nil: return ipMasq
        }
    }

    public var masqueradesAny: Bool { masquerades(.v4) || masquerades(.v6) }

    /// Whether traffic of the family from outside reaches only what is published (DNAT'd, or
    /// a published container port on a routed network).
    func filtersInbound(_ f: IPFamily) -> Bool {
        switch gatewayMode(f) {
        case .nat?, .routed?, .isolated?: return true
        case .natUnprotected?: return false
        case nil: return ipMasq
        }
    }
}

/// One attachment's identity: (network, container ID, interface name).
public struct AttachmentID: Hashable, Sendable, CustomStringConvertible {
    public var network: String
    public var containerID: String
    public var ifname: String
    public init(network: String, containerID: String, ifname: String) {
        self.network = network; self.containerID = containerID; self.ifname = ifname
    }
    /// The comment on the attachment's elements.
    public var description: String { "\(network)/\(containerID)/\(ifname)" }

    /// Parses a comment written by `description`.
    public init?(comment: String) {
        let p = comment.split(separator: "/", omittingEmptySubsequences: false)
        guard p.count == 3 else { return nil }
        network = String(p[0]); containerID = String(p[1]); ifname = String(p[2])
    }
}

public enum Plan {
    public static let table = TableRef(.inet, "swiftcni")
    public static let bridgeTable = TableRef(.bridge, "swiftcni")
    public static let forwardPriority: Int32 = -10
    public static let srcnatPriority: Int32 = 100
    /// The iptables-nft chains the opt-in integration inserts into.
    public static let iptablesForward = [TableRef(.ip, "filter"), TableRef(.ip6, "filter")]

    /// Chain and set names of a network: safe for any network name, bounded in length,
    /// distinct for distinct names (a hash of the exact name is part of it).
    public static func name(_ network: String, _ suffix: String) -> String {
        var clean = String(network.map { c -> Character in
            (c.isASCII && (c.isLetter || c.isNumber || c == "_")) ? c : "_"
        })
        if clean.count > 32 { clean = String(clean.prefix(32)) }
        return "n-\(clean)-\(hash8(network))-\(suffix)"
    }

    /// FNV-1a, 32 bits, as 8 hex digits.
    static func hash8(_ s: String) -> String {
        var h: UInt32 = 0x811C_9DC5
        for b in s.utf8 { h = (h ^ UInt32(b)) &* 0x0100_0193 }
        let x = String(h, radix: 16)
        return String(repeating: "0", count: 8 - x.count) + x
    }

    public static func fromChain(_ n: String) -> String { name(n, "from") }
    public static func toChain(_ n: String) -> String { name(n, "to") }
    public static func masqChain(_ n: String) -> String { name(n, "masq") }
    public static func addrSet(_ n: String, _ f: IPFamily) -> String { name(n, f == .v4 ? "a4" : "a6") }

    /// The shared tables, sets, maps and base chains (idempotent: safe to send every time).
    public static func base() -> [Operation] {
        let t = table, b = bridgeTable
        return [
            .addTable(t),
            .addSet(SetSpec(t, "bridges", key: [.ifname])),
            .addSet(SetSpec(t, "from", key: [.ifname], data: [.verdict])),
            .addSet(SetSpec(t, "to", key: [.ifname], data: [.verdict])),
            .addSet(SetSpec(t, "masq", key: [.ifname], data: [.verdict])),
            .addChain(ChainSpec(t, "forward", base: BaseChainSpec(type: "filter", hook: .forward, priority: forwardPriority))),
            .addChain(ChainSpec(t, "postrouting", base: BaseChainSpec(type: "nat", hook: .postrouting, priority: srcnatPriority))),
            .addSet(openSetSpec(.v4)), .addSet(openSetSpec(.v6)),
            .addSet(SetSpec(t, "routed4", key: [.ifname])),
            .addSet(SetSpec(t, "routed6", key: [.ifname])),
            .addSet(SetSpec(t, "isolated4", key: [.ifname])),
            .addSet(SetSpec(t, "isolated6", key: [.ifname])),
            .addChain(ChainSpec(t, "isolated-in", base: BaseChainSpec(type: "filter", hook: .input, priority: forwardPriority))),
            .addChain(ChainSpec(t, "isolated-out", base: BaseChainSpec(type: "filter", hook: .output, priority: forwardPriority))),
        ] + portmapBase() + [
            .addTable(b),
            .addSet(SetSpec(b, "icc_off", key: [.ifname])),
            .addSet(SetSpec(b, "links", key: [.ipv4, .ipv4, .inetProto, .inetService])),
            .addChain(ChainSpec(b, "forward", base: BaseChainSpec(type: "filter", hook: .forward, priority: forwardPriority))),
        ]
    }

    /// What tables made before the gateway modes lack (their `isolated-in` chain is missing): the
    /// open and isolated sets, the input and output chains and their rules.
    public static func gatewayModesUpgrade() -> [Operation] {
        let names: Set<String> = ["open4", "open6", "routed4", "routed6", "isolated4", "isolated6", "isolated-in", "isolated-out"]
        return base().filter { op in
            switch op {
            case .addSet(let s): return s.table == table && names.contains(s.name)
            case .addChain(let c): return c.table == table && names.contains(c.name)
            default: return false
            }
        } + baseRules().filter { op in
            if case .addRule(let t, let r) = op { return t == table && (r.chain == "isolated-in" || r.chain == "isolated-out") }
            return false
        }
    }

    /// The base chains' rules; sent once, when the tables are created.
    public static func baseRules() -> [Operation] {
        [
            .addRule(table, Rule("forward", [.ctStateEstablishedRelated, .verdict(.accept)])),
            .addRule(table, Rule("forward", [.iifnameVmap("from")])),
            .addRule(table, Rule("forward", [.oifnameVmap("to")])),
            .addRule(table, Rule("postrouting", [.iifnameVmap("masq")])),
            .addRule(table, Rule("isolated-in", [.nfproto(.v4), .iifnameIn("isolated4", .eq), .verdict(.drop)])),
            .addRule(table, Rule("isolated-in", [.nfproto(.v6), .iifnameIn("isolated6", .eq), .verdict(.drop)])),
            .addRule(table, Rule("isolated-out", [.nfproto(.v4), .oifnameIn("isolated4", .eq), .verdict(.drop)])),
            .addRule(table, Rule("isolated-out", [.nfproto(.v6), .oifnameIn("isolated6", .eq), .verdict(.drop)])),
            .addRule(bridgeTable, Rule("forward", [.etherTypeARP, .verdict(.accept)])),
            .addRule(bridgeTable, Rule("forward", [.pairIn("links", reply: false), .verdict(.accept)])),
            .addRule(bridgeTable, Rule("forward", [.pairIn("links", reply: true), .verdict(.accept)])),
            .addRule(bridgeTable, Rule("forward", [.iifnameIn("icc_off", .eq), .verdict(.drop)])),
        ] + portmapBaseRules()
    }

    /// The network's rules, as they should be.
    public static func networkRules(_ p: NetworkPolicy) -> [Rule] {
        let br = p.bridge
        let from = fromChain(p.network), to = toChain(p.network), masq = masqChain(p.network)
        var rules: [Rule] = []
        // Leaving the network (a packet that came in on the bridge).
        if p.isInternal {
            rules.append(Rule(from, [.oifname(.neq, br), .verdict(.drop)]))
        } else {
            // To another of our networks: isolation, except published ports (DNAT, or a routed
            // network's container ports).
            for f in [IPFamily.v4, .v6] {
                rules.append(Rule(from, [.oifnameIn(routedSet(f), .eq), .daddrPortIn(f, openSet(f)), .verdict(.return)]))
            }
            rules.append(Rule(from, [.oifname(.neq, br), .oifnameIn("bridges", .eq), .ctStatusDNAT(.neq), .verdict(.drop)]))
        }
        // Entering the network.
        rules.append(Rule(to, [.iifname(.eq, br), .verdict(.return)]))
        if p.isInternal {
            rules.append(Rule(to, [.verdict(.drop)]))
        } else {
            rules.append(Rule(to, [.ctStatusDNAT(.eq), .verdict(.return)]))
            // Routed: the published container ports, at the container's own address, from
            // outside and from other networks.
            for f in [IPFamily.v4, .v6] where p.gatewayMode(f) == .routed {
                rules.append(Rule(to, [.daddrPortIn(f, openSet(f)), .verdict(.return)]))
            }
            rules.append(Rule(to, [.iifnameIn("bridges", .eq), .verdict(.drop)]))
            // Behind NAT (and routed), nothing else from outside reaches a container.
            switch (p.filtersInbound(.v4), p.filtersInbound(.v6)) {
            case (true, true): rules.append(Rule(to, [.verdict(.drop)]))
            case (true, false): rules.append(Rule(to, [.nfproto(.v4), .verdict(.drop)]))
            case (false, true): rules.append(Rule(to, [.nfproto(.v6), .verdict(.drop)]))
            case (false, false): break
            }
        }
        if p.masqueradesAny {
            rules += [
                Rule(masq, [.oifname(.eq, br), .verdict(.return)]),
                Rule(masq, [.daddrPrefix(.eq, IPNetwork("224.0.0.0/4")!), .verdict(.return)]),
                Rule(masq, [.daddrPrefix(.eq, IPNetwork("ff00::/8")!), .verdict(.return)]),
            ]
            for f in [IPFamily.v4, .v6] where p.masquerades(f) {
                rules.append(Rule(masq, [.saddrIn(f, addrSet(p.network, f)), .masquerade]))
            }
        }
        return rules
    }

    /// The published container ports of a family (portmap fills them, routed networks open them).
    public static func openSet(_ f: IPFamily) -> String { f == .v4 ? "open4" : "open6" }
    public static func openSetSpec(_ f: IPFamily) -> SetSpec {
        SetSpec(table, openSet(f), key: [f == .v4 ? .ipv4 : .ipv6, .inetProto, .inetService])
    }
    public static func isolatedSet(_ f: IPFamily) -> String { f == .v4 ? "isolated4" : "isolated6" }
    public static func routedSet(_ f: IPFamily) -> String { f == .v4 ? "routed4" : "routed6" }

    /// The policy's fingerprint, kept as the comment of the network's first rule: an ADD rebuilds
    /// the network's rules only when it differs (a rebuild deletes rules, and deletions make
    /// the kernel wait for an RCU grace period when the socket closes).
    public static func fingerprint(_ p: NetworkPolicy) -> String {
        var s = "swiftcni v2 bridge=\(p.bridge) masq=\(p.ipMasq ? 1 : 0) icc=\(p.icc ? 1 : 0) internal=\(p.isInternal ? 1 : 0)"
        if let m = p.gatewayModeV4 { s += " gw4=\(m.rawValue)" }
        if let m = p.gatewayModeV6 { s += " gw6=\(m.rawValue)" }
        return s
    }

    /// The policy's words a fingerprint holds ("internal" → "1", "gw4" → "routed", …); nil
    /// when the comment is not one.
    public static func fingerprintFields(_ comment: String) -> [String: String]? {
        // v1: before the gateway modes (no gw words; its networks' rules are rebuilt at their
        // next ADD).
        guard comment.hasPrefix("swiftcni v2 ") || comment.hasPrefix("swiftcni v1 ") else { return nil }
        var out: [String: String] = [:]
        for w in comment.split(separator: " ").dropFirst(2) {
            guard let eq = w.firstIndex(of: "=") else { continue }
            out[String(w[..<eq])] = String(w[w.index(after: eq)...])
        }
        return out
    }

    /// Everything a network needs. `fresh`: the network has no chains yet (nothing to flush
    /// or remove); otherwise its chains are flushed and refilled, its map entries replaced.
    public static func network(_ p: NetworkPolicy, fresh: Bool = false) -> [Operation] {
        let t = table
        let n = p.network
        let from = fromChain(n), to = toChain(n), masq = masqChain(n)
        var ops: [Operation] = [
            .addSet(SetSpec(t, addrSet(n, .v4), key: [.ipv4])),
            .addSet(SetSpec(t, addrSet(n, .v6), key: [.ipv6])),
            .addChain(ChainSpec(t, from)),
            .addChain(ChainSpec(t, to)),
            .addChain(ChainSpec(t, masq)),
        ]
        if !fresh { ops += [.flushChain(t, from), .flushChain(t, to), .flushChain(t, masq)] }
        var rules = networkRules(p)
        rules[0].comment = fingerprint(p)
        for r in rules { ops.append(.addRule(t, r)) }
        let br = p.bridge
        ops.append(.addElements(t, "bridges", [.ifname(br, comment: n)]))
        ops.append(.addElements(t, "from", [.ifname(br, verdict: .jump(from), comment: n)]))
        ops.append(.addElements(t, "to", [.ifname(br, verdict: .jump(to), comment: n)]))
        if p.masqueradesAny {
            ops.append(.addElements(t, "masq", [.ifname(br, verdict: .jump(masq), comment: n)]))
        } else if !fresh {
            ops.append(.destroyElements(t, "masq", [.ifname(br, verdict: .jump(masq))]))
        }
        for f in [IPFamily.v4, .v6] {
            for (mode, set) in [(GatewayMode.isolated, isolatedSet(f)), (.routed, routedSet(f))] {
                if p.gatewayMode(f) == mode {
                    ops.append(.addElements(t, set, [.ifname(br, comment: n)]))
                } else if !fresh {
                    ops.append(.destroyElements(t, set, [.ifname(br)]))
                }
            }
        }
        return ops
    }

    /// Elements an attachment owns, commented with its identity: its addresses, and its
    /// bridge port when the network has icc off.
    public static func attachmentElements(_ a: AttachmentID, addresses: [IPAddress], iccOffPort: String?) -> [(TableRef, String, [Element])] {
        var out: [(TableRef, String, [Element])] = []
        for f in [IPFamily.v4, .v6] {
            let e = addresses.filter { $0.family == f }.map { Element.address($0, comment: a.description) }
            if !e.isEmpty { out.append((table, addrSet(a.network, f), e)) }
        }
        if let port = iccOffPort { out.append((bridgeTable, "icc_off", [.ifname(port, comment: a.description)])) }
        return out
    }

    public static func attach(_ a: AttachmentID, addresses: [IPAddress], iccOffPort: String? = nil) -> [Operation] {
        attachmentElements(a, addresses: addresses, iccOffPort: iccOffPort).map { .addElements($0.0, $0.1, $0.2) }
    }

    /// Removes a network's map entries, chains and sets, whatever of them exists.
    public static func teardownNetwork(network n: String, bridge br: String) -> [Operation] {
        let t = table
        let from = fromChain(n), to = toChain(n), masq = masqChain(n)
        return [
            // The chains first exist (so the map entries can name them), lose their
            // references, then go.
            .addChain(ChainSpec(t, from)), .addChain(ChainSpec(t, to)), .addChain(ChainSpec(t, masq)),
            .destroyElements(t, "from", [.ifname(br, verdict: .jump(from))]),
            .destroyElements(t, "to", [.ifname(br, verdict: .jump(to))]),
            .destroyElements(t, "masq", [.ifname(br, verdict: .jump(masq))]),
            .destroyElements(t, "bridges", [.ifname(br)]),
        ] + ["isolated4", "isolated6", "routed4", "routed6"].flatMap { s -> [Operation] in
            // (Tables made before the gateway modes lack these sets: made on the way.)
            [.addSet(SetSpec(t, s, key: [.ifname])), .destroyElements(t, s, [.ifname(br)])]
        } + [
            .addChain(ChainSpec(t, hairpinChain(n))),
            .destroyElements(t, "hairpin", [.ifname(br, verdict: .jump(hairpinChain(n)))]),
            .destroyElements(t, "localnet", [.ifname(br)]),
            .destroyElements(t, "masqall", [.ifname(br)]),
            .destroyChain(t, hairpinChain(n)),
            .destroyChain(t, from), .destroyChain(t, to), .destroyChain(t, masq),
            .destroySet(SetSpec(t, addrSet(n, .v4), key: [.ipv4])),
            .destroySet(SetSpec(t, addrSet(n, .v6), key: [.ipv6])),
        ]
    }

    /// Removes everything the suite has (when no network is left).
    public static func teardownAll() -> [Operation] {
        [.destroyTable(table), .destroyTable(bridgeTable)]
    }

    /// The opt-in rules in iptables' FORWARD chains: accept what our table let through.
    public static func iptablesRules(_ p: NetworkPolicy) -> [Rule] {
        let c = "swiftcni:\(p.network)"
        return [
            Rule("FORWARD", [.iifname(.eq, p.bridge), .verdict(.accept)], comment: c),
            Rule("FORWARD", [.oifname(.eq, p.bridge), .verdict(.accept)], comment: c),
        ]
    }
}
