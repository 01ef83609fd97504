// The ruleset model: tables, chains, sets, rules made of statements, and the operations of
// a batch. Pure data: planning (Plan.swift) produces it, the netfilter encoder
// (Netfilter.swift) turns it into one libnftnl batch, and `description` renders it in nft
// syntax for tests and diagnostics.
import Base

public enum NFFamily: UInt8, Sendable, CustomStringConvertible {
    case inet = 1, ip = 2, bridge = 7, ip6 = 10

    public var description: String {
        switch self {
        case .inet: return "inet"
        case .ip: return "ip"
        case .bridge: return "bridge"
        case .ip6: return "ip6"
        }
    }
}

public enum NFHook: UInt32, Sendable, CustomStringConvertible {
    case prerouting = 0, input = 1, forward = 2, output = 3, postrouting = 4

    public var description: String {
        switch self {
        case .prerouting: return "prerouting"
        case .input: return "input"
        case .forward: return "forward"
        case .output: return "output"
        case .postrouting: return "postrouting"
        }
    }
}

public struct TableRef: Hashable, Sendable, CustomStringConvertible {
    public var family: NFFamily
    public var name: String
    public init(_ family: NFFamily, _ name: String) { self.family = family; self.name = name }
    public var description: String { "\(family) \(name)" }
}

public struct BaseChainSpec: Equatable, Sendable {
    public var type: String  // "filter" or "nat"
    public var hook: NFHook
    public var priority: Int32
    public var policyAccept: Bool
    public init(type: String, hook: NFHook, priority: Int32, policyAccept: Bool = true) {
        self.type = type; self.hook = hook; self.priority = priority; self.policyAccept = policyAccept
    }
}

public struct ChainSpec: Equatable, Sendable {
    public var table: TableRef
    public var name: String
    public var base: BaseChainSpec?
    public var comment: String?
    public init(_ table: TableRef, _ name: String, base: BaseChainSpec? = nil, comment: String? = nil) {
        self.table = table; self.name = name; self.base = base; self.comment = comment
    }
}

/// Key and data types of sets (nft's datatype ids, so `nft list` shows them properly).
public enum NFType: Sendable, Equatable {
    case ifname, ipv4, ipv6, inetProto, inetService, verdict

    public var id: UInt32 {
        switch self {
        case .ifname: return 41
        case .ipv4: return 7
        case .ipv6: return 8
        case .inetProto: return 12
        case .inetService: return 13
        case .verdict: return 0xFFFF_FF00
        }
    }

    /// Size in bytes of a value (registers round concatenated parts up to 4).
    public var length: UInt32 {
        switch self {
        case .ifname: return 16
        case .ipv4: return 4
        case .ipv6: return 16
        case .inetProto: return 1
        case .inetService: return 2
        case .verdict: return 0
        }
    }

    public var name: String {
        switch self {
        case .ifname: return "ifname"
        case .ipv4: return "ipv4_addr"
        case .ipv6: return "ipv6_addr"
        case .inetProto: return "inet_proto"
        case .inetService: return "inet_service"
        case .verdict: return "verdict"
        }
    }
}

public struct SetSpec: Equatable, Sendable {
    public var table: TableRef
    public var name: String
    /// One type, or several for a concatenation.
    public var key: [NFType]
    /// Set for maps: one type, or a concatenation (`[.verdict]` for verdict maps).
    public var data: [NFType]?
    public init(_ table: TableRef, _ name: String, key: [NFType], data: [NFType]? = nil) {
        self.table = table; self.name = name; self.key = key; self.data = data
    }

    public var isMap: Bool { data != nil }
    public var isVerdictMap: Bool { data == [.verdict] }
    /// Concatenated key length: each part padded to 4 bytes.
    public var keyLength: UInt32 { SetSpec.length(key) }
    /// nft encodes a concatenation's type as the parts' ids shifted 6 bits each.
    public var keyTypeID: UInt32 { SetSpec.typeID(key) }
    public var dataLength: UInt32 { SetSpec.length(data ?? []) }
    public var dataTypeID: UInt32 { SetSpec.typeID(data ?? []) }

    static func length(_ t: [NFType]) -> UInt32 {
        t.count == 1 ? t[0].length : t.reduce(0) { $0 + (($1.length + 3) & ~3) }
    }
    static func typeID(_ t: [NFType]) -> UInt32 { t.reduce(0) { ($0 << 6) | $1.id } }
}

public enum Verdict: Equatable, Sendable, CustomStringConvertible {
    case accept, drop, `return`, jump(String), goto(String)

    public var description: String {
        switch self {
        case .accept: return "accept"
        case .drop: return "drop"
        case .return: return "return"
        case .jump(let c): return "jump \(c)"
        case .goto(let c): return "goto \(c)"
        }
    }
}

/// One element of a set or map: the key bytes (network order), data, and a comment naming
/// its owner (the suite's per-attachment elements carry "<network>/<containerID>/<ifname>").
public struct Element: Equatable, Sendable, CustomStringConvertible {
    public var key: [UInt8]
    public var verdict: Verdict?
    public var data: [UInt8]?
    public var comment: String?
    /// For rendering: how to show the key.
    public var keyText: String

    public init(key: [UInt8], keyText: String, verdict: Verdict? = nil, data: [UInt8]? = nil, comment: String? = nil) {
        self.key = key; self.keyText = keyText; self.verdict = verdict; self.data = data; self.comment = comment
    }

    public static func ifname(_ n: String, verdict: Verdict? = nil, comment: String? = nil) -> Element {
        Element(key: ifnameBytes(n), keyText: "\"\(n)\"", verdict: verdict, comment: comment)
    }

    public static func address(_ a: IPAddress, comment: String? = nil) -> Element {
        Element(key: a.bytes, keyText: a.description, comment: comment)
    }

    /// An element of an `ipv4_addr . ipv4_addr . inet_proto . inet_service` set (each part
    /// padded to 4 bytes).
    public static func pair(_ src: IPAddress, _ dst: IPAddress, proto: UInt8, port: UInt16, comment: String? = nil) -> Element {
        let key = src.bytes + dst.bytes + [proto, 0, 0, 0] + [UInt8(port >> 8), UInt8(port & 0xFF), 0, 0]
        let p = proto == 6 ? "tcp" : proto == 17 ? "udp" : proto == 132 ? "sctp" : String(proto)
        return Element(key: key, keyText: "\(src) . \(dst) . \(p) . \(port)", comment: comment)
    }

    /// An element of an `ipv4_addr . inet_proto . inet_service` set (or ipv6): a container's
    /// address and port.
    public static func addressPort(_ a: IPAddress, proto: UInt8, port: UInt16, comment: String? = nil) -> Element {
        let key = a.bytes + [proto, 0, 0, 0] + [UInt8(port >> 8), UInt8(port & 0xFF), 0, 0]
        let p = proto == 6 ? "tcp" : proto == 17 ? "udp" : proto == 132 ? "sctp" : String(proto)
        return Element(key: key, keyText: "\(a) . \(p) . \(port)", comment: comment)
    }

    public var description: String {
        var s = keyText
        if let v = verdict { s += " : \(v)" }
        if let c = comment { s += " comment \"\(c)\"" }
        return s
    }
}

/// Interface names are 16-byte, zero-padded (IFNAMSIZ).
public func ifnameBytes(_ n: String) -> [UInt8] {
    var b = Array(n.utf8.prefix(15))
    b += [UInt8](repeating: 0, count: 16 - b.count)
    return b
}

public enum CmpOp: Sendable, Equatable {
    case eq, neq
    var text: String { self == .eq ? "" : "!= " }
}

/// A rule's statements, close to nft syntax; the encoder turns each into expressions.
public enum Statement: Equatable, Sendable, CustomStringConvertible {
    case iifname(CmpOp, String)
    case oifname(CmpOp, String)
    /// `iifname @set` / `iifname != @set`
    case iifnameIn(String, CmpOp)
    case oifnameIn(String, CmpOp)
    /// `iifname vmap @map`
    case iifnameVmap(String)
    case oifnameVmap(String)
    /// `ip daddr [!=] prefix` / `ip6 daddr`
    case daddrPrefix(CmpOp, IPNetwork)
    /// `ip saddr @set` / `ip6 saddr @set`
    case saddrIn(IPFamily, String)
    case ctStateEstablishedRelated
    /// `ct status dnat` / `ct status != dnat`
    case ctStatusDNAT(CmpOp)
    /// `ip saddr [!=] prefix` / `ip6 saddr`
    case saddrPrefix(CmpOp, IPNetwork)
    /// `fib daddr type local`: the destination is one of the host's addresses.
    case fibDaddrLocal
    /// `iifname . oifname @set`
    case iifOifIn(String)
    /// `dnat ip to ip daddr . meta l4proto . th dport map @m` (`withAddress`), or
    /// `dnat ip to meta l4proto . th dport map @m`; ip6 alike.
    case dnatMap(IPFamily, String, withAddress: Bool)
    /// `meta protocol arp` (bridge family: an ARP frame).
    case etherTypeARP
    /// Bridge family, IPv4: `ip saddr . ip daddr . meta l4proto . th dport @set`, or with
    /// `reply` the same element seen from the other end: `ip daddr . ip saddr . meta l4proto .
    /// th sport @set` (a pair allowed one way, and its answers).
    case pairIn(String, reply: Bool)
    /// `meta nfproto ipv4|ipv6`: the packet's address family (inet and bridge tables).
    case nfproto(IPFamily)
    /// `ip daddr . meta l4proto . th dport @set` (ip6 alike): the destination address and port.
    case daddrPortIn(IPFamily, String)
    case counter
    case masquerade
    case verdict(Verdict)

    public var description: String {
        switch self {
        case .iifname(let op, let n): return "iifname \(op.text)\"\(n)\""
        case .oifname(let op, let n): return "oifname \(op.text)\"\(n)\""
        case .iifnameIn(let s, let op): return "iifname \(op.text)@\(s)"
        case .oifnameIn(let s, let op): return "oifname \(op.text)@\(s)"
        case .iifnameVmap(let s): return "iifname vmap @\(s)"
        case .oifnameVmap(let s): return "oifname vmap @\(s)"
        case .daddrPrefix(let op, let n): return "\(n.family == .v4 ? "ip" : "ip6") daddr \(op.text)\(n)"
        case .saddrIn(let f, let s): return "\(f == .v4 ? "ip" : "ip6") saddr @\(s)"
        case .ctStateEstablishedRelated: return "ct state established,related"
        case .ctStatusDNAT(let op): return "ct status \(op.text)dnat"
        case .saddrPrefix(let op, let n): return "\(n.family == .v4 ? "ip" : "ip6") saddr \(op.text)\(n)"
        case .fibDaddrLocal: return "fib daddr type local"
        case .iifOifIn(let s): return "iifname . oifname @\(s)"
        case .dnatMap(let f, let m, let withAddress):
            let p = f == .v4 ? "ip" : "ip6"
            return "dnat \(p) to \(withAddress ? "\(p) daddr . " : "")meta l4proto . th dport map @\(m)"
        case .etherTypeARP: return "meta protocol arp"
        case .pairIn(let set, let reply):
            return reply ? "ip daddr . ip saddr . meta l4proto . th sport @\(set)" : "ip saddr . ip daddr . meta l4proto . th dport @\(set)"
        case .nfproto(let f): return "meta nfproto \(f == .v4 ? "ipv4" : "ipv6")"
        case .daddrPortIn(let f, let set): return "\(f == .v4 ? "ip" : "ip6") daddr . meta l4proto . th dport @\(set)"
        case .counter: return "counter"
        case .masquerade: return "masquerade"
        case .verdict(let v): return v.description
        }
    }
}

public struct Rule: Equatable, Sendable, CustomStringConvertible {
    public var chain: String
    public var statements: [Statement]
    public var comment: String?
    public init(_ chain: String, _ statements: [Statement], comment: String? = nil) {
        self.chain = chain; self.statements = statements; self.comment = comment
    }
    public var description: String {
        statements.map(\.description).joined(separator: " ") + (comment.map { " comment \"\($0)\"" } ?? "")
    }
}

/// One operation of a batch.
public enum Operation: Equatable, Sendable, CustomStringConvertible {
    /// Creates the table if missing (never fails if it exists).
    case addTable(TableRef)
    case deleteTable(TableRef)
    case addChain(ChainSpec)
    case flushChain(TableRef, String)
    case deleteChain(TableRef, String)
    case addSet(SetSpec)
    case deleteSet(TableRef, String)
    case addRule(TableRef, Rule)
    /// Inserts at the top of the chain (position 0).
    case insertRule(TableRef, Rule)
    case deleteRule(TableRef, String, handle: UInt64)
    case addElements(TableRef, String, [Element])
    case deleteElements(TableRef, String, [Element])
    /// Delete-if-present (encoded as add then delete, which every kernel accepts; map
    /// elements must carry their data for the add).
    case destroyElements(TableRef, String, [Element])
    /// Delete-if-present: the chain is created (if missing), flushed and deleted.
    case destroyChain(TableRef, String)
    /// Delete-if-present for a set.
    case destroySet(SetSpec)
    /// Delete-if-present for a table.
    case destroyTable(TableRef)

    public var description: String {
        switch self {
        case .addTable(let t): return "add table \(t)"
        case .deleteTable(let t): return "delete table \(t)"
        case .addChain(let c):
            if let b = c.base {
                return "add chain \(c.table) \(c.name) { type \(b.type) hook \(b.hook) priority \(b.priority); policy \(b.policyAccept ? "accept" : "drop"); }"
            }
            return "add chain \(c.table) \(c.name)" + (c.comment.map { " { comment \"\($0)\"; }" } ?? "")
        case .flushChain(let t, let c): return "flush chain \(t) \(c)"
        case .deleteChain(let t, let c): return "delete chain \(t) \(c)"
        case .addSet(let s):
            let key = s.key.map(\.name).joined(separator: " . ")
            return "add \(s.isMap ? "map" : "set") \(s.table) \(s.name) { type \(key)\(s.data.map { " : " + $0.map(\.name).joined(separator: " . ") } ?? ""); }"
        case .deleteSet(let t, let s): return "delete set \(t) \(s)"
        case .addRule(let t, let r): return "add rule \(t) \(r.chain) \(r)"
        case .insertRule(let t, let r): return "insert rule \(t) \(r.chain) \(r)"
        case .deleteRule(let t, let c, let h): return "delete rule \(t) \(c) handle \(h)"
        case .addElements(let t, let s, let e): return "add element \(t) \(s) { \(e.map(\.description).joined(separator: ", ")) }"
        case .deleteElements(let t, let s, let e): return "delete element \(t) \(s) { \(e.map(\.keyText).joined(separator: ", ")) }"
        case .destroyElements(let t, let s, let e): return "destroy element \(t) \(s) { \(e.map(\.keyText).joined(separator: ", ")) }"
        case .destroyChain(let t, let c): return "destroy chain \(t) \(c)"
        case .destroySet(let s): return "destroy set \(s.table) \(s.name)"
        case .destroyTable(let t): return "destroy table \(t)"
        }
    }
}
