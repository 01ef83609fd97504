import Base
import CNI
import IPAM

/// The `host-local` IPAM configuration: every key of the reference plugin plus `ipRange`
/// (per range) and `auxAddresses` (Docker's `--ip-range` and `--aux-address`).
public struct HostLocalConfig: Sendable {
    public var network: String
    public var rangeSets: [RangeSet]
    public var routes: [CNIRoute]
    public var dataDir: String?
    public var resolvConf: String?
    /// Auxiliary addresses by name (never handed out).
    public var auxAddresses: [(name: String, ip: IPAddress)]
    /// Requested static addresses (CNI_ARGS IP=, args.cni.ips, runtimeConfig.ips).
    public var requested: [IPAddress]
    /// `ipam.etcd` is set: allocation in etcd, which only the overlay plugin's agent does
    /// (from per-host blocks, `ClusterIPAM`); host-local alone refuses it.
    public var wantsClusterStore = false

    public static let rangeKeys: Set<String> = ["subnet", "rangeStart", "rangeEnd", "gateway", "ipRange"]

    public init(_ req: CNIRequest) throws(CNIError) {
        network = req.name
        guard let ipam = try req.config.object("ipam") else {
            throw CNIError(.invalidConfig, "\"ipam\" is required")
        }
        // Where the allocations are: all that DEL and GC read.
        dataDir = try ipam.string("dataDir")
        wantsClusterStore = ipam.has("etcd")
        routes = []
        rangeSets = []
        auxAddresses = []
        requested = []
        if req.isTeardown { return }

        _ = try ipam.string("type")
        resolvConf = try ipam.string("resolvConf")
        for r in try ipam.objects("routes") ?? [] { routes.append(try CNIRoute(reading: r)) }

        var sets: [RangeSet] = []
        // Capability "ipRanges" (runtimeConfig), then the legacy single range, then "ranges".
        if let rc = try req.config.object("runtimeConfig"), let rr = try rc.array("ipRanges") {
            sets += try HostLocalConfig.parseRangeSets(HostLocalConfig.groupFlatRanges(rr), key: rc.keyPath("ipRanges"))
        }
        if ipam.has("subnet") {
            sets.append(RangeSet([try HostLocalConfig.parseRange(ipam)]))
        }
        if let rr = try ipam.array("ranges") {
            sets += try HostLocalConfig.parseRangeSets(rr, key: ipam.keyPath("ranges"))
        }
        if sets.isEmpty {
            throw CNIError(.invalidConfig, "\"ipam.ranges\": no IP ranges specified")
        }
        for (i, a) in sets.enumerated() {
            for (j, b) in sets.enumerated() where j > i && a.overlaps(b) {
                throw CNIError(.invalidConfig, "\"ipam.ranges\": range set \(i) overlaps with range set \(j)")
            }
        }
        rangeSets = sets

        if let aux = try ipam.object("auxAddresses") {
            for m in aux.object {
                guard case .string(let s) = m.value else {
                    throw aux.typeError(m.key, expected: "an IP address string", got: m.value)
                }
                guard let ip = IPAddress(s) else { throw aux.invalid(m.key, "not an IP address") }
                guard sets.contains(where: { $0.range(containing: ip) != nil }) else {
                    throw aux.invalid(m.key, "not in any configured subnet")
                }
                auxAddresses.append((m.key, ip))
            }
        }

        if let v = req.env.arg("IP") {
            for part in v.split(separator: ",") {
                let s = String(part).trimmingWhitespace()
                guard let ip = HostLocalConfig.parseRequested(s) else {
                    throw CNIError(.invalidEnvironment, "CNI_ARGS: IP \"\(s)\" is not an IP address")
                }
                requested.append(ip)
            }
        }
        if let args = try req.config.object("args"), let cni = try args.object("cni") {
            for (i, s) in (try cni.stringArray("ips") ?? []).enumerated() {
                guard let ip = HostLocalConfig.parseRequested(s) else {
                    throw CNIError(.invalidConfig, "\"\(cni.keyPath("ips"))[\(i)]\" \"\(s)\": not an IP address")
                }
                requested.append(ip)
            }
        }
        if let rc = try req.config.object("runtimeConfig") {
            for (i, s) in (try rc.stringArray("ips") ?? []).enumerated() {
                guard let ip = HostLocalConfig.parseRequested(s) else {
                    throw CNIError(.invalidConfig, "\"\(rc.keyPath("ips"))[\(i)]\" \"\(s)\": not an IP address")
                }
                requested.append(ip)
            }
        }
    }

    /// An address, or an address with a prefix (the prefix is ignored, as the reference does).
    static func parseRequested(_ s: String) -> IPAddress? {
        IPAddress(s) ?? IPNetwork(s)?.address
    }

    /// The capability is a list of range sets (`[[{…}]]`). go-cni's `WithCapabilityIPRanges`
    /// sends a flat list of ranges (`[{"Subnet":…}]`), which the reference host-local refuses
    /// ("cannot unmarshal object into … RangeSet"); it is taken as one range set per address
    /// family (one address per family, from the first of its ranges with room).
    static func groupFlatRanges(_ arr: [JSON]) -> [JSON] {
        guard !arr.isEmpty, arr.allSatisfy({ $0.objectValue != nil }) else { return arr }
        var v4: [JSON] = [], v6: [JSON] = []
        for r in arr {
            let subnet = (try? JSONReader(r, path: "").string("subnet")) ?? nil
            if subnet?.contains(":") == true { v6.append(r) } else { v4.append(r) }
        }
        return [v4, v6].filter { !$0.isEmpty }.map { .array($0) }
    }

    static func parseRangeSets(_ arr: [JSON], key: String) throws(CNIError) -> [RangeSet] {
        var out: [RangeSet] = []
        for (i, set) in arr.enumerated() {
            guard case .array(let ranges) = set else {
                throw CNIError(.decodingFailure, "\"\(key)[\(i)]\": expected an array of ranges, got \(set.kindName) \(set.excerpt())")
            }
            if ranges.isEmpty { throw CNIError(.invalidConfig, "\"\(key)[\(i)]\": range set is empty") }
            var parsed: [IPRange] = []
            for (j, r) in ranges.enumerated() {
                let rr = try JSONReader(r, path: "\(key)[\(i)][\(j)]")
                let range = try parseRange(rr)
                if let first = parsed.first, first.family != range.family {
                    throw CNIError(.invalidConfig, "\"\(key)[\(i)][\(j)].subnet\" \"\(range.subnet)\": a range set may not mix IPv4 and IPv6")
                }
                for (k, p) in parsed.enumerated() where p.overlaps(range) {
                    throw CNIError(.invalidConfig, "\"\(key)[\(i)][\(j)]\" (\(range)) overlaps range \(k) (\(p)) of the same set")
                }
                parsed.append(range)
            }
            out.append(RangeSet(parsed))
        }
        return out
    }

    static func parseRange(_ r: JSONReader) throws(CNIError) -> IPRange {
        guard let subnet = try r.ipNetwork("subnet") else {
            throw CNIError(.invalidConfig, "\"\(r.keyPath("subnet"))\" is required")
        }
        return try IPRange(subnet: subnet, rangeStart: try r.ipAddress("rangeStart"), rangeEnd: try r.ipAddress("rangeEnd"),
                           gateway: try r.ipAddress("gateway"), ipRange: try r.ipNetwork("ipRange"), key: r.path.isEmpty ? "ipam" : r.path)
    }

    public var auxByAddress: [IPAddress: String] {
        var m: [IPAddress: String] = [:]
        for a in auxAddresses { m[a.ip] = a.name }
        return m
    }
}

extension HostLocalConfig {
    /// The requested addresses by range set: each goes to the set whose subnets hold it, one
    /// per set at most.
    public func requestedPerSet() throws(CNIError) -> [IPAddress?] {
        // Each requested address goes to the range set whose subnets hold it.
        var perSet = [IPAddress?](repeating: nil, count: rangeSets.count)
        for ip in requested {
            guard let i = rangeSets.firstIndex(where: { $0.range(containing: ip) != nil }) else {
                let subnets = rangeSets.flatMap { $0.ranges.map { $0.subnet.description } }.joined(separator: ", ")
                throw CNIError(.invalidConfig, "requested IP \(ip) is not in any configured subnet (\(subnets))")
            }
            if let other = perSet[i] {
                throw CNIError(.invalidConfig, "requested IPs \(other) and \(ip) are both in range set \(i); one address per range set")
            }
            perSet[i] = ip
        }

        return perSet
    }
}
