import Foundation
import Testing
@testable import Base
@testable import CNI

/// Traffic policy with real packets: a lab host, containers on bridge networks, and an
/// "outside" host behind the lab host.
@Suite(.enabled(if: isRoot, "needs root (network namespaces)"))
struct TrafficPolicy {
    func net(_ lab: Lab, _ name: String, tag: String, subnet: String, _ extra: String) -> String {
        bridgeConfig(lab, name: name, bridge: lab.bridgeName(tag), extra: #","isDefaultGateway":true"# + extra,
                     subnets: [subnet])
    }

    func add(_ lab: Lab, _ cfg: String, _ id: String, _ ns: String) throws -> CNIResult {
        let r = lab.plugin("bridge", "ADD", config: cfg, containerID: id, netns: ns)
        #expect(r.status == 0, "\(r.stdout)")
        return try #require(r.result)
    }

    func ip(_ r: CNIResult, _ f: IPFamily = .v4) -> String {
        r.ips.first { $0.address.family == f }!.address.address.description
    }

    @Test func masqueradeShowsTheHostAddress() throws {
        try withLab { lab in
            let out = try lab.outside()
            let c1 = try lab.container("c1")
            let cfg = net(lab, "masq", tag: "m", subnet: "10.160.0.0/24", #","ipMasq":true"#)
            _ = try add(lab, cfg, "a", c1)
            #expect(lab.tcpPeer(from: c1, to: "192.0.2.2", port: 8001, serverNS: out) == "192.0.2.1")
            // Without ipMasq the container's own address arrives (the outside needs a route back).
            let c2 = try lab.container("c2")
            let plain = net(lab, "plain", tag: "p", subnet: "10.161.0.0/24", "")
            let r2 = try add(lab, plain, "b", c2)
            sh("\(ipCommand) -n \(out) route add 10.161.0.0/24 via 192.0.2.1")
            #expect(lab.tcpPeer(from: c2, to: "192.0.2.2", port: 8002, serverNS: out) == ip(r2))
            // Behind NAT nothing from outside reaches the container unless published.
            sh("\(ipCommand) -n \(out) route add 10.160.0.0/24 via 192.0.2.1")
            #expect(!lab.ping(out, "10.160.0.2"))
            #expect(lab.ping(out, ip(r2)))
        }
    }

    @Test func masqueradeIPv6() throws {
        try withLab { lab in
            let out = try lab.outside()
            let c1 = try lab.container("c1")
            let cfg = bridgeConfig(lab, name: "m6", bridge: lab.bridgeName("s"), extra: #","isDefaultGateway":true,"ipMasq":true"#,
                                   subnets: ["10.162.0.0/24", "fd62::/64"])
            _ = try add(lab, cfg, "a", c1)
            #expect(lab.tcpPeer(from: c1, to: "2001:db8:99::2", port: 8003, serverNS: out) == "2001:db8:99::1")
        }
    }

    @Test func iccOff() throws {
        try withLab { lab in
            let out = try lab.outside()
            let c1 = try lab.container("c1"), c2 = try lab.container("c2")
            let cfg = net(lab, "noicc", tag: "i", subnet: "10.163.0.0/24", #","ipMasq":true,"icc":false"#)
            let r1 = try add(lab, cfg, "a", c1), r2 = try add(lab, cfg, "b", c2)
            // Container to container: blocked, any protocol, both ways.
            #expect(!lab.ping(c1, ip(r2)))
            #expect(!lab.ping(c2, ip(r1)))
            #expect(lab.tcpPeer(from: c1, to: ip(r2), port: 8004, serverNS: c2) == nil)
            // To the gateway and to the outside: allowed.
            #expect(lab.ping(c1, "10.163.0.1"))
            #expect(lab.tcpPeer(from: c1, to: "192.0.2.2", port: 8005, serverNS: out) == "192.0.2.1")
            // Once c2 leaves and comes back on a network with icc on, it talks.
            #expect(lab.plugin("bridge", "DEL", config: cfg, containerID: "b", netns: c2).status == 0)
            let on = net(lab, "icc", tag: "j", subnet: "10.175.0.0/24", "")
            let c3 = try lab.container("c3")
            let r3 = try add(lab, on, "c", c3), r4 = try add(lab, on, "d", c2)
            #expect(lab.ping(c2, ip(r3)))
            #expect(lab.ping(c3, ip(r4)))
        }
    }

    @Test func internalNetwork() throws {
        try withLab { lab in
            let out = try lab.outside()
            let c1 = try lab.container("c1"), c2 = try lab.container("c2")
            let cfg = net(lab, "int", tag: "n", subnet: "10.164.0.0/24", #","ipMasq":true,"internal":true"#)
            let r1 = try add(lab, cfg, "a", c1), r2 = try add(lab, cfg, "b", c2)
            // No default route handed out, whatever isDefaultGateway says.
            #expect(!r1.routes.contains { $0.dst.prefixLength == 0 })
            #expect(!lab.exec(c1, "\(ipCommand) route").out.contains("default"))
            // Still talk to each other.
            #expect(lab.ping(c1, ip(r2)))
            // Nothing leaves, even with a route out.
            sh("\(ipCommand) -n \(c1) route add default via 10.164.0.1")
            #expect(!lab.ping(c1, "192.0.2.2"))
            #expect(lab.tcpPeer(from: c1, to: "192.0.2.2", port: 8006, serverNS: out) == nil)
            // Nothing enters.
            sh("\(ipCommand) -n \(out) route add 10.164.0.0/24 via 192.0.2.1")
            #expect(!lab.ping(out, ip(r1)))
            #expect(lab.tcpPeer(from: out, to: ip(r1), port: 8007, serverNS: c1) == nil)
        }
    }

    @Test func networksAreIsolated() throws {
        try withLab { lab in
            let a1 = try lab.container("a1"), b1 = try lab.container("b1"), a2 = try lab.container("a2")
            let netA = net(lab, "neta", tag: "a", subnet: "10.165.0.0/24", #","ipMasq":true"#)
            let netB = net(lab, "netb", tag: "b", subnet: "10.166.0.0/24", "")
            let ra = try add(lab, netA, "a1", a1), rb = try add(lab, netB, "b1", b1)
            _ = try add(lab, netA, "a2", a2)
            #expect(!lab.ping(a1, ip(rb)))
            #expect(!lab.ping(b1, ip(ra)))
            #expect(lab.tcpPeer(from: a1, to: ip(rb), port: 8008, serverNS: b1) == nil)
            #expect(lab.tcpPeer(from: b1, to: ip(ra), port: 8009, serverNS: a1) == nil)
            // Within a network, and to each gateway, traffic flows.
            #expect(lab.ping(a2, ip(ra)))
            #expect(lab.ping(b1, "10.166.0.1"))
            // A container on two networks reaches both.
            let ab = try lab.container("ab")
            _ = try add(lab, netA, "ab", ab)
            let second = lab.plugin("bridge", "ADD", config: netB, containerID: "ab", netns: ab, ifname: "eth1")
            #expect(second.status == 0, "\(second.stdout)")
            #expect(lab.ping(ab, ip(ra)))
            #expect(lab.ping(ab, ip(rb)))
        }
    }

    @Test func gatewayUnderEveryPolicy() throws {
        try withLab { lab in
            for (i, extra) in [#","ipMasq":true,"icc":false,"hairpinMode":true"#, #","internal":true,"icc":false"#, ""].enumerated() {
                let c = try lab.container("c\(i)")
                let cfg = net(lab, "gw\(i)", tag: "g\(i)", subnet: "10.167.\(i).0/24", extra)
                let r = try add(lab, cfg, "a\(i)", c)
                #expect(lab.ping(c, "10.167.\(i).1"))
                #expect(lab.tcpPeer(from: c, to: "10.167.\(i).1", port: 8010 + i, serverNS: lab.host) == ip(r))
            }
        }
    }

    @Test func rulesetRestoredAfterEveryDel() throws {
        try withLab { lab in
            let before = lab.ruleset(lab.host)
            let c1 = try lab.container("c1"), c2 = try lab.container("c2"), c3 = try lab.container("c3")
            let a = net(lab, "ra", tag: "a", subnet: "10.168.0.0/24", #","ipMasq":true,"icc":false"#)
            let b = net(lab, "rb", tag: "b", subnet: "10.169.0.0/24", #","internal":true"#)
            let r1 = lab.plugin("bridge", "ADD", config: a, containerID: "1", netns: c1)
            _ = lab.plugin("bridge", "ADD", config: a, containerID: "2", netns: c2)
            _ = lab.plugin("bridge", "ADD", config: b, containerID: "3", netns: c3)
            #expect(lab.ruleset(lab.host).contains("table inet swiftcni"))
            // DEL with and without prevResult.
            #expect(lab.plugin("bridge", "DEL", config: withPrevResult(a, r1.stdout), containerID: "1", netns: c1).status == 0)
            #expect(lab.plugin("bridge", "DEL", config: a, containerID: "2", netns: c2).status == 0)
            #expect(!lab.ruleset(lab.host).contains(lab.bridgeName("a")))
            #expect(lab.plugin("bridge", "DEL", config: b, containerID: "3", netns: c3).status == 0)
            #expect(lab.ruleset(lab.host) == before)
            #expect(lab.links(lab.host) == ["lo"])
        }
    }

    @Test func checkNamesTheMissingPiece() throws {
        try withLab { lab in
            let c1 = try lab.container("c1")
            let cfg = net(lab, "chk", tag: "c", subnet: "10.170.0.0/24", #","ipMasq":true,"icc":false"#)
            let add = lab.plugin("bridge", "ADD", config: cfg, containerID: "a", netns: c1)
            let chk = withPrevResult(cfg, add.stdout)
            #expect(lab.plugin("bridge", "CHECK", config: chk, containerID: "a", netns: c1).status == 0)
            let set = "n-chk-" + fnv("chk") + "-a4"
            lab.exec(lab.host, "nft delete element inet swiftcni \(set) '{ 10.170.0.2 }'")
            let e1 = lab.plugin("bridge", "CHECK", config: chk, containerID: "a", netns: c1).error
            #expect(e1 == CNIError(.checkFailed, "firewall: element 10.170.0.2 (chk/a/eth0) of set inet swiftcni \(set) is missing"))
            // Another ADD for the same network repairs nothing of a's, but CHECK of a chain:
            lab.exec(lab.host, "nft add element inet swiftcni \(set) '{ 10.170.0.2 comment \"chk/a/eth0\" }'")
            lab.exec(lab.host, "nft delete element inet swiftcni masq '{ \"\(lab.bridgeName("c"))\" }'; nft delete chain inet swiftcni n-chk-\(fnv("chk"))-masq")
            let e2 = lab.plugin("bridge", "CHECK", config: chk, containerID: "a", netns: c1).error
            #expect(e2 == CNIError(.checkFailed, "firewall: chain inet swiftcni n-chk-\(fnv("chk"))-masq of network chk is missing"))
        }
    }

    @Test func gcRemovesStaleElementsAndEmptyNetworks() throws {
        try withLab { lab in
            let before = lab.ruleset(lab.host)
            let c1 = try lab.container("c1"), c2 = try lab.container("c2")
            let cfg = net(lab, "g", tag: "g", subnet: "10.171.0.0/24", #","ipMasq":true"#)
            _ = lab.plugin("bridge", "ADD", config: cfg, containerID: "keep", netns: c1)
            _ = lab.plugin("bridge", "ADD", config: cfg, containerID: "stale", netns: c2)
            var o = (try JSON.parse(cfg)).objectValue!
            o["cni.dev/valid-attachments"] = [["containerID": "keep", "ifname": "eth0"]]
            #expect(lab.plugin("bridge", "GC", config: JSON.object(o).serialized(), ifname: "").status == 0)
            let rs = lab.ruleset(lab.host)
            #expect(rs.contains("g/keep/eth0"))
            #expect(!rs.contains("g/stale/eth0"))
            // Nothing valid: the network's chains go (and with them, our tables).
            run([ipCommand, "netns", "del", c1])
            run([ipCommand, "netns", "del", c2])
            // The kernel destroys a deleted namespace's links asynchronously.
            for _ in 0..<100 where lab.links(lab.host).count > 2 { usleep(20_000) }
            o["cni.dev/valid-attachments"] = []
            #expect(lab.plugin("bridge", "GC", config: JSON.object(o).serialized(), ifname: "").status == 0)
            #expect(lab.ruleset(lab.host) == before)
            #expect(lab.allocations("g").isEmpty)
            #expect(lab.links(lab.host) == ["lo"])
        }
    }
}

func fnv(_ s: String) -> String {
    var h: UInt32 = 0x811C_9DC5
    for b in s.utf8 { h = (h ^ UInt32(b)) &* 0x0100_0193 }
    let x = String(h, radix: 16)
    return String(repeating: "0", count: 8 - x.count) + x
}

/// A host whose iptables (nft backend) FORWARD chain drops by default, as on hosts running
/// Docker.
@Suite(.enabled(if: isRoot, "needs root (network namespaces)"))
struct ForwardPolicyDrop {
    @Test func refusedByDefaultWithTheReason() throws {
        try withLab { lab in
            #expect(lab.exec(lab.host, "iptables -P FORWARD DROP").status == 0)
            let before = lab.ruleset(lab.host)
            let c1 = try lab.container("c1")
            let cfg = bridgeConfig(lab, extra: #","ipMasq":true"#)
            let r = lab.plugin("bridge", "ADD", config: cfg, containerID: "a", netns: c1)
            #expect(r.error?.code == .init(rawValue: 108))
            #expect(r.error?.msg.hasPrefix("host firewall: ip filter chain FORWARD (hook forward, policy drop) would drop the traffic of network net") == true, "\(r.stdout)")
            #expect(lab.ruleset(lab.host) == before)
            #expect(lab.links(lab.host) == ["lo"])
            #expect(lab.allocations("net").isEmpty)
            let st = lab.plugin("bridge", "STATUS", config: cfg, ifname: "")
            #expect(st.error?.code == .limitedConnectivity)
        }
    }

    @Test func withIptablesIntegrationEverythingWorksAndIsRemoved() throws {
        try withLab { lab in
            let out = try lab.outside()
            #expect(lab.exec(lab.host, "iptables -P FORWARD DROP && ip6tables -P FORWARD DROP").status == 0)
            let before = lab.ruleset(lab.host)
            let opt = #","isDefaultGateway":true,"hostFirewall":"iptables""#
            let masq = bridgeConfig(lab, name: "m", bridge: lab.bridgeName("m"), extra: opt + #","ipMasq":true"#, subnets: ["10.172.0.0/24"])
            let noicc = bridgeConfig(lab, name: "i", bridge: lab.bridgeName("i"), extra: opt + #","ipMasq":true,"icc":false"#, subnets: ["10.173.0.0/24"])
            let intl = bridgeConfig(lab, name: "n", bridge: lab.bridgeName("n"), extra: opt + #","internal":true"#, subnets: ["10.174.0.0/24"])
            var ns: [String: String] = [:]
            var ips: [String: String] = [:]
            for (k, cfg) in [("m1", masq), ("m2", masq), ("i1", noicc), ("i2", noicc), ("n1", intl), ("n2", intl)] {
                let c = try lab.container(k)
                ns[k] = c
                let r = lab.plugin("bridge", "ADD", config: cfg, containerID: k, netns: c)
                #expect(r.status == 0, "\(r.stdout)")
                ips[k] = r.result?.ips.first?.address.address.description
            }
            // Masquerade and same-network traffic pass the DROP policy.
            #expect(lab.tcpPeer(from: ns["m1"]!, to: "192.0.2.2", port: 8011, serverNS: out) == "192.0.2.1")
            #expect(lab.ping(ns["m1"]!, ips["m2"]!))
            // icc off, internal and isolation still hold.
            #expect(!lab.ping(ns["i1"]!, ips["i2"]!))
            #expect(lab.tcpPeer(from: ns["i1"]!, to: "192.0.2.2", port: 8012, serverNS: out) == "192.0.2.1")
            #expect(lab.ping(ns["n1"]!, ips["n2"]!))
            #expect(!lab.ping(ns["n1"]!, "192.0.2.2"))
            #expect(!lab.ping(ns["m1"]!, ips["i1"]!))
            #expect(lab.ruleset(lab.host).contains("comment \"swiftcni:m\""))
            for (k, cfg) in [("m1", masq), ("m2", masq), ("i1", noicc), ("i2", noicc), ("n1", intl), ("n2", intl)] {
                #expect(lab.plugin("bridge", "DEL", config: cfg, containerID: k, netns: ns[k]!).status == 0)
            }
            // Their table back as it was: our rules gone from it, our tables gone.
            #expect(lab.ruleset(lab.host) == before)
        }
    }
}

@Suite(.enabled(if: isRoot, "needs root (network namespaces)"))
struct KilledMidAdd {
    /// kill -9 at random points of 20 ADDs, then GC: the ruleset and the IPAM state are clean.
    @Test func gcCleansUp() throws {
        try withLab { lab in
            let before = lab.ruleset(lab.host)
            let cfg = bridgeConfig(lab, name: "k", bridge: lab.bridgeName("k"), extra: #","ipMasq":true,"icc":false"#,
                                   subnets: ["10.176.0.0/24", "fd76::/64"])
            // A whole ADD of this (debug) build takes at least this long: kill inside it.
            let warm = try lab.container("warm")
            var fastest = Double.infinity
            for _ in 0..<3 {
                let t0 = Date()
                #expect(lab.plugin("bridge", "ADD", config: cfg, containerID: "warm", netns: warm).status == 0)
                fastest = min(fastest, Date().timeIntervalSince(t0))
                #expect(lab.plugin("bridge", "DEL", config: cfg, containerID: "warm", netns: warm).status == 0)
            }
            let full = max(fastest * 0.8, 0.003)
            // Kill points from a seeded generator: a failure names a schedule that can be rerun.
            var schedule = FastRandom(seed: 20)
            var killed = 0
            for i in 0..<20 {
                let c = try lab.container("k\(i)")
                let p = try lab.startPlugin("bridge", "ADD", config: cfg, containerID: "k\(i)", netns: c)
                usleep(UInt32(Double.random(in: 0...full, using: &schedule) * 1_000_000))
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
                if p.terminationReason == .uncaughtSignal { killed += 1 }
            }
            #expect(killed >= 10, "only \(killed) of 20 ADDs were still running when killed")
            // The runtime's containers are gone; it garbage-collects with nothing valid.
            for i in 0..<20 { run([ipCommand, "netns", "del", "\(lab.id)-k\(i)"]) }
            for _ in 0..<150 where lab.links(lab.host).count > 2 { usleep(20_000) }
            var o = (try JSON.parse(cfg)).objectValue!
            o["cni.dev/valid-attachments"] = []
            let gc = lab.plugin("bridge", "GC", config: JSON.object(o).serialized(), ifname: "")
            #expect(gc.status == 0, "\(gc.stdout)")
            #expect(lab.ruleset(lab.host) == before)
            #expect(lab.allocations("k").isEmpty)
            let left = ((try? FileManager.default.contentsOfDirectory(atPath: lab.dataDir + "/k")) ?? []).filter {
                $0 != "lock" && !$0.hasPrefix("last_reserved_ip.")
            }
            #expect(left.isEmpty, "\(left)")
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: lab.dataDir + "/.swiftcni/k")) ?? []).isEmpty)
            #expect(lab.links(lab.host) == ["lo"])
        }
    }
}
