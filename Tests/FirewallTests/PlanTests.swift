import Testing
@testable import Base
@testable import Firewall

@Suite struct Names {
    @Test func boundedSafeAndDistinct() {
        let long = String(repeating: "very.long-network_name", count: 10)
        let n = Plan.fromChain(long)
        #expect(n.count <= 60)
        #expect(n.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
        // Names that sanitize alike stay distinct.
        #expect(Plan.fromChain("a.b") != Plan.fromChain("a_b"))
        #expect(Plan.fromChain("net") == "n-net-\(Plan.hash8("net"))-from")
        #expect(Plan.addrSet("net", .v6).hasSuffix("-a6"))
    }

    @Test func attachmentIdentityRoundTrips() {
        let a = AttachmentID(network: "my-net", containerID: "abc.123", ifname: "eth1")
        #expect(a.description == "my-net/abc.123/eth1")
        #expect(AttachmentID(comment: a.description) == a)
        #expect(AttachmentID(comment: "x/y") == nil)
    }
}

@Suite struct Planning {
    func text(_ ops: [Operation]) -> [String] { ops.map(\.description) }

    @Test func baseIsDispatchOnly() {
        let rules = text(Plan.baseRules())
        #expect(rules == [
            "add rule inet swiftcni forward ct state established,related accept",
            "add rule inet swiftcni forward iifname vmap @from",
            "add rule inet swiftcni forward oifname vmap @to",
            "add rule inet swiftcni postrouting iifname vmap @masq",
            "add rule inet swiftcni isolated-in meta nfproto ipv4 iifname @isolated4 drop",
            "add rule inet swiftcni isolated-in meta nfproto ipv6 iifname @isolated6 drop",
            "add rule inet swiftcni isolated-out meta nfproto ipv4 oifname @isolated4 drop",
            "add rule inet swiftcni isolated-out meta nfproto ipv6 oifname @isolated6 drop",
            "add rule bridge swiftcni forward meta protocol arp accept",
            "add rule bridge swiftcni forward ip saddr . ip daddr . meta l4proto . th dport @links accept",
            "add rule bridge swiftcni forward ip daddr . ip saddr . meta l4proto . th sport @links accept",
            "add rule bridge swiftcni forward iifname @icc_off drop",
            "add rule inet swiftcni prerouting fib daddr type local jump portmap",
            "add rule inet swiftcni output fib daddr type local jump portmap",
            "add rule inet swiftcni portmap dnat ip to ip daddr . meta l4proto . th dport map @pm4",
            "add rule inet swiftcni portmap dnat ip to meta l4proto . th dport map @pm4any",
            "add rule inet swiftcni portmap dnat ip6 to ip6 daddr . meta l4proto . th dport map @pm6",
            "add rule inet swiftcni portmap dnat ip6 to meta l4proto . th dport map @pm6any",
            "add rule inet swiftcni postrouting ct status dnat oifname vmap @hairpin",
            "add rule inet swiftcni postrouting ct status dnat oifname @localnet ip saddr 127.0.0.0/8 masquerade",
            "add rule inet swiftcni postrouting ct status dnat oifname @masqall masquerade",
        ])
        let base = text(Plan.base())
        #expect(base.contains("add chain inet swiftcni forward { type filter hook forward priority -10; policy accept; }"))
        #expect(base.contains("add chain inet swiftcni postrouting { type nat hook postrouting priority 100; policy accept; }"))
        #expect(base.contains("add map inet swiftcni from { type ifname : verdict; }"))
        #expect(base.contains("add chain bridge swiftcni forward { type filter hook forward priority -10; policy accept; }"))
    }

    @Test func defaultNetworkIsIsolatedAndRouted() {
        let p = NetworkPolicy(network: "a", bridge: "br-a")
        let rules = Plan.networkRules(p).map { "\($0.chain.hasSuffix("from") ? "from" : $0.chain.hasSuffix("to") ? "to" : "masq"): \($0)" }
        #expect(rules == [
            "from: oifname @routed4 ip daddr . meta l4proto . th dport @open4 return",
            "from: oifname @routed6 ip6 daddr . meta l4proto . th dport @open6 return",
            "from: oifname != \"br-a\" oifname @bridges ct status != dnat drop",
            "to: iifname \"br-a\" return",
            "to: ct status dnat return",
            "to: iifname @bridges drop",
        ])
    }

    @Test func masqueradingNetwork() {
        let p = NetworkPolicy(network: "a", bridge: "br-a", ipMasq: true)
        let rules = Plan.networkRules(p).map(\.description)
        // Unsolicited traffic from outside is dropped behind NAT; multicast is not masqueraded.
        #expect(rules.contains("drop"))
        #expect(rules.contains("ip daddr 224.0.0.0/4 return"))
        #expect(rules.contains("ip6 daddr ff00::/8 return"))
        #expect(rules.contains("ip saddr @\(Plan.addrSet("a", .v4)) masquerade"))
        #expect(rules.contains("ip6 saddr @\(Plan.addrSet("a", .v6)) masquerade"))
        let ops = text(Plan.network(p, fresh: true))
        #expect(ops.contains("add element inet swiftcni masq { \"br-a\" : jump \(Plan.masqChain("a")) comment \"a\" }"))
        #expect(!ops.contains { $0.hasPrefix("flush") || $0.hasPrefix("destroy") })
    }

    @Test func internalNetworkHasNoWayOut() {
        let p = NetworkPolicy(network: "i", bridge: "br-i", ipMasq: true, isInternal: true)
        let rules = Plan.networkRules(p).map(\.description)
        #expect(rules == ["oifname != \"br-i\" drop", "iifname \"br-i\" return", "drop"])
        // No masquerading for an internal network, even if asked.
        #expect(!text(Plan.network(p, fresh: true)).contains { $0.contains("masq {") && $0.hasPrefix("add element") })
    }

    @Test func rebuildFlushesAndRecordsThePolicy() {
        let p = NetworkPolicy(network: "a", bridge: "br-a")
        let ops = Plan.network(p)
        let t = text(ops)
        #expect(t.contains("flush chain inet swiftcni \(Plan.fromChain("a"))"))
        #expect(t.contains("destroy element inet swiftcni masq { \"br-a\" }"))
        guard case .addRule(_, let first)? = ops.first(where: { if case .addRule = $0 { return true }; return false }) else {
            Issue.record("no rule")
            return
        }
        #expect(first.comment == Plan.fingerprint(p))
        #expect(Plan.fingerprint(p) != Plan.fingerprint(NetworkPolicy(network: "a", bridge: "br-a", icc: false)))
    }

    @Test func attachmentElementsAreCommentedWithTheirOwner() {
        let a = AttachmentID(network: "a", containerID: "c1", ifname: "eth0")
        let ops = text(Plan.attach(a, addresses: [IPAddress("10.0.0.2")!, IPAddress("fd00::2")!], iccOffPort: "veth1234"))
        #expect(ops == [
            "add element inet swiftcni \(Plan.addrSet("a", .v4)) { 10.0.0.2 comment \"a/c1/eth0\" }",
            "add element inet swiftcni \(Plan.addrSet("a", .v6)) { fd00::2 comment \"a/c1/eth0\" }",
            "add element bridge swiftcni icc_off { \"veth1234\" comment \"a/c1/eth0\" }",
        ])
        #expect(Plan.attach(a, addresses: [IPAddress("10.0.0.2")!]).count == 1)
    }

    /// Docker's gateway modes, per family: what enters from outside, what is masqueraded.
    @Test func gatewayModes() {
        func rules(_ p: NetworkPolicy) -> [String] {
            Plan.networkRules(p).map { "\($0.chain.hasSuffix("from") ? "from" : $0.chain.hasSuffix("to") ? "to" : "masq"): \($0)" }
        }
        let to = ["to: iifname \"br-a\" return", "to: ct status dnat return"]
        let masqHead = ["masq: oifname \"br-a\" return", "masq: ip daddr 224.0.0.0/4 return", "masq: ip6 daddr ff00::/8 return"]
        let from = ["from: oifname @routed4 ip daddr . meta l4proto . th dport @open4 return",
                    "from: oifname @routed6 ip6 daddr . meta l4proto . th dport @open6 return",
                    "from: oifname != \"br-a\" oifname @bridges ct status != dnat drop"]
        let m4 = "masq: ip saddr @\(Plan.addrSet("a", .v4)) masquerade", m6 = "masq: ip6 saddr @\(Plan.addrSet("a", .v6)) masquerade"
        // nat both ways is what ipMasq has always meant.
        let nat = NetworkPolicy(network: "a", bridge: "br-a", ipMasq: true, gatewayModeV4: .nat, gatewayModeV6: .nat)
        #expect(rules(nat) == rules(NetworkPolicy(network: "a", bridge: "br-a", ipMasq: true)))
        #expect(rules(nat) == from + to + ["to: iifname @bridges drop", "to: drop"] + masqHead + [m4, m6])
        // nat-unprotected: masqueraded, nothing filtered from outside.
        let unprot = NetworkPolicy(network: "a", bridge: "br-a", ipMasq: true, gatewayModeV4: .natUnprotected, gatewayModeV6: .natUnprotected)
        #expect(rules(unprot) == from + to + ["to: iifname @bridges drop"] + masqHead + [m4, m6])
        // routed IPv4, nat IPv6: v4 not masqueraded, its published container ports open (also
        // from other networks), the rest dropped.
        let mixed = NetworkPolicy(network: "a", bridge: "br-a", ipMasq: true, gatewayModeV4: .routed, gatewayModeV6: .nat)
        #expect(rules(mixed) == from + to + ["to: ip daddr . meta l4proto . th dport @open4 return", "to: iifname @bridges drop", "to: drop"]
            + masqHead + [m6])
        // nat-unprotected IPv4 only filters IPv6.
        let half = NetworkPolicy(network: "a", bridge: "br-a", ipMasq: true, gatewayModeV4: .natUnprotected)
        #expect(rules(half) == from + to + ["to: iifname @bridges drop", "to: meta nfproto ipv6 drop"] + masqHead + [m4, m6])
        // routed both: no masquerade chain at all.
        let routed = NetworkPolicy(network: "a", bridge: "br-a", ipMasq: true, gatewayModeV4: .routed, gatewayModeV6: .routed)
        #expect(!rules(routed).contains { $0.hasPrefix("masq") })
        #expect(!Plan.network(routed).map(\.description).contains { $0.hasPrefix("add element inet swiftcni masq ") })
        // isolated (internal): the bridge joins the isolated sets, which the input and output hooks drop.
        let iso = NetworkPolicy(network: "a", bridge: "br-a", isInternal: true, gatewayModeV4: .isolated, gatewayModeV6: .isolated)
        let ops = Plan.network(iso, fresh: true).map(\.description)
        #expect(ops.contains("add element inet swiftcni isolated4 { \"br-a\" comment \"a\" }"))
        #expect(ops.contains("add element inet swiftcni isolated6 { \"br-a\" comment \"a\" }"))
        #expect(Plan.network(mixed, fresh: true).map(\.description).filter { $0.hasPrefix("add element") && $0.contains("routed") } == [
            "add element inet swiftcni routed4 { \"br-a\" comment \"a\" }"])
        #expect(rules(iso) == ["from: oifname != \"br-a\" drop", "to: iifname \"br-a\" return", "to: drop"])
        // A network that stops being isolated leaves the sets.
        let notIso = Plan.network(NetworkPolicy(network: "a", bridge: "br-a", isInternal: true)).map(\.description)
        #expect(notIso.contains("destroy element inet swiftcni isolated4 { \"br-a\" }"))
        // The fingerprint names the modes, and only when there are some (older ones stay valid).
        #expect(Plan.fingerprint(mixed).hasSuffix(" gw4=routed gw6=nat"))
        #expect(!Plan.fingerprint(NetworkPolicy(network: "a", bridge: "br-a")).contains("gw"))
        #expect(Plan.fingerprintFields(Plan.fingerprint(mixed))?["gw4"] == "routed")
        #expect(Plan.fingerprintFields(Plan.fingerprint(iso))?["internal"] == "1")
        #expect(Plan.fingerprintFields("something else") == nil)
        // Tables made before the modes get what they lack, nothing else.
        #expect(Plan.gatewayModesUpgrade().map(\.description) == [
            "add set inet swiftcni open4 { type ipv4_addr . inet_proto . inet_service; }",
            "add set inet swiftcni open6 { type ipv6_addr . inet_proto . inet_service; }",
            "add set inet swiftcni routed4 { type ifname; }",
            "add set inet swiftcni routed6 { type ifname; }",
            "add set inet swiftcni isolated4 { type ifname; }",
            "add set inet swiftcni isolated6 { type ifname; }",
            "add chain inet swiftcni isolated-in { type filter hook input priority -10; policy accept; }",
            "add chain inet swiftcni isolated-out { type filter hook output priority -10; policy accept; }",
            "add rule inet swiftcni isolated-in meta nfproto ipv4 iifname @isolated4 drop",
            "add rule inet swiftcni isolated-in meta nfproto ipv6 iifname @isolated6 drop",
            "add rule inet swiftcni isolated-out meta nfproto ipv4 oifname @isolated4 drop",
            "add rule inet swiftcni isolated-out meta nfproto ipv6 oifname @isolated6 drop",
        ])
    }

    @Test func teardown() {
        let t = text(Plan.teardownNetwork(network: "a", bridge: "br-a"))
        #expect(t.contains("destroy element inet swiftcni from { \"br-a\" }"))
        #expect(t.contains("destroy chain inet swiftcni \(Plan.fromChain("a"))"))
        #expect(t.contains("destroy set inet swiftcni \(Plan.addrSet("a", .v4))"))
        // Map entries go before the chains they jump to.
        #expect(t.firstIndex { $0.hasPrefix("destroy element inet swiftcni from") }! < t.firstIndex { $0.hasPrefix("destroy chain") }!)
        #expect(text(Plan.teardownAll()) == ["destroy table inet swiftcni", "destroy table bridge swiftcni"])
    }

    @Test func publishedPorts() {
        let a = AttachmentID(network: "w", containerID: "c1", ifname: "eth0")
        let ports = [
            PublishedPort(hostIP: nil, family: .v4, hostPort: 8080, proto: .tcp, container: IPAddress("10.0.0.2")!, containerPort: 80),
            PublishedPort(hostIP: IPAddress("192.0.2.1"), family: .v4, hostPort: 53, proto: .udp, container: IPAddress("10.0.0.2")!, containerPort: 53),
            PublishedPort(hostIP: nil, family: .v6, hostPort: 8080, proto: .sctp, container: IPAddress("fd00::2")!, containerPort: 80),
        ]
        #expect(text(Plan.publish(ports, a, mapNetwork: nil)) == [
            "add element inet swiftcni pm4any { tcp . 8080 comment \"w/c1/eth0\" }",
            "add element inet swiftcni pm4 { 192.0.2.1 . udp . 53 comment \"w/c1/eth0\" }",
            "add element inet swiftcni pm6any { sctp . 8080 comment \"w/c1/eth0\" }",
            "add element inet swiftcni open4 { 10.0.0.2 . tcp . 80 comment \"w/c1/eth0\", 10.0.0.2 . udp . 53 comment \"w/c1/eth0\" }",
            "add element inet swiftcni open6 { fd00::2 . sctp . 80 comment \"w/c1/eth0\" }",
        ])
        // Routed families use no host port: only the container port is opened.
        #expect(text(Plan.publish(ports, a, mapNetwork: nil, routed: [.v6])) == [
            "add element inet swiftcni pm4any { tcp . 8080 comment \"w/c1/eth0\" }",
            "add element inet swiftcni pm4 { 192.0.2.1 . udp . 53 comment \"w/c1/eth0\" }",
            "add element inet swiftcni open4 { 10.0.0.2 . tcp . 80 comment \"w/c1/eth0\", 10.0.0.2 . udp . 53 comment \"w/c1/eth0\" }",
            "add element inet swiftcni open6 { fd00::2 . sctp . 80 comment \"w/c1/eth0\" }",
        ])
        // Two host ports to one container port open it once.
        var twice = ports[0]
        twice.hostPort = 8081
        #expect(text(Plan.publish([ports[0], twice], a, mapNetwork: nil, routed: [.v4])) == [
            "add element inet swiftcni open4 { 10.0.0.2 . tcp . 80 comment \"w/c1/eth0\" }",
        ])
        #expect(Element.addressPort(IPAddress("10.0.0.2")!, proto: 6, port: 80).key == [10, 0, 0, 2, 6, 0, 0, 0, 0, 80, 0, 0])
        #expect(ports[0].key == [6, 0, 0, 0, 0x1F, 0x90, 0, 0])
        #expect(ports[0].data == [10, 0, 0, 2, 0, 80, 0, 0])
        #expect(ports[1].key.count == 12)
        #expect(ports[2].data.count == 20)
        #expect(ports[0].binding == "tcp 0.0.0.0:8080")
        #expect(ports[2].binding == "sctp [::]:8080")
        #expect(ports[1].map(network: "w") == Plan.name("w", "pm4"))
        // Conditions make a network's own maps, matched before the shared ones.
        let p = PortmapPolicy(network: "w", bridge: "br", conditions4: [.saddrPrefix(.neq, IPNetwork("192.0.2.2/32")!)])
        let cond = text(Plan.portmapConditional(p))
        #expect(cond.contains("insert rule inet swiftcni portmap ip saddr != 192.0.2.2/32 dnat ip to meta l4proto . th dport map @\(Plan.name("w", "pm4any")) comment \"portmap:w\""))
    }

    @Test func iptablesIntegrationIsNarrow() {
        let r = Plan.iptablesRules(NetworkPolicy(network: "a", bridge: "br-a")).map(\.description)
        #expect(r == ["iifname \"br-a\" accept comment \"swiftcni:a\"", "oifname \"br-a\" accept comment \"swiftcni:a\""])
    }

    @Test func setKeys() {
        let concat = SetSpec(Plan.table, "x", key: [.ipv4, .inetProto, .inetService])
        #expect(concat.keyLength == 12)
        #expect(concat.keyTypeID == (7 << 12) | (12 << 6) | 13)
        #expect(ifnameBytes("eth0") == Array("eth0".utf8) + [UInt8](repeating: 0, count: 12))
    }
}

@Suite struct LegacyLinkPairs {
    /// An element of the links set: two addresses, the protocol and the port, each part padded
    /// to 4 bytes, as the set's concatenated key.
    @Test func pairElementLayout() {
        let e = Element.pair(IPAddress("172.17.0.3")!, IPAddress("172.17.0.2")!, proto: 6, port: 6379, comment: "x")
        #expect(e.key == [172, 17, 0, 3, 172, 17, 0, 2, 6, 0, 0, 0, 0x18, 0xEB, 0, 0])
        #expect(e.description == "172.17.0.3 . 172.17.0.2 . tcp . 6379 comment \"x\"")
        #expect(UInt32(e.key.count) == SetSpec(Plan.bridgeTable, "links", key: [.ipv4, .ipv4, .inetProto, .inetService]).keyLength)
    }
}
