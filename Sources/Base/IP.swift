// The contract's address nouns (Go's net.IP / types.IPNet): IPv4 and IPv6 addresses,
// prefixes, MAC addresses. Parsing and formatting are our own (no libc), with Go's rules:
// no leading zeros in IPv4 octets, IPv4-mapped IPv6 reads as IPv4, RFC 5952 output.

public enum IPFamily: Sendable, Hashable, CustomStringConvertible {
    case v4, v6
    public var bits: Int { self == .v4 ? 32 : 128 }
    public var description: String { self == .v4 ? "IPv4" : "IPv6" }
    /// "4" or "6", as results before 1.0.0 write it.
    public var versionString: String { self == .v4 ? "4" : "6" }
}

public struct IPAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let family: IPFamily
    /// The address as an integer (IPv4 in the low 32 bits).
    public let value: UInt128

    public init(v4 value: UInt32) { family = .v4; self.value = UInt128(value) }
    public init(v6 value: UInt128) { family = .v6; self.value = value }
    public init(family: IPFamily, value: UInt128) {
        self.family = family
        self.value = family == .v4 ? value & 0xFFFF_FFFF : value
    }

    /// Network-order bytes: 4 for IPv4, 16 for IPv6.
    public init?(bytes: [UInt8]) {
        if bytes.count == 4 {
            var v: UInt32 = 0
            for b in bytes { v = v << 8 | UInt32(b) }
            self.init(v4: v)
        } else if bytes.count == 16 {
            var v: UInt128 = 0
            for b in bytes { v = v << 8 | UInt128(b) }
            self.init(v6: v)
        } else {
            return nil
        }
    }

    public var bytes: [UInt8] {
        let n = family == .v4 ? 4 : 16
        var out = [UInt8](repeating: 0, count: n)
        var v = value
        for i in stride(from: n - 1, through: 0, by: -1) {
            out[i] = UInt8(truncatingIfNeeded: v)
            v >>= 8
        }
        return out
    }

    public var isV4: Bool { family == .v4 }
    public var isV6: Bool { family == .v6 }
    public var isUnspecified: Bool { value == 0 }
    public var isLinkLocalV6: Bool { family == .v6 && (value >> 118) == 0x3FA }  // fe80::/10
    public var isMulticast: Bool {
        family == .v4 ? (value >> 28) == 0xE : (value >> 120) == 0xFF
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        if a.family != b.family { return a.family == .v4 }
        return a.value < b.value
    }

    /// The next address (wraps within the family).
    public func next() -> IPAddress { adding(1) }
    public func previous() -> IPAddress { subtracting(1) }

    public func adding(_ n: UInt128) -> IPAddress {
        IPAddress(family: family, value: value &+ n)
    }
    public func subtracting(_ n: UInt128) -> IPAddress {
        IPAddress(family: family, value: value &- n)
    }

    // MARK: parsing

    public init?(_ s: String) {
        var s = s
        guard let a = s.withUTF8({ IPAddress.parse($0) }) else { return nil }
        self = a
    }

    static func parse(_ b: UnsafeBufferPointer<UInt8>) -> IPAddress? {
        if b.isEmpty || b.count > 45 { return nil }
        if b.contains(UInt8(ascii: ":")) {
            guard let v = parseV6(b) else { return nil }
            // IPv4-mapped IPv6 reads as IPv4, as Go's To4() does.
            if v >> 32 == 0xFFFF { return IPAddress(v4: UInt32(truncatingIfNeeded: v)) }
            return IPAddress(v6: v)
        }
        guard let v = parseV4(b[...]) else { return nil }
        return IPAddress(v4: v)
    }

    static func parseV4(_ b: Slice<UnsafeBufferPointer<UInt8>>) -> UInt32? {
        var result: UInt32 = 0
        var octets = 0
        var cur: UInt32 = 0
        var digits = 0
        var leadingZero = false
        for c in b {
            if c == UInt8(ascii: ".") {
                if digits == 0 || octets == 3 { return nil }
                result = result << 8 | cur
                octets += 1
                cur = 0; digits = 0; leadingZero = false
            } else if c >= 0x30 && c <= 0x39 {
                if leadingZero { return nil }
                if digits == 0 && c == 0x30 { leadingZero = true }
                cur = cur * 10 + UInt32(c - 0x30)
                digits += 1
                if digits > 3 || cur > 255 { return nil }
            } else {
                return nil
            }
        }
        if digits == 0 || octets != 3 { return nil }
        return result << 8 | cur
    }

    static func parseV6(_ b: UnsafeBufferPointer<UInt8>) -> UInt128? {
        var groups: [UInt16] = []
        groups.reserveCapacity(8)
        var gapAt = -1
        var i = 0
        let n = b.count
        if n >= 2 && b[0] == UInt8(ascii: ":") && b[1] == UInt8(ascii: ":") {
            gapAt = 0
            i = 2
            if i == n { return 0 }
        } else if n >= 1 && b[0] == UInt8(ascii: ":") {
            return nil
        }
        while i < n {
            // Embedded IPv4 in the last 32 bits.
            var j = i
            var sawDot = false
            while j < n && b[j] != UInt8(ascii: ":") {
                if b[j] == UInt8(ascii: ".") { sawDot = true }
                j += 1
            }
            if sawDot {
                guard j == n, groups.count <= 6, let v4 = parseV4(b[i..<n]) else { return nil }
                groups.append(UInt16(v4 >> 16))
                groups.append(UInt16(v4 & 0xFFFF))
                i = n
                break
            }
            let len = j - i
            if len == 0 || len > 4 { return nil }
            var g: UInt16 = 0
            for k in i..<j {
                let c = b[k]
                var d: UInt16
                switch c {
                case 0x30...0x39: d = UInt16(c - 0x30)
                case 0x61...0x66: d = UInt16(c - 0x61 + 10)
                case 0x41...0x46: d = UInt16(c - 0x41 + 10)
                default: return nil
                }
                g = g << 4 | d
            }
            groups.append(g)
            if groups.count > 8 { return nil }
            i = j
            if i < n {
                // At a ':'.
                if i + 1 < n && b[i + 1] == UInt8(ascii: ":") {
                    if gapAt >= 0 { return nil }
                    gapAt = groups.count
                    i += 2
                } else {
                    i += 1
                    if i == n { return nil }  // trailing single ':'
                }
            }
        }
        if gapAt >= 0 {
            if groups.count > 7 { return nil }
            let fill = [UInt16](repeating: 0, count: 8 - groups.count)
            groups.insert(contentsOf: fill, at: gapAt)
        }
        guard groups.count == 8 else { return nil }
        var v: UInt128 = 0
        for g in groups { v = v << 16 | UInt128(g) }
        return v
    }

    // MARK: formatting

    public var description: String {
        if family == .v4 {
            let v = UInt32(truncatingIfNeeded: value)
            return "\(v >> 24).\((v >> 16) & 0xFF).\((v >> 8) & 0xFF).\(v & 0xFF)"
        }
        var groups = [UInt16](repeating: 0, count: 8)
        for k in 0..<8 { groups[k] = UInt16(truncatingIfNeeded: value >> UInt128(16 * (7 - k))) }
        // Longest run of zero groups (length >= 2), first one on ties.
        var bestStart = -1, bestLen = 0, k = 0
        while k < 8 {
            if groups[k] == 0 {
                var e = k
                while e < 8 && groups[e] == 0 { e += 1 }
                if e - k > bestLen && e - k >= 2 { bestStart = k; bestLen = e - k }
                k = e
            } else {
                k += 1
            }
        }
        var out = ""
        k = 0
        while k < 8 {
            if k == bestStart {
                out += "::"
                k += bestLen
                continue
            }
            if !out.isEmpty && !out.hasSuffix(":") { out += ":" }
            out += String(groups[k], radix: 16)
            k += 1
        }
        return out
    }
}

/// An address with a prefix length, e.g. `10.1.2.3/24`. The address may have host bits
/// set (as CNI results write an interface address); `network` is the masked form.
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    public init?(address: IPAddress, prefixLength: Int) {
        guard prefixLength >= 0 && prefixLength <= address.family.bits else { return nil }
        self.address = address
        self.prefixLength = prefixLength
    }

    /// `0.0.0.0/0` or `::/0`: a default route's destination.
    public static func everything(_ family: IPFamily) -> IPNetwork {
        IPNetwork(address: IPAddress(family: family, value: 0), prefixLength: 0)!
    }

    public init?(_ s: String) {
        guard let slash = s.firstIndex(of: "/") else { return nil }
        let pfx = s[s.index(after: slash)...]
        guard let a = IPAddress(String(s[..<slash])),
              !pfx.isEmpty, pfx.count <= 3, pfx.allSatisfy({ $0.isASCII && $0.isNumber }),
              !(pfx.count > 1 && pfx.first == "0"),
              let p = Int(pfx)
        else { return nil }
        // An IPv4-mapped IPv6 address with a /96+ prefix: keep the IPv4 reading.
        var plen = p
        if a.family == .v4 && s[..<slash].contains(":") {
            guard p >= 96 else { return nil }
            plen = p - 96
        }
        self.init(address: a, prefixLength: plen)
    }

    public var family: IPFamily { address.family }

    /// All-ones in the prefix bits.
    public var mask: UInt128 {
        let bits = family.bits
        if prefixLength == 0 { return 0 }
        let ones: UInt128 = prefixLength == 128 ? UInt128.max : ((UInt128(1) << UInt128(prefixLength)) - 1)
        return ones << UInt128(bits - prefixLength) & (bits == 32 ? 0xFFFF_FFFF : UInt128.max)
    }

    /// The first address of the prefix (host bits cleared).
    public var networkAddress: IPAddress { IPAddress(family: family, value: address.value & mask) }
    /// The last address of the prefix (the IPv4 broadcast).
    public var lastAddress: IPAddress {
        let hostMask = ~mask & (family == .v4 ? 0xFFFF_FFFF : UInt128.max)
        return IPAddress(family: family, value: (address.value & mask) | hostMask)
    }
    /// The prefix itself, host bits cleared.
    public var network: IPNetwork { IPNetwork(address: networkAddress, prefixLength: prefixLength)! }
    public var hasHostBits: Bool { address != networkAddress }

    /// Number of addresses in the prefix, saturating at UInt128.max.
    public var size: UInt128 {
        let hostBits = family.bits - prefixLength
        return hostBits >= 128 ? UInt128.max : (UInt128(1) << UInt128(hostBits))
    }

    public func contains(_ a: IPAddress) -> Bool {
        a.family == family && (a.value & mask) == (address.value & mask)
    }

    public func overlaps(_ o: IPNetwork) -> Bool {
        guard o.family == family else { return false }
        return contains(o.networkAddress) || o.contains(networkAddress)
    }

    public var description: String { "\(address)/\(prefixLength)" }
}

public struct MACAddress: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 6 else { return nil }
        self.bytes = bytes
    }

    /// `aa:bb:cc:dd:ee:ff` (also with '-'), case-insensitive.
    public init?(_ s: String) {
        let parts = s.split(separator: ":", omittingEmptySubsequences: false)
        let parts2 = parts.count == 6 ? parts : s.split(separator: "-", omittingEmptySubsequences: false)
        guard parts2.count == 6 else { return nil }
        var b: [UInt8] = []
        for p in parts2 {
            guard p.count == 2, let v = UInt8(p, radix: 16) else { return nil }
            b.append(v)
        }
        bytes = b
    }

    public var isMulticast: Bool { bytes[0] & 1 == 1 }

    /// A random locally administered unicast address, optionally starting with `prefix`.
    public static func random(prefix: [UInt8] = []) -> MACAddress {
        var g = SystemRandomNumberGenerator()
        let r = UInt64.random(in: 0...UInt64.max, using: &g)
        var b = (0..<6).map { UInt8(truncatingIfNeeded: r >> ($0 * 8)) }
        b[0] = (b[0] & 0xFE) | 0x02
        for (i, p) in prefix.prefix(6).enumerated() { b[i] = p }
        return MACAddress(bytes: b)!
    }

    public func hasPrefix(_ p: [UInt8]) -> Bool { bytes.starts(with: p) }

    public var description: String {
        bytes.map { b in
            let h = String(b, radix: 16)
            return h.count == 1 ? "0" + h : h
        }.joined(separator: ":")
    }
}
