// nftables through libnftnl: operations encoded into one NFNL batch (atomic: all or
// nothing), and the queries CHECK and GC need. Never an `nft` or `iptables` process.
#if canImport(Glibc)
import Glibc
#endif
import CMnl
import CNftnl
import Base
import Netlink

/// A set element as read back from the kernel.
public struct ElementInfo: Sendable {
    public var key: [UInt8]
    /// A map element's value (not for verdict maps: see `chain`).
    public var data: [UInt8]?
    public var comment: String?
    public var chain: String?
}

/// A chain as read back from the kernel.
public struct ChainInfo: Sendable {
    public var family: NFFamily?
    public var table: String
    public var name: String
    public var hook: NFHook?
    public var priority: Int32
    public var policyDrop: Bool
    public var comment: String?
}

/// A rule as read back: its handle and comment.
public struct RuleInfo: Sendable {
    public var handle: UInt64
    public var comment: String?
}

/// What the firewall needs of nftables: apply a batch atomically, and the queries CHECK and
/// GC make. The kernel's (`Netfilter`, through libnftnl), or an in-memory model in tests, so
/// the firewall's attach/detach/GC decisions are tested without root.
public protocol NetfilterBackend: AnyObject {
    /// All operations as one transaction: all applied, or none (the error names the first
    /// that failed).
    func apply(_ ops: [Operation]) throws
    func tableExists(_ t: TableRef) throws -> Bool
    func chainExists(_ t: TableRef, _ name: String) throws -> Bool
    func setExists(_ t: TableRef, _ name: String) throws -> Bool
    /// Every chain of every table (all families).
    func chains() throws -> [ChainInfo]
    /// The elements of a set or map; nil if the set does not exist.
    func elements(_ t: TableRef, _ set: String) throws -> [ElementInfo]?
    /// One element by its key; nil if absent (or the set does not exist).
    func element(_ t: TableRef, _ set: String, key: [UInt8]) throws -> ElementInfo?
    /// The rules of a chain (handle and comment); nil if the chain does not exist.
    func rules(_ t: TableRef, _ chain: String, checkExists: Bool) throws -> [RuleInfo]?
}

extension NetfilterBackend {
    public func rules(_ t: TableRef, _ chain: String) throws -> [RuleInfo]? { try rules(t, chain, checkExists: true) }
}

/// An nftables socket in the calling thread's (the host's) network namespace.
public final class Netfilter: NetfilterBackend {
    let sock: NetlinkSocket

    public init() throws {
        sock = try NetlinkSocket(protocol: NETLINK_NETFILTER)
    }

    // MARK: batches

    /// Sends all operations as one transaction.
    public func apply(_ ops: [Operation]) throws {
        if ops.isEmpty { return }
        var enc = BatchEncoder(seq: sock.nextSeq())
        for op in ops { enc.encode(op) }
        let (bytes, names) = enc.finish()
        sock.seq = enc.seq &+ 1
        try sock.executeBatch(bytes, expecting: names)
    }

    // MARK: queries

    /// Whether a table exists.
    public func tableExists(_ t: TableRef) throws -> Bool {
        let msgs = try get(type: NFT_MSG_GETTABLE, family: t.family, dump: false, operation: "get table \(t)") { nlh in
            let tb = nftnl_table_alloc()!
            defer { nftnl_table_free(tb) }
            nftnl_table_set_str(tb, attr(NFTNL_TABLE_NAME), t.name)
            nftnl_table_nlmsg_build_payload(nlh, tb)
        }
        return msgs != nil
    }

    public func chainExists(_ t: TableRef, _ name: String) throws -> Bool {
        let msgs = try get(type: NFT_MSG_GETCHAIN, family: t.family, dump: false, operation: "get chain \(t) \(name)") { nlh in
            let c = nftnl_chain_alloc()!
            defer { nftnl_chain_free(c) }
            nftnl_chain_set_str(c, attr(NFTNL_CHAIN_TABLE), t.name)
            nftnl_chain_set_str(c, attr(NFTNL_CHAIN_NAME), name)
            nftnl_chain_nlmsg_build_payload(nlh, c)
        }
        return msgs != nil
    }

    public func setExists(_ t: TableRef, _ name: String) throws -> Bool {
        let msgs = try get(type: NFT_MSG_GETSET, family: t.family, dump: false, operation: "get set \(t) \(name)") { nlh in
            let s = nftnl_set_alloc()!
            defer { nftnl_set_free(s) }
            nftnl_set_set_str(s, attr(NFTNL_SET_TABLE), t.name)
            nftnl_set_set_str(s, attr(NFTNL_SET_NAME), name)
            nftnl_set_nlmsg_build_payload(nlh, s)
        }
        return msgs != nil
    }

    /// Every chain of every table (all families).
    public func chains() throws -> [ChainInfo] {
        let msgs = try get(type: NFT_MSG_GETCHAIN, family: nil, dump: true, operation: "list chains") { _ in } ?? []
        var out: [ChainInfo] = []
        for m in msgs {
            let c = nftnl_chain_alloc()!
            defer { nftnl_chain_free(c) }
            guard parse(m, { nftnl_chain_nlmsg_parse($0, c) }) else { continue }
            let hasHook = nftnl_chain_is_set(c, attr(NFTNL_CHAIN_HOOKNUM))
            var len: UInt32 = 0
            var comment: String?
            if let p = nftnl_chain_get_data(c, attr(NFTNL_CHAIN_USERDATA), &len) {
                comment = Comment.decode(UnsafeRawBufferPointer(start: p, count: Int(len)), type: UInt8(attr(NFTNL_UDATA_CHAIN_COMMENT)))
            }
            out.append(ChainInfo(
                family: NFFamily(rawValue: UInt8(truncatingIfNeeded: nftnl_chain_get_u32(c, attr(NFTNL_CHAIN_FAMILY)))),
                table: String(cString: nftnl_chain_get_str(c, attr(NFTNL_CHAIN_TABLE))),
                name: String(cString: nftnl_chain_get_str(c, attr(NFTNL_CHAIN_NAME))),
                hook: hasHook ? NFHook(rawValue: nftnl_chain_get_u32(c, attr(NFTNL_CHAIN_HOOKNUM))) : nil,
                priority: hasHook ? Int32(bitPattern: nftnl_chain_get_u32(c, attr(NFTNL_CHAIN_PRIO))) : 0,
                policyDrop: hasHook && nftnl_chain_is_set(c, attr(NFTNL_CHAIN_POLICY))
                    && nftnl_chain_get_u32(c, attr(NFTNL_CHAIN_POLICY)) == UInt32(NF_DROP),
                comment: comment))
        }
        return out
    }

    /// The elements of a set or map; nil if the set does not exist.
    public func elements(_ t: TableRef, _ set: String) throws -> [ElementInfo]? {
        guard let msgs = try get(type: NFT_MSG_GETSETELEM, family: t.family, dump: true, operation: "list set \(t) \(set)", { nlh in
            let s = nftnl_set_alloc()!
            defer { nftnl_set_free(s) }
            nftnl_set_set_str(s, attr(NFTNL_SET_TABLE), t.name)
            nftnl_set_set_str(s, attr(NFTNL_SET_NAME), set)
            nftnl_set_elems_nlmsg_build_payload(nlh, s)
        }) else { return nil }
        return parseElements(msgs)
    }

    func parseElements(_ msgs: [NetlinkMessage]) -> [ElementInfo] {
        var out: [ElementInfo] = []
        for m in msgs {
            let s = nftnl_set_alloc()!
            defer { nftnl_set_free(s) }
            guard parse(m, { nftnl_set_elems_nlmsg_parse($0, s) }) else { continue }
            let it = nftnl_set_elems_iter_create(s)!
            defer { nftnl_set_elems_iter_destroy(it) }
            var e = nftnl_set_elems_iter_next(it)
            while let el = e {
                var len: UInt32 = 0
                var key: [UInt8] = []
                if let p = nftnl_set_elem_get(el, attr(NFTNL_SET_ELEM_KEY), &len) {
                    key = Array(UnsafeRawBufferPointer(start: p, count: Int(len)))
                }
                var data: [UInt8]?
                if nftnl_set_elem_is_set(el, attr(NFTNL_SET_ELEM_DATA)), let p = nftnl_set_elem_get(el, attr(NFTNL_SET_ELEM_DATA), &len) {
                    data = Array(UnsafeRawBufferPointer(start: p, count: Int(len)))
                }
                var comment: String?
                if let p = nftnl_set_elem_get(el, attr(NFTNL_SET_ELEM_USERDATA), &len) {
                    comment = Comment.decode(UnsafeRawBufferPointer(start: p, count: Int(len)), type: UInt8(attr(NFTNL_UDATA_SET_ELEM_COMMENT)))
                }
                var chain: String?
                if nftnl_set_elem_is_set(el, attr(NFTNL_SET_ELEM_CHAIN)) {
                    chain = String(cString: nftnl_set_elem_get_str(el, attr(NFTNL_SET_ELEM_CHAIN)))
                }
                out.append(ElementInfo(key: key, data: data, comment: comment, chain: chain))
                e = nftnl_set_elems_iter_next(it)
            }
        }
        return out
    }

    /// One element of a set or map by its key (a single lookup, however big the set); nil if
    /// absent (or the set does not exist).
    public func element(_ t: TableRef, _ set: String, key: [UInt8]) throws -> ElementInfo? {
        guard let msgs = try get(type: NFT_MSG_GETSETELEM, family: t.family, dump: false, operation: "get element of set \(t) \(set)", { nlh in
            let s = nftnl_set_alloc()!
            defer { nftnl_set_free(s) }
            nftnl_set_set_str(s, attr(NFTNL_SET_TABLE), t.name)
            nftnl_set_set_str(s, attr(NFTNL_SET_NAME), set)
            let e = nftnl_set_elem_alloc()!
            key.withUnsafeBytes { _ = nftnl_set_elem_set(e, attr(NFTNL_SET_ELEM_KEY), $0.baseAddress, UInt32($0.count)) }
            nftnl_set_elem_add(s, e)
            nftnl_set_elems_nlmsg_build_payload(nlh, s)
        }) else { return nil }
        return parseElements(msgs).first
    }

    /// The rules of a chain (handle and comment); nil if the chain does not exist.
    public func rules(_ t: TableRef, _ chain: String, checkExists: Bool) throws -> [RuleInfo]? {
        // A filtered dump answers "nothing" rather than ENOENT for a missing chain.
        if checkExists, !(try chainExists(t, chain)) { return nil }
        guard let msgs = try get(type: NFT_MSG_GETRULE, family: t.family, dump: true, operation: "list chain \(t) \(chain)", { nlh in
            let r = nftnl_rule_alloc()!
            defer { nftnl_rule_free(r) }
            nftnl_rule_set_str(r, attr(NFTNL_RULE_TABLE), t.name)
            nftnl_rule_set_str(r, attr(NFTNL_RULE_CHAIN), chain)
            nftnl_rule_nlmsg_build_payload(nlh, r)
        }) else { return nil }
        var out: [RuleInfo] = []
        for m in msgs {
            let r = nftnl_rule_alloc()!
            defer { nftnl_rule_free(r) }
            guard parse(m, { nftnl_rule_nlmsg_parse($0, r) }) else { continue }
            // A dump filtered by chain still answers for the whole family on old kernels.
            guard String(cString: nftnl_rule_get_str(r, attr(NFTNL_RULE_TABLE))) == t.name,
                  String(cString: nftnl_rule_get_str(r, attr(NFTNL_RULE_CHAIN))) == chain else { continue }
            var len: UInt32 = 0
            var comment: String?
            if let p = nftnl_rule_get_data(r, attr(NFTNL_RULE_USERDATA), &len) {
                comment = Comment.decode(UnsafeRawBufferPointer(start: p, count: Int(len)), type: UInt8(attr(NFTNL_UDATA_RULE_COMMENT)))
            }
            out.append(RuleInfo(handle: nftnl_rule_get_u64(r, attr(NFTNL_RULE_HANDLE)), comment: comment))
        }
        return out
    }

    // MARK: plumbing

    /// A GET request; nil when the kernel answers ENOENT (no such object).
    func get(type: nf_tables_msg_types, family: NFFamily?, dump: Bool, operation: String,
             _ build: (UnsafeMutablePointer<nlmsghdr>) -> Void) throws -> [NetlinkMessage]? {
        let r = NetlinkRequest(type: 0, flags: 0, operation: "nftables: " + operation)
        let nlh = nftnl_nlmsg_build_hdr(r.buf.assumingMemoryBound(to: CChar.self), attr(type),
                                        UInt16(family?.rawValue ?? UInt8(NFPROTO_UNSPEC)),
                                        UInt16(dump ? NLM_F_DUMP : 0), 0)!
        build(nlh)
        do {
            return try sock.query(r)
        } catch {
            if error.errno == ENOENT { return nil }
            throw error
        }
    }

    /// Runs a libnftnl parser on a received message (header included).
    func parse(_ m: NetlinkMessage, _ f: (UnsafePointer<nlmsghdr>) -> Int32) -> Bool {
        m.raw.withUnsafeBytes { raw in
            f(raw.baseAddress!.assumingMemoryBound(to: nlmsghdr.self)) >= 0
        }
    }
}

/// Comments in nft's userdata format (TLV), so `nft list` shows them.
enum Comment {
    static func encode(_ s: String, type: UInt8) -> [UInt8] {
        let bytes = Array(s.utf8.prefix(127)) + [0]
        return [type, UInt8(bytes.count)] + bytes
    }

    static func decode(_ buf: UnsafeRawBufferPointer, type: UInt8) -> String? {
        var i = 0
        while i + 2 <= buf.count {
            let t = buf[i], l = Int(buf[i + 1])
            if i + 2 + l > buf.count { return nil }
            if t == type {
                var e = i + 2
                while e < i + 2 + l && buf[e] != 0 { e += 1 }
                return String(decoding: UnsafeRawBufferPointer(rebasing: buf[(i + 2)..<e]), as: UTF8.self)
            }
            i += 2 + l
        }
        return nil
    }
}
