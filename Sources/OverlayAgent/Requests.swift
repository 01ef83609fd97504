// What the overlay plugin asks of its host's agent (see Overlay/AgentClient.swift for the
// wire): the container's addresses (host-local's logic on the cluster store), the network's
// definition, the container's registration (answered once this host has programmed every
// endpoint registered before it), its removal, CHECK's and GC's part, and STATUS's.

#if canImport(Glibc)
import Glibc
#endif
import Base
import CNI
import ClusterIPAM
import IPAM
import Etcd
import HostLocalIPAM
import Overlay

extension HostAgent {
    static let pluginVerbs: Set<String> = ["ipam", "define", "register", "deregister", "check", "gc", "health"]

    /// "ok <JSON>" or "error <CNI error JSON>".
    func answer(_ verb: String, _ rest: Substring) -> String {
        do {
            guard let body = (try? JSON.parse(Array(rest.drop(while: { $0 == " " }).utf8)))?.objectValue else {
                throw CNIError(.internal, "overlay agent: \(verb): the request is not a JSON object")
            }
            let out = try handle(verb, JSONReader(body, path: verb))
            return "ok " + out.serialized()
        } catch {
            let e = CNIError.wrap(error)
            return "error " + e.json(cniVersion: "1.1.0").serialized()
        }
    }

    func handle(_ verb: String, _ r: JSONReader) throws -> JSON {
        let etcd = EtcdClient(settings.etcd)
        switch verb {
        case "ipam": return try ipam(r)
        case "define": try define(r, etcd)
        case "register": try register(r, etcd)
        case "deregister":
            _ = try etcd.delete(try endpointKey(r))
        case "check": return try check(r, etcd)
        case "gc": try gc(r, etcd)
        case "health":
            do { _ = try etcd.get(keys.netconfigs) } catch { throw CNIError(.notAvailable, "etcd: \(error)") }
        default: break
        }
        return .object(JSONObject())
    }

    func endpointKey(_ r: JSONReader) throws -> String {
        guard let n = try r.string("network"), let c = try r.string("containerID"), let i = try r.string("ifname") else {
            throw CNIError(.internal, "overlay agent: the request names no endpoint")
        }
        return keys.endpoint(n, host: settings.host, containerID: c, ifname: i)
    }

    /// host-local's ADD/DEL/CHECK/GC/STATUS for the plugin's request — its configuration,
    /// ranges, requested and auxiliary addresses — with the addresses from this host's blocks
    /// in etcd (`BlockStore`). ADD registers the container's endpoint (`record`, with the
    /// addresses filled in) in the same transaction that claims them.
    func ipam(_ r: JSONReader) throws -> JSON {
        var env: [String: String] = [:]
        for v in try r.stringArray("env") ?? [] {
            if let eq = v.firstIndex(of: "=") { env[String(v[..<eq])] = String(v[v.index(after: eq)...]) }
        }
        guard let config = try r.object("config") else { throw CNIError(.internal, "overlay agent: ipam: no configuration") }
        let json = JSON.object(config.object)
        let req = try CNIRequest(env: CNIEnvironment.from { env[$0] }, configBytes: json.serializedBytes(), json: json)
        let cfg = try HostLocalConfig(req)
        let store = BlockStore(network: req.name, client: EtcdClient(settings.etcd), prefix: settings.etcd.prefix, host: settings.host,
                               cache: blockCache)
        let owner = Attachment(containerID: req.containerID, ifname: req.ifname)
        let lock = networkLock(req.name)
        switch req.command {
        case .add:
            var g = FastRandom()
            let token = try r.string("token") ?? String(g.next(), radix: 16)
            var result = CNIResult(cniVersion: req.cniVersion)
            if let rc = cfg.resolvConf, !rc.isEmpty { result.dns = try ResolvConf.read(rc) }
            let ipamSection = try req.config.object("ipam")
            let v4 = try ipamSection?.int("blockSize", in: 8...32) ?? BlockLayout.defaultPrefixV4
            let v6 = try ipamSection?.int("blockSizeV6", in: 64...128) ?? BlockLayout.defaultPrefixV6
            let aux = cfg.auxByAddress
            let layouts = cfg.rangeSets.map { BlockLayout(rangeSet: $0, aux: aux, prefixV4: v4, prefixV6: v6) }
            let record = try r.object("record").flatMap { EndpointRecord(network: req.name, bytes: JSON.object($0.object).serializedBytes()) }
            let key = keys.endpoint(req.name, host: settings.host, containerID: req.containerID, ifname: req.ifname)
            let requested = try cfg.requestedPerSet()
            let (ips, rev) = try lock.locked {
                try store.allocate(owner: owner, token: token, layouts: layouts, requested: requested,
                                   retried: try r.bool("retried") ?? false) { addrs in
                    guard var rec = record else { return [] }
                    rec.ips = addrs
                    return [(key, rec.json.serializedBytes())]
                }
            }
            result.ips = ips
            result.routes = cfg.routes
            return ["result": result.json(version: req.cniVersion), "revision": .int(Int(rev))]
        case .del:
            try lock.locked { try store.release(owner) }
        case .check:
            try HostLocal.check(held: try store.addresses(of: owner), req, cfg)
        case .gc:
            let valid = try req.validAttachments()
            try lock.locked { try store.collect(keeping: valid) }
        case .status, .version:
            break
        }
        return .object(JSONObject())
    }

    /// Records the network's definition on its first ADD anywhere; later ADDs must match it.
    /// Another network may not use the same VNI or overlapping subnets.
    func define(_ r: JSONReader, _ etcd: EtcdClient) throws {
        guard let network = try r.string("network"), let vni = try r.int("vni") else {
            throw CNIError(.internal, "overlay agent: define: no network or VNI")
        }
        let subnets = (try r.stringArray("subnets") ?? []).compactMap(IPNetwork.init)
        let mine: JSON = ["vni": .int(vni), "subnets": .array(subnets.map { .string($0.description) })]
        if lock.locked({ definitions[network] == mine }) { return }
        while true {
            if let existing = try etcd.get(keys.netconfig(network)) {
                guard let j = try? JSON.parse(existing.value), j["vni"]?.intValue == vni else {
                    throw CNIError(.invalidConfig, "\"vni\" \(vni): network \(network) is defined in etcd with another VNI (\(existing.text))")
                }
                let theirs = Set((j["subnets"]?.arrayValue ?? []).compactMap(\.stringValue))
                if theirs != Set(subnets.map(\.description)) {
                    throw CNIError(.invalidConfig, "\"ipam\": network \(network) is defined in etcd with subnets \(theirs.sorted().joined(separator: ", "))")
                }
                lock.locked { definitions[network] = mine }
                return
            }
            let (others, _) = try etcd.range(prefix: keys.netconfigs)
            for kv in others {
                let name = String(kv.key.dropFirst(keys.netconfigs.count))
                guard name != network, let j = try? JSON.parse(kv.value) else { continue }
                if j["vni"]?.intValue == vni {
                    throw CNIError(.invalidConfig, "\"vni\" \(vni) is already used by overlay network \(name)")
                }
                for s in (j["subnets"]?.arrayValue ?? []).compactMap({ $0.stringValue.flatMap(IPNetwork.init) }) {
                    if let clash = subnets.first(where: { $0.overlaps(s) }) {
                        throw CNIError(.invalidConfig, "\"ipam\": subnet \(clash) overlaps subnet \(s) of overlay network \(name)")
                    }
                }
            }
            // Someone may define it meanwhile: then compare with theirs.
            if try etcd.create(keys.netconfig(network), mine.serializedBytes()) {
                lock.locked { definitions[network] = mine }
                return
            }
        }
    }

    /// Registers the endpoint, then programs the network once the watch has followed etcd
    /// past the registration: the ADD returns with every endpoint registered before it in
    /// place here.
    func register(_ r: JSONReader, _ etcd: EtcdClient) throws {
        guard let network = try r.string("network") else { throw CNIError(.internal, "overlay agent: register: no network") }
        // Registered already with the addresses (the IPAM ADD's transaction), at that revision.
        if let rev = try r.int("revision"), !r.has("record") { return try program(network, after: Int64(rev)) }
        guard let rec = try r.object("record"), let record = EndpointRecord(network: network, bytes: JSON.object(rec.object).serializedBytes()) else {
            throw CNIError(.internal, "overlay agent: register: no endpoint record")
        }
        let rev = try etcd.put(keys.endpoint(network, host: settings.host, containerID: record.containerID, ifname: record.ifname),
                               record.json.serializedBytes())
        try program(network, after: rev)
    }

    /// Programs `network` once the mirror has followed etcd up to `rev`; a passing error is
    /// tried again twice (the agent goes on trying afterwards), else the plugin hears why.
    func program(_ network: String, after rev: Int64) throws {
        if !caughtUp(to: rev, withinMs: 8000) {
            let have = lock.locked { revision }
            throw CNIError(.tryAgainLater, "overlay agent: its view of etcd is at revision \(have), behind \(rev) (watch: \(lock.locked { lastError }))")
        }
        var why = reconcile(only: network)[network]
        for pause in [20_000, 80_000] as [UInt32] where why != nil {
            usleep(pause)
            why = reconcile(only: network)[network]
        }
        if let why { throw CNIError(.overlayAgent, "overlay agent: error programming \(network): \(why)") }
    }

    /// CHECK: the endpoint is registered; once everything etcd holds now is programmed, the
    /// remote endpoints whose entries must be there.
    func check(_ r: JSONReader, _ etcd: EtcdClient) throws -> JSON {
        let key = try endpointKey(r)
        guard let network = try r.string("network") else { throw CNIError(.internal, "overlay agent: check: no network") }
        let (lists, _) = try etcd.snapshot([keys.hosts, keys.endpoints(network)])
        guard lists[1].contains(where: { $0.key == key }) else {
            throw CNIError(.checkFailed, "the endpoint of \(try r.string("containerID") ?? "") (\(try r.string("ifname") ?? "")) is not registered in etcd")
        }
        // An agent whose watch has followed etcd as far as the newest key read has seen every
        // one of them (a store revision could be newer than any event under the prefix).
        let rev = (lists[0] + lists[1]).map(\.modRevision).max() ?? 0
        try program(network, after: rev)
        let alive = Set(lists[0].compactMap { keys.parseHost($0.key) })
        let remote = lists[1].compactMap { kv -> JSON? in
            guard let ep = keys.parseEndpoint(kv.key), ep.host != settings.host, alive.contains(ep.host),
                  let rec = EndpointRecord(network: network, bytes: kv.value) else { return nil }
            return ["containerID": .string(rec.containerID), "host": .string(rec.host), "mac": .string(rec.mac.description)]
        }
        return ["remote": .array(remote)]
    }

    /// GC: this host's endpoints of the network outside the valid attachments go.
    func gc(_ r: JSONReader, _ etcd: EtcdClient) throws {
        guard let network = try r.string("network") else { throw CNIError(.internal, "overlay agent: gc: no network") }
        var valid = Set<Attachment>()
        for v in try r.objects("valid") ?? [] {
            valid.insert(Attachment(containerID: try v.string("containerID") ?? "", ifname: try v.string("ifname") ?? ""))
        }
        let prefix = keys.endpoints(network, host: settings.host)
        let (mine, _) = try etcd.range(prefix: prefix)
        for kv in mine {
            let id = String(kv.key.dropFirst(prefix.count))
            guard let c = id.lastIndex(of: ":") else { continue }
            if !valid.contains(Attachment(containerID: String(id[..<c]), ifname: String(id[id.index(after: c)...]))) {
                _ = try etcd.delete(kv.key)
            }
        }
    }
}
