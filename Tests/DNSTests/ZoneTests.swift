import Testing
@testable import Base
@testable import DNS

func ip(_ s: String) -> IPAddress { IPAddress(s)! }

/// Two networks: "a" (10.1.0.0/24, domain a.test) and "b" (10.2.0.0/24, internal).
func twoNetworks() -> DNSZone {
    var z = DNSZone()
    z.setNetwork(DNSNetwork(name: "a", domain: "a.test", gateways: [ip("10.1.0.1")], upstream: [DNSUpstream("192.0.2.53")!]))
    z.setNetwork(DNSNetwork(name: "b", gateways: [ip("10.2.0.1")], isInternal: true))
    // "multi" is on both; "web" on a; "db" on b; "ext" on a only.
    z.upsert(DNSEndpoint(network: "a", containerID: "m", ifname: "eth0", name: "multi", addresses: [ip("10.1.0.10"), ip("fd01::10")]))
    z.upsert(DNSEndpoint(network: "b", containerID: "m", ifname: "eth1", name: "multi", addresses: [ip("10.2.0.10")]))
    z.upsert(DNSEndpoint(network: "a", containerID: "w", ifname: "eth0", name: "web", aliases: ["svc"], addresses: [ip("10.1.0.2")]))
    z.upsert(DNSEndpoint(network: "b", containerID: "d", ifname: "eth0", name: "db", addresses: [ip("10.2.0.3")]))
    return z
}

func resolve(_ z: DNSZone, _ from: String, _ name: String, _ type: UInt16 = DNSType.a) -> DNSResolution {
    var g = SystemRandomNumberGenerator()
    return z.resolve(source: ip(from), DNSQuestion(name: DNSName(name)!, type: type), using: &g)
}

func addresses(_ r: DNSResolution) -> [String] {
    guard case .answer(.noError, let recs, _) = r else { return [] }
    return recs.compactMap { if case .address(let a) = $0 { return a.description }; return nil }.sorted()
}

@Suite struct Zone {
    @Test func namesAndDomain() {
        let z = twoNetworks()
        #expect(addresses(resolve(z, "10.1.0.10", "web")) == ["10.1.0.2"])
        #expect(addresses(resolve(z, "10.1.0.10", "WEB.a.test.")) == ["10.1.0.2"])
        #expect(addresses(resolve(z, "10.1.0.10", "svc")) == ["10.1.0.2"])
    }

    @Test func theAddressOnTheAskersNetwork() {
        let z = twoNetworks()
        #expect(addresses(resolve(z, "10.1.0.2", "multi")) == ["10.1.0.10"])
        #expect(addresses(resolve(z, "10.2.0.3", "multi")) == ["10.2.0.10"])
        #expect(addresses(resolve(z, "10.1.0.2", "multi", DNSType.aaaa)) == ["fd01::10"])
        // multi, asking from its b address, still sees a's names (it is on a too).
        #expect(addresses(resolve(z, "10.2.0.10", "web")) == ["10.1.0.2"])
    }

    @Test func nothingAcrossNetworks() {
        let z = twoNetworks()
        // web is not on b; db is not on a: forwarded (not ours), never answered.
        #expect(resolve(z, "10.1.0.2", "db") == .forward([DNSUpstream("192.0.2.53")!]))
        // db's networks are all internal: no forwarding.
        #expect(resolve(z, "10.2.0.3", "web") == .refused)
        #expect(resolve(z, "10.2.0.3", "example.com") == .refused)
        // Inside a network's own domain, a missing name is NXDOMAIN, not forwarded.
        #expect(resolve(z, "10.1.0.2", "db.a.test") == .answer(.nxDomain, [], ttl: 5))
    }

    /// Docker's --dns on a network with the embedded DNS: that container's other queries go
    /// to its own servers; everyone else's to the network's; its records survive the disk.
    @Test func aContainersOwnServers() throws {
        var z = twoNetworks()
        let own = [DNSUpstream("192.0.2.7")!, DNSUpstream("[fd00::7]:5353")!]
        z.upsert(DNSEndpoint(network: "a", containerID: "o", ifname: "eth0", name: "own", addresses: [ip("10.1.0.30")], upstream: own))
        #expect(resolve(z, "10.1.0.30", "example.com") == .forward(own))
        #expect(resolve(z, "10.1.0.2", "example.com") == .forward([DNSUpstream("192.0.2.53")!]))
        // Its network's names are still answered, not forwarded.
        #expect(addresses(resolve(z, "10.1.0.30", "web")) == ["10.1.0.2"])
        // A container on several networks: the servers of any of its endpoints.
        z.upsert(DNSEndpoint(network: "b", containerID: "o", ifname: "eth1", name: "own", addresses: [ip("10.2.0.30")]))
        #expect(resolve(z, "10.2.0.30", "example.com") == .forward(own))
        let e = DNSEndpoint(network: "a", containerID: "o", ifname: "eth0", name: "own", addresses: [ip("10.1.0.30")], upstream: own)
        #expect(try DNSEndpoint(json: e.json, network: "a") == e)
        #expect(!DNSEndpoint(network: "a", containerID: "o", ifname: "eth0", name: nil, addresses: []).json.serialized().contains("upstream"))
    }

    @Test func refusedFromStrangers() {
        #expect(resolve(twoNetworks(), "10.1.0.1", "web") == .refused)
        #expect(resolve(twoNetworks(), "192.0.2.9", "web") == .refused)
    }

    @Test func sharedAliasRoundRobin() {
        var z = twoNetworks()
        for i in 3...6 {
            z.upsert(DNSEndpoint(network: "a", containerID: "s\(i)", ifname: "eth0", name: "s\(i)", aliases: ["pool"], addresses: [ip("10.1.0.\(i)")]))
        }
        var orders = Set<[String]>()
        for _ in 0..<50 {
            guard case .answer(.noError, let recs, _) = resolve(z, "10.1.0.2", "pool") else { Issue.record("no answer"); return }
            orders.insert(recs.map { if case .address(let a) = $0 { return a.description }; return "" })
        }
        #expect(orders.allSatisfy { $0.sorted() == ["10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"] })
        #expect(orders.count > 1)
    }

    @Test func linksAreTheirOwnersOnly() {
        var z = twoNetworks()
        z.upsert(DNSEndpoint(network: "a", containerID: "l", ifname: "eth0", name: "linker", links: [DNSLink("later:buddy")!], addresses: [ip("10.1.0.20")]))
        // The target does not exist yet.
        #expect(addresses(resolve(z, "10.1.0.20", "buddy")) == [])
        z.upsert(DNSEndpoint(network: "a", containerID: "t", ifname: "eth0", name: "later", addresses: [ip("10.1.0.21")]))
        #expect(addresses(resolve(z, "10.1.0.20", "buddy")) == ["10.1.0.21"])
        #expect(addresses(resolve(z, "10.1.0.20", "buddy.a.test")) == ["10.1.0.21"])
        // Nobody else sees the alias.
        #expect(addresses(resolve(z, "10.1.0.2", "buddy")) == [])
        z.remove(network: "a", key: "t:eth0")
        #expect(addresses(resolve(z, "10.1.0.20", "buddy")) == [])
    }

    @Test func ptr() {
        let z = twoNetworks()
        let q = ip("10.1.0.2").reverseName.key
        #expect(resolve(z, "10.1.0.10", q, DNSType.ptr) == .answer(.noError, [.ptr(DNSName("web.a.test")!)], ttl: 5))
        // db's address is on b only: a's containers get no name for it.
        let r = resolve(z, "10.1.0.2", ip("10.2.0.3").reverseName.key, DNSType.ptr)
        #expect(r == .forward([DNSUpstream("192.0.2.53")!]))
        #expect(resolve(z, "10.2.0.10", ip("10.2.0.3").reverseName.key, DNSType.ptr) == .answer(.noError, [.ptr(DNSName("db")!)], ttl: 5))
    }

    @Test func typesWithoutRecordsAreNoData() {
        #expect(resolve(twoNetworks(), "10.1.0.10", "web", DNSType.aaaa) == .answer(.noError, [], ttl: 5))
        #expect(resolve(twoNetworks(), "10.1.0.10", "web", 16) == .answer(.noError, [], ttl: 5))
    }

    @Test func removalAndUpdate() {
        var z = twoNetworks()
        z.remove(network: "a", key: "w:eth0")
        #expect(addresses(resolve(z, "10.1.0.10", "web")) == [])
        #expect(resolve(z, "10.1.0.2", "multi") == .refused)  // web's address is no container now
        z.upsert(DNSEndpoint(network: "a", containerID: "w", ifname: "eth0", name: "web2", addresses: [ip("10.1.0.2")]))
        #expect(addresses(resolve(z, "10.1.0.10", "web2")) == ["10.1.0.2"])
        z.removeNetwork("a")
        #expect(z.networks["a"] == nil && z.endpoints["a"] == nil)
        #expect(addresses(resolve(z, "10.2.0.3", "multi")) == ["10.2.0.10"])
        #expect(z.recordCount == 2)
    }

    @Test func shortContainerIDIsAName() {
        var z = twoNetworks()
        let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        z.upsert(DNSEndpoint(network: "a", containerID: id, ifname: "eth0", name: nil, addresses: [ip("10.1.0.30")]))
        #expect(addresses(resolve(z, "10.1.0.2", "0123456789ab")) == ["10.1.0.30"])
    }

    @Test func stateRoundTrip() throws {
        let n = DNSNetwork(name: "a", domain: "A.Test.", gateways: [ip("10.1.0.1"), ip("fd01::1")], isInternal: true,
                           upstream: [DNSUpstream("[fd00::53]:5353")!], ttl: 30)
        #expect(n.domain == "a.test")
        #expect(try DNSNetwork(json: n.json, name: "a") == n)
        let e = DNSEndpoint(network: "a", containerID: "c1", ifname: "eth0", name: "web", aliases: ["x", "y"],
                            links: [DNSLink("db:database")!], addresses: [ip("10.1.0.2"), ip("fd01::2")])
        #expect(try DNSEndpoint(json: JSON.parse(e.json.serialized()), network: "a") == e)
        #expect(DNSLink("db")?.alias == "db")
        #expect(DNSLink("a:b:c") == nil)
        #expect(DNSLink(":b") == nil)
    }
}
