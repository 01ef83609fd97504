// Turns Operations into one NFNL batch with libnftnl (begin, messages, end).
#if canImport(Glibc)
import Glibc
#endif
import CMnl
import CNftnl
import Base

struct BatchEncoder {
    private(set) var seq: UInt32
    private var bytes: [UInt8] = []
    /// seq → what the message does (for error messages).
    private var names: [UInt32: String] = [:]
    private let page: UnsafeMutableRawPointer
    static let pageSize = 1 << 17
    /// Elements per NEWSETELEM message (keeps each message well inside a page).
    static let elementsPerMessage = 256
    private var setID: UInt32 = 1

    /// How much of the page the last message used: cleared before the next one is built, so
    /// no byte of one message (or of the heap) ends up in another's padding.
    private var used = 0

    init(seq: UInt32) {
        self.seq = seq
        page = UnsafeMutableRawPointer.allocate(byteCount: BatchEncoder.pageSize, alignment: 8)
        page.initializeMemory(as: UInt8.self, repeating: 0, count: BatchEncoder.pageSize)
        let nlh = nftnl_batch_begin(page.assumingMemoryBound(to: CChar.self), nextSeq())!
        append(nlh)
    }

    mutating func nextSeq() -> UInt32 {
        seq &+= 1
        return seq
    }

    mutating func append(_ nlh: UnsafeMutablePointer<nlmsghdr>) {
        let len = Int(nlh.pointee.nlmsg_len)
        bytes.append(contentsOf: UnsafeRawBufferPointer(start: UnsafeRawPointer(nlh), count: len))
        let pad = ((len + 3) & ~3) - len
        if pad > 0 { bytes.append(contentsOf: [UInt8](repeating: 0, count: pad)) }
        // The message was built at the start of the page: clear what it used.
        used = max(used, len + pad)
        page.initializeMemory(as: UInt8.self, repeating: 0, count: min(used, BatchEncoder.pageSize))
        used = 0
    }

    mutating func finish() -> ([UInt8], [UInt32: String]) {
        let nlh = nftnl_batch_end(page.assumingMemoryBound(to: CChar.self), nextSeq())!
        append(nlh)
        page.deallocate()
        return (bytes, names)
    }

    /// Starts one message of the batch (always with NLM_F_ACK, so each is answered).
    mutating func header(_ type: nf_tables_msg_types, _ family: NFFamily, flags: Int32, _ what: String) -> UnsafeMutablePointer<nlmsghdr> {
        let s = nextSeq()
        names[s] = what
        return nftnl_nlmsg_build_hdr(page.assumingMemoryBound(to: CChar.self), attr(type), attr(family),
                                     UInt16(flags | Int32(NLM_F_ACK)), s)!
    }

    mutating func encode(_ op: Operation) {
        let what = op.description
        switch op {
        case .addTable(let t):
            table(NFT_MSG_NEWTABLE, t, flags: Int32(NLM_F_CREATE), what)
        case .deleteTable(let t):
            table(NFT_MSG_DELTABLE, t, flags: 0, what)
        case .destroyTable(let t):
            table(NFT_MSG_NEWTABLE, t, flags: Int32(NLM_F_CREATE), what)
            table(NFT_MSG_DELTABLE, t, flags: 0, what)
        case .addChain(let c):
            chain(NFT_MSG_NEWCHAIN, c.table, c.name, base: c.base, comment: c.comment, flags: Int32(NLM_F_CREATE), what)
        case .flushChain(let t, let c):
            flush(t, c, what)
        case .deleteChain(let t, let c):
            chain(NFT_MSG_DELCHAIN, t, c, base: nil, flags: 0, what)
        case .destroyChain(let t, let c):
            chain(NFT_MSG_NEWCHAIN, t, c, base: nil, flags: Int32(NLM_F_CREATE), what)
            flush(t, c, what)
            chain(NFT_MSG_DELCHAIN, t, c, base: nil, flags: 0, what)
        case .addSet(let s):
            set(NFT_MSG_NEWSET, s, flags: Int32(NLM_F_CREATE), what)
        case .deleteSet(let t, let name):
            set(NFT_MSG_DELSET, SetSpec(t, name, key: []), flags: 0, what)
        case .destroySet(let s):
            set(NFT_MSG_NEWSET, s, flags: Int32(NLM_F_CREATE), what)
            set(NFT_MSG_DELSET, s, flags: 0, what)
        case .addRule(let t, let r):
            rule(t, r, insert: false, what)
        case .insertRule(let t, let r):
            rule(t, r, insert: true, what)
        case .deleteRule(let t, let c, let handle):
            let nlh = header(NFT_MSG_DELRULE, t.family, flags: 0, what)
            let r = nftnl_rule_alloc()!
            defer { nftnl_rule_free(r) }
            nftnl_rule_set_str(r, attr(NFTNL_RULE_TABLE), t.name)
            nftnl_rule_set_str(r, attr(NFTNL_RULE_CHAIN), c)
            nftnl_rule_set_u64(r, attr(NFTNL_RULE_HANDLE), handle)
            nftnl_rule_nlmsg_build_payload(nlh, r)
            append(nlh)
        case .addElements(let t, let s, let e):
            elements(NFT_MSG_NEWSETELEM, t, s, e, flags: Int32(NLM_F_CREATE), what)
        case .deleteElements(let t, let s, let e):
            elements(NFT_MSG_DELSETELEM, t, s, e, flags: 0, what)
        case .destroyElements(let t, let s, let e):
            elements(NFT_MSG_NEWSETELEM, t, s, e, flags: Int32(NLM_F_CREATE), what)
            elements(NFT_MSG_DELSETELEM, t, s, e, flags: 0, what)
        }
    }

    mutating func table(_ type: nf_tables_msg_types, _ t: TableRef, flags: Int32, _ what: String) {
        let nlh = header(type, t.family, flags: flags, what)
        let tb = nftnl_table_alloc()!
        defer { nftnl_table_free(tb) }
        nftnl_table_set_str(tb, attr(NFTNL_TABLE_NAME), t.name)
        nftnl_table_nlmsg_build_payload(nlh, tb)
        append(nlh)
    }

    mutating func chain(_ type: nf_tables_msg_types, _ t: TableRef, _ name: String, base: BaseChainSpec?, comment: String? = nil,
                        flags: Int32, _ what: String) {
        let nlh = header(type, t.family, flags: flags, what)
        let c = nftnl_chain_alloc()!
        defer { nftnl_chain_free(c) }
        nftnl_chain_set_str(c, attr(NFTNL_CHAIN_TABLE), t.name)
        nftnl_chain_set_str(c, attr(NFTNL_CHAIN_NAME), name)
        if let b = base {
            nftnl_chain_set_u32(c, attr(NFTNL_CHAIN_HOOKNUM), b.hook.rawValue)
            nftnl_chain_set_s32(c, attr(NFTNL_CHAIN_PRIO), b.priority)
            nftnl_chain_set_str(c, attr(NFTNL_CHAIN_TYPE), b.type)
            nftnl_chain_set_u32(c, attr(NFTNL_CHAIN_POLICY), UInt32(b.policyAccept ? NF_ACCEPT : NF_DROP))
        }
        if let comment {
            let ud = Comment.encode(comment, type: UInt8(attr(NFTNL_UDATA_CHAIN_COMMENT)))
            ud.withUnsafeBytes { _ = nftnl_chain_set_data(c, attr(NFTNL_CHAIN_USERDATA), $0.baseAddress, UInt32($0.count)) }
        }
        nftnl_chain_nlmsg_build_payload(nlh, c)
        append(nlh)
    }

    mutating func flush(_ t: TableRef, _ chain: String, _ what: String) {
        let nlh = header(NFT_MSG_DELRULE, t.family, flags: 0, what)
        let r = nftnl_rule_alloc()!
        defer { nftnl_rule_free(r) }
        nftnl_rule_set_str(r, attr(NFTNL_RULE_TABLE), t.name)
        nftnl_rule_set_str(r, attr(NFTNL_RULE_CHAIN), chain)
        nftnl_rule_nlmsg_build_payload(nlh, r)
        append(nlh)
    }

    mutating func set(_ type: nf_tables_msg_types, _ s: SetSpec, flags: Int32, _ what: String) {
        let nlh = header(type, s.table.family, flags: flags, what)
        let st = nftnl_set_alloc()!
        defer { nftnl_set_free(st) }
        nftnl_set_set_str(st, attr(NFTNL_SET_TABLE), s.table.name)
        nftnl_set_set_str(st, attr(NFTNL_SET_NAME), s.name)
        if type == NFT_MSG_NEWSET {
            nftnl_set_set_u32(st, attr(NFTNL_SET_FAMILY), UInt32(s.table.family.rawValue))
            nftnl_set_set_u32(st, attr(NFTNL_SET_KEY_TYPE), s.keyTypeID)
            nftnl_set_set_u32(st, attr(NFTNL_SET_KEY_LEN), s.keyLength)
            nftnl_set_set_u32(st, attr(NFTNL_SET_ID), setID)
            setID += 1
            // How nft should print the keys: strings in host order, addresses in network order.
            let order: UInt32 = s.key.count == 1 && s.key[0] == .ifname ? 1 : 2
            var ud: [UInt8] = [UInt8(attr(NFTNL_UDATA_SET_KEYBYTEORDER)), 4] + withUnsafeBytes(of: order) { Array($0) }
            if s.isMap, !s.isVerdictMap { ud += [UInt8(attr(NFTNL_UDATA_SET_DATABYTEORDER)), 4] + withUnsafeBytes(of: UInt32(2)) { Array($0) } }
            ud.withUnsafeBytes { _ = nftnl_set_set_data(st, attr(NFTNL_SET_USERDATA), $0.baseAddress, UInt32($0.count)) }
            if s.isMap {
                // A hash, as nft makes for exact-match concatenations (NFT_SET_CONCAT is only
                // for interval concatenations).
                nftnl_set_set_u32(st, attr(NFTNL_SET_FLAGS), UInt32(NFT_SET_MAP.rawValue))
                if s.isVerdictMap {
                    nftnl_set_set_u32(st, attr(NFTNL_SET_DATA_TYPE), NFT_DATA_VERDICT.rawValue)
                } else {
                    nftnl_set_set_u32(st, attr(NFTNL_SET_DATA_TYPE), s.dataTypeID)
                    nftnl_set_set_u32(st, attr(NFTNL_SET_DATA_LEN), s.dataLength)
                }
            }
        }
        nftnl_set_nlmsg_build_payload(nlh, st)
        append(nlh)
    }

    mutating func elements(_ type: nf_tables_msg_types, _ t: TableRef, _ set: String, _ elems: [Element], flags: Int32, _ what: String) {
        var i = 0
        while i < elems.count {
            let chunk = elems[i..<min(i + BatchEncoder.elementsPerMessage, elems.count)]
            i += chunk.count
            let nlh = header(type, t.family, flags: flags, what)
            let st = nftnl_set_alloc()!
            defer { nftnl_set_free(st) }
            nftnl_set_set_str(st, attr(NFTNL_SET_TABLE), t.name)
            nftnl_set_set_str(st, attr(NFTNL_SET_NAME), set)
            for e in chunk {
                let el = nftnl_set_elem_alloc()!
                e.key.withUnsafeBytes { _ = nftnl_set_elem_set(el, attr(NFTNL_SET_ELEM_KEY), $0.baseAddress, UInt32($0.count)) }
                if type == NFT_MSG_NEWSETELEM {
                    if let v = e.verdict {
                        let (code, chain) = BatchEncoder.verdictCode(v)
                        nftnl_set_elem_set_u32(el, attr(NFTNL_SET_ELEM_VERDICT), UInt32(bitPattern: code))
                        if let chain { nftnl_set_elem_set_str(el, attr(NFTNL_SET_ELEM_CHAIN), chain) }
                    } else if let d = e.data {
                        d.withUnsafeBytes { _ = nftnl_set_elem_set(el, attr(NFTNL_SET_ELEM_DATA), $0.baseAddress, UInt32($0.count)) }
                    }
                    if let c = e.comment {
                        let ud = Comment.encode(c, type: UInt8(attr(NFTNL_UDATA_SET_ELEM_COMMENT)))
                        ud.withUnsafeBytes { _ = nftnl_set_elem_set(el, attr(NFTNL_SET_ELEM_USERDATA), $0.baseAddress, UInt32($0.count)) }
                    }
                }
                nftnl_set_elem_add(st, el)
            }
            nftnl_set_elems_nlmsg_build_payload(nlh, st)
            append(nlh)
        }
    }

    static func verdictCode(_ v: Verdict) -> (Int32, String?) {
        switch v {
        case .accept: return (Int32(NF_ACCEPT), nil)
        case .drop: return (Int32(NF_DROP), nil)
        case .return: return (Int32(NFT_RETURN.rawValue), nil)
        case .jump(let c): return (Int32(NFT_JUMP.rawValue), c)
        case .goto(let c): return (Int32(NFT_GOTO.rawValue), c)
        }
    }

    mutating func rule(_ t: TableRef, _ rule: Rule, insert: Bool, _ what: String) {
        let nlh = header(NFT_MSG_NEWRULE, t.family, flags: Int32(NLM_F_CREATE) | (insert ? 0 : Int32(NLM_F_APPEND)), what)
        let r = nftnl_rule_alloc()!
        defer { nftnl_rule_free(r) }
        nftnl_rule_set_str(r, attr(NFTNL_RULE_TABLE), t.name)
        nftnl_rule_set_str(r, attr(NFTNL_RULE_CHAIN), rule.chain)
        nftnl_rule_set_u32(r, attr(NFTNL_RULE_FAMILY), UInt32(t.family.rawValue))
        for st in rule.statements {
            for e in RuleExpr.expressions(st, family: t.family) { nftnl_rule_add_expr(r, e) }
        }
        if let c = rule.comment {
            let ud = Comment.encode(c, type: UInt8(attr(NFTNL_UDATA_RULE_COMMENT)))
            ud.withUnsafeBytes { _ = nftnl_rule_set_data(r, attr(NFTNL_RULE_USERDATA), $0.baseAddress, UInt32($0.count)) }
        }
        nftnl_rule_nlmsg_build_payload(nlh, r)
        append(nlh)
    }
}

/// Statements → nftables expressions (what `nft` would generate for the same rule).
enum RuleExpr {
    static let reg1 = UInt32(NFT_REG_1.rawValue)
    static let regVerdict = UInt32(NFT_REG_VERDICT.rawValue)

    static func make(_ name: String, _ fill: (OpaquePointer) -> Void) -> OpaquePointer {
        let e = nftnl_expr_alloc(name)!
        fill(e)
        return e
    }

    static func setBytes(_ e: OpaquePointer, _ a: Int, _ b: [UInt8]) {
        b.withUnsafeBytes { _ = nftnl_expr_set(e, attr(a), $0.baseAddress, UInt32($0.count)) }
    }

    static func meta(_ key: nft_meta_keys, reg: UInt32 = reg1) -> OpaquePointer {
        make("meta") { e in
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_META_KEY), key.rawValue)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_META_DREG), reg)
        }
    }

    /// The n-th 32-bit register (concatenations are loaded into consecutive ones).
    static func reg32(_ n: Int) -> UInt32 { UInt32(NFT_REG32_00.rawValue) + UInt32(n) }

    static func cmp(_ op: CmpOp, _ data: [UInt8]) -> OpaquePointer {
        make("cmp") { e in
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_CMP_SREG), reg1)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_CMP_OP), op == .eq ? NFT_CMP_EQ.rawValue : NFT_CMP_NEQ.rawValue)
            setBytes(e, NFTNL_EXPR_CMP_DATA, data)
        }
    }

    static func lookup(_ set: String, invert: Bool = false, verdictMap: Bool = false, sreg: UInt32 = reg1, dreg: UInt32? = nil) -> OpaquePointer {
        make("lookup") { e in
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_LOOKUP_SREG), sreg)
            if let dreg { nftnl_expr_set_u32(e, attr(NFTNL_EXPR_LOOKUP_DREG), dreg) }
            nftnl_expr_set_str(e, attr(NFTNL_EXPR_LOOKUP_SET), set)
            if verdictMap { nftnl_expr_set_u32(e, attr(NFTNL_EXPR_LOOKUP_DREG), regVerdict) }
            if invert { nftnl_expr_set_u32(e, attr(NFTNL_EXPR_LOOKUP_FLAGS), UInt32(NFT_LOOKUP_F_INV.rawValue)) }
        }
    }

    static func payload(offset: UInt32, length: UInt32, base: nft_payload_bases = NFT_PAYLOAD_NETWORK_HEADER, reg: UInt32 = reg1) -> OpaquePointer {
        make("payload") { e in
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_PAYLOAD_BASE), base.rawValue)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_PAYLOAD_OFFSET), offset)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_PAYLOAD_LEN), length)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_PAYLOAD_DREG), reg)
        }
    }

    static func bitwise(mask: [UInt8]) -> OpaquePointer {
        make("bitwise") { e in
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_BITWISE_SREG), reg1)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_BITWISE_DREG), reg1)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_BITWISE_LEN), UInt32(mask.count))
            setBytes(e, NFTNL_EXPR_BITWISE_MASK, mask)
            setBytes(e, NFTNL_EXPR_BITWISE_XOR, [UInt8](repeating: 0, count: mask.count))
        }
    }

    static func ct(_ key: nft_ct_keys) -> OpaquePointer {
        make("ct") { e in
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_CT_KEY), key.rawValue)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_CT_DREG), reg1)
        }
    }

    static func verdict(_ v: Verdict) -> OpaquePointer {
        make("immediate") { e in
            let (code, chain) = BatchEncoder.verdictCode(v)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_IMM_DREG), regVerdict)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_IMM_VERDICT), UInt32(bitPattern: code))
            if let chain { nftnl_expr_set_str(e, attr(NFTNL_EXPR_IMM_CHAIN), chain) }
        }
    }

    /// `meta nfproto ipv4|ipv6`, the dependency of address matches in an inet table.
    static func nfproto(_ f: IPFamily, family: NFFamily) -> [OpaquePointer] {
        guard family == .inet || family == .bridge else { return [] }
        return [meta(NFT_META_NFPROTO), cmp(.eq, [f == .v4 ? UInt8(NFPROTO_IPV4) : UInt8(NFPROTO_IPV6)])]
    }

    static func prefix(_ op: CmpOp, _ net: IPNetwork, source: Bool, family: NFFamily) -> [OpaquePointer] {
        let v4 = net.family == .v4
        var out = nfproto(net.family, family: family)
        let offset: UInt32 = source ? (v4 ? 12 : 8) : (v4 ? 16 : 24)
        out.append(payload(offset: offset, length: v4 ? 4 : 16))
        if net.prefixLength < net.family.bits {
            out.append(bitwise(mask: IPAddress(family: net.family, value: net.mask).bytes))
        }
        out.append(cmp(op, net.networkAddress.bytes))
        return out
    }

    /// ct state / ct status are host-order 32-bit values.
    static func hostU32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v) { Array($0) } }

    static func expressions(_ s: Statement, family: NFFamily) -> [OpaquePointer] {
        switch s {
        case .iifname(let op, let n): return [meta(NFT_META_IIFNAME), cmp(op, ifnameBytes(n))]
        case .oifname(let op, let n): return [meta(NFT_META_OIFNAME), cmp(op, ifnameBytes(n))]
        case .iifnameIn(let set, let op): return [meta(NFT_META_IIFNAME), lookup(set, invert: op == .neq)]
        case .oifnameIn(let set, let op): return [meta(NFT_META_OIFNAME), lookup(set, invert: op == .neq)]
        case .iifnameVmap(let set): return [meta(NFT_META_IIFNAME), lookup(set, verdictMap: true)]
        case .oifnameVmap(let set): return [meta(NFT_META_OIFNAME), lookup(set, verdictMap: true)]
        case .daddrPrefix(let op, let net):
            return prefix(op, net, source: false, family: family)
        case .saddrPrefix(let op, let net):
            return prefix(op, net, source: true, family: family)
        case .fibDaddrLocal:
            return [make("fib") { e in
                nftnl_expr_set_u32(e, attr(NFTNL_EXPR_FIB_DREG), reg1)
                nftnl_expr_set_u32(e, attr(NFTNL_EXPR_FIB_RESULT), NFT_FIB_RESULT_ADDRTYPE.rawValue)
                nftnl_expr_set_u32(e, attr(NFTNL_EXPR_FIB_FLAGS), UInt32(NFTA_FIB_F_DADDR.rawValue))
            }, cmp(.eq, hostU32(UInt32(RTN_LOCAL)))]
        case .iifOifIn(let set):
            return [meta(NFT_META_IIFNAME, reg: reg32(0)), meta(NFT_META_OIFNAME, reg: reg32(4)), lookup(set, sreg: reg32(0))]
        case .dnatMap(let f, let map, let withAddress):
            let v4 = f == .v4
            var out = nfproto(f, family: family)
            var r = 0
            if withAddress {
                out.append(payload(offset: v4 ? 16 : 24, length: v4 ? 4 : 16, reg: reg32(0)))
                r = v4 ? 1 : 4
            }
            out.append(meta(NFT_META_L4PROTO, reg: reg32(r)))
            out.append(payload(offset: 2, length: 2, base: NFT_PAYLOAD_TRANSPORT_HEADER, reg: reg32(r + 1)))
            out.append(lookup(map, sreg: reg32(0), dreg: reg32(0)))
            out.append(make("nat") { e in
                nftnl_expr_set_u32(e, attr(NFTNL_EXPR_NAT_TYPE), NFT_NAT_DNAT.rawValue)
                nftnl_expr_set_u32(e, attr(NFTNL_EXPR_NAT_FAMILY), UInt32(v4 ? NFPROTO_IPV4 : NFPROTO_IPV6))
                nftnl_expr_set_u32(e, attr(NFTNL_EXPR_NAT_REG_ADDR_MIN), reg32(0))
                nftnl_expr_set_u32(e, attr(NFTNL_EXPR_NAT_REG_PROTO_MIN), reg32(v4 ? 1 : 4))
            })
            return out
        case .etherTypeARP:
            return [meta(NFT_META_PROTOCOL), cmp(.eq, [0x08, 0x06])]
        case .pairIn(let set, let reply):
            return [meta(NFT_META_PROTOCOL), cmp(.eq, [0x08, 0x00]),
                    payload(offset: reply ? 16 : 12, length: 4, reg: reg32(0)),
                    payload(offset: reply ? 12 : 16, length: 4, reg: reg32(1)),
                    meta(NFT_META_L4PROTO, reg: reg32(2)),
                    payload(offset: reply ? 0 : 2, length: 2, base: NFT_PAYLOAD_TRANSPORT_HEADER, reg: reg32(3)),
                    lookup(set, sreg: reg32(0))]
        case .nfproto(let f):
            return nfproto(f, family: family)
        case .daddrPortIn(let f, let set):
            let v4 = f == .v4
            var out = nfproto(f, family: family)
            out.append(payload(offset: v4 ? 16 : 24, length: v4 ? 4 : 16, reg: reg32(0)))
            let r = v4 ? 1 : 4
            out.append(meta(NFT_META_L4PROTO, reg: reg32(r)))
            out.append(payload(offset: 2, length: 2, base: NFT_PAYLOAD_TRANSPORT_HEADER, reg: reg32(r + 1)))
            out.append(lookup(set, sreg: reg32(0)))
            return out
        case .saddrIn(let f, let set):
            var out = nfproto(f, family: family)
            out.append(payload(offset: f == .v4 ? 12 : 8, length: f == .v4 ? 4 : 16))
            out.append(lookup(set))
            return out
        case .ctStateEstablishedRelated:
            // NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED)
            return [ct(NFT_CT_STATE), bitwise(mask: hostU32(0x2 | 0x4)), cmp(.neq, hostU32(0))]
        case .ctStatusDNAT(let op):
            // IPS_DST_NAT
            return [ct(NFT_CT_STATUS), bitwise(mask: hostU32(0x20)), cmp(op == .eq ? .neq : .eq, hostU32(0))]
        case .counter:
            return [make("counter") { _ in }]
        case .masquerade:
            return [make("masq") { _ in }]
        case .verdict(let v):
            return [verdict(v)]
        }
    }
}

/// libnftnl attribute numbers come as named enums (imported as structs) or anonymous ones
/// (imported as Int): one spelling for both.
@inline(__always) func attr<T: RawRepresentable>(_ v: T) -> UInt16 where T.RawValue: BinaryInteger { UInt16(truncatingIfNeeded: v.rawValue) }
@inline(__always) func attr(_ v: Int) -> UInt16 { UInt16(truncatingIfNeeded: v) }
