// The agent's copy of every network's address blocks, as its watch of etcd sees them and as
// its own transactions leave them: an ADD's compare-and-swap starts from it instead of
// reading the blocks from etcd first (a linearizable range, about as slow as the write).
// It may be behind etcd — another host's claim not seen yet — and then the compare-and-swap
// fails on the block's revision and the store reads etcd afresh: the copy only saves time,
// it never decides who holds an address.

import Base
import Etcd

public final class BlockCache: @unchecked Sendable {
    private let lock = Mutex()
    /// network → block → (its contents, nil once deleted; the revision that made it so).
    private var entries: [String: [IPNetwork: (block: AddressBlock?, revision: Int64)]] = [:]
    private var complete = false
    /// Networks where a write of this agent may have committed unseen (its answer was lost):
    /// their copy is not used until a read of etcd refreshes it.
    private var dirty = Set<String>()

    public init() {}

    /// Everything, as of one revision (a full sync): `blocks` are the block keys read.
    public func replace(_ blocks: [(network: String, kv: KeyValue)]) {
        var e: [String: [IPNetwork: (block: AddressBlock?, revision: Int64)]] = [:]
        for (n, kv) in blocks {
            guard let b = AddressBlock(bytes: kv.value) else { continue }
            e[n, default: [:]][b.cidr] = (b, kv.modRevision)
        }
        lock.locked {
            entries = e
            complete = true
        }
    }

    /// The watch lost etcd (or is re-syncing): the copy no longer follows it.
    public func invalidate() { lock.locked { complete = false } }

    /// One block changed at `revision` (nil: deleted). Older news than what the copy has is
    /// ignored: the watch may bring a change after the agent's own newer write of the block.
    public func set(_ network: String, _ cidr: IPNetwork, _ block: AddressBlock?, revision: Int64) {
        lock.locked {
            if let have = entries[network]?[cidr], have.revision > revision { return }
            entries[network, default: [:]][cidr] = (block, revision)
        }
    }

    /// A watch event of a block key (`name` as in the key: `10.1.0.64-26`).
    public func apply(_ network: String, blockName name: String, _ event: WatchEvent) {
        guard let cidr = AddressBlock.parseKeyName(name) else { return }
        switch event.kind {
        case .put: set(network, cidr, AddressBlock(bytes: event.kv.value), revision: event.kv.modRevision)
        case .delete: set(network, cidr, nil, revision: event.kv.modRevision)
        }
    }

    /// A write to `network`'s blocks failed without an answer: it may have committed.
    public func markDirty(_ network: String) { lock.locked { _ = dirty.insert(network) } }

    /// What a read of etcd at `revision` found: it replaces what is older in the copy.
    func refresh(_ network: String, _ read: BlockStore.Snapshot, revision: Int64) {
        lock.locked {
            var e = entries[network] ?? [:]
            for (cidr, have) in e where read[cidr] == nil && have.revision <= revision { e[cidr] = (nil, revision) }
            for (cidr, r) in read where (e[cidr]?.revision ?? 0) <= r.revision { e[cidr] = (r.block, r.revision) }
            entries[network] = e
            dirty.remove(network)
        }
    }

    /// The network's blocks with their revisions, or nil when the copy is not complete (or
    /// the network's is in doubt).
    func snapshot(_ network: String) -> BlockStore.Snapshot? {
        lock.locked {
            guard complete, !dirty.contains(network) else { return nil }
            var out: BlockStore.Snapshot = [:]
            for (cidr, e) in entries[network] ?? [:] { if let b = e.block { out[cidr] = (b, e.revision) } }
            return out
        }
    }
}
