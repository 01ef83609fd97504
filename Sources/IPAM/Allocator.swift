import Base
import CNI

/// Hands out one address of a range set to an attachment. Pure allocation logic over an
/// `AllocationStore`; callers hold the store's lock.
///
/// Dynamic allocation walks the set round-robin from the address after the last one handed
/// out (as the reference does, so a crash-looping container does not get its old address
/// back at once), skipping the subnet's network and broadcast addresses, the gateway and
/// the auxiliary addresses. A requested (static) address may be anywhere in one of the
/// set's subnets that is not reserved (Docker's `--ip`), not only in the dynamic range.
public struct Allocator {
    public let rangeSet: RangeSet
    public let index: Int
    public let store: any AllocationStore
    /// Auxiliary (never handed out) addresses, with their names.
    public let aux: [IPAddress: String]

    public init(rangeSet: RangeSet, index: Int, store: any AllocationStore, aux: [IPAddress: String] = [:]) {
        self.rangeSet = rangeSet
        self.index = index
        self.store = store
        self.aux = aux
    }

    /// Why `a` may not be given to a container, or nil.
    public func reservation(of a: IPAddress, in r: IPRange) -> String? { r.reservation(of: a, aux: aux) }

    public func allocate(for owner: Attachment, requested: IPAddress?) throws -> CNIIPConfig {
        if let ip = requested {
            guard let r = rangeSet.range(containing: ip) else {
                throw CNIError(.invalidConfig, "requested IP \(ip) is not in \(rangeSet.ranges.count == 1 ? "subnet" : "subnets") \(rangeSet.ranges.map { $0.subnet.description }.joined(separator: ", "))")
            }
            if let why = reservation(of: ip, in: r) {
                throw CNIError(.invalidConfig, "requested IP \(ip) \(why)")
            }
            if !(try store.reserve(ip, owner: owner, rangeSet: index)) {
                let holder = try store.owner(of: ip)
                let who = holder.map { "container \($0.containerID)\($0.ifname.isEmpty ? "" : " (\($0.ifname))")" } ?? "another container"
                throw CNIError(.addressInUse, "requested IP \(ip) is already allocated to \(who)")
            }
            return CNIIPConfig(address: IPNetwork(address: ip, prefixLength: r.subnet.prefixLength)!, gateway: r.gateway)
        }

        // One address per range set per attachment (SPEC: no duplicate allocation).
        for held in try store.addresses(of: owner, thorough: false) where rangeSet.range(containing: held) != nil {
            throw CNIError(.addressInUse, "\(held) is already allocated to container \(owner.containerID) (\(owner.ifname)) in this network; duplicate allocation is not allowed")
        }

        var it = iterator(startingAfter: try store.lastReserved(rangeSet: index))
        while let (ip, r) = it.next() {
            if reservation(of: ip, in: r) != nil { continue }
            if try store.reserve(ip, owner: owner, rangeSet: index) {
                return CNIIPConfig(address: IPNetwork(address: ip, prefixLength: r.subnet.prefixLength)!, gateway: r.gateway)
            }
        }
        throw CNIError(.addressesExhausted, "no IP addresses available in range set \(rangeSet)")
    }

    /// Round-robin iterator over the set's dynamic ranges.
    public func iterator(startingAfter last: IPAddress?) -> RangeIterator {
        RangeIterator(rangeSet: rangeSet, last: last)
    }

    /// How many addresses dynamic allocation can hand out in total (saturating).
    public var capacity: UInt128 {
        var total: UInt128 = 0
        for r in rangeSet.ranges {
            var n = r.count
            var excluded = Set<IPAddress>()
            for a in [r.subnet.networkAddress, r.subnet.lastAddress] + (r.gateway.map { [$0] } ?? []) + Array(aux.keys)
            where r.inDynamicRange(a) && reservation(of: a, in: r) != nil {
                excluded.insert(a)
            }
            n = n >= UInt128(excluded.count) ? n - UInt128(excluded.count) : 0
            let (sum, overflow) = total.addingReportingOverflow(n)
            total = overflow ? UInt128.max : sum
        }
        return total
    }
}

/// Walks a range set from the address after `last` (or the first range's start), moving on
/// to the next range at each range's end, once around.
public struct RangeIterator: IteratorProtocol {
    let ranges: [IPRange]
    var rangeIndex = 0
    var cur: IPAddress?
    var startIP: IPAddress?
    var done = false

    init(rangeSet: RangeSet, last: IPAddress?) {
        ranges = rangeSet.ranges
        if let last, let i = ranges.firstIndex(where: { $0.inDynamicRange(last) }) {
            rangeIndex = i
            cur = last
        }
    }

    public mutating func next() -> (IPAddress, IPRange)? {
        if done { return nil }
        var r = ranges[rangeIndex]
        guard let c = cur else {
            cur = r.start
            startIP = r.start
            return (r.start, r)
        }
        if c == r.end {
            rangeIndex = (rangeIndex + 1) % ranges.count
            r = ranges[rangeIndex]
            cur = r.start
        } else {
            cur = c.next()
        }
        if let s = startIP {
            if cur == s {
                done = true
                return nil
            }
        } else {
            startIP = cur
        }
        return (cur!, r)
    }
}
