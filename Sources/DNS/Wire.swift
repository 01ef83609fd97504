// The DNS wire format (RFC 1035, EDNS0 from RFC 6891): parsing queries and the parts of
// responses the forwarder needs, building answers. Pure; no sockets. Every read is bounds-
// checked and names are limited (255 bytes, 127 labels, compression pointers only backwards),
// so a malformed packet is an error value, never a crash or a loop.

import Base

public enum DNSType {
    public static let a: UInt16 = 1
    public static let ns: UInt16 = 2
    public static let cname: UInt16 = 5
    public static let soa: UInt16 = 6
    public static let ptr: UInt16 = 12
    public static let aaaa: UInt16 = 28
    public static let opt: UInt16 = 41
    public static let any: UInt16 = 255
}

public enum DNSRcode: UInt8, Sendable {
    case noError = 0, formErr = 1, servFail = 2, nxDomain = 3, notImp = 4, refused = 5
}

public struct DNSWireError: Error, Equatable, Sendable, CustomStringConvertible {
    public var reason: String
    public init(_ r: String) { reason = r }
    public var description: String { "malformed DNS message: \(reason)" }
}

/// A domain name as labels, compared case-insensitively (kept as received for echoing).
public struct DNSName: Hashable, Sendable, CustomStringConvertible {
    public var labels: [[UInt8]]

    public init(labels: [[UInt8]]) { self.labels = labels }

    /// From dotted text ("web.example." or "web"); nil when a label is empty or too long.
    public init?(_ text: String) {
        var t = Array(text.utf8)[...]
        if t.last == UInt8(ascii: ".") { t = t.dropLast() }
        if t.isEmpty { labels = []; return }
        var ls: [[UInt8]] = []
        for part in t.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            if part.isEmpty || part.count > 63 { return nil }
            ls.append(Array(part))
        }
        if ls.reduce(1, { $0 + $1.count + 1 }) > 255 { return nil }
        labels = ls
    }

    /// True for names usable as container names and aliases: labels of letters, digits,
    /// '-' and '_' (what Docker allows in container names and network aliases).
    public static func isHostname(_ text: String) -> Bool {
        guard let n = DNSName(text), !n.labels.isEmpty else { return false }
        return n.labels.allSatisfy { l in
            l.allSatisfy { c in (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 45 || c == 95 }
        }
    }

    /// Lowercased dotted text without the trailing dot ("" for the root).
    public var key: String {
        var out: [UInt8] = []
        out.reserveCapacity(labels.reduce(0) { $0 + $1.count + 1 })
        for (i, l) in labels.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ".")) }
            for c in l { out.append(lower(c)) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    public var description: String { labels.isEmpty ? "." : key + "." }

    public static func == (a: DNSName, b: DNSName) -> Bool { a.key == b.key }
    public func hash(into h: inout Hasher) { h.combine(key) }

    /// Wire form without compression.
    public var wire: [UInt8] {
        var out: [UInt8] = []
        for l in labels { out.append(UInt8(l.count)); out += l }
        out.append(0)
        return out
    }
}

@inline(__always) func lower(_ c: UInt8) -> UInt8 { c >= 65 && c <= 90 ? c + 32 : c }

/// A bounds-checked reader over a message.
struct WireReader {
    let b: [UInt8]
    var pos = 0
    init(_ bytes: [UInt8]) { b = bytes }

    mutating func u8() throws(DNSWireError) -> UInt8 {
        guard pos < b.count else { throw DNSWireError("truncated at byte \(pos)") }
        defer { pos += 1 }
        return b[pos]
    }
    mutating func u16() throws(DNSWireError) -> UInt16 {
        guard pos + 2 <= b.count else { throw DNSWireError("truncated at byte \(pos)") }
        defer { pos += 2 }
        return UInt16(b[pos]) << 8 | UInt16(b[pos + 1])
    }
    mutating func u32() throws(DNSWireError) -> UInt32 {
        UInt32(try u16()) << 16 | UInt32(try u16())
    }
    mutating func skip(_ n: Int) throws(DNSWireError) {
        guard n >= 0, pos + n <= b.count else { throw DNSWireError("truncated at byte \(pos)") }
        pos += n
    }
    mutating func bytes(_ n: Int) throws(DNSWireError) -> [UInt8] {
        guard n >= 0, pos + n <= b.count else { throw DNSWireError("truncated at byte \(pos)") }
        defer { pos += n }
        return Array(b[pos..<pos + n])
    }

    /// A name at the current position, following compression pointers (each must point
    /// before the position it is read from, which rules out loops).
    mutating func name() throws(DNSWireError) -> DNSName {
        var labels: [[UInt8]] = []
        var p = pos
        var jumped = false
        var total = 1
        var limit = p  // pointers must go strictly backwards from here
        while true {
            guard p < b.count else { throw DNSWireError("name runs past the end") }
            let len = b[p]
            switch len & 0xC0 {
            case 0x00:
                if len == 0 {
                    p += 1
                    if !jumped { pos = p }
                    return DNSName(labels: labels)
                }
                let l = Int(len)
                guard p + 1 + l <= b.count else { throw DNSWireError("label runs past the end") }
                total += l + 1
                guard total <= 255 else { throw DNSWireError("name longer than 255 bytes") }
                labels.append(Array(b[(p + 1)...(p + l)]))
                guard labels.count <= 127 else { throw DNSWireError("too many labels") }
                p += 1 + l
            case 0xC0:
                guard p + 1 < b.count else { throw DNSWireError("compression pointer runs past the end") }
                let target = Int(len & 0x3F) << 8 | Int(b[p + 1])
                guard target < limit else { throw DNSWireError("compression pointer does not point backwards") }
                if !jumped { pos = p + 2 }
                jumped = true
                limit = target
                p = target
            default:
                throw DNSWireError("unsupported label type 0x\(String(len, radix: 16))")
            }
        }
    }
}

public struct DNSQuestion: Equatable, Sendable {
    public var name: DNSName
    public var type: UInt16
    public var klass: UInt16
    public init(name: DNSName, type: UInt16, klass: UInt16 = 1) { self.name = name; self.type = type; self.klass = klass }
}

/// A parsed query: what the server needs to answer it.
public struct DNSQuery: Sendable {
    public var id: UInt16
    public var flags: UInt16
    public var question: DNSQuestion
    /// The question as received (for echoing with the client's letter case).
    public var questionWire: [UInt8]
    /// EDNS0: the client's UDP payload size, nil without an OPT record.
    public var ednsSize: UInt16?

    public var recursionDesired: Bool { flags & 0x0100 != 0 }
    public var opcode: UInt8 { UInt8((flags >> 11) & 0xF) }
    /// The largest UDP response this client accepts.
    public var udpLimit: Int { max(512, min(Int(ednsSize ?? 512), 4096)) }
}

public enum DNSParse: Sendable {
    case query(DNSQuery)
    /// Not answerable, but the header was readable: answer with this rcode.
    case reject(id: UInt16, flags: UInt16, DNSRcode)
    /// Not even a header, or a response: drop.
    case drop(String)
}

extension DNSQuery {
    /// Parses a message received by a server.
    public static func parse(_ bytes: [UInt8]) -> DNSParse {
        guard bytes.count >= 12 else { return .drop("shorter than a header (\(bytes.count) bytes)") }
        var r = WireReader(bytes)
        do {
            let id = try r.u16()
            let flags = try r.u16()
            if flags & 0x8000 != 0 { return .drop("a response, not a query") }
            let qd = try r.u16(), an = try r.u16(), ns = try r.u16(), ar = try r.u16()
            let opcode = UInt8((flags >> 11) & 0xF)
            guard opcode == 0 else { return .reject(id: id, flags: flags, .notImp) }
            guard qd == 1 else { return .reject(id: id, flags: flags, .formErr) }
            let qStart = r.pos
            let name = try r.name()
            let type = try r.u16()
            let klass = try r.u16()
            let qWire = Array(bytes[qStart..<r.pos])
            // Skip answer and authority records; look for OPT among the additional ones.
            for _ in 0..<(Int(an) + Int(ns)) { try skipRecord(&r) }
            var edns: UInt16?
            for _ in 0..<Int(ar) {
                _ = try r.name()
                let t = try r.u16()
                let cls = try r.u16()
                try r.skip(4)
                let len = try r.u16()
                try r.skip(Int(len))
                if t == DNSType.opt { edns = cls }
            }
            return .query(DNSQuery(id: id, flags: flags, question: DNSQuestion(name: name, type: type, klass: klass),
                                   questionWire: qWire, ednsSize: edns))
        } catch {
            return .reject(id: UInt16(bytes[0]) << 8 | UInt16(bytes[1]), flags: UInt16(bytes[2]) << 8 | UInt16(bytes[3]), .formErr)
        }
    }

    static func skipRecord(_ r: inout WireReader) throws(DNSWireError) {
        _ = try r.name()
        try r.skip(8)
        let len = try r.u16()
        try r.skip(Int(len))
    }
}

/// One answer record.
public enum DNSRecordData: Equatable, Sendable {
    case address(IPAddress)
    case ptr(DNSName)
}

/// Builds a response to `q`.
public struct DNSResponse {
    public static let ourUDPSize: UInt16 = 1232

    /// An answer: `records` all with owner = the question name, `ttl`. With `authoritative`,
    /// AA is set (our own names); RA is always set. Truncated (TC, no records) when it does
    /// not fit `limit`.
    public static func answer(_ q: DNSQuery, rcode: DNSRcode, records: [DNSRecordData] = [], ttl: UInt32 = 0,
                              authoritative: Bool = true, limit: Int = 65535) -> [UInt8] {
        var out = header(id: q.id, queryFlags: q.flags, rcode: rcode, authoritative: authoritative,
                         qd: 1, an: UInt16(records.count), ar: q.ednsSize != nil ? 1 : 0)
        out += q.questionWire
        for rec in records {
            out += [0xC0, 0x0C]  // the question's name
            switch rec {
            case .address(let a):
                let bytes = a.bytes
                put16(&out, a.isV4 ? DNSType.a : DNSType.aaaa)
                put16(&out, 1)
                put32(&out, ttl)
                put16(&out, UInt16(bytes.count))
                out += bytes
            case .ptr(let n):
                let w = n.wire
                put16(&out, DNSType.ptr)
                put16(&out, 1)
                put32(&out, ttl)
                put16(&out, UInt16(w.count))
                out += w
            }
        }
        if q.ednsSize != nil { out += opt() }
        if out.count > limit {
            var t = header(id: q.id, queryFlags: q.flags, rcode: rcode, authoritative: authoritative, qd: 1, an: 0,
                           ar: q.ednsSize != nil ? 1 : 0)
            t[2] |= 0x02  // TC
            t += q.questionWire
            if q.ednsSize != nil { t += opt() }
            return t
        }
        return out
    }

    /// An error response to a message whose question could not be used.
    public static func error(id: UInt16, queryFlags: UInt16, _ rcode: DNSRcode) -> [UInt8] {
        header(id: id, queryFlags: queryFlags, rcode: rcode, authoritative: false, qd: 0, an: 0, ar: 0)
    }

    static func header(id: UInt16, queryFlags: UInt16, rcode: DNSRcode, authoritative: Bool, qd: UInt16, an: UInt16,
                       ar: UInt16) -> [UInt8] {
        var f: UInt16 = 0x8000 | (queryFlags & 0x7800) | (queryFlags & 0x0100) | 0x0080  // QR, opcode, RD, RA
        if authoritative { f |= 0x0400 }
        f |= UInt16(rcode.rawValue)
        var out: [UInt8] = []
        out.reserveCapacity(128)
        put16(&out, id); put16(&out, f); put16(&out, qd); put16(&out, an); put16(&out, 0); put16(&out, ar)
        return out
    }

    static func opt() -> [UInt8] {
        var o: [UInt8] = [0]
        put16(&o, DNSType.opt); put16(&o, ourUDPSize); put32(&o, 0); put16(&o, 0)
        return o
    }
}

@inline(__always) func put16(_ o: inout [UInt8], _ v: UInt16) { o.append(UInt8(v >> 8)); o.append(UInt8(v & 0xFF)) }
@inline(__always) func put32(_ o: inout [UInt8], _ v: UInt32) { put16(&o, UInt16(v >> 16)); put16(&o, UInt16(v & 0xFFFF)) }

/// What the forwarder needs from an upstream's response.
public struct DNSResponseHeader: Sendable {
    public var id: UInt16
    public var truncated: Bool
    public var rcode: UInt8

    public init?(_ b: [UInt8]) {
        guard b.count >= 12, b[2] & 0x80 != 0 else { return nil }
        id = UInt16(b[0]) << 8 | UInt16(b[1])
        truncated = b[2] & 0x02 != 0
        rcode = b[3] & 0x0F
    }
}

/// Message helpers for the forwarder: the ID lives in the first two bytes.
public enum DNSMessage {
    public static func id(_ b: [UInt8]) -> UInt16? { b.count >= 2 ? UInt16(b[0]) << 8 | UInt16(b[1]) : nil }
    public static func withID(_ b: [UInt8], _ id: UInt16) -> [UInt8] {
        var c = b
        if c.count >= 2 { c[0] = UInt8(id >> 8); c[1] = UInt8(id & 0xFF) }
        return c
    }
}

extension IPAddress {
    /// The PTR name of this address ("4.3.2.1.in-addr.arpa", nibbles for IPv6).
    public var reverseName: DNSName {
        if isV4 {
            return DNSName(labels: bytes.reversed().map { Array(String($0).utf8) } + [Array("in-addr".utf8), Array("arpa".utf8)])
        }
        var ls: [[UInt8]] = []
        for byte in bytes.reversed() {
            ls.append(Array(String(byte & 0xF, radix: 16).utf8))
            ls.append(Array(String(byte >> 4, radix: 16).utf8))
        }
        return DNSName(labels: ls + [Array("ip6".utf8), Array("arpa".utf8)])
    }

    /// The address a PTR name stands for; nil for anything else (partial names included).
    public init?(reverseName n: DNSName) {
        let ls = n.labels.map { String(decoding: $0.map(lower), as: UTF8.self) }
        if ls.count == 6, ls[4] == "in-addr", ls[5] == "arpa" {
            var b: [UInt8] = []
            for l in ls[0..<4].reversed() {
                guard let v = UInt8(l), String(v) == l else { return nil }
                b.append(v)
            }
            self.init(bytes: b)
            return
        }
        if ls.count == 34, ls[32] == "ip6", ls[33] == "arpa" {
            var b: [UInt8] = []
            var i = 31
            while i > 0 {
                guard ls[i].count == 1, ls[i - 1].count == 1, let hi = UInt8(ls[i], radix: 16), let lo = UInt8(ls[i - 1], radix: 16)
                else { return nil }
                b.append(hi << 4 | lo)
                i -= 2
            }
            self.init(bytes: b)
            return
        }
        return nil
    }
}
