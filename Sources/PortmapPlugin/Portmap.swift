// The portmap plugin's logic: published ports (tcp/udp/sctp, IPv4 and IPv6) on nftables
// maps, with Docker's per-network host binding address (`hostBindingIPv4`). Chained after
// the plugin that creates the interface (it needs prevResult).
import Base
import CNI
import Firewall
import Netlink

public struct PortmapConfig {
    var snat = true
    var masqAll = false
    var conditions4: [Statement] = []
    var conditions6: [Statement] = []
    var hostBindingIPv4: IPAddress?
    var mappings: [Mapping] = []

    struct Mapping {
        var hostPort: UInt16
        var containerPort: UInt16
        var proto: PortProtocol
        /// nil: every address (or hostBindingIPv4); a literal 0.0.0.0 / :: says the same.
        var hostIP: IPAddress?
        var anyFamily: IPFamily?
    }

    public init(_ req: CNIRequest) throws(CNIError) {
        let c = req.config
        snat = try c.bool("snat") ?? true
        masqAll = try c.bool("masqAll") ?? false
        if c.has("markMasqBit") {
            _ = try c.int("markMasqBit")
            throw CNIError(.unsupportedField, "\"markMasqBit\": iptables-only (swiftcni masquerades with nftables by connection state)")
        }
        if let s = try c.string("externalSetMarkChain"), !s.isEmpty {
            throw CNIError(.unsupportedField, "\"externalSetMarkChain\" \"\(s)\": iptables-only")
        }
        if let b = try c.string("backend"), !["iptables", "nftables"].contains(b) {
            throw c.invalid("backend", "must be \"iptables\" or \"nftables\" (swiftcni always uses nftables)")
        }
        conditions4 = try PortmapConditions.parse(try c.stringArray("conditionsV4") ?? [], family: .v4, key: "conditionsV4")
        conditions6 = try PortmapConditions.parse(try c.stringArray("conditionsV6") ?? [], family: .v6, key: "conditionsV6")
        if let h = try c.string("hostBindingIPv4"), !h.isEmpty {
            guard let a = IPAddress(h), a.isV4 else { throw c.invalid("hostBindingIPv4", "not an IPv4 address") }
            if !a.isUnspecified { hostBindingIPv4 = a }
        }
        if let rc = try c.object("runtimeConfig"), let pm = try rc.objects("portMappings") {
            for m in pm {
                guard let hp = try m.int("hostPort") else { throw CNIError(.invalidConfig, "\"\(m.keyPath("hostPort"))\" is required") }
                guard let cp = try m.int("containerPort") else { throw CNIError(.invalidConfig, "\"\(m.keyPath("containerPort"))\" is required") }
                guard (1...65535).contains(hp) else { throw m.invalid("hostPort", "must be between 1 and 65535") }
                guard (1...65535).contains(cp) else { throw m.invalid("containerPort", "must be between 1 and 65535") }
                let ps = (try m.string("protocol") ?? "tcp").lowercased()
                guard let proto = PortProtocol(rawValue: ps.isEmpty ? "tcp" : ps) else {
                    throw m.invalid("protocol", "must be tcp, udp or sctp")
                }
                var mapping = Mapping(hostPort: UInt16(hp), containerPort: UInt16(cp), proto: proto)
                if let h = try m.string("hostIP"), !h.isEmpty {
                    guard let a = IPAddress(h) else { throw m.invalid("hostIP", "not an IP address") }
                    if a.isUnspecified { mapping.anyFamily = a.family } else { mapping.hostIP = a }
                }
                mappings.append(mapping)
            }
        }
    }
}

public struct Portmap: CNIPlugin {
    public init() {}

    /// The mappings made concrete: host address or all addresses, per family of the
    /// container's addresses. A mapping whose host address has another family than every
    /// container address is skipped, as the reference does.
    /// In the `routed` families host ports are not used: their host addresses are not checked.
    func resolve(_ cfg: PortmapConfig, containers: [IPAddress], hostAddresses: [IPAddress], routed: Set<IPFamily> = []) throws -> [PublishedPort] {
        var out: [PublishedPort] = []
        let v4 = containers.first { $0.isV4 }, v6 = containers.first { $0.isV6 }
        for m in cfg.mappings {
            var targets: [(IPAddress?, IPFamily, IPAddress)] = []
            if let h = m.hostIP {
                guard let c = h.isV4 ? v4 : v6 else { continue }
                targets.append((h, h.family, c))
            } else {
                for (fam, c) in [(IPFamily.v4, v4), (.v6, v6)] {
                    guard let c else { continue }
                    if let only = m.anyFamily, only != fam { continue }
                    targets.append((fam == .v4 ? cfg.hostBindingIPv4 : nil, fam, c))
                }
            }
            for (host, fam, c) in targets {
                if let host, !routed.contains(fam), !hostAddresses.contains(host) {
                    let why = host == cfg.hostBindingIPv4 && m.hostIP == nil ? " (hostBindingIPv4)" : ""
                    throw CNIError(.hostAddressMissing, "cannot assign requested address \(host)\(why): no host interface has it")
                }
                out.append(PublishedPort(hostIP: host, family: fam, hostPort: m.hostPort, proto: m.proto, container: c,
                                         containerPort: m.containerPort))
            }
        }
        return out
    }

    /// The host interface that leads to the container (the bridge, for hairpin and
    /// localhost SNAT).
    func bridge(_ host: NetlinkSocket, _ containers: [IPAddress]) throws -> String? {
        for c in containers {
            if let r = try host.routeGet(c), let i = r.outputIndex, let l = try host.link(index: i) { return l.name }
        }
        return nil
    }

    public func add(_ req: CNIRequest) throws -> CNIResult {
        let cfg = try PortmapConfig(req)
        guard let prev = try req.prevResult() else {
            throw CNIError(.invalidConfig, "portmap needs \"prevResult\": chain it after the plugin that creates the interface")
        }
        if cfg.mappings.isEmpty { return prev }
        let containers = prev.containerAddresses
        let host = try NetlinkSocket()
        let hostAddresses = try host.addresses().map(\.address.address)
        let fw = try FirewallDriver()
        // The network's gateway modes, as its bridge plugin left them in the firewall.
        let routed = try fw.routedFamilies(network: req.name)
        let ports = try resolve(cfg, containers: containers, hostAddresses: hostAddresses, routed: routed)
        if ports.isEmpty { return prev }
        let br = try bridge(host, containers)
        PhaseTrace.mark("host")
        let policy = PortmapPolicy(network: req.name, bridge: br, snat: cfg.snat, masqAll: cfg.masqAll,
                                   conditions4: cfg.conditions4, conditions6: cfg.conditions6)
        let me = AttachmentID(network: req.name, containerID: req.containerID, ifname: req.ifname)
        try fw.publish(policy, me, ports: ports, hostAddresses: hostAddresses, routed: routed, records: PublishedRecords())
        PhaseTrace.mark("firewall")
        if cfg.snat, let br {
            // Connections to 127.0.0.1 reach the container only if the bridge routes
            // loopback sources.
            // (Not for a routed IPv4: nothing is DNAT'd there.)
            if !routed.contains(.v4), ports.contains(where: { $0.family == .v4 && $0.hostIP == nil }) {
                try? Sysctl.set("net/ipv4/conf/\(br)/route_localnet", "1")
            }
            // A container reaching its own published port: with br_netfilter the DNAT'd
            // packet is bridged back out of the port it came in on, which needs hairpin mode.
            if let b = try host.link(named: br) {
                for i in prev.interfaces where (i.sandbox ?? "").isEmpty && i.name != br {
                    if let l = try host.link(named: i.name), l.master == b.index {
                        try host.setBridgePort(index: l.index, hairpin: true)
                    }
                }
            }
        }
        PhaseTrace.mark("host settings")
        for p in ports where p.proto == .udp && !routed.contains(p.family) {
            _ = try? Conntrack.flush(proto: .udp, port: p.hostPort, address: p.hostIP, family: p.family)
        }
        return prev
    }

    /// Needs nothing of the configuration: the records (or the map elements' comments) say
    /// what this attachment published.
    public func del(_ req: CNIRequest) throws {
        let me = AttachmentID(network: req.name, containerID: req.containerID, ifname: req.ifname)
        let fw = try FirewallDriver()
        try fw.unpublish(network: req.name, bridge: nil, me, records: PublishedRecords())
        try fw.removeTablesIfUnused()
    }

    public func check(_ req: CNIRequest) throws {
        let cfg = try PortmapConfig(req)
        guard let prev = try req.prevResult() else {
            throw CNIError(.invalidConfig, "\"prevResult\" is required for CHECK")
        }
        let me = AttachmentID(network: req.name, containerID: req.containerID, ifname: req.ifname)
        let records = PublishedRecords()
        var ports: [PublishedPort]
        var mapNetwork: String? = nil
        let fw = try FirewallDriver()
        var routed = Set<IPFamily>()
        if cfg.mappings.isEmpty {
            // The runtime did not pass the mappings again: check what ADD recorded.
            guard let r = records.read(me) else { return }
            ports = r.ports
            mapNetwork = r.mapNetwork
            routed = r.routed
        } else {
            let host = try NetlinkSocket()
            routed = try fw.routedFamilies(network: req.name)
            ports = try resolve(cfg, containers: prev.containerAddresses, hostAddresses: try host.addresses().map(\.address.address),
                                routed: routed)
            mapNetwork = PortmapPolicy(network: req.name, bridge: nil, conditions4: cfg.conditions4, conditions6: cfg.conditions6).mapNetwork
        }
        try fw.checkPublished(mapNetwork: mapNetwork, me, ports: ports, routed: routed)
    }

    public func gc(_ req: CNIRequest) throws {
        let fw = try FirewallDriver()
        try fw.gcPublished(network: req.name, bridge: nil, valid: try req.validAttachments(), records: PublishedRecords())
        try fw.removeTablesIfUnused()
    }

    public func status(_ req: CNIRequest) throws {
        _ = try PortmapConfig(req)
        do { _ = try FirewallDriver().nf.tableExists(Plan.table) } catch {
            throw CNIError(.notAvailable, "nftables is not usable: \(error)")
        }
    }
}

