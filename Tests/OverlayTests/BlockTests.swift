// The per-host address blocks' pure part: key names, JSON, which addresses a block gives out,
// and the order new blocks are taken in.

import Testing
import Base
import IPAM
@testable import ClusterIPAM
@testable import Etcd

@Suite struct Blocks {
    func set(_ ranges: [(String, String?, String?)]) -> RangeSet {
        RangeSet(ranges.map { s, gw, ipRange in
            try! IPRange(subnet: IPNetwork(s)!, gateway: gw.flatMap(IPAddress.init), ipRange: ipRange.flatMap(IPNetwork.init))
        })
    }

    @Test func keyNamesAndJSONRoundTrip() {
        let b = AddressBlock(cidr: IPNetwork("10.10.0.64/26")!, host: "a",
                             claims: [IPAddress("10.10.0.70")!: BlockClaim(containerID: "c1", ifname: "eth0", host: "a", token: "t1"),
                                      IPAddress("10.10.0.65")!: BlockClaim(containerID: "c2", ifname: "net1", host: "b", token: "t2")])
        #expect(b.keyName == "10.10.0.64-26")
        #expect(AddressBlock.parseKeyName("10.10.0.64-26") == IPNetwork("10.10.0.64/26"))
        #expect(AddressBlock.parseKeyName("fd00::40-122") == IPNetwork("fd00::40/122"))
        #expect(AddressBlock.parseKeyName("10.10.0.64") == nil)
        #expect(b.json.serialized() == #"{"cidr":"10.10.0.64/26","host":"a","claims":{"10.10.0.65":["c2","net1","b","t2"],"10.10.0.70":["c1","eth0","a","t1"]}}"#)
        #expect(AddressBlock(bytes: b.json.serializedBytes()) == b)
        #expect(AddressBlock(bytes: Array("{}".utf8)) == nil)
    }

    @Test func blocksAreAlignedAndClampedToTheSubnet() {
        let l = BlockLayout(rangeSet: set([("10.10.0.0/16", nil, nil)]), aux: [:])
        #expect(l.block(containing: IPAddress("10.10.3.77")!) == IPNetwork("10.10.3.64/26"))
        #expect(l.block(containing: IPAddress("10.11.0.1")!) == nil)
        let small = BlockLayout(rangeSet: set([("10.20.0.16/28", nil, nil)]), aux: [:])
        #expect(small.block(containing: IPAddress("10.20.0.20")!) == IPNetwork("10.20.0.16/28"))
        let v6 = BlockLayout(rangeSet: set([("fd00::/64", nil, nil)]), aux: [:])
        #expect(v6.block(containing: IPAddress("fd00::1:7f")!) == IPNetwork("fd00::1:40/122"))
        let custom = BlockLayout(rangeSet: set([("10.10.0.0/16", nil, nil)]), aux: [:], prefixV4: 28)
        #expect(custom.block(containing: IPAddress("10.10.3.77")!) == IPNetwork("10.10.3.64/28"))
    }

    @Test func freeAddressSkipsWhatIsNeverHandedOut() {
        let aux = [IPAddress("10.10.0.3")!: "router"]
        let l = BlockLayout(rangeSet: set([("10.10.0.0/24", "10.10.0.2", nil)]), aux: aux)
        var b = AddressBlock(cidr: IPNetwork("10.10.0.0/26")!, host: "a")
        // .0 network, .1 free: the first.
        #expect(l.freeAddress(in: b) == IPAddress("10.10.0.1"))
        b.claims[IPAddress("10.10.0.1")!] = BlockClaim(containerID: "c", ifname: "eth0", host: "a", token: "t")
        // .2 gateway, .3 aux.
        #expect(l.freeAddress(in: b) == IPAddress("10.10.0.4"))
        // The broadcast address of the subnet is never handed out.
        var last = AddressBlock(cidr: IPNetwork("10.10.0.192/26")!, host: "a")
        for i in 192..<254 { last.claims[IPAddress("10.10.0.\(i)")!] = BlockClaim(containerID: "c\(i)", ifname: "eth0", host: "a", token: "t") }
        #expect(l.freeAddress(in: last) == IPAddress("10.10.0.254"))
        last.claims[IPAddress("10.10.0.254")!] = BlockClaim(containerID: "x", ifname: "eth0", host: "a", token: "t")
        #expect(l.freeAddress(in: last) == nil)
        // Only the dynamic range (ipRange) is handed out.
        let r = BlockLayout(rangeSet: set([("10.10.0.0/16", nil, "10.10.1.0/26")]), aux: [:])
        #expect(r.freeAddress(in: AddressBlock(cidr: IPNetwork("10.10.1.0/26")!, host: "a")) == IPAddress("10.10.1.0"))
        #expect(r.freeAddress(in: AddressBlock(cidr: IPNetwork("10.10.0.0/26")!, host: "a")) == nil)
    }

    @Test func newBlocksComeInOrderSkippingTakenOnes() {
        let l = BlockLayout(rangeSet: set([("10.10.0.0/24", nil, nil), ("10.11.0.0/25", nil, nil)]), aux: [:])
        #expect(Array(l.unclaimedBlocks(taken: []).map(\.description)) ==
                ["10.10.0.0/26", "10.10.0.64/26", "10.10.0.128/26", "10.10.0.192/26", "10.11.0.0/26", "10.11.0.64/26"])
        #expect(Array(l.unclaimedBlocks(taken: [IPNetwork("10.10.0.0/26")!, IPNetwork("10.10.0.128/26")!]).map(\.description)) ==
                ["10.10.0.64/26", "10.10.0.192/26", "10.11.0.0/26", "10.11.0.64/26"])
        // An ipRange narrows the blocks to those it overlaps.
        let r = BlockLayout(rangeSet: set([("10.10.0.0/16", nil, "10.10.1.0/25")]), aux: [:])
        #expect(Array(r.unclaimedBlocks(taken: []).map(\.description)) == ["10.10.1.0/26", "10.10.1.64/26"])
        // A huge range is walked lazily.
        let big = BlockLayout(rangeSet: set([("10.0.0.0/8", nil, nil)]), aux: [:])
        #expect(Array(big.unclaimedBlocks(taken: []).prefix(2).map(\.description)) == ["10.0.0.0/26", "10.0.0.64/26"])
        let v6 = BlockLayout(rangeSet: set([("fd00::/120", nil, nil)]), aux: [:])
        #expect(Array(v6.unclaimedBlocks(taken: []).map(\.description)) == ["fd00::/122", "fd00::40/122", "fd00::80/122", "fd00::c0/122"])
    }

    /// The agent's copy of the blocks: nothing until a full sync, then the watch's news and
    /// the agent's own writes, never an older state over a newer one (a deletion included).
    @Test func blockCacheKeepsTheNewestState() {
        let c = BlockCache()
        let cidr = IPNetwork("10.10.0.64/26")!
        func block(_ claimed: [String]) -> AddressBlock {
            AddressBlock(cidr: cidr, host: "a", claims: Dictionary(uniqueKeysWithValues: claimed.map {
                (IPAddress($0)!, BlockClaim(containerID: $0, ifname: "eth0", host: "a", token: "t"))
            }))
        }
        func kv(_ b: AddressBlock, _ rev: Int64) -> KeyValue {
            KeyValue(key: "/p/networks/n/ipam/blocks/\(b.keyName)", value: b.json.serializedBytes(), createRevision: 1, modRevision: rev, lease: 0)
        }
        #expect(c.snapshot("n") == nil)
        c.set("n", cidr, block(["10.10.0.65"]), revision: 5)
        #expect(c.snapshot("n") == nil)  // not complete before a full sync
        c.replace([("n", kv(block(["10.10.0.65"]), 5))])
        #expect(c.snapshot("n")?[cidr]?.revision == 5)
        #expect(c.snapshot("other")?.isEmpty == true)
        // The agent's own write at 9, then the watch's older event at 7: 9 stays.
        c.set("n", cidr, block(["10.10.0.65", "10.10.0.66"]), revision: 9)
        c.apply("n", blockName: "10.10.0.64-26", WatchEvent(kind: .put, kv: kv(block(["10.10.0.65", "10.10.0.67"]), 7)))
        #expect(c.snapshot("n")?[cidr]?.revision == 9)
        #expect(c.snapshot("n")?[cidr]?.block.claims.keys.map(\.description).sorted() == ["10.10.0.65", "10.10.0.66"])
        // Deleted at 12: an older put does not bring it back; a newer one does.
        c.apply("n", blockName: "10.10.0.64-26", WatchEvent(kind: .delete, kv: KeyValue(key: "", value: [], createRevision: 0, modRevision: 12, lease: 0)))
        #expect(c.snapshot("n")?[cidr] == nil)
        c.set("n", cidr, block(["10.10.0.65"]), revision: 10)
        #expect(c.snapshot("n")?[cidr] == nil)
        c.set("n", cidr, block(["10.10.0.70"]), revision: 13)
        #expect(c.snapshot("n")?[cidr]?.revision == 13)
        // A write whose answer was lost: the copy is not used until a read refreshes it; the
        // read replaces what is older (a block it no longer finds is gone) and keeps what is newer.
        c.markDirty("n")
        #expect(c.snapshot("n") == nil)
        let other = IPNetwork("10.10.0.128/26")!
        c.set("n", other, AddressBlock(cidr: other, host: "b"), revision: 20)
        c.refresh("n", [cidr: (block(["10.10.0.71"]), 15)], revision: 18)
        #expect(c.snapshot("n")?[cidr]?.revision == 15)
        #expect(c.snapshot("n")?[other]?.revision == 20)  // newer than the read: kept
        c.refresh("n", [:], revision: 25)
        #expect(c.snapshot("n")?.isEmpty == true)
        c.invalidate()
        #expect(c.snapshot("n") == nil)
    }
}
