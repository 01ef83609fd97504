// The overlay plugin's configuration (the plugin's keys; its `ipam` is host-local's).

import Base
import CNI
import EtcdSettings

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
        etcd = try EtcdConfig(e, checkFiles: !req.isTeardown)
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
        // Block sizes (prefix lengths) of the agent's per-host address blocks.
        _ = try optional { () throws(CNIError) in try ip.int("blockSize", in: 8...32) }
        _ = try optional { () throws(CNIError) in try ip.int("blockSizeV6", in: 64...128) }
        // The agent allocates in the network's own cluster; an IPAM section naming another is wrong.
        if let ie = try optional({ () throws(CNIError) in try ip.object("etcd") }) {
            let other = try EtcdConfig(ie, checkFiles: false)
            if other.endpoints != etcd.endpoints || other.prefix != etcd.prefix {
                throw CNIError(.invalidConfig, "\"ipam.etcd\": an overlay network's addresses are kept in its own cluster (\"etcd\": \(etcd.endpoints.map(\.description).joined(separator: ",")), prefix \(etcd.prefix)); ipam.etcd names another")
            }
        }
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
