// Per-host address blocks, as Calico has them: a network's ranges are cut into aligned blocks
// (/26 for IPv4, /122 for IPv6 by default); a host claims a block in etcd by compare-and-swap
// and hands out its addresses itself. A block's key holds its owner and every address given
// out from it (with who holds it and the request's token), so an address is claimed in the
// same compare-and-swap that records it — in one transaction with the container's endpoint —
// and no address is ever held twice. A host whose own blocks are full borrows a free address
// from another's block, by the same compare-and-swap.
//
// This file is the pure part: blocks, their JSON, and where the next address comes from.

import Base
import CNI
import IPAM

/// Who holds an address of a block.
public struct BlockClaim: Equatable, Sendable {
    public var containerID: String
    public var ifname: String
    public var host: String
    /// The request that claimed it (the same in the request's retries).
    public var token: String

    public init(containerID: String, ifname: String, host: String, token: String) {
        self.containerID = containerID; self.ifname = ifname; self.host = host; self.token = token
    }

    public var owner: Attachment { Attachment(containerID: containerID, ifname: ifname) }
}

public struct AddressBlock: Equatable, Sendable {
    public var cidr: IPNetwork
    /// The host the block is affine to ("" once reclaimed from a dead host while others'
    /// addresses are still in it).
    public var host: String
    public var claims: [IPAddress: BlockClaim]

    public init(cidr: IPNetwork, host: String, claims: [IPAddress: BlockClaim] = [:]) {
        self.cidr = cidr; self.host = host; self.claims = claims
    }

    /// `10.1.0.64-26`: the CIDR with its "/" replaced, as a key component.
    public var keyName: String { "\(cidr.networkAddress)-\(cidr.prefixLength)" }

    public static func parseKeyName(_ s: String) -> IPNetwork? {
        guard let dash = s.lastIndex(of: "-"), let p = Int(s[s.index(after: dash)...]),
              let a = IPAddress(String(s[..<dash])) else { return nil }
        return IPNetwork(address: a, prefixLength: p)
    }

    public var json: JSON {
        let c = claims.keys.sorted().map { ip -> (String, JSON) in
            let k = claims[ip]!
            return (ip.description, .array([.string(k.containerID), .string(k.ifname), .string(k.host), .string(k.token)]))
        }
        return ["cidr": .string(cidr.description), "host": .string(host), "claims": .object(JSONObject(c))]
    }

    public init?(bytes: [UInt8]) {
        guard let j = try? JSON.parse(bytes), let c = j["cidr"]?.stringValue.flatMap(IPNetwork.init),
              let h = j["host"]?.stringValue else { return nil }
        var claims: [IPAddress: BlockClaim] = [:]
        for m in j["claims"]?.objectValue ?? JSONObject() {
            guard let ip = IPAddress(m.key), let a = m.value.arrayValue, a.count == 4 else { continue }
            let s = a.map { $0.stringValue ?? "" }
            claims[ip] = BlockClaim(containerID: s[0], ifname: s[1], host: s[2], token: s[3])
        }
        self.init(cidr: c, host: h, claims: claims)
    }
}

/// How a range set is cut into blocks, and which address a block can give out next.
public struct BlockLayout: Sendable {
    public var rangeSet: RangeSet
    public var aux: [IPAddress: String]
    /// Prefix lengths of a block (clamped to each subnet).
    public var prefixV4: Int
    public var prefixV6: Int

    public static let defaultPrefixV4 = 26
    public static let defaultPrefixV6 = 122

    public init(rangeSet: RangeSet, aux: [IPAddress: String], prefixV4: Int = defaultPrefixV4, prefixV6: Int = defaultPrefixV6) {
        self.rangeSet = rangeSet; self.aux = aux; self.prefixV4 = prefixV4; self.prefixV6 = prefixV6
    }

    func prefix(_ r: IPRange) -> Int {
        max(r.family == .v4 ? prefixV4 : prefixV6, r.subnet.prefixLength)
    }

    /// The block an address of this range set falls in.
    public func block(containing a: IPAddress) -> IPNetwork? {
        guard let r = rangeSet.range(containing: a) else { return nil }
        return IPNetwork(address: a, prefixLength: prefix(r))?.network
    }

    /// Why `a` can never be handed out, or nil.
    public func reservation(_ a: IPAddress, in r: IPRange) -> String? { r.reservation(of: a, aux: aux) }

    /// The first address of `block` that the range set hands out dynamically and nobody holds.
    public func freeAddress(in block: AddressBlock) -> IPAddress? {
        for r in rangeSet.ranges where r.subnet.overlaps(block.cidr) {
            var a = max(block.cidr.networkAddress, r.start)
            let last = min(block.cidr.lastAddress, r.end)
            while a <= last {
                if block.claims[a] == nil && reservation(a, in: r) == nil { return a }
                if a == last { break }
                a = a.next()
            }
        }
        return nil
    }

    /// Blocks of the range set that hold dynamic addresses, in order, skipping `taken`.
    /// (Lazily: a /8 has 262,144 blocks of /26.)
    public func unclaimedBlocks(taken: Set<IPNetwork>) -> AnySequence<IPNetwork> {
        let ranges = rangeSet.ranges
        let layout = self
        return AnySequence { () -> AnyIterator<IPNetwork> in
            var ri = 0
            var next: IPAddress? = ranges.first.map { r in IPNetwork(address: r.start, prefixLength: layout.prefix(r))!.networkAddress }
            return AnyIterator {
                while ri < ranges.count {
                    let r = ranges[ri]
                    guard let a = next, a <= r.end else {
                        ri += 1
                        if ri < ranges.count {
                            let n = ranges[ri]
                            next = IPNetwork(address: n.start, prefixLength: layout.prefix(n))!.networkAddress
                        }
                        continue
                    }
                    let b = IPNetwork(address: a, prefixLength: layout.prefix(r))!
                    let size = b.size
                    next = b.lastAddress == IPAddress(family: a.family, value: a.family == .v4 ? UInt128(UInt32.max) : UInt128.max)
                        ? nil : a.adding(size)
                    if !taken.contains(b) { return b }
                }
                return nil
            }
        }
    }
}
