// The suite's key layout in etcd, owned here and nowhere else (the overlay agent, its address
// blocks and cnictl all build and parse keys through it):
//
//   <prefix>/hosts/<host>                                      {"vtep": …}   (leased by the host's agent)
//   <prefix>/netconfigs/<network>                              {"vni": …, "subnets": […]}   (first ADD anywhere)
//   <prefix>/networks/<network>/endpoints/<host>/<cid>:<if>    an endpoint record
//   <prefix>/networks/<network>/ipam/blocks/<addr>-<len>       an address block: its host, its claims
//   <prefix>/cnictl/networks/<network>                         cnictl's definition of an overlay network
//
// Names (network, host, container ID, ifname) never contain "/", so every key parses back
// to the names it was built from.

public struct ClusterKeys: Sendable, Equatable {
    public let prefix: String
    public init(_ prefix: String) { self.prefix = prefix }

    // MARK: hosts

    public var hosts: String { "\(prefix)/hosts/" }
    public func host(_ h: String) -> String { hosts + h }

    /// The one name after `dir` in `key` ("" or a deeper key: nil).
    func name(_ key: String, in dir: String) -> String? {
        guard key.hasPrefix(dir) else { return nil }
        let n = key.dropFirst(dir.count)
        return n.isEmpty || n.contains("/") ? nil : String(n)
    }

    /// The host of a `hosts/<host>` key.
    public func parseHost(_ key: String) -> String? { name(key, in: hosts) }

    // MARK: network definitions

    public var netconfigs: String { "\(prefix)/netconfigs/" }
    public func netconfig(_ n: String) -> String { netconfigs + n }

    public func parseNetconfig(_ key: String) -> String? { name(key, in: netconfigs) }

    // MARK: a network's keys

    /// Everything of every network (endpoints and IPAM).
    public var networks: String { "\(prefix)/networks/" }
    /// Everything of one network.
    public func network(_ n: String) -> String { "\(networks)\(n)/" }

    public func endpoints(_ n: String) -> String { network(n) + "endpoints/" }
    public func endpoints(_ n: String, host h: String) -> String { endpoints(n) + h + "/" }
    public func endpoint(_ n: String, host h: String, containerID: String, ifname: String) -> String {
        endpoints(n, host: h) + containerID + ":" + ifname
    }

    /// (network, host, container ID, ifname) of an endpoint key.
    public func parseEndpoint(_ key: String) -> (network: String, host: String, containerID: String, ifname: String)? {
        guard key.hasPrefix(networks) else { return nil }
        let parts = key.dropFirst(networks.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[1] == "endpoints", !parts[0].isEmpty, !parts[2].isEmpty,
              let c = parts[3].lastIndex(of: ":") else { return nil }
        return (String(parts[0]), String(parts[2]), String(parts[3][..<c]), String(parts[3][parts[3].index(after: c)...]))
    }

    public func ipam(_ n: String) -> String { network(n) + "ipam/" }
    /// Per-host address blocks (`ClusterIPAM.AddressBlock`), one key each, named by CIDR
    /// (`10.10.0.64-26`).
    public func blocks(_ n: String) -> String { ipam(n) + "blocks/" }
    public func block(_ n: String, _ name: String) -> String { blocks(n) + name }

    /// (network, block name) of a `ipam/blocks/<name>` key.
    public func parseBlock(_ key: String) -> (network: String, block: String)? {
        guard key.hasPrefix(networks) else { return nil }
        let parts = key.dropFirst(networks.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[1] == "ipam", parts[2] == "blocks", !parts[0].isEmpty, !parts[3].isEmpty else { return nil }
        return (String(parts[0]), String(parts[3]))
    }

    // MARK: cnictl

    public var cnictlNetworks: String { "\(prefix)/cnictl/networks/" }
    public func cnictlNetwork(_ n: String) -> String { cnictlNetworks + n }
}
