// Publishing ports: conflicts found with single-key lookups, one batch per operation, and
// a record of each attachment's elements so DEL finds them without the runtime's help.
#if canImport(Glibc)
import Glibc
#endif
import Base

/// What an attachment published: kept under the run directory
/// (`portmap/<network>/<containerID>:<ifname>`), written atomically, so DEL removes exactly
/// these elements even when the runtime does not pass the port mappings again.
public struct PublishedRecord: Sendable {
    public var mapNetwork: String?
    public var bridge: String?
    public var ports: [PublishedPort]
    /// Families published without host ports (the network's gateway mode is routed there).
    public var routed: Set<IPFamily>
    /// The container ports are in the open sets (false in records of versions before them).
    public var open: Bool

    public init(mapNetwork: String?, bridge: String?, ports: [PublishedPort], routed: Set<IPFamily> = [], open: Bool = true) {
        self.mapNetwork = mapNetwork
        self.bridge = bridge
        self.ports = ports
        self.routed = routed
        self.open = open
    }

    var json: JSON {
        var o = JSONObject()
        if let m = mapNetwork { o["mapNetwork"] = .string(m) }
        if let b = bridge { o["bridge"] = .string(b) }
        if !routed.isEmpty { o["routed"] = .array(routed.sorted { $0 == .v4 && $1 == .v6 }.map { .string($0.versionString) }) }
        if open { o["open"] = .bool(true) }
        o["ports"] = .array(ports.map { p in
            var e = JSONObject()
            if let h = p.hostIP { e["hostIP"] = .string(h.description) }
            e["family"] = .string(p.family.versionString)
            e["hostPort"] = .int(Int(p.hostPort))
            e["protocol"] = .string(p.proto.rawValue)
            e["container"] = .string(p.container.description)
            e["containerPort"] = .int(Int(p.containerPort))
            return .object(e)
        })
        return .object(o)
    }

    init?(json: JSON) {
        guard let arr = json["ports"]?.arrayValue else { return nil }
        mapNetwork = json["mapNetwork"]?.stringValue
        bridge = json["bridge"]?.stringValue
        routed = Set((json["routed"]?.arrayValue ?? []).compactMap { $0.stringValue == "6" ? .v6 : $0.stringValue == "4" ? .v4 : nil })
        open = json["open"]?.boolValue ?? false
        ports = arr.compactMap { e in
            guard let fam = e["family"]?.stringValue, let hp = e["hostPort"]?.intValue,
                  let pr = e["protocol"]?.stringValue.flatMap(PortProtocol.init(rawValue:)),
                  let c = e["container"]?.stringValue.flatMap(IPAddress.init), let cp = e["containerPort"]?.intValue else { return nil }
            return PublishedPort(hostIP: e["hostIP"]?.stringValue.flatMap(IPAddress.init), family: fam == "6" ? .v6 : .v4,
                                 hostPort: UInt16(hp), proto: pr, container: c, containerPort: UInt16(cp))
        }
    }
}

public struct PublishedRecords {
    public let directory: String

    public init(runDirectory: String? = nil) {
        directory = Posix.join(runDirectory ?? SuitePaths.runDirectory, "portmap")
    }

    func dir(_ network: String) -> String { Posix.join(directory, network) }
    func path(_ a: AttachmentID) -> String { Posix.join(dir(a.network), a.containerID + ":" + a.ifname) }

    public func read(_ a: AttachmentID) -> PublishedRecord? {
        guard let b = try? Posix.readFile(path(a)), let j = try? JSON.parse(b) else { return nil }
        return PublishedRecord(json: j)
    }

    public func write(_ a: AttachmentID, _ r: PublishedRecord) throws {
        try Posix.makeDirectories(dir(a.network))
        try Posix.writeFileAtomically(path(a), r.json.serializedBytes(), sync: false)
    }

    /// Removes the record and any temporary file a writer killed half-way left for it (the
    /// caller holds the firewall lock, which every writer takes).
    public func remove(_ a: AttachmentID) {
        _ = try? Posix.remove(path(a))
        _ = try? Posix.removeTemporaries(in: dir(a.network), of: a.containerID + ":" + a.ifname)
    }

    /// Every temporary file of the network's records (GC, under the firewall lock).
    public func removeTemporaries(_ network: String) {
        _ = try? Posix.removeTemporaries(in: dir(network))
    }

    /// Attachments of a network that have a record.
    public func attachments(_ network: String) -> [AttachmentID] {
        ((try? Posix.listDirectory(dir(network))) ?? nil ?? []).compactMap { n in
            guard Posix.temporaryTarget(n) == nil, let c = n.lastIndex(of: ":") else { return nil }
            return AttachmentID(network: network, containerID: String(n[..<c]), ifname: String(n[n.index(after: c)...]))
        }
    }
}

extension FirewallDriver {
    /// Base tables' operations when missing (from a chain dump).
    func baseIfMissing(_ chains: [ChainInfo]) -> [Operation] {
        var ops: [Operation] = []
        let all = Plan.base(), rules = Plan.baseRules()
        func has(_ t: TableRef, _ name: String) -> Bool {
            chains.contains { $0.family == t.family && $0.table == t.name && $0.name == name }
        }
        for t in [Plan.table, Plan.bridgeTable] where !has(t, "forward") {
            ops += all.filter { FirewallDriver.table(of: $0) == t } + rules.filter { FirewallDriver.table(of: $0) == t }
        }
        if has(Plan.table, "forward") && !has(Plan.table, "isolated-in") { ops += Plan.gatewayModesUpgrade() }
        return ops
    }

    /// Who already publishes what `port` asks for (nil: free). `hostAddresses`: the host's
    /// addresses of the port's family (an all-addresses port collides with each of them).
    func holder(of port: PublishedPort, mapNetwork: String?, hostAddresses: [IPAddress]) throws -> (String, PublishedPort)? {
        var probes: [PublishedPort] = []
        var any = port
        any.hostIP = nil
        probes.append(any)
        if port.hostIP != nil {
            probes.append(port)
        } else {
            for a in hostAddresses where a.family == port.family {
                var p = port
                p.hostIP = a
                probes.append(p)
            }
        }
        for pr in probes {
            for mn in Set([nil, mapNetwork]) {
                if let e = try nf.element(Plan.table, pr.map(network: mn), key: pr.key) {
                    return (e.comment ?? "an unknown attachment", pr)
                }
            }
        }
        return nil
    }

    /// ADD: publishes `ports` for attachment `a`; refuses (creating nothing) if any is taken.
    public func publish(_ p: PortmapPolicy, _ a: AttachmentID, ports: [PublishedPort], hostAddresses: [IPAddress],
                        routed: Set<IPFamily> = [], records: PublishedRecords) throws {
        try locked {
            let chains = try nf.chains()
            var ops = baseIfMissing(chains)
            // Without the tables, nothing is published yet.
            let fresh = !ops.isEmpty
            for (i, port) in ports.enumerated() where !routed.contains(port.family) {
                for other in ports[..<i] where !routed.contains(other.family) && other.family == port.family && other.proto == port.proto && other.hostPort == port.hostPort
                    && (other.hostIP == nil || port.hostIP == nil || other.hostIP == port.hostIP) {
                    throw FirewallError(.conflict, "port \(port.binding) is asked for twice (also as \(other.binding))")
                }
                if !fresh, let (who, at) = try holder(of: port, mapNetwork: p.mapNetwork, hostAddresses: hostAddresses) {
                    let owner = AttachmentID(comment: who).map { "container \($0.containerID) (\($0.ifname)) of network \($0.network)" } ?? who
                    throw FirewallError(.conflict, "port \(port.binding) is already published by \(owner) on \(at.binding)")
                }
            }
            let hairpinFresh = fresh || !chains.contains { $0.family == .inet && $0.table == Plan.table.name && $0.name == Plan.hairpinChain(p.network) }
            ops += Plan.portmapNetwork(p, a, addresses: Array(Set(ports.map(\.container))), fresh: hairpinFresh)
            if p.hasConditions, !(try nf.setExists(Plan.table, Plan.name(p.network, "pm4"))) {
                ops += Plan.portmapConditional(p)
            }
            ops += Plan.publish(ports, a, mapNetwork: p.mapNetwork, routed: routed)
            try records.write(a, PublishedRecord(mapNetwork: p.mapNetwork, bridge: p.bridge, ports: ports, routed: routed))
            do {
                try nf.apply(ops)
            } catch {
                records.remove(a)
                throw error
            }
        }
    }

    /// DEL: removes what `a` published (from its record; without one, found by comment), and
    /// the network's publishing setup when nothing of it is published any more.
    public func unpublish(network: String, bridge: String?, _ a: AttachmentID, records: PublishedRecords) throws {
        try locked {
            guard try nf.tableExists(Plan.table) else {
                records.remove(a)
                return
            }
            var ops: [Operation] = []
            let record = records.read(a)
            let bridge = bridge ?? record?.bridge
            if let r = record {
                // (A record of a version before the open sets names no element of them.)
                ops += Plan.publish(r.ports, a, mapNetwork: r.mapNetwork, routed: r.routed, open: r.open).map { op -> Operation in
                    if case .addElements(let t, let s, let e) = op { return .destroyElements(t, s, e) }
                    return op
                }
                // The addresses it put in the network's sets for hairpin SNAT.
                ops += Plan.attachmentElements(a, addresses: Array(Set(r.ports.map(\.container))), iccOffPort: nil).map {
                    .destroyElements($0.0, $0.1, $0.2)
                }
            } else {
                ops += try elementsOwned(network: network, by: { $0 == a })
            }
            records.remove(a)
            if records.attachments(network).isEmpty {
                ops += try portmapTeardown(network: network, bridge: bridge)
            }
            try nf.apply(ops)
        }
    }

    /// Destroy operations for the published elements of `network` whose owner `pick` selects
    /// (a scan of the maps, for state without records).
    func elementsOwned(network: String, by pick: (AttachmentID) -> Bool) throws -> [Operation] {
        var ops: [Operation] = []
        for m in Plan.portmapMaps + Plan.portmapMaps.map({ Plan.name(network, $0) }) + [Plan.openSet(.v4), Plan.openSet(.v6)] {
            guard let elems = try nf.elements(Plan.table, m) else { continue }
            let mine = elems.filter { e in
                guard let c = e.comment, let id = AttachmentID(comment: c), id.network == network else { return false }
                return pick(id)
            }
            if !mine.isEmpty {
                // A map element is re-added (the first half of a destroy) only with its value.
                ops.append(.destroyElements(Plan.table, m, mine.map { Element(key: $0.key, keyText: "…", data: $0.data) }))
            }
        }
        return ops
    }

    func portmapTeardown(network: String, bridge: String?) throws -> [Operation] {
        let handles = (try nf.rules(Plan.table, "portmap") ?? []).filter { $0.comment == "portmap:\(network)" }.map(\.handle)
        return Plan.portmapTeardown(network: network, bridge: bridge, conditionalRules: handles)
    }

    /// CHECK: every port is published, by this attachment.
    public func checkPublished(mapNetwork: String?, _ a: AttachmentID, ports: [PublishedPort], routed: Set<IPFamily> = []) throws {
        guard try nf.tableExists(Plan.table) else { throw FirewallError(.differs, "firewall: table \(Plan.table) is missing") }
        for port in ports {
            // Routed: the container port is open, no host port is used.
            if routed.contains(port.family) {
                let open = Plan.openSet(port.family)
                let key = Element.addressPort(port.container, proto: port.proto.number, port: port.containerPort).key
                if try nf.element(Plan.table, open, key: key)?.comment != a.description {
                    throw FirewallError(.differs, "portmap: container port \(port.proto.rawValue) \(port.container) \(port.containerPort) of \(a) is missing from set \(Plan.table) \(open)")
                }
                continue
            }
            let m = port.map(network: mapNetwork)
            guard let e = try nf.element(Plan.table, m, key: port.key) else {
                throw FirewallError(.differs, "portmap: \(port) is not published (element of map \(Plan.table) \(m) missing)")
            }
            if e.comment != a.description {
                throw FirewallError(.differs, "portmap: \(port.binding) is published by \(e.comment ?? "someone else"), not \(a)")
            }
        }
    }

    /// GC: removes what attachments of `network` outside `valid` published.
    public func gcPublished(network: String, bridge: String?, valid: Set<Attachment>, records: PublishedRecords) throws {
        try locked {
            records.removeTemporaries(network)
            guard try nf.tableExists(Plan.table) else { return }
            func isValid(_ id: AttachmentID) -> Bool { valid.contains(Attachment(containerID: id.containerID, ifname: id.ifname)) }
            let bridge = bridge ?? records.attachments(network).lazy.compactMap { records.read($0)?.bridge }.first
            var ops = try elementsOwned(network: network) { !isValid($0) }
            for a in records.attachments(network) where !isValid(a) { records.remove(a) }
            if records.attachments(network).isEmpty {
                ops += try portmapTeardown(network: network, bridge: bridge)
            }
            try nf.apply(ops)
        }
    }

    /// Whether the suite's tables hold nothing but empty base objects (no network, no port):
    /// then they can go.
    public func removeTablesIfUnused() throws {
        try locked {
            guard try nf.tableExists(Plan.table) else { return }
            if !(try nf.elements(Plan.table, "bridges") ?? []).isEmpty { return }
            for m in Plan.portmapMaps where !(try nf.elements(Plan.table, m) ?? []).isEmpty { return }
            if (try nf.rules(Plan.table, "portmap") ?? []).count > 4 { return }
            try nf.apply(Plan.teardownAll())
        }
    }
}
