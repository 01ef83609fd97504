// A network's address blocks in etcd (see Blocks.swift): ADD claims addresses — from this
// host's blocks, else a new block, else borrowed from another host's — in one transaction
// with whatever else the caller records (the container's endpoint); DEL, GC and the reclaim
// of a dead host's blocks change blocks by compare-and-swap too.

import Base
import CNI
import Etcd
import IPAM

public final class BlockStore {
    let client: EtcdClient
    let keys: ClusterKeys
    let network: String
    let host: String
    /// Transactions tried before giving up (others changed the same blocks meanwhile).
    let attempts = 30

    /// The agent's copy of the blocks (`BlockCache`): a change's first attempt starts from it,
    /// and every committed change goes into it. Without one, each attempt reads etcd.
    let cache: BlockCache?

    public init(network: String, client: EtcdClient, prefix: String, host: String, cache: BlockCache? = nil) {
        self.client = client
        keys = ClusterKeys(prefix)
        self.network = network
        self.host = host
        self.cache = cache
    }

    typealias Snapshot = [IPNetwork: (block: AddressBlock, revision: Int64)]

    func key(_ cidr: IPNetwork) -> String { keys.block(network, AddressBlock(cidr: cidr, host: "").keyName) }

    func read() throws -> Snapshot {
        let (kvs, rev) = try client.range(prefix: keys.blocks(network))
        var out: Snapshot = [:]
        for kv in kvs { if let b = AddressBlock(bytes: kv.value) { out[b.cidr] = (b, kv.modRevision) } }
        cache?.refresh(network, out, revision: rev)
        return out
    }

    /// What an ADD's attempt starts from: the cached blocks on the first (when the copy is
    /// complete and not in doubt, and the request is not a retry, whose lost first attempt
    /// may have claimed what the copy has not seen), etcd's on the others (the
    /// compare-and-swap failed: something changed).
    func start(_ attempt: Int, useCache: Bool) throws -> Snapshot {
        if attempt == 0, useCache, let s = cache?.snapshot(network) { return s }
        return try read()
    }

    /// A transaction whose answer is lost may have committed: the copy is in doubt until read.
    func transaction(_ conds: [EtcdClient.Condition], puts: [(String, [UInt8])], deletes: [String] = []) throws -> (Bool, Int64) {
        do { return try client.transaction(conds, puts: puts, deletes: deletes) } catch {
            cache?.markDirty(network)
            throw error
        }
    }

    /// Every block of the network as it is now (status, tests, cnictl).
    public func blocks() throws -> [AddressBlock] { try read().values.map(\.block).sorted { $0.cidr.networkAddress < $1.cidr.networkAddress } }

    func condition(_ cidr: IPNetwork, _ snap: Snapshot) -> EtcdClient.Condition {
        if let s = snap[cidr] { return .modifiedAt(key(cidr), s.revision) }
        return .absent(key(cidr))
    }

    static func config(_ ip: IPAddress, _ r: IPRange) -> CNIIPConfig {
        CNIIPConfig(address: IPNetwork(address: ip, prefixLength: r.subnet.prefixLength)!, gateway: r.gateway)
    }

    /// Claims one address per range set for `owner` (the requested one where given), and in
    /// the same transaction puts what `extra` returns for the addresses. An earlier attempt of
    /// the same request (`token`) that committed and lost its answer is found and returned.
    public func allocate(owner: Attachment, token: String, layouts: [BlockLayout], requested: [IPAddress?], retried: Bool = false,
                         extra: ([IPAddress]) -> [(String, [UInt8])]) throws -> (ips: [CNIIPConfig], revision: Int64) {
        let claim = BlockClaim(containerID: owner.containerID, ifname: owner.ifname, host: host, token: token)
        for attempt in 0..<attempts {
            let snap = try start(attempt, useCache: !retried)
            var changed: [IPNetwork: AddressBlock] = [:]
            var ips: [CNIIPConfig] = []
            func current(_ c: IPNetwork) -> AddressBlock? { changed[c] ?? snap[c]?.block }
            for (i, layout) in layouts.enumerated() {
                let set = layout.rangeSet
                if let ip = i < requested.count ? requested[i] : nil {
                    guard let r = set.range(containing: ip), let cidr = layout.block(containing: ip) else {
                        throw CNIError(.invalidConfig, "requested IP \(ip) is not in \(set.ranges.count == 1 ? "subnet" : "subnets") \(set.ranges.map { $0.subnet.description }.joined(separator: ", "))")
                    }
                    if let why = layout.reservation(ip, in: r) { throw CNIError(.invalidConfig, "requested IP \(ip) \(why)") }
                    var b = current(cidr) ?? AddressBlock(cidr: cidr, host: host)
                    if let c = b.claims[ip] {
                        if c == claim { ips.append(BlockStore.config(ip, r)); continue }
                        throw CNIError(.addressInUse, "requested IP \(ip) is already allocated to container \(c.containerID)\(c.ifname.isEmpty ? "" : " (\(c.ifname))")")
                    }
                    b.claims[ip] = claim
                    changed[cidr] = b
                    ips.append(BlockStore.config(ip, r))
                    continue
                }
                let all = Set(snap.keys).union(changed.keys).compactMap { current($0) }
                let inSet = all.filter { b in set.ranges.contains { $0.subnet.overlaps(b.cidr) } }
                    .sorted { $0.cidr.networkAddress < $1.cidr.networkAddress }
                // One address per range set per attachment (SPEC: no duplicate allocation).
                if let (ip, c) = inSet.lazy.flatMap({ $0.claims.filter { $0.value.owner == owner && $0.value.host == self.host } })
                    .first(where: { set.range(containing: $0.key) != nil }) {
                    if c.token == token { ips.append(BlockStore.config(ip, set.range(containing: ip)!)); continue }
                    throw CNIError(.addressInUse, "\(ip) is already allocated to container \(owner.containerID) (\(owner.ifname)) in this network; duplicate allocation is not allowed")
                }
                var got: (IPAddress, AddressBlock)? = nil
                // This host's blocks first, then a block nobody has, then a free address of another's.
                for b in inSet where b.host == host {
                    if let a = layout.freeAddress(in: b) { got = (a, b); break }
                }
                if got == nil {
                    for cidr in layout.unclaimedBlocks(taken: Set(snap.keys).union(changed.keys)) {
                        let b = AddressBlock(cidr: cidr, host: host)
                        if let a = layout.freeAddress(in: b) { got = (a, b); break }
                    }
                }
                if got == nil {
                    for b in inSet where b.host != host {
                        if let a = layout.freeAddress(in: b) { got = (a, b); break }
                    }
                }
                guard let (a, found) = got else {
                    throw CNIError(.addressesExhausted, "no IP addresses available in range set \(set)")
                }
                var b = found
                b.claims[a] = claim
                changed[b.cidr] = b
                ips.append(BlockStore.config(a, set.range(containing: a)!))
            }
            let conds = changed.keys.map { condition($0, snap) }
            let puts = changed.values.map { (key($0.cidr), $0.json.serializedBytes()) } + extra(ips.map(\.address.address))
            let (ok, rev) = try transaction(conds, puts: puts)
            if ok {
                for b in changed.values { cache?.set(network, b.cidr, b, revision: rev) }
                return (ips, rev)
            }
        }
        throw CNIError(.tryAgainLater, "the address blocks of network \(network) kept changing under \(attempts) attempts to claim an address")
    }

    /// The addresses `owner` holds (claimed by this host).
    public func addresses(of owner: Attachment) throws -> [IPAddress] {
        try read().values.flatMap { $0.block.claims.filter { $0.value.owner == owner && $0.value.host == host }.map(\.key) }.sorted()
    }

    /// Applies `change` to every block (nil: leave it, an empty claim list with `delete`:
    /// remove the block) by compare-and-swap, re-reading whatever changed meanwhile.
    func update(_ change: (AddressBlock, Snapshot) -> (AddressBlock, delete: Bool)?) throws {
        // Always from etcd: on a copy that had not seen a claim, DEL would find nothing to release.
        for _ in 0..<attempts {
            let snap = try read()
            var allDone = true
            for (cidr, s) in snap.sorted(by: { $0.key.networkAddress < $1.key.networkAddress }) {
                guard let (nb, delete) = change(s.block, snap), nb != s.block || delete else { continue }
                let (ok, rev) = delete
                    ? try transaction([.modifiedAt(key(cidr), s.revision)], puts: [], deletes: [key(cidr)])
                    : try transaction([.modifiedAt(key(cidr), s.revision)], puts: [(key(cidr), nb.json.serializedBytes())])
                if ok { cache?.set(network, cidr, delete ? nil : nb, revision: rev) } else { allDone = false }
            }
            if allDone { return }
        }
        throw CNIError(.tryAgainLater, "the address blocks of network \(network) kept changing under \(attempts) attempts to update them")
    }

    /// DEL: `owner`'s addresses go back to their blocks. A block of this host left empty is
    /// returned unless it is this host's last of its family in the network (the next ADD would
    /// claim one again).
    public func release(_ owner: Attachment) throws {
        try update { b, snap in
            let mine = b.claims.filter { $0.value.owner == owner && $0.value.host == host }
            guard !mine.isEmpty else { return nil }
            var nb = b
            for ip in mine.keys { nb.claims[ip] = nil }
            let others = snap.values.filter { $0.block.host == host && $0.block.cidr != b.cidr && $0.block.cidr.family == b.cidr.family }
            let ret = nb.claims.isEmpty && (b.host == "" || (b.host == host && !others.isEmpty))
            return (nb, ret)
        }
    }

    /// GC: this host's claims whose attachment is not valid go.
    public func collect(keeping valid: Set<Attachment>) throws {
        let ids = Set(valid.map(\.containerID))
        try update { b, _ in
            var nb = b
            for (ip, c) in b.claims where c.host == host {
                let keep = c.ifname.isEmpty ? ids.contains(c.containerID) : valid.contains(c.owner)
                if !keep { nb.claims[ip] = nil }
            }
            return (nb, false)
        }
    }

    /// A host that is gone (no lease) and has no endpoint left in the network holds nothing:
    /// its claims go, and its blocks are deleted (or left to nobody while others' borrowed
    /// addresses are still in them). Hosts, endpoints and blocks are read as of one revision
    /// and every change is a compare-and-swap on what was read: a host that registers an
    /// endpoint meanwhile changed the block it claimed in, so its block is never taken.
    public func reclaimGoneHosts() throws {
        for _ in 0..<attempts {
            let (lists, _) = try client.snapshot([keys.hosts, keys.endpoints(network), keys.blocks(network)])
            let alive = Set(lists[0].compactMap { keys.parseHost($0.key) })
            let withEndpoints = Set(lists[1].compactMap { keys.parseEndpoint($0.key)?.host })
            func gone(_ h: String) -> Bool { !h.isEmpty && !alive.contains(h) && !withEndpoints.contains(h) }
            var allDone = true
            for kv in lists[2] {
                guard let b = AddressBlock(bytes: kv.value) else { continue }
                var nb = b
                for (ip, c) in b.claims where gone(c.host) { nb.claims[ip] = nil }
                if gone(b.host) { nb.host = "" }
                if nb == b { continue }
                let (ok, _) = nb.host == "" && nb.claims.isEmpty
                    ? try client.transaction([.modifiedAt(kv.key, kv.modRevision)], puts: [], deletes: [kv.key])
                    : try client.transaction([.modifiedAt(kv.key, kv.modRevision)], puts: [(kv.key, nb.json.serializedBytes())])
                if !ok { allDone = false }
            }
            if allDone { return }
        }
    }
}
