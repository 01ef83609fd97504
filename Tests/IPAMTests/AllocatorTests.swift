import Glibc
import Testing
@testable import Base
@testable import CNI
@testable import HostLocalIPAM
@testable import IPAM

/// An in-memory store, to test the allocation logic alone.
final class MemoryStore: AllocationStore {
    var held: [IPAddress: Base.Attachment] = [:]
    var last: [Int: IPAddress] = [:]
    func withLock<T>(_ body: () throws -> T) throws -> T { try body() }
    func reserve(_ ip: IPAddress, owner: Base.Attachment, rangeSet: Int) throws -> Bool {
        if held[ip] != nil { return false }
        held[ip] = owner
        last[rangeSet] = ip
        return true
    }
    func lastReserved(rangeSet: Int) throws -> IPAddress? { last[rangeSet] }
    func owner(of ip: IPAddress) throws -> Base.Attachment? { held[ip] }
    func addresses(of owner: Base.Attachment, thorough: Bool) throws -> [IPAddress] { held.filter { $0.value == owner }.map(\.key) }
    func release(_ owner: Base.Attachment) throws -> [IPAddress] {
        let mine = held.filter { $0.value == owner }.map(\.key)
        for ip in mine { held[ip] = nil }
        return mine
    }
    func allocations() throws -> [(IPAddress, Base.Attachment)] { held.map { ($0.key, $0.value) } }
    func release(ip: IPAddress) throws { held[ip] = nil }
}

func ip(_ s: String) -> IPAddress { IPAddress(s)! }
func net(_ s: String) -> IPNetwork { IPNetwork(s)! }
func who(_ n: Int) -> Base.Attachment { Base.Attachment(containerID: "c\(n)", ifname: "eth0") }

@Suite struct Ranges {
    @Test func defaults() throws {
        let r = try IPRange(subnet: net("10.1.0.0/24"))
        #expect(r.start == ip("10.1.0.1"))
        #expect(r.end == ip("10.1.0.254"))
        #expect(r.gateway == ip("10.1.0.1"))
        let v6 = try IPRange(subnet: net("fd00::/120"))
        #expect(v6.end == ip("fd00::ff"))
    }

    @Test func ipRangeNarrowsDynamicAllocation() throws {
        let r = try IPRange(subnet: net("10.10.0.0/16"), gateway: ip("10.10.0.100"), ipRange: net("10.10.1.0/24"))
        #expect(r.start == ip("10.10.1.0"))
        #expect(r.end == ip("10.10.1.255"))
        let r2 = try IPRange(subnet: net("10.10.0.0/16"), rangeStart: ip("10.10.1.10"), ipRange: net("10.10.1.0/24"))
        #expect(r2.start == ip("10.10.1.10"))
    }

    @Test(arguments: [
        ("10.1.0.5/24", nil, nil, nil, nil, "has host bits set; the network is 10.1.0.0/24"),
        ("10.1.0.0/31", nil, nil, nil, nil, "network too small"),
        ("fd00::/127", nil, nil, nil, nil, "network too small"),
        ("10.1.0.0/24", "10.2.0.1", nil, nil, nil, "\"r.gateway\" \"10.2.0.1\": not in subnet"),
        ("10.1.0.0/24", "10.1.0.0", nil, nil, nil, "is the network address"),
        ("10.1.0.0/24", "10.1.0.255", nil, nil, nil, "is the broadcast address"),
        ("10.1.0.0/24", "fd00::1", nil, nil, nil, "not in subnet"),
        ("10.1.0.0/24", nil, "10.1.1.1", nil, nil, "\"r.rangeStart\" \"10.1.1.1\": not in subnet"),
        ("10.1.0.0/24", nil, nil, "10.1.1.1", nil, "\"r.rangeEnd\" \"10.1.1.1\": not in subnet"),
        ("10.1.0.0/24", nil, "10.1.0.100", "10.1.0.50", nil, "\"r.rangeStart\" \"10.1.0.100\" is after \"r.rangeEnd\" \"10.1.0.50\""),
        ("10.1.0.0/24", nil, nil, nil, "10.2.0.0/25", "\"r.ipRange\" \"10.2.0.0/25\": not inside subnet"),
        ("10.1.0.0/24", nil, nil, nil, "10.0.0.0/16", "not inside subnet"),
        ("10.1.0.0/24", nil, nil, nil, "10.1.0.5/25", "has host bits set"),
        ("10.1.0.0/24", nil, "10.1.0.200", nil, "10.1.0.0/25", "no address of it lies between rangeStart and rangeEnd"),
    ] as [(String, String?, String?, String?, String?, String)])
    func invalid(_ subnet: String, _ gw: String?, _ start: String?, _ end: String?, _ ipr: String?, _ msg: String) {
        do {
            _ = try IPRange(subnet: net(subnet), rangeStart: start.map(ip), rangeEnd: end.map(ip), gateway: gw.map(ip),
                            ipRange: ipr.map(net), key: "r")
            Issue.record("accepted \(subnet)")
        } catch {
            #expect(error.code == .invalidConfig)
            #expect(error.msg.contains(msg), "\(error.msg)")
        }
    }
}

@Suite struct Allocation {
    func allocator(_ ranges: [IPRange], aux: [IPAddress: String] = [:], store: MemoryStore = MemoryStore()) -> Allocator {
        Allocator(rangeSet: RangeSet(ranges), index: 0, store: store, aux: aux)
    }

    @Test func sequentialSkippingGatewayAndAux() throws {
        let a = allocator([try IPRange(subnet: net("10.1.0.0/24"))], aux: [ip("10.1.0.3"): "router"])
        let got = try (0..<3).map { try a.allocate(for: who($0), requested: nil) }
        #expect(got.map(\.address.description) == ["10.1.0.2/24", "10.1.0.4/24", "10.1.0.5/24"])
        #expect(got.allSatisfy { $0.gateway == ip("10.1.0.1") })
    }

    @Test func roundRobinAfterRelease() throws {
        let store = MemoryStore()
        let a = allocator([try IPRange(subnet: net("10.1.0.0/29"))], store: store)
        let first = try a.allocate(for: who(1), requested: nil)
        _ = try store.release(who(1))
        // The next container does not get the address just released.
        let second = try a.allocate(for: who(2), requested: nil)
        #expect(first.address.address == ip("10.1.0.2"))
        #expect(second.address.address == ip("10.1.0.3"))
    }

    @Test func exhaustionAndWrapAround() throws {
        let store = MemoryStore()
        // /29: .1 gateway, .2-.6 usable (5), .7 broadcast.
        let a = allocator([try IPRange(subnet: net("10.1.0.0/29"))], store: store)
        for i in 0..<5 { _ = try a.allocate(for: who(i), requested: nil) }
        #expect(throws: CNIError(.addressesExhausted, "no IP addresses available in range set 10.1.0.1-10.1.0.6")) {
            try a.allocate(for: who(9), requested: nil)
        }
        _ = try store.release(who(1))  // 10.1.0.3
        #expect(try a.allocate(for: who(9), requested: nil).address.address == ip("10.1.0.3"))
        #expect(a.capacity == 5)
    }

    @Test func onlyFromIPRange() throws {
        let a = allocator([try IPRange(subnet: net("10.10.0.0/16"), gateway: ip("10.10.0.100"), ipRange: net("10.10.1.0/30"))])
        let got = try (0..<4).map { try a.allocate(for: who($0), requested: nil).address.address.description }
        #expect(got == ["10.10.1.0", "10.10.1.1", "10.10.1.2", "10.10.1.3"])
        #expect(throws: CNIError.self) { try a.allocate(for: who(5), requested: nil) }
    }

    @Test func staticAnywhereInSubnet() throws {
        let a = allocator([try IPRange(subnet: net("10.10.0.0/16"), gateway: ip("10.10.0.100"), ipRange: net("10.10.1.0/24"))],
                          aux: [ip("10.10.1.5"): "my-router"])
        // Outside the ipRange (Docker --ip): allowed.
        #expect(try a.allocate(for: who(1), requested: ip("10.10.200.7")).address.description == "10.10.200.7/16")
        #expect(try a.allocate(for: who(2), requested: ip("10.10.1.9")).gateway == ip("10.10.0.100"))
    }

    @Test(arguments: [
        ("10.10.0.100", CNIErrorCode.invalidConfig, "requested IP 10.10.0.100 is the gateway of 10.10.0.0/16"),
        ("10.10.1.5", .invalidConfig, "requested IP 10.10.1.5 is reserved as auxiliary address \"my-router\""),
        ("10.10.0.0", .invalidConfig, "requested IP 10.10.0.0 is the network address of 10.10.0.0/16"),
        ("10.10.255.255", .invalidConfig, "requested IP 10.10.255.255 is the broadcast address of 10.10.0.0/16"),
        ("10.11.0.1", .invalidConfig, "requested IP 10.11.0.1 is not in subnet 10.10.0.0/16"),
        ("10.10.3.3", .addressInUse, "requested IP 10.10.3.3 is already allocated to container c1 (eth0)"),
    ])
    func staticRefused(_ want: String, _ code: CNIErrorCode, _ msg: String) throws {
        let a = allocator([try IPRange(subnet: net("10.10.0.0/16"), gateway: ip("10.10.0.100"), ipRange: net("10.10.1.0/24"))],
                          aux: [ip("10.10.1.5"): "my-router"])
        _ = try a.allocate(for: who(1), requested: ip("10.10.3.3"))
        #expect(throws: CNIError(code, msg)) { try a.allocate(for: who(2), requested: ip(want)) }
    }

    @Test func noDuplicateAllocation() throws {
        let a = allocator([try IPRange(subnet: net("10.1.0.0/24"))])
        _ = try a.allocate(for: who(1), requested: nil)
        #expect(throws: CNIError.self) { try a.allocate(for: who(1), requested: nil) }
    }

    @Test func severalRangesInOneSet() throws {
        // Docker's overlay with two subnets: one address, from the first range with room.
        let a = allocator([try IPRange(subnet: net("10.10.0.0/30")), try IPRange(subnet: net("10.11.0.0/30"))])
        let got = try (0..<2).map { try a.allocate(for: who($0), requested: nil) }
        #expect(got.map(\.address.description) == ["10.10.0.2/30", "10.11.0.2/30"])
        #expect(got[1].gateway == ip("10.11.0.1"))
        #expect(throws: CNIError.self) { try a.allocate(for: who(3), requested: nil) }
    }

    @Test func ipv6() throws {
        let a = allocator([try IPRange(subnet: net("fd00:1::/64"))])
        #expect(try a.allocate(for: who(1), requested: nil).address.description == "fd00:1::2/64")
        #expect(try a.allocate(for: who(2), requested: ip("fd00:1::abcd")).address.description == "fd00:1::abcd/64")
        #expect(a.capacity == (UInt128(1) << 64) - 2)
    }

    @Test func iteratorVisitsEachOnce() throws {
        let set = RangeSet([try IPRange(subnet: net("10.0.0.0/29")), try IPRange(subnet: net("10.0.1.0/30"))])
        var it = RangeIterator(rangeSet: set, last: ip("10.0.0.4"))
        var seen: [String] = []
        while let (a, _) = it.next() { seen.append(a.description) }
        #expect(seen == ["10.0.0.5", "10.0.0.6", "10.0.1.1", "10.0.1.2", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"])
    }
}

@Suite struct Config {
    func req(_ ipam: String, args: String = "", extra: String = "") throws -> CNIRequest {
        let env = try CNIEnvironment(command: .add, containerID: "c", netns: "/x", ifname: "eth0", args: args)
        return try CNIRequest(env: env, configBytes: Array(#"{"cniVersion":"1.0.0","name":"n"\#(extra),"ipam":\#(ipam)}"#.utf8))
    }

    @Test func legacyAndSets() throws {
        let c = try HostLocalConfig(try req(#"{"type":"host-local","subnet":"10.0.0.0/24","gateway":"10.0.0.254","ranges":[[{"subnet":"fd00::/64"}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"/d","resolvConf":"/r"}"#))
        #expect(c.rangeSets.count == 2)
        #expect(c.rangeSets[0].ranges[0].gateway == ip("10.0.0.254"))
        #expect(c.rangeSets[1].family == .v6)
        #expect(c.routes.count == 1)
        #expect(c.dataDir == "/d")
    }

    @Test func requestedFromEverySource() throws {
        let c = try HostLocalConfig(try req(#"{"ranges":[[{"subnet":"10.0.0.0/24"}],[{"subnet":"fd00::/64"}]]}"#,
                                            args: "IP=10.0.0.9", extra: #","args":{"cni":{"ips":["fd00::9"]}},"runtimeConfig":{"ips":["10.0.0.10/24"]}"#))
        #expect(c.requested == [ip("10.0.0.9"), ip("fd00::9"), ip("10.0.0.10")])
    }

    @Test func auxAndIPRange() throws {
        let c = try HostLocalConfig(try req(#"{"ranges":[[{"subnet":"10.10.0.0/16","gateway":"10.10.0.100","ipRange":"10.10.1.0/24"},{"subnet":"10.11.0.0/16"}]],"auxAddresses":{"my-router":"10.10.1.5","my-switch":"10.11.1.6"}}"#))
        #expect(c.auxAddresses.map(\.name) == ["my-router", "my-switch"])
        #expect(c.rangeSets[0].ranges.count == 2)
    }

    @Test(arguments: [
        (#"{"type":"host-local"}"#, CNIErrorCode.invalidConfig, "no IP ranges specified"),
        (#"{"ranges":[[{"subnet":"10.0.0.0/33"}]]}"#, .invalidConfig, "\"ipam.ranges[0][0].subnet\" \"10.0.0.0/33\": not a CIDR"),
        (#"{"ranges":[[{"gateway":"10.0.0.1"}]]}"#, .invalidConfig, "\"ipam.ranges[0][0].subnet\" is required"),
        (#"{"ranges":[[]]}"#, .invalidConfig, "range set is empty"),
        (#"{"ranges":[{"subnet":"10.0.0.0/24"}]}"#, .decodingFailure, "expected an array of ranges"),
        (#"{"ranges":"10.0.0.0/24"}"#, .decodingFailure, "\"ipam.ranges\": expected an array"),
        (#"{"ranges":[[{"subnet":"10.0.0.0/24"},{"subnet":"fd00::/64"}]]}"#, .invalidConfig, "may not mix IPv4 and IPv6"),
        (#"{"ranges":[[{"subnet":"10.0.0.0/24"},{"subnet":"10.0.0.0/25"}]]}"#, .invalidConfig, "overlaps range 0"),
        (#"{"ranges":[[{"subnet":"10.0.0.0/24"}],[{"subnet":"10.0.0.0/16"}]]}"#, .invalidConfig, "range set 0 overlaps with range set 1"),
        (#"{"ranges":[[{"subnet":"10.0.0.0/24"}]],"auxAddresses":{"r":"10.9.0.1"}}"#, .invalidConfig, "\"ipam.auxAddresses.r\" \"10.9.0.1\": not in any configured subnet"),
        (#"{"ranges":[[{"subnet":"10.0.0.0/24"}]],"auxAddresses":{"r":"x"}}"#, .invalidConfig, "not an IP address"),
        (#"{"ranges":[[{"subnet":"10.0.0.0/24"}]],"auxAddresses":{"r":5}}"#, .decodingFailure, "expected an IP address string"),
        (#"{"ranges":[[{"subnet":"10.0.0.0/24"}]],"routes":[{"dst":"nope"}]}"#, .invalidConfig, "\"ipam.routes[0].dst\" \"nope\": not a CIDR"),
        (#"{"ranges":[[{"subnet":"10.0.0.0/24"}]],"routes":[{"dst":"0.0.0.0/0","gw":"fd00::1"}]}"#, .invalidConfig, "is IPv6 but dst"),
        (#"{"ranges":[[{"subnet":"10.0.0.0/24"}]],"dataDir":5}"#, .decodingFailure, "\"ipam.dataDir\": expected a string"),
    ])
    func invalid(_ ipam: String, _ code: CNIErrorCode, _ msg: String) {
        do {
            _ = try HostLocalConfig(try req(ipam))
            Issue.record("accepted \(ipam)")
        } catch let e as CNIError {
            #expect(e.code == code)
            #expect(e.msg.contains(msg), "\(e.msg)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func badRequestedAddress() {
        #expect(throws: CNIError(.invalidEnvironment, "CNI_ARGS: IP \"10.0.0\" is not an IP address")) {
            try HostLocalConfig(try req(#"{"ranges":[[{"subnet":"10.0.0.0/24"}]]}"#, args: "IP=10.0.0"))
        }
    }

    @Test func resolvConf() {
        let d = ResolvConf.parse("# c\nnameserver 10.0.0.1\nnameserver fd00::1 # x\ndomain example.org\nsearch a.b c.d\noptions ndots:2 edns0\n")
        #expect(d.nameservers == ["10.0.0.1", "fd00::1"])
        #expect(d.domain == "example.org")
        #expect(d.search == ["a.b", "c.d"])
        #expect(d.options == ["ndots:2", "edns0"])
    }
}

@Suite struct Files {
    func tempDir() -> String {
        var t = Array("/tmp/swiftcni-ipam-XXXXXX".utf8CString)
        return String(cString: mkdtemp(&t)!)
    }

    @Test func referenceFormat() throws {
        let dir = tempDir()
        defer { _ = system("rm -rf '\(dir)'") }
        let s = try FileStore(network: "net1", dataDir: dir)
        #expect(try s.reserve(ip("10.0.0.2"), owner: who(1), rangeSet: 0))
        #expect(!(try s.reserve(ip("10.0.0.2"), owner: who(2), rangeSet: 0)))
        #expect(try Posix.readText(dir + "/net1/10.0.0.2") == "c1\r\neth0")
        #expect(try Posix.readText(dir + "/net1/last_reserved_ip.0") == "10.0.0.2")
        #expect(try s.lastReserved(rangeSet: 0) == ip("10.0.0.2"))
        #expect(try s.owner(of: ip("10.0.0.2")) == who(1))
        #expect(try s.release(who(1)) == [ip("10.0.0.2")])
        #expect(!Posix.exists(dir + "/net1/10.0.0.2"))
    }

    @Test func stateWrittenByOthersCarriesOver() throws {
        let dir = tempDir()
        defer { _ = system("rm -rf '\(dir)'") }
        try Posix.makeDirectories(dir + "/n")
        // As the reference plugin writes them (and older versions, id only).
        try Posix.writeFile(dir + "/n/10.0.0.7", Array("ctr-a\r\neth0".utf8))
        try Posix.writeFile(dir + "/n/10.0.0.8", Array("ctr-b".utf8))
        try Posix.writeFile(dir + "/n/fd00::7", Array("ctr-a\r\neth0".utf8))
        let s = try FileStore(network: "n", dataDir: dir)
        let a = Base.Attachment(containerID: "ctr-a", ifname: "eth0")
        #expect(Set(try s.addresses(of: a, thorough: true)) == [ip("10.0.0.7"), ip("fd00::7")])
        #expect(try s.addresses(of: Base.Attachment(containerID: "ctr-b", ifname: "eth1"), thorough: true) == [ip("10.0.0.8")])
        #expect(Set(try s.release(a)) == [ip("10.0.0.7"), ip("fd00::7")])
        #expect(try s.allocations().map(\.0) == [ip("10.0.0.8")])
    }

    @Test func concurrentReservationsNeverCollide() throws {
        let dir = tempDir()
        defer { _ = system("rm -rf '\(dir)'") }
        let range = try IPRange(subnet: net("10.2.0.0/24"))
        // Results from four threads: each write under the lock (one array, shared).
        final class Results: @unchecked Sendable {
            let lock = Mutex()
            var values = [String?](repeating: nil, count: 80)
            func set(_ i: Int, _ v: String?) { lock.locked { values[i] = v } }
        }
        let results = Results()
        DispatchApply.run(80) { i in
            do {
                let s = try FileStore(network: "race", dataDir: dir)
                let a = Allocator(rangeSet: RangeSet([range]), index: 0, store: s)
                let got = try s.withLock { try a.allocate(for: who(i), requested: nil) }
                results.set(i, got.address.description)
            } catch {
                results.set(i, nil)
            }
        }
        let got = results.lock.locked { results.values }.compactMap { $0 }
        #expect(got.count == 80)
        #expect(Set(got).count == 80)
    }
}

/// Runs `n` closures on 4 threads (no Dispatch in this package; plain pthreads).
enum DispatchApply {
    final class Work: @unchecked Sendable {
        let body: (Int) -> Void
        let n: Int
        var next = 0
        var mutex = pthread_mutex_t()
        init(_ n: Int, _ body: @escaping (Int) -> Void) {
            self.n = n
            self.body = body
            pthread_mutex_init(&mutex, nil)
        }
        func take() -> Int? {
            pthread_mutex_lock(&mutex)
            defer { pthread_mutex_unlock(&mutex) }
            if next >= n { return nil }
            next += 1
            return next - 1
        }
    }

    static func run(_ n: Int, threads: Int = 4, _ body: @escaping (Int) -> Void) {
        let w = Work(n, body)
        var tids: [pthread_t] = []
        for _ in 0..<threads {
            var t = pthread_t()
            let ctx = Unmanaged.passRetained(w).toOpaque()
            pthread_create(&t, nil, { ctx in
                let w = Unmanaged<Work>.fromOpaque(ctx!).takeRetainedValue()
                while let i = w.take() { w.body(i) }
                return nil
            }, ctx)
            tids.append(t)
        }
        for t in tids { pthread_join(t, nil) }
    }
}
