import Base
import CNI

/// One range of a range set: a subnet, the part of it handed out dynamically, its gateway.
public struct IPRange: Equatable, Sendable, CustomStringConvertible {
    /// The subnet (host bits clear).
    public var subnet: IPNetwork
    /// First and last address of dynamic allocation (inclusive), after `ipRange` is applied.
    public var start: IPAddress
    public var end: IPAddress
    public var gateway: IPAddress?
    /// Docker's `--ip-range`: dynamic allocation only from here.
    public var ipRange: IPNetwork?

    public var family: IPFamily { subnet.family }

    /// Builds and validates a range, filling defaults as the reference does: the gateway is
    /// the subnet's first address, the range runs from it to the last usable address.
    /// `key` names the JSON object for error messages.
    public init(subnet rawSubnet: IPNetwork, rangeStart: IPAddress? = nil, rangeEnd: IPAddress? = nil,
                gateway: IPAddress? = nil, ipRange: IPNetwork? = nil, key: String = "range") throws(CNIError) {
        if rawSubnet.hasHostBits {
            throw CNIError(.invalidConfig, "\"\(key).subnet\" \"\(rawSubnet)\": has host bits set; the network is \(rawSubnet.network)")
        }
        let subnet = rawSubnet.network
        if subnet.prefixLength > subnet.family.bits - 2 {
            throw CNIError(.invalidConfig, "\"\(key).subnet\" \"\(subnet)\": network too small to allocate from")
        }
        self.subnet = subnet
        let first = subnet.networkAddress.next()
        let last = subnet.family == .v4 ? subnet.lastAddress.previous() : subnet.lastAddress
        if let g = gateway {
            guard g.family == subnet.family, subnet.contains(g) else {
                throw CNIError(.invalidConfig, "\"\(key).gateway\" \"\(g)\": not in subnet \(subnet)")
            }
            if g == subnet.networkAddress || (subnet.family == .v4 && g == subnet.lastAddress) {
                throw CNIError(.invalidConfig, "\"\(key).gateway\" \"\(g)\": is the \(g == subnet.networkAddress ? "network" : "broadcast") address of \(subnet)")
            }
            self.gateway = g
        } else {
            self.gateway = first
        }
        var s = first
        var e = last
        if let rs = rangeStart {
            guard rs.family == subnet.family, subnet.contains(rs) else {
                throw CNIError(.invalidConfig, "\"\(key).rangeStart\" \"\(rs)\": not in subnet \(subnet)")
            }
            s = rs
        }
        if let re = rangeEnd {
            guard re.family == subnet.family, subnet.contains(re) else {
                throw CNIError(.invalidConfig, "\"\(key).rangeEnd\" \"\(re)\": not in subnet \(subnet)")
            }
            e = re
        }
        if s > e {
            throw CNIError(.invalidConfig, "\"\(key).rangeStart\" \"\(s)\" is after \"\(key).rangeEnd\" \"\(e)\"")
        }
        if let ipr = ipRange {
            if ipr.hasHostBits {
                throw CNIError(.invalidConfig, "\"\(key).ipRange\" \"\(ipr)\": has host bits set; the network is \(ipr.network)")
            }
            guard ipr.family == subnet.family, subnet.contains(ipr.networkAddress), ipr.prefixLength >= subnet.prefixLength else {
                throw CNIError(.invalidConfig, "\"\(key).ipRange\" \"\(ipr)\": not inside subnet \(subnet)")
            }
            s = max(s, ipr.networkAddress)
            e = min(e, ipr.lastAddress)
            if s > e {
                throw CNIError(.invalidConfig, "\"\(key).ipRange\" \"\(ipr)\": no address of it lies between rangeStart and rangeEnd")
            }
            self.ipRange = ipr
        }
        start = s
        end = e
    }

    /// Whether `a` is inside the dynamic range [start, end].
    public func inDynamicRange(_ a: IPAddress) -> Bool {
        a.family == family && a >= start && a <= end
    }

    public func overlaps(_ o: IPRange) -> Bool {
        guard o.family == family else { return false }
        return start <= o.end && o.start <= end
    }

    /// Number of addresses in [start, end] (saturating).
    public var count: UInt128 {
        let d = end.value - start.value
        return d == UInt128.max ? d : d + 1
    }

    /// Why `a` may not be given to a container (the network address, the IPv4 broadcast, the
    /// gateway, an auxiliary address), or nil.
    public func reservation(of a: IPAddress, aux: [IPAddress: String]) -> String? {
        if a == subnet.networkAddress { return "is the network address of \(subnet)" }
        if family == .v4 && a == subnet.lastAddress { return "is the broadcast address of \(subnet)" }
        if a == gateway { return "is the gateway of \(subnet)" }
        if let name = aux[a] { return "is reserved as auxiliary address \"\(name)\"" }
        return nil
    }

    /// Addresses no container may have: the network address, the IPv4 broadcast, the gateway.
    public func isReservedBySubnet(_ a: IPAddress) -> Bool {
        a == subnet.networkAddress || (family == .v4 && a == subnet.lastAddress) || a == gateway
    }

    public var description: String {
        "\(start)-\(end)"
    }
}

/// Ranges from which one address is handed out (one address per range set per attachment).
public struct RangeSet: Equatable, Sendable, CustomStringConvertible {
    public var ranges: [IPRange]

    public init(_ ranges: [IPRange]) { self.ranges = ranges }

    public var family: IPFamily { ranges[0].family }

    /// The range whose subnet holds `a`.
    public func range(containing a: IPAddress) -> IPRange? {
        ranges.first { $0.subnet.contains(a) }
    }

    public func overlaps(_ o: RangeSet) -> Bool {
        ranges.contains { r in o.ranges.contains { r.overlaps($0) } }
    }

    public var description: String { ranges.map(\.description).joined(separator: ",") }
}
