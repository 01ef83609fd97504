// The records of every DNS-enabled network on a host and the lookup that answers a query
// for a given asker. Pure data in, answer out: the server owns the sockets.
//
// Scoping follows Docker's embedded DNS: an asker (identified by its source address) sees
// a name only on networks its container shares with the target, and gets the target's
// addresses on that network; network aliases are visible to the whole network; a link alias
// only to the container that declared it, in that network, resolving once its target exists.

import Base

public struct DNSUpstream: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16
    public init(address: IPAddress, port: UInt16 = 53) { self.address = address; self.port = port }

    /// "10.0.0.2", "10.0.0.2:5353", "fd00::2", "[fd00::2]:5353".
    public init?(_ s: String) {
        if let a = IPAddress(s) { self.init(address: a); return }
        if s.hasPrefix("["), let close = s.firstIndex(of: "]") {
            let host = String(s[s.index(after: s.startIndex)..<close])
            let rest = s[s.index(after: close)...]
            guard let a = IPAddress(host), rest.hasPrefix(":"), let p = UInt16(rest.dropFirst()), p > 0 else { return nil }
            self.init(address: a, port: p)
            return
        }
        let parts = s.split(separator: ":")
        guard parts.count == 2, let a = IPAddress(String(parts[0])), a.isV4, let p = UInt16(parts[1]), p > 0 else { return nil }
        self.init(address: a, port: p)
    }

    public var description: String {
        if port == 53 { return address.description }
        return address.isV4 ? "\(address):\(port)" : "[\(address)]:\(port)"
    }
}

/// A DNS-enabled network.
public struct DNSNetwork: Equatable, Sendable {
    public var name: String
    /// Names answer bare and as `name.domain`.
    public var domain: String?
    /// Where the server listens for this network (the bridge's gateway addresses), port 53.
    public var gateways: [IPAddress]
    /// No forwarding for containers whose networks are all internal.
    public var isInternal: Bool
    public var upstream: [DNSUpstream]
    public var ttl: UInt32

    public init(name: String, domain: String? = nil, gateways: [IPAddress], isInternal: Bool = false,
                upstream: [DNSUpstream] = [], ttl: UInt32 = 5) {
        self.name = name; self.domain = domain.map { DNSName($0)?.key ?? $0 }; self.gateways = gateways
        self.isInternal = isInternal; self.upstream = upstream; self.ttl = ttl
    }
}

/// A container-scoped link: `alias` names `target` for the declaring container only.
public struct DNSLink: Equatable, Sendable {
    public var target: String
    public var alias: String
    public init(target: String, alias: String) { self.target = target; self.alias = alias }

    /// "target:alias" (or "target", the alias being the target's name).
    public init?(_ s: String) {
        let p = s.split(separator: ":", omittingEmptySubsequences: false)
        guard p.count == 1 || p.count == 2, !p[0].isEmpty, p.count == 1 || !p[1].isEmpty,
              DNSName.isHostname(String(p[0])), DNSName.isHostname(String(p.last!)) else { return nil }
        self.init(target: String(p[0]), alias: String(p.last!))
    }

    public var description: String { "\(target):\(alias)" }
}

/// One attachment of a container to a DNS-enabled network.
public struct DNSEndpoint: Equatable, Sendable {
    public var network: String
    public var containerID: String
    public var ifname: String
    /// The container's name (CNI_ARGS K8S_POD_NAME), if it has one.
    public var name: String?
    public var aliases: [String]
    public var links: [DNSLink]
    public var addresses: [IPAddress]
    /// The nameserver addresses this container was handed (its gateways on this network):
    /// the server listens on them while it has such a container. Empty for records of
    /// containers on other hosts (an overlay agent writes those).
    public var gateways: [IPAddress]
    /// The host of a container on another host (its record written by the overlay agent).
    public var remoteHost: String?
    /// The container's own nameservers (Docker's `--dns`): its queries for other names go
    /// there instead of to the network's upstream.
    public var upstream: [DNSUpstream]

    public init(network: String, containerID: String, ifname: String, name: String?, aliases: [String] = [],
                links: [DNSLink] = [], addresses: [IPAddress], gateways: [IPAddress] = [], remoteHost: String? = nil,
                upstream: [DNSUpstream] = []) {
        self.network = network; self.containerID = containerID; self.ifname = ifname; self.name = name
        self.aliases = aliases; self.links = links; self.addresses = addresses; self.gateways = gateways
        self.remoteHost = remoteHost; self.upstream = upstream
    }

    public var isRemote: Bool { remoteHost != nil }

    /// The attachment's file name / identity within its network.
    public var key: String { "\(containerID):\(ifname)" }

    /// Docker's short container ID (first 12 characters of a hex ID), also a name.
    public var shortID: String? {
        let c = containerID.utf8
        guard c.count >= 12, c.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else { return nil }
        return String(containerID.prefix(12))
    }

    /// Every name this endpoint answers to on its network (lowercased, no trailing dot).
    func names(domain: String?) -> [String] {
        var base: [String] = []
        if let n = name { base.append(n) }
        base += aliases
        if let s = shortID { base.append(s) }
        var out: [String] = []
        for b in base {
            guard let k = DNSName(b)?.key, !k.isEmpty else { continue }
            out.append(k)
            if let d = domain, !d.isEmpty, !k.hasSuffix("." + d) { out.append(k + "." + d) }
        }
        return Array(Set(out))
    }
}

/// What to do with a query.
public enum DNSResolution: Equatable, Sendable {
    /// Answer it ourselves (authoritative).
    case answer(DNSRcode, [DNSRecordData], ttl: UInt32)
    /// Not ours: ask these servers.
    case forward([DNSUpstream])
    /// Refuse: the asker is no attached container, or may not reach the outside.
    case refused
}

public struct DNSZone: Sendable {
    public private(set) var networks: [String: DNSNetwork] = [:]
    /// network → endpoint key → endpoint.
    public private(set) var endpoints: [String: [String: DNSEndpoint]] = [:]
    /// address → endpoints holding it (an address is unique within a network).
    var byAddress: [IPAddress: [EndpointRef]] = [:]
    /// network → name → endpoint keys.
    var names: [String: [String: Set<String>]] = [:]
    /// container ID → network → the key of its endpoint there.
    var containerEndpoints: [String: [String: String]] = [:]

    struct EndpointRef: Hashable, Sendable {
        var network: String
        var key: String
    }

    public init() {}

    public var recordCount: Int { endpoints.values.reduce(0) { $0 + $1.count } }

    /// Where the server must listen: every gateway a container of this host was handed, on
    /// every network (each subnet's gateway of a multi-subnet network, IPv4 and IPv6).
    /// Records written before they carried gateways count for their network's.
    public var listenAddresses: Set<IPAddress> {
        var out = Set<IPAddress>()
        for (name, eps) in endpoints {
            for e in eps.values {
                if !e.gateways.isEmpty {
                    out.formUnion(e.gateways)
                } else if !e.isRemote, let n = networks[name] {
                    out.formUnion(n.gateways)
                }
            }
        }
        return out
    }

    public func endpoint(_ network: String, _ key: String) -> DNSEndpoint? { endpoints[network]?[key] }

    // MARK: updates

    public mutating func setNetwork(_ n: DNSNetwork) {
        let old = networks[n.name]
        networks[n.name] = n
        if old?.domain != n.domain, let eps = endpoints[n.name] {
            names[n.name] = [:]
            for e in eps.values { indexNames(e) }
        }
    }

    /// Removes a network and its endpoints.
    public mutating func removeNetwork(_ name: String) {
        for key in Array((endpoints[name] ?? [:]).keys) { remove(network: name, key: key) }
        networks[name] = nil
        endpoints[name] = nil
        names[name] = nil
    }

    public mutating func upsert(_ e: DNSEndpoint) {
        if endpoints[e.network]?[e.key] != nil { remove(network: e.network, key: e.key) }
        endpoints[e.network, default: [:]][e.key] = e
        for a in e.addresses { byAddress[a, default: []].append(EndpointRef(network: e.network, key: e.key)) }
        containerEndpoints[e.containerID, default: [:]][e.network] = e.key
        indexNames(e)
    }

    public mutating func remove(network: String, key: String) {
        guard let e = endpoints[network]?[key] else { return }
        endpoints[network]![key] = nil
        for a in e.addresses {
            byAddress[a]?.removeAll { $0.network == network && $0.key == key }
            if byAddress[a]?.isEmpty == true { byAddress[a] = nil }
        }
        let domain = networks[network]?.domain
        for n in e.names(domain: domain) {
            names[network]?[n]?.remove(key)
            if names[network]?[n]?.isEmpty == true { names[network]![n] = nil }
        }
        if containerEndpoints[e.containerID]?[network] == key {
            // Another attachment of the container to this network (another ifname) takes over.
            containerEndpoints[e.containerID]![network] = endpoints[network]?.values.first { $0.containerID == e.containerID }?.key
            if containerEndpoints[e.containerID]?.isEmpty == true { containerEndpoints[e.containerID] = nil }
        }
    }

    mutating func indexNames(_ e: DNSEndpoint) {
        for n in e.names(domain: networks[e.network]?.domain) { names[e.network, default: [:]][n, default: []].insert(e.key) }
    }

    // MARK: lookup

    /// Answers `q` asked by `source`.
    public func resolve<R: RandomNumberGenerator>(source: IPAddress, _ q: DNSQuestion, using rng: inout R) -> DNSResolution {
        guard let refs = byAddress[source], let first = refs.first, let asker = endpoints[first.network]?[first.key] else {
            return .refused
        }
        // The asker's networks: the one it asks from first, then its other ones.
        let mine = containerEndpoints[asker.containerID] ?? [:]
        let order = mine.count <= 1 ? [first.network] : [first.network] + mine.keys.filter { $0 != first.network }.sorted()
        let ttl = networks[first.network]?.ttl ?? 5
        let qname = q.name.key

        if q.type == DNSType.ptr, let ip = IPAddress(reverseName: q.name) {
            var ptrs: [DNSRecordData] = []
            for ref in byAddress[ip] ?? [] where order.contains(ref.network) {
                guard let e = endpoints[ref.network]?[ref.key], let n = e.name ?? e.shortID else { continue }
                let domain = networks[ref.network]?.domain
                let fq = domain.map { "\(n).\($0)" } ?? n
                if let dn = DNSName(fq), !ptrs.contains(.ptr(dn)) { ptrs.append(.ptr(dn)) }
            }
            if !ptrs.isEmpty { return .answer(.noError, ptrs, ttl: ttl) }
        } else {
            for net in order {
                guard let myKey = mine[net], let me = endpoints[net]?[myKey] else { continue }
                let domain = networks[net]?.domain
                var targets: Set<String>?
                // A link alias of the asker's own, in this network.
                for l in me.links {
                    guard let a = DNSName(l.alias)?.key else { continue }
                    if qname == a || (domain.map { qname == a + "." + $0 } ?? false) {
                        let t = DNSName(l.target)?.key ?? l.target
                        targets = names[net]?[t] ?? names[net]?[domain.map { t + "." + $0 } ?? t]
                        break
                    }
                }
                if targets == nil { targets = names[net]?[qname] }
                guard let keys = targets, !keys.isEmpty else { continue }
                var recs: [DNSRecordData] = []
                for k in keys {
                    guard let e = endpoints[net]?[k] else { continue }
                    for a in e.addresses {
                        if (q.type == DNSType.a && a.isV4) || (q.type == DNSType.aaaa && a.isV6) || q.type == DNSType.any {
                            recs.append(.address(a))
                        }
                    }
                }
                recs.shuffle(using: &rng)
                return .answer(.noError, recs, ttl: networks[net]?.ttl ?? ttl)
            }
        }
        // Not a name of ours on any of the asker's networks.
        for net in order {
            if let d = networks[net]?.domain, !d.isEmpty, qname == d || qname.hasSuffix("." + d) {
                return .answer(.nxDomain, [], ttl: ttl)
            }
        }
        guard let outward = order.first(where: { networks[$0].map { !$0.isInternal } ?? false }) else { return .refused }
        // The asker's own nameservers (its --dns), else the network's.
        let own = order.lazy.compactMap { net in mine[net].flatMap { self.endpoints[net]?[$0] } }.first { !$0.upstream.isEmpty }
        let up = own?.upstream ?? networks[outward]!.upstream
        if up.isEmpty { return .answer(.servFail, [], ttl: 0) }
        return .forward(up)
    }
}
