import Base
import CNI
import IPAM

/// The host-local IPAM plugin's logic (the executable and the plugins that run it in-process
/// share it).
public struct HostLocal: CNIPlugin {
    public init() {}
    public static var knownArgs: Set<String> { ["IP"] }

    func store(_ cfg: HostLocalConfig) throws -> AllocationStore {
        if cfg.wantsClusterStore {
            throw CNIError(.unsupportedField, "\"ipam.etcd\": addresses in etcd are allocated by the overlay plugin's agent (a network of \"type\": \"overlay\" has them); host-local alone keeps them in its data dir")
        }
        do {
            return try FileStore(network: cfg.network, dataDir: cfg.dataDir)
        } catch {
            throw CNIError.wrap(error, code: .ioFailure, context: "host-local data dir")
        }
    }

    public func add(_ req: CNIRequest) throws -> CNIResult {
        PhaseTrace.mark("ipam start")
        let cfg = try HostLocalConfig(req)
        PhaseTrace.mark("ipam config")
        var result = CNIResult(cniVersion: req.cniVersion)
        if let rc = cfg.resolvConf, !rc.isEmpty { result.dns = try ResolvConf.read(rc) }
        let store = try store(cfg)
        PhaseTrace.mark("ipam store")
        let owner = Attachment(containerID: req.containerID, ifname: req.ifname)

        let perSet = try cfg.requestedPerSet()

        let aux = cfg.auxByAddress
        result.ips = try store.withLock {
            var ips: [CNIIPConfig] = []
            do {
                for (i, set) in cfg.rangeSets.enumerated() {
                    let a = Allocator(rangeSet: set, index: i, store: store, aux: aux)
                    ips.append(try a.allocate(for: owner, requested: perSet[i]))
                }
            } catch {
                // All or nothing: give back what this ADD took.
                for ip in ips { try? store.release(ip: ip.address.address) }
                throw error
            }
            return ips
        }
        result.routes = cfg.routes
        return result
    }

    public func del(_ req: CNIRequest) throws {
        let cfg = try HostLocalConfig(req)
        let store = try store(cfg)
        let owner = Attachment(containerID: req.containerID, ifname: req.ifname)
        try store.withLock { _ = try store.release(owner) }
    }

    public func check(_ req: CNIRequest) throws {
        let cfg = try HostLocalConfig(req)
        let store = try store(cfg)
        let owner = Attachment(containerID: req.containerID, ifname: req.ifname)
        let held = try store.withLock { try store.addresses(of: owner, thorough: true) }
        try HostLocal.check(held: held, req, cfg)
    }

    /// CHECK's verdict on what the attachment holds: something, and every address of the
    /// previous result that is in these ranges (whatever store the addresses are in).
    public static func check(held: [IPAddress], _ req: CNIRequest, _ cfg: HostLocalConfig) throws {
        if held.isEmpty {
            throw CNIError(.checkFailed, "host-local: no address is allocated to container \(req.containerID) (\(req.ifname)) in network \(req.name)")
        }
        if let prev = try req.prevResult() {
            for ip in prev.ips where cfg.rangeSets.contains(where: { $0.range(containing: ip.address.address) != nil }) {
                if !held.contains(ip.address.address) {
                    throw CNIError(.checkFailed, "host-local: address \(ip.address.address) of the previous result is not allocated to container \(req.containerID) (\(req.ifname))")
                }
            }
        }
    }

    public func gc(_ req: CNIRequest) throws {
        let cfg = try HostLocalConfig(req)
        let valid = try req.validAttachments()
        let validIDs = Set(valid.map(\.containerID))
        let store = try store(cfg)
        try store.withLock {
            for (ip, o) in try store.allocations() {
                let keep = o.ifname.isEmpty ? validIDs.contains(o.containerID) : valid.contains(o)
                if !keep { try store.release(ip: ip) }
            }
            try store.maintenance()
        }
    }

    public func status(_ req: CNIRequest) throws {
        let cfg = try HostLocalConfig(req)
        if cfg.wantsClusterStore { _ = try store(cfg) }
        let store: FileStore
        do {
            store = try FileStore(network: cfg.network, dataDir: cfg.dataDir)
        } catch {
            throw CNIError(.notAvailable, "host-local: data dir unusable: \(error)")
        }
        if !Posix.isWritable(store.directory) {
            throw CNIError(.notAvailable, "host-local: data dir \(store.directory) is not writable")
        }
        let allocations: [(IPAddress, Attachment)]
        do {
            allocations = try store.withLock { try store.allocations() }
        } catch {
            throw CNIError(.notAvailable, "host-local: data dir unusable: \(error)")
        }
        let aux = cfg.auxByAddress
        for (i, set) in cfg.rangeSets.enumerated() {
            let a = Allocator(rangeSet: set, index: i, store: store, aux: aux)
            let used = allocations.filter { alloc in set.ranges.contains { $0.inDynamicRange(alloc.0) } }.count
            if UInt128(used) >= a.capacity {
                throw CNIError(.notAvailable, "host-local: range set \(i) (\(set)) is exhausted: \(used) of \(a.capacity) addresses allocated")
            }
        }
    }
}
