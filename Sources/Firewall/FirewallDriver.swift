// The firewall operations a plugin performs: attach an attachment (and its network),
// detach it, check it, garbage-collect, and look at the host's other firewall tables.
// Each change is one atomic batch, taken under the suite's firewall lock so that the
// decision "the tables are missing / no network is left" and its batch are never split.
#if canImport(Glibc)
import Glibc
#endif
import Base
import Netlink

/// How to deal with another table whose forward chain drops by default (as on hosts running
/// Docker): a drop there is final, whatever our table accepts.
public enum HostFirewallMode: String, Sendable {
    /// Refuse to ADD, naming the chain (default): containers would silently lose traffic.
    case check
    /// Insert accept rules for the network's bridge into iptables' FORWARD chains (tables
    /// ip filter / ip6 filter) — the only time the suite touches a table it did not create;
    /// they are removed with the network.
    case iptables
    /// Do nothing: the administrator's own rules admit the traffic.
    case ignore
}

public final class FirewallDriver {
    public let nf: any NetfilterBackend
    let runDirectory: String?

    /// The host's nftables (the calling thread's network namespace).
    public convenience init(runDirectory: String? = nil) throws {
        self.init(backend: try Netfilter(), runDirectory: runDirectory)
    }

    public init(backend: any NetfilterBackend, runDirectory: String? = nil) {
        nf = backend
        self.runDirectory = runDirectory
    }

    func locked<T>(_ body: () throws -> T) throws -> T {
        let lock = try SuitePaths.lock("firewall", runDirectory: runDirectory)
        defer { lock.unlock() }
        return try body()
    }

    /// ADD: the attachment's elements, and the network's chains and rules when they are
    /// missing or were made for another policy; one chain dump and one batch, whatever the
    /// number of attachments.
    public func attach(_ p: NetworkPolicy, _ a: AttachmentID, addresses: [IPAddress], port: String, mode: HostFirewallMode) throws {
        try locked {
            let chains = try nf.chains()
            if mode == .check, let c = FirewallDriver.foreignForwardDrops(chains).first {
                throw FirewallError(.hostFirewall, "host firewall: \(c.family.map(\.description) ?? "?") \(c.table) chain \(c.name) (hook forward, policy drop) would drop the traffic of network \(p.network)")
            }
            func has(_ t: TableRef, _ name: String) -> ChainInfo? {
                chains.first { $0.family == t.family && $0.table == t.name && $0.name == name }
            }
            var ops = baseIfMissing(chains)
            if has(Plan.table, Plan.fromChain(p.network)) != nil {
                let first = try nf.rules(Plan.table, Plan.fromChain(p.network), checkExists: false)?.first
                if first?.comment != Plan.fingerprint(p) { ops += Plan.network(p) }
            } else {
                ops += Plan.network(p, fresh: true)
            }
            ops += Plan.attach(a, addresses: addresses, iccOffPort: p.icc ? nil : port)
            if mode == .iptables { ops += try iptablesOps(p, install: true) }
            try nf.apply(ops)
        }
    }

    /// Docker's legacy links on networks with icc off: exactly `pairs` (elements of the
    /// bridge table's `links` set, `Element.pair`) may pass between two bridge ports, with
    /// their answers. Elements whose comment starts with `owner` and are not in `pairs` go.
    /// Nothing to do without the suite's tables (no network on this host).
    public func setLinks(_ pairs: [Element], owner: String) throws {
        try locked {
            guard try nf.tableExists(Plan.bridgeTable) else { return }
            guard let have = try nf.elements(Plan.bridgeTable, "links") else {
                if pairs.isEmpty { return }
                throw FirewallError(.kernel, "\(Plan.bridgeTable.family) \(Plan.bridgeTable.name) has no set links (tables made by an older swiftcni: they are made anew once no network is left)")
            }
            let want = Set(pairs.map(\.key)), haveKeys = Set(have.map(\.key))
            let gone = have.filter { $0.comment?.hasPrefix(owner) == true && !want.contains($0.key) }
            var ops: [Operation] = []
            if !gone.isEmpty {
                ops.append(.destroyElements(Plan.bridgeTable, "links", gone.map { Element(key: $0.key, keyText: $0.comment ?? "") }))
            }
            let add = pairs.filter { !haveKeys.contains($0.key) }
            if !add.isEmpty { ops.append(.addElements(Plan.bridgeTable, "links", add)) }
            if !ops.isEmpty { try nf.apply(ops) }
        }
    }

    static func table(of o: Operation) -> TableRef? {
        switch o {
        case .addTable(let t), .addRule(let t, _): return t
        case .addSet(let s): return s.table
        case .addChain(let c): return c.table
        default: return nil
        }
    }

    /// DEL: removes the attachment's elements (its addresses, and anything commented with
    /// its identity), the network's chains if it has no attachment left, and the tables if no
    /// network is left.
    public func detach(network: String, bridge: String, _ a: AttachmentID, addresses: [IPAddress]?) throws {
        try locked {
            guard try nf.tableExists(Plan.table) else { return }
            let wanted = Set((addresses ?? []).map(\.bytes))
            let (ops, remaining) = try removeElements(network) { e in e.comment == a.description || wanted.contains(e.key) }
            if remaining == 0 {
                try nf.apply(try teardownOps([(network, bridge)]))
            } else {
                try nf.apply(ops)
            }
        }
    }

    /// The operations removing a network's address elements that `drop` selects, and how
    /// many elements remain.
    func removeElements(_ network: String, _ drop: (ElementInfo) -> Bool) throws -> ([Operation], Int) {
        var ops: [Operation] = []
        var remaining = 0
        for f in [IPFamily.v4, .v6] {
            let set = Plan.addrSet(network, f)
            guard let elems = try nf.elements(Plan.table, set) else { continue }
            let gone = elems.filter(drop)
            if !gone.isEmpty {
                ops.append(.destroyElements(Plan.table, set, gone.map { Element(key: $0.key, keyText: IPAddress(bytes: $0.key)?.description ?? "?") }))
            }
            remaining += elems.count - gone.count
        }
        // Bridge ports of icc-off attachments of this network.
        let ports = (try nf.elements(Plan.bridgeTable, "icc_off") ?? []).filter { e in
            guard let c = e.comment, let id = AttachmentID(comment: c), id.network == network else { return false }
            return drop(e)
        }
        if !ports.isEmpty {
            ops.append(.destroyElements(Plan.bridgeTable, "icc_off", ports.map {
                Element(key: $0.key, keyText: "\"" + String(decoding: $0.key.prefix { $0 != 0 }, as: UTF8.self) + "\"")
            }))
        }
        return (ops, remaining)
    }

    /// Tears down networks (name, bridge): their chains, sets, map entries and iptables
    /// rules; the whole tables when no other network is left.
    func teardownOps(_ networks: [(String, String)]) throws -> [Operation] {
        var ops: [Operation] = []
        for (n, br) in networks { ops += try iptablesOps(NetworkPolicy(network: n, bridge: br), install: false) }
        let goneKeys = Set(networks.map { ifnameBytes($0.1) })
        let others = (try nf.elements(Plan.table, "bridges") ?? []).filter { !goneKeys.contains($0.key) }
        var published = false
        for m in Plan.portmapMaps where !(try nf.elements(Plan.table, m) ?? []).isEmpty { published = true }
        if others.isEmpty && !published { return ops + Plan.teardownAll() }
        for (n, br) in networks { ops += Plan.teardownNetwork(network: n, bridge: br) }
        return ops
    }

    /// GC: removes elements of attachments of `network` not in `valid`; tears down networks
    /// with none left (this one, and any whose bridge no longer exists on the host).
    public func gc(network: String, bridge: String, valid: Set<Attachment>, existingLinks: Set<String>) throws {
        try locked {
            guard try nf.tableExists(Plan.table) else { return }
            let (ops, remaining) = try removeElements(network) { e in
                guard let c = e.comment, let id = AttachmentID(comment: c) else { return true }
                return !valid.contains(Attachment(containerID: id.containerID, ifname: id.ifname))
            }
            var gone: [(String, String)] = remaining == 0 ? [(network, bridge)] : []
            for e in try nf.elements(Plan.table, "bridges") ?? [] {
                let br = String(decoding: e.key.prefix { $0 != 0 }, as: UTF8.self)
                if br != bridge, !existingLinks.contains(br), let n = e.comment { gone.append((n, br)) }
            }
            try nf.apply(gone.isEmpty ? ops : ops + (try teardownOps(gone)))
        }
    }

    /// CHECK: every piece the attachment needs, the first missing one named.
    public func check(_ p: NetworkPolicy, _ a: AttachmentID, addresses: [IPAddress], port: String?, mode: HostFirewallMode) throws {
        func missing(_ what: String) -> FirewallError { FirewallError(.differs, "firewall: \(what) is missing") }
        for t in [Plan.table, Plan.bridgeTable] where !(try nf.tableExists(t)) { throw missing("table \(t)") }
        for c in ["forward", "postrouting"] where !(try nf.chainExists(Plan.table, c)) { throw missing("chain \(Plan.table) \(c)") }
        if !(try nf.chainExists(Plan.bridgeTable, "forward")) { throw missing("chain \(Plan.bridgeTable) forward") }
        var chains = [Plan.fromChain(p.network), Plan.toChain(p.network)]
        if p.masqueradesAny { chains.append(Plan.masqChain(p.network)) }
        for c in chains where !(try nf.chainExists(Plan.table, c)) { throw missing("chain \(Plan.table) \(c) of network \(p.network)") }
        let br = ifnameBytes(p.bridge)
        func hasKey(_ t: TableRef, _ set: String, _ key: [UInt8]) throws -> Bool {
            (try nf.elements(t, set) ?? []).contains { $0.key == key }
        }
        if !(try hasKey(Plan.table, "bridges", br)) { throw missing("element \"\(p.bridge)\" of set \(Plan.table) bridges") }
        for m in ["from", "to"] where !(try hasKey(Plan.table, m, br)) { throw missing("element \"\(p.bridge)\" of map \(Plan.table) \(m)") }
        if p.masqueradesAny, !(try hasKey(Plan.table, "masq", br)) { throw missing("element \"\(p.bridge)\" of map \(Plan.table) masq") }
        if !p.icc {
            let ports = (try nf.elements(Plan.bridgeTable, "icc_off") ?? []).filter { $0.comment == a.description }
            if ports.isEmpty || (port.map { ifnameBytes($0) != ports[0].key } ?? false) {
                throw missing("element \"\(port ?? "?")\" (\(a)) of set \(Plan.bridgeTable) icc_off")
            }
        }
        for f in [IPFamily.v4, .v6] {
            let want = addresses.filter { $0.family == f }
            if want.isEmpty { continue }
            let set = Plan.addrSet(p.network, f)
            guard let elems = try nf.elements(Plan.table, set) else { throw missing("set \(Plan.table) \(set) of network \(p.network)") }
            for ip in want where !elems.contains(where: { $0.key == ip.bytes && $0.comment == a.description }) {
                throw missing("element \(ip) (\(a)) of set \(Plan.table) \(set)")
            }
        }
        if mode == .iptables {
            for (t, have) in try iptablesState(p) where !have {
                throw missing("accept rules for \(p.bridge) in \(t) FORWARD")
            }
        }
    }

    // MARK: the host's other tables

    /// Base chains of other tables at the forward hook whose policy is drop.
    /// Whether `network` is internal, from the policy fingerprint its bridge plugin left on
    /// the network's first rule; nil when the network has no rules (yet).
    public func isInternal(network: String) throws -> Bool? {
        try fingerprint(network: network).map { $0["internal"] == "1" }
    }

    /// The families whose gateway mode is "routed" (host ports are not used there), from the
    /// fingerprint; empty when the network has no rules.
    public func routedFamilies(network: String) throws -> Set<IPFamily> {
        guard let f = try fingerprint(network: network) else { return [] }
        var out = Set<IPFamily>()
        if f["gw4"] == GatewayMode.routed.rawValue { out.insert(.v4) }
        if f["gw6"] == GatewayMode.routed.rawValue { out.insert(.v6) }
        return out
    }

    func fingerprint(network: String) throws -> [String: String]? {
        guard let first = try nf.rules(Plan.table, Plan.fromChain(network))?.first, let c = first.comment else { return nil }
        return Plan.fingerprintFields(c)
    }

    public func foreignForwardDrops() throws -> [ChainInfo] {
        FirewallDriver.foreignForwardDrops(try nf.chains())
    }

    static func foreignForwardDrops(_ chains: [ChainInfo]) -> [ChainInfo] {
        chains.filter { c in
            c.hook == .forward && c.policyDrop && !(c.table == Plan.table.name && (c.family == .inet || c.family == .bridge))
        }
    }

    /// Which iptables FORWARD chains have (true) or lack (false) our rules for `p`.
    func iptablesState(_ p: NetworkPolicy) throws -> [(TableRef, Bool)] {
        var out: [(TableRef, Bool)] = []
        for t in Plan.iptablesForward {
            guard let rules = try nf.rules(t, "FORWARD") else { continue }
            out.append((t, rules.filter { $0.comment == "swiftcni:\(p.network)" }.count >= 2))
        }
        return out
    }

    /// Inserts (install) or removes our accept rules in iptables' FORWARD chains.
    func iptablesOps(_ p: NetworkPolicy, install: Bool) throws -> [Operation] {
        var ops: [Operation] = []
        for t in Plan.iptablesForward {
            guard let rules = try nf.rules(t, "FORWARD") else { continue }
            let ours = rules.filter { $0.comment == "swiftcni:\(p.network)" }
            if install {
                if ours.count >= 2 { continue }
                for r in ours { ops.append(.deleteRule(t, "FORWARD", handle: r.handle)) }
                for r in Plan.iptablesRules(p).reversed() { ops.append(.insertRule(t, r)) }
            } else {
                for r in ours { ops.append(.deleteRule(t, "FORWARD", handle: r.handle)) }
            }
        }
        return ops
    }
}

/// A firewall decision that refuses an operation (the kernel's own failures are
/// `NetfilterError`s): what kind of failure, and the message.
public struct FirewallError: ClassifiedError, Sendable {
    public var kind: FailureKind
    public var description: String
    public init(_ kind: FailureKind, _ description: String) { self.kind = kind; self.description = description }
}
