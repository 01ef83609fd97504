// The firewall's decisions — what attach, detach, GC and port publishing change, and when
// they refuse — against an in-memory nftables that keeps tables, chains, sets, elements and
// rules as the kernel does and applies each batch all or nothing. No root, no kernel.
import Glibc
import Testing
@testable import Base
@testable import Firewall
@testable import Netlink

/// nftables in memory: the kernel's semantics for the operations the firewall sends.
final class MemoryNetfilter: NetfilterBackend {
    struct Chain { var spec: ChainSpec; var rules: [(handle: UInt64, rule: Rule)] = [] }
    struct SetState { var spec: SetSpec; var elements: [[UInt8]: Element] = [:] }
    struct Table { var chains: [String: Chain] = [:]; var sets: [String: SetState] = [:] }

    var tables: [TableRef: Table] = [:]
    /// Chains of tables that are not ours (a host firewall), listed by `chains()`.
    var foreign: [ChainInfo] = []
    var nextHandle: UInt64 = 1
    /// Every batch applied, in order.
    var batches: [[Operation]] = []
    /// Fails the batch holding an operation for which this says true (errno EPERM).
    var failOn: (Operation) -> Bool = { _ in false }

    func fail(_ op: Operation, _ e: Int32) -> NetlinkError { NetlinkError("nftables: \(op)", errno: e) }

    func apply(_ ops: [Operation]) throws {
        var t = tables, handle = nextHandle
        for op in ops {
            if failOn(op) { throw fail(op, EPERM) }
            switch op {
            case .addTable(let r): if t[r] == nil { t[r] = Table() }
            case .deleteTable(let r): if t.removeValue(forKey: r) == nil { throw fail(op, ENOENT) }
            case .destroyTable(let r): t[r] = nil
            case .addChain(let c):
                guard t[c.table] != nil else { throw fail(op, ENOENT) }
                if t[c.table]!.chains[c.name] == nil { t[c.table]!.chains[c.name] = Chain(spec: c) }
            case .flushChain(let r, let c):
                guard t[r]?.chains[c] != nil else { throw fail(op, ENOENT) }
                t[r]!.chains[c]!.rules = []
            case .deleteChain(let r, let c):
                guard let ch = t[r]?.chains[c] else { throw fail(op, ENOENT) }
                if !ch.rules.isEmpty { throw fail(op, EBUSY) }
                t[r]!.chains[c] = nil
            case .destroyChain(let r, let c): t[r]?.chains[c] = nil
            case .addSet(let s):
                guard t[s.table] != nil else { throw fail(op, ENOENT) }
                if t[s.table]!.sets[s.name] == nil { t[s.table]!.sets[s.name] = SetState(spec: s) }
            case .deleteSet(let r, let s): if t[r]?.sets.removeValue(forKey: s) == nil { throw fail(op, ENOENT) }
            case .destroySet(let s): t[s.table]?.sets[s.name] = nil
            case .addRule(let r, let rule), .insertRule(let r, let rule):
                guard t[r]?.chains[rule.chain] != nil else { throw fail(op, ENOENT) }
                let entry = (handle: handle, rule: rule)
                handle += 1
                if case .insertRule = op { t[r]!.chains[rule.chain]!.rules.insert(entry, at: 0) } else { t[r]!.chains[rule.chain]!.rules.append(entry) }
            case .deleteRule(let r, let c, let h):
                guard let i = t[r]?.chains[c]?.rules.firstIndex(where: { $0.handle == h }) else { throw fail(op, ENOENT) }
                t[r]!.chains[c]!.rules.remove(at: i)
            case .addElements(let r, let s, let es):
                guard t[r]?.sets[s] != nil else { throw fail(op, ENOENT) }
                for e in es where t[r]!.sets[s]!.elements[e.key] == nil { t[r]!.sets[s]!.elements[e.key] = e }
            case .deleteElements(let r, let s, let es):
                guard t[r]?.sets[s] != nil else { throw fail(op, ENOENT) }
                for e in es where t[r]!.sets[s]!.elements.removeValue(forKey: e.key) == nil { throw fail(op, ENOENT) }
            case .destroyElements(let r, let s, let es):
                guard t[r]?.sets[s] != nil else { throw fail(op, ENOENT) }
                for e in es { t[r]!.sets[s]!.elements[e.key] = nil }
            }
        }
        tables = t
        nextHandle = handle
        batches.append(ops)
    }

    func tableExists(_ t: TableRef) throws -> Bool { tables[t] != nil }
    func chainExists(_ t: TableRef, _ name: String) throws -> Bool { tables[t]?.chains[name] != nil }
    func setExists(_ t: TableRef, _ name: String) throws -> Bool { tables[t]?.sets[name] != nil }

    func chains() throws -> [ChainInfo] {
        var out = foreign
        for (t, table) in tables {
            for c in table.chains.values {
                out.append(ChainInfo(family: t.family, table: t.name, name: c.spec.name, hook: c.spec.base?.hook,
                                     priority: c.spec.base?.priority ?? 0, policyDrop: c.spec.base.map { !$0.policyAccept } ?? false,
                                     comment: c.spec.comment))
            }
        }
        return out
    }

    static func info(_ e: Element) -> ElementInfo {
        var chain: String?
        if case .jump(let c)? = e.verdict { chain = c }
        if case .goto(let c)? = e.verdict { chain = c }
        return ElementInfo(key: e.key, data: e.data, comment: e.comment, chain: chain)
    }

    func elements(_ t: TableRef, _ set: String) throws -> [ElementInfo]? {
        tables[t]?.sets[set].map { $0.elements.values.map(MemoryNetfilter.info) }
    }

    func element(_ t: TableRef, _ set: String, key: [UInt8]) throws -> ElementInfo? {
        tables[t]?.sets[set]?.elements[key].map(MemoryNetfilter.info)
    }

    func rules(_ t: TableRef, _ chain: String, checkExists: Bool) throws -> [RuleInfo]? {
        guard let c = tables[t]?.chains[chain] else {
            // A foreign table's chain (iptables' FORWARD) exists once created by a test.
            return nil
        }
        return c.rules.map { RuleInfo(handle: $0.handle, comment: $0.rule.comment) }
    }

    /// The comments of a set's elements, sorted.
    func comments(_ t: TableRef, _ set: String) -> [String] {
        (tables[t]?.sets[set]?.elements.values.compactMap(\.comment) ?? []).sorted()
    }
}

/// A driver over a fresh in-memory nftables, with its lock under a temporary directory.
final class Rig {
    let nf = MemoryNetfilter()
    let dir: String
    let fw: FirewallDriver

    init() throws {
        var t = Array("/tmp/swiftcni-fwtest-XXXXXX".utf8CString)
        guard let p = mkdtemp(&t) else { throw SystemError("mkdtemp", "/tmp") }
        dir = String(cString: p)
        fw = FirewallDriver(backend: nf, runDirectory: dir)
    }

    deinit { _ = try? Exec.run("/bin/rm", arguments: ["-rf", dir], environment: [], stdin: []) }

    static func id(_ c: String, _ net: String = "web") -> AttachmentID { AttachmentID(network: net, containerID: c, ifname: "eth0") }
    static let web = NetworkPolicy(network: "web", bridge: "br-web", ipMasq: true)
    var a4: String { Plan.name("web", "a4") }
}

@Suite struct FirewallDecisions {
    @Test func attachesOnceThenOnlyElements() throws {
        let r = try Rig()
        try r.fw.attach(Rig.web, Rig.id("c1"), addresses: [IPAddress("10.1.0.2")!], port: "veth1", mode: .check)
        #expect(try r.nf.tableExists(Plan.table) && r.nf.tableExists(Plan.bridgeTable))
        #expect(r.nf.comments(Plan.table, r.a4) == ["web/c1/eth0"])
        #expect(r.nf.tables[Plan.table]?.chains[Plan.name("web", "masq")] != nil, "ipMasq: the network's masquerade chain")
        // A second attachment of the same network: one batch of elements, no chain or rule.
        try r.fw.attach(Rig.web, Rig.id("c2"), addresses: [IPAddress("10.1.0.3")!], port: "veth2", mode: .check)
        #expect(r.nf.batches.count == 2)
        let second = r.nf.batches[1]
        #expect(second.allSatisfy { if case .addElements = $0 { return true }; return false }, "\(second)")
        #expect(r.nf.comments(Plan.table, r.a4) == ["web/c1/eth0", "web/c2/eth0"])
    }

    @Test func detachRemovesExactlyItsOwnThenTheNetwork() throws {
        let r = try Rig()
        for (c, ip) in [("c1", "10.1.0.2"), ("c2", "10.1.0.3")] {
            try r.fw.attach(Rig.web, Rig.id(c), addresses: [IPAddress(ip)!], port: "v\(c)", mode: .check)
        }
        try r.fw.detach(network: "web", bridge: "br-web", Rig.id("c1"), addresses: [IPAddress("10.1.0.2")!])
        #expect(r.nf.comments(Plan.table, r.a4) == ["web/c2/eth0"])
        #expect(r.nf.tables[Plan.table]?.chains[Plan.name("web", "from")] != nil)
        // The last one takes the network's chains and sets with it; then the tables can go.
        try r.fw.detach(network: "web", bridge: "br-web", Rig.id("c2"), addresses: nil)
        #expect((r.nf.tables[Plan.table]?.chains.keys.contains { $0.hasPrefix("n-web-") } ?? false) == false)
        #expect(r.nf.tables[Plan.table]?.sets[r.a4] == nil)
        try r.fw.removeTablesIfUnused()
        #expect(r.nf.tables.isEmpty, "\(r.nf.tables.keys)")
        // Detaching again (a second DEL) is no error and changes nothing.
        try r.fw.detach(network: "web", bridge: "br-web", Rig.id("c2"), addresses: nil)
        #expect(r.nf.tables.isEmpty)
    }

    @Test func gcKeepsTheValidOnly() throws {
        let r = try Rig()
        for (i, c) in ["c1", "c2", "c3"].enumerated() {
            try r.fw.attach(Rig.web, Rig.id(c), addresses: [IPAddress("10.1.0.\(i + 2)")!], port: "v\(c)", mode: .check)
        }
        try r.fw.gc(network: "web", bridge: "br-web", valid: [Attachment(containerID: "c2", ifname: "eth0")], existingLinks: ["br-web", "vc2"])
        #expect(r.nf.comments(Plan.table, r.a4) == ["web/c2/eth0"])
    }

    @Test func networksAreIsolatedByTheirOwnSets() throws {
        let r = try Rig()
        try r.fw.attach(Rig.web, Rig.id("c1"), addresses: [IPAddress("10.1.0.2")!], port: "v1", mode: .check)
        let db = NetworkPolicy(network: "db", bridge: "br-db")
        try r.fw.attach(db, Rig.id("d1", "db"), addresses: [IPAddress("10.2.0.2")!], port: "v2", mode: .check)
        #expect(r.nf.comments(Plan.table, Plan.name("db", "a4")) == ["db/d1/eth0"])
        #expect(r.nf.comments(Plan.table, r.a4) == ["web/c1/eth0"])
        // Detaching web's container leaves db untouched.
        try r.fw.detach(network: "web", bridge: "br-web", Rig.id("c1"), addresses: nil)
        #expect(r.nf.comments(Plan.table, Plan.name("db", "a4")) == ["db/d1/eth0"])
    }

    /// Another table whose forward chain drops by default: refused (check), nothing applied;
    /// or accepted in iptables' FORWARD chains (iptables), and those rules go with the network.
    @Test func hostFirewall() throws {
        let r = try Rig()
        r.nf.foreign = [ChainInfo(family: .ip, table: "filter", name: "FORWARD", hook: .forward, priority: 0, policyDrop: true, comment: nil)]
        do {
            try r.fw.attach(Rig.web, Rig.id("c1"), addresses: [IPAddress("10.1.0.2")!], port: "v1", mode: .check)
            Issue.record("attached despite a dropping FORWARD chain")
        } catch let e as FirewallError {
            #expect(e.kind == .hostFirewall)
            #expect(e.description.contains("ip filter chain FORWARD (hook forward, policy drop)"), "\(e)")
        }
        #expect(r.nf.batches.isEmpty)
        #expect(r.nf.tables.isEmpty)
        // With the iptables mode the accept rules go into ip filter FORWARD (a table of theirs).
        r.nf.tables[TableRef(.ip, "filter")] = .init(chains: ["FORWARD": .init(spec: ChainSpec(TableRef(.ip, "filter"), "FORWARD"))])
        var p = Rig.web
        p.acceptInIptables = true
        try r.fw.attach(p, Rig.id("c1"), addresses: [IPAddress("10.1.0.2")!], port: "v1", mode: .iptables)
        let forward = r.nf.tables[TableRef(.ip, "filter")]!.chains["FORWARD"]!.rules.map(\.rule.description)
        #expect(forward == ["iifname \"br-web\" accept comment \"swiftcni:web\"", "oifname \"br-web\" accept comment \"swiftcni:web\""])
        try r.fw.detach(network: "web", bridge: "br-web", Rig.id("c1"), addresses: nil)
        #expect(r.nf.tables[TableRef(.ip, "filter")]!.chains["FORWARD"]!.rules.isEmpty)
    }

    /// A batch the kernel refuses changes nothing (all or nothing).
    @Test func aFailedBatchChangesNothing() throws {
        let r = try Rig()
        try r.fw.attach(Rig.web, Rig.id("c1"), addresses: [IPAddress("10.1.0.2")!], port: "v1", mode: .check)
        let before = r.nf.comments(Plan.table, r.a4)
        r.nf.failOn = { if case .addElements = $0 { return true }; return false }
        #expect(throws: NetlinkError.self) {
            try r.fw.attach(Rig.web, Rig.id("c2"), addresses: [IPAddress("10.1.0.3")!], port: "v2", mode: .check)
        }
        #expect(r.nf.comments(Plan.table, r.a4) == before)
    }

    /// Container port 80 published on host port `hp`.
    func port(_ hp: UInt16, _ c: String) -> PublishedPort {
        PublishedPort(hostIP: nil, family: .v4, hostPort: hp, proto: .tcp, container: IPAddress(c)!, containerPort: 80)
    }

    @Test func publishedPortsConflictsAndTheirRemoval() throws {
        let r = try Rig()
        let (records, policy) = (PublishedRecords(runDirectory: r.dir), PortmapPolicy(network: "web", bridge: "br-web"))
        try r.fw.publish(policy, Rig.id("c1"), ports: [port(8080, "10.1.0.2"), port(8081, "10.1.0.2")], hostAddresses: [], records: records)
        #expect(r.nf.comments(Plan.table, "pm4any") == ["web/c1/eth0", "web/c1/eth0"])
        // The same port for another container: refused, naming the holder; nothing changed.
        do {
            try r.fw.publish(policy, Rig.id("c2"), ports: [port(8080, "10.1.0.3")], hostAddresses: [], records: records)
            Issue.record("published twice")
        } catch let e as FirewallError {
            #expect(e.kind == .conflict)
            #expect(e.description == "port tcp 0.0.0.0:8080 is already published by container c1 (eth0) of network web on tcp 0.0.0.0:8080", "\(e)")
        }
        #expect(r.nf.comments(Plan.table, "pm4any").count == 2)
        // Without its record, DEL finds the ports by their comments.
        records.remove(Rig.id("c1"))
        try r.fw.unpublish(network: "web", bridge: nil, Rig.id("c1"), records: records)
        #expect(r.nf.comments(Plan.table, "pm4any").isEmpty)
    }

    /// A routed family: no DNAT, no host-port conflict, the container port in the open set
    /// once; the record says so, and DEL takes exactly that away. A record of a version
    /// before the open sets names none of their elements.
    @Test func routedPortsAreOpenedNotMapped() throws {
        let r = try Rig()
        let (records, policy) = (PublishedRecords(runDirectory: r.dir), PortmapPolicy(network: "web", bridge: "br-web"))
        try r.fw.publish(policy, Rig.id("c1"), ports: [port(8080, "10.1.0.2"), port(8081, "10.1.0.2")], hostAddresses: [],
                         routed: [.v4], records: records)
        // Another container's host port 8080 is no conflict: routed uses none.
        try r.fw.publish(policy, Rig.id("c2"), ports: [port(8080, "10.1.0.3")], hostAddresses: [], routed: [.v4], records: records)
        #expect(r.nf.comments(Plan.table, "pm4any").isEmpty)
        #expect(r.nf.comments(Plan.table, "open4") == ["web/c1/eth0", "web/c2/eth0"])
        let rec = try #require(records.read(Rig.id("c1")))
        #expect(rec.routed == [.v4] && rec.open && rec.ports.count == 2)
        try r.fw.unpublish(network: "web", bridge: nil, Rig.id("c1"), records: records)
        #expect(r.nf.comments(Plan.table, "open4") == ["web/c2/eth0"])
        #expect(Plan.publish([port(8080, "10.1.0.2")], Rig.id("c1"), mapNetwork: nil, open: false).map(\.description)
                == ["add element inet swiftcni pm4any { tcp . 8080 comment \"web/c1/eth0\" }"])
    }
}
