import Foundation
import Testing
@testable import Base
@testable import CNI

/// A lab with an outside host and networks of bridge + portmap.
struct Published {
    let lab: Lab
    let out: String

    init(_ lab: Lab) throws {
        self.lab = lab
        out = try lab.outside()
    }

    /// A bridge + portmap conflist; `portmap` is extra portmap keys.
    func network(_ name: String, subnet: String = "10.190.0.0/24", v6: String? = nil, bridgeExtra: String = #","ipMasq":true"#,
                 portmap: String = "") throws {
        let ranges = (["[{\"subnet\":\"\(subnet)\"}]"] + (v6.map { ["[{\"subnet\":\"\($0)\"}]"] } ?? [])).joined(separator: ",")
        try lab.writeConflist(name, #"""
        {"cniVersion":"1.1.0","name":"\#(name)","plugins":[
          {"type":"bridge","bridge":"\#(lab.bridgeName(String(name.prefix(2))))","isGateway":true,"isDefaultGateway":true\#(bridgeExtra),
           "ipam":{"type":"host-local","dataDir":"\#(lab.dataDir)","ranges":[\#(ranges)]}},
          {"type":"portmap","capabilities":{"portMappings":true}\#(portmap)}]}
        """#)
    }

    static func maps(_ m: [(Int, Int, String, String?)]) -> String {
        let items = m.map { h, c, p, ip in
            #"{"hostPort":\#(h),"containerPort":\#(c),"protocol":"\#(p)"\#(ip.map { #","hostIP":"\#($0)""# } ?? "")}"#
        }
        return #"{"portMappings":[\#(items.joined(separator: ","))]}"#
    }

    /// ADD via cnictl; returns the container namespace and its result.
    func run(_ network: String, _ name: String, _ m: [(Int, Int, String, String?)] = []) throws -> (String, CNIResult) {
        let c = try lab.container(name)
        var args = ["add", network, c]
        if !m.isEmpty { args += ["--cap", Published.maps(m)] }
        let r = lab.cnictl(args)
        #expect(r.status == 0, "\(r.err)")
        let res = try CNIResult(json: JSON.parse(r.out))
        lab.exec(c, "\(ipCommand) link set lo up")
        return (c, res)
    }
}

@Suite(.enabled(if: isRoot, "needs root (network namespaces)"))
struct PublishedPorts {
    @Test func everyPathTCPAndUDP() throws {
        try withLab { lab in
            let w = try Published(lab)
            try w.network("web")
            try w.network("other", subnet: "10.191.0.0/24")
            let (c1, r1) = try w.run("web", "c1", [(8080, 80, "tcp", nil), (5353, 53, "udp", nil)])
            let (c2, _) = try w.run("web", "c2")
            let (o1, _) = try w.run("other", "o1")
            let ip1 = r1.ips[0].address.address.description
            // From outside, to the host's address: the client's own address arrives.
            #expect(lab.peer("tcp", from: w.out, to: "192.0.2.1", port: 8080, serverNS: c1, serverPort: 80) == "192.0.2.2")
            #expect(lab.peer("udp", from: w.out, to: "192.0.2.1", port: 5353, serverNS: c1, serverPort: 53) == "192.0.2.2")
            // From the host itself: to its own address, and to 127.0.0.1 (bound to all addresses).
            #expect(lab.peer("tcp", from: lab.host, to: "192.0.2.1", port: 8080, serverNS: c1, serverPort: 80) != nil)
            #expect(lab.peer("tcp", from: lab.host, to: "127.0.0.1", port: 8080, serverNS: c1, serverPort: 80) == "10.190.0.1")
            #expect(lab.peer("udp", from: lab.host, to: "127.0.0.1", port: 5353, serverNS: c1, serverPort: 53) == "10.190.0.1")
            // Hairpin: the container through the host's address to itself; and a neighbour.
            #expect(lab.peer("tcp", from: c1, to: "192.0.2.1", port: 8080, serverNS: c1, serverPort: 80) == "10.190.0.1")
            #expect(lab.peer("tcp", from: c2, to: "192.0.2.1", port: 8080, serverNS: c1, serverPort: 80) == "10.190.0.1")
            // From a container on another network (isolated otherwise).
            #expect(lab.peer("tcp", from: o1, to: "192.0.2.1", port: 8080, serverNS: c1, serverPort: 80) != nil)
            #expect(lab.peer("tcp", from: o1, to: ip1, port: 80, serverNS: c1) == nil)
            // An unpublished port does not forward.
            #expect(lab.peer("tcp", from: w.out, to: "192.0.2.1", port: 8081, serverNS: c1, serverPort: 81) == nil)
        }
    }

    @Test func hostBindingIPv4Present() throws {
        try withLab { lab in
            let w = try Published(lab)
            lab.exec(lab.host, "\(ipCommand) addr add 192.0.2.100/24 dev \(String(("o" + lab.id.replacingOccurrences(of: "sct", with: "")).prefix(15)))")
            try w.network("bound", portmap: #","hostBindingIPv4":"192.0.2.1""#)
            let (c1, _) = try w.run("bound", "c1", [(8080, 80, "tcp", nil)])
            #expect(lab.peer("tcp", from: w.out, to: "192.0.2.1", port: 8080, serverNS: c1, serverPort: 80) == "192.0.2.2")
            // Not on the host's other addresses, and not on 127.0.0.1.
            #expect(lab.peer("tcp", from: w.out, to: "192.0.2.100", port: 8080, serverNS: c1, serverPort: 80) == nil)
            #expect(lab.peer("tcp", from: lab.host, to: "127.0.0.1", port: 8080, serverNS: c1, serverPort: 80) == nil)
            #expect(lab.ruleset(lab.host).contains("192.0.2.1 . tcp . 8080"))
        }
    }

    @Test func hostBindingIPv4MissingFailsAndCreatesNothing() throws {
        try withLab { lab in
            let w = try Published(lab)
            // As in Docker's walkthrough: the network is valid, starting a container with -p fails.
            try w.network("missing", portmap: #","hostBindingIPv4":"172.233.0.1""#)
            let before = lab.ruleset(lab.host)
            let c = try lab.container("c1")
            let r = lab.cnictl(["add", "missing", c, "--cap", Published.maps([(8081, 80, "tcp", nil)])])
            #expect(r.status == 1)
            #expect(r.err == "cnictl: plugin type=\"portmap\" failed (add): cannot assign requested address 172.233.0.1 (hostBindingIPv4): no host interface has it [code 106]\n")
            #expect(lab.ruleset(lab.host) == before)
            #expect(lab.links(lab.host).filter { $0 != "lo" && !$0.hasPrefix("o") }.isEmpty)
            #expect(lab.links(c) == ["lo"])
            #expect(lab.allocations("missing").isEmpty)
            // Without ports the same network works.
            #expect(lab.cnictl(["add", "missing", c]).status == 0)
        }
    }

    @Test func withoutBindingAndHostIPEveryAddressAnswers() throws {
        try withLab { lab in
            let w = try Published(lab)
            lab.exec(lab.host, "\(ipCommand) addr add 192.0.2.100/24 dev \(String(("o" + lab.id.replacingOccurrences(of: "sct", with: "")).prefix(15)))")
            try w.network("all")
            let (c1, _) = try w.run("all", "c1", [(8080, 80, "tcp", nil), (9090, 90, "tcp", "192.0.2.100")])
            #expect(lab.peer("tcp", from: w.out, to: "192.0.2.100", port: 8080, serverNS: c1, serverPort: 80) != nil)
            #expect(lab.peer("tcp", from: w.out, to: "192.0.2.1", port: 8080, serverNS: c1, serverPort: 80) != nil)
            // An explicit hostIP binds there only.
            #expect(lab.peer("tcp", from: w.out, to: "192.0.2.100", port: 9090, serverNS: c1, serverPort: 90) != nil)
            #expect(lab.peer("tcp", from: w.out, to: "192.0.2.1", port: 9090, serverNS: c1, serverPort: 90) == nil)
        }
    }

    @Test func conflictsNameTheHolder() throws {
        try withLab { lab in
            let w = try Published(lab)
            try w.network("cf")
            let (_, _) = try w.run("cf", "c1", [(8080, 80, "tcp", nil), (7070, 70, "tcp", "192.0.2.1")])
            let before = lab.ruleset(lab.host)
            let c2 = try lab.container("c2")
            let holder = "cnictl-" + stableHash(lab.path("\(lab.id)-c1"))
            for (m, binding, held) in [([(8080, 80, "tcp", String?.none)], "tcp 0.0.0.0:8080", "tcp 0.0.0.0:8080"),
                                       ([(8080, 80, "tcp", "192.0.2.1")], "tcp 192.0.2.1:8080", "tcp 0.0.0.0:8080"),
                                       ([(7070, 70, "tcp", nil)], "tcp 0.0.0.0:7070", "tcp 192.0.2.1:7070")] {
                let r = lab.cnictl(["add", "cf", c2, "--cap", Published.maps(m)])
                #expect(r.status == 1)
                #expect(r.err == "cnictl: plugin type=\"portmap\" failed (add): port \(binding) is already published by container \(holder) (eth0) of network cf on \(held) [code 107]\n")
                #expect(lab.ruleset(lab.host) == before)
            }
            // Another protocol is another port; once the holder leaves, the port is free.
            #expect(lab.cnictl(["add", "cf", c2, "--cap", Published.maps([(8080, 80, "udp", nil)])]).status == 0)
            #expect(lab.cnictl(["del", "cf", "\(lab.id)-c1"]).status == 0)
            let c3 = try lab.container("c3")
            #expect(lab.cnictl(["add", "cf", c3, "--cap", Published.maps([(8080, 80, "tcp", nil)])]).status == 0)
        }
    }

    @Test func ipv6() throws {
        try withLab { lab in
            let w = try Published(lab)
            try w.network("six", v6: "fd90::/64")
            let (c1, _) = try w.run("six", "c1", [(8080, 80, "tcp", nil), (8443, 443, "tcp", "2001:db8:99::1")])
            // IPv6 neighbours settle in the first second (DAD of the link-local addresses).
            for _ in 0..<30 where !lab.ping(c1, "2001:db8:99::2") { usleep(100_000) }
            #expect(lab.peer("tcp", from: w.out, to: "2001:db8:99::1", port: 8443, serverNS: c1, serverPort: 443) == "2001:db8:99::2")
            #expect(lab.peer("tcp", from: w.out, to: "2001:db8:99::1", port: 8080, serverNS: c1, serverPort: 80) == "2001:db8:99::2")
            // The IPv6-only mapping is not published on IPv4.
            #expect(lab.peer("tcp", from: w.out, to: "192.0.2.1", port: 8443, serverNS: c1, serverPort: 443) == nil)
            #expect(lab.peer("tcp", from: w.out, to: "192.0.2.1", port: 8080, serverNS: c1, serverPort: 80) == "192.0.2.2")
        }
    }

    @Test func delWithoutRuntimeConfigAndRulesetRestored() throws {
        try withLab { lab in
            let w = try Published(lab)
            let before = lab.ruleset(lab.host)
            try w.network("dl")
            let (c1, r1) = try w.run("dl", "c1", [(8080, 80, "tcp", nil), (5353, 53, "udp", nil)])
            let (c2, _) = try w.run("dl", "c2", [(8081, 81, "tcp", nil)])
            // DEL of portmap as a runtime that forgets the capability arguments would send it.
            let pm = #"{"cniVersion":"1.1.0","name":"dl","type":"portmap","capabilities":{"portMappings":true}}"#
            let id1 = "cnictl-" + stableHash(lab.path(c1))
            let d = lab.plugin("portmap", "DEL", config: withPrevResult(pm, r1.json(version: "1.1.0").serialized()), containerID: id1, netns: c1)
            #expect(d.status == 0, "\(d.stdout)")
            let rs = lab.ruleset(lab.host)
            #expect(!rs.contains("8080") && !rs.contains("5353"))
            #expect(rs.contains("8081"))
            #expect(lab.peer("tcp", from: w.out, to: "192.0.2.1", port: 8080, serverNS: c1, serverPort: 80) == nil)
            for c in [c1, c2] { #expect(lab.cnictl(["del", "dl", c]).status == 0) }
            #expect(lab.ruleset(lab.host) == before)
        }
    }

    /// The records under the run dir lost (a reboot, or a cleanup process started with another
    /// environment, as Podman's conmon exit command is): DEL finds the elements by their owner
    /// comment and removes them, map values included.
    @Test func delWithoutRecordFindsElementsByOwner() throws {
        try withLab { lab in
            let w = try Published(lab)
            let before = lab.ruleset(lab.host)
            try w.network("dr")
            let (c1, _) = try w.run("dr", "c1", [(8080, 80, "tcp", nil), (5353, 53, "udp", "192.0.2.1")])
            let (c2, _) = try w.run("dr", "c2", [(8081, 81, "tcp", nil)])
            let id1 = "cnictl-" + stableHash(lab.path(c1))
            let record = lab.runDir + "/portmap/dr/\(id1):eth0"
            #expect(FileManager.default.fileExists(atPath: record))
            try FileManager.default.removeItem(atPath: record)
            #expect(lab.cnictl(["del", "dr", c1]).status == 0)
            let rs = lab.ruleset(lab.host)
            #expect(!rs.contains("8080") && !rs.contains("5353"), "\(rs)")
            #expect(rs.contains("8081"))
            #expect(lab.cnictl(["del", "dr", c2]).status == 0)
            #expect(lab.ruleset(lab.host) == before)
        }
    }

    @Test func checkAndGC() throws {
        try withLab { lab in
            let w = try Published(lab)
            try w.network("ck")
            let (c1, _) = try w.run("ck", "c1", [(8080, 80, "tcp", nil)])
            let (_, _) = try w.run("ck", "c2", [(8081, 81, "tcp", nil)])
            #expect(lab.cnictl(["check", "ck", c1]).status == 0)
            lab.exec(lab.host, "nft delete element inet swiftcni pm4any '{ tcp . 8080 }'")
            let chk = lab.cnictl(["check", "ck", c1])
            #expect(chk.status == 1)
            #expect(chk.err.contains("portmap: tcp 0.0.0.0:8080 → 10.190.0.2:80 is not published"), "\(chk.err)")
            // GC with only c1 valid drops c2's port.
            let id1 = "cnictl-" + stableHash(lab.path(c1))
            #expect(lab.cnictl(["gc", "ck", "--valid", "\(id1)/eth0"]).status == 0)
            #expect(!lab.ruleset(lab.host).contains("8081"))
        }
    }

    @Test func staleUDPFlowIsFlushed() throws {
        try withLab { lab in
            let w = try Published(lab)
            try w.network("ud")
            // A datagram to the host port before it is published leaves a conntrack entry.
            _ = lab.peer("udp", from: w.out, to: "192.0.2.1", port: 6000, serverNS: lab.host, serverPort: 6001, sourcePort: 40000)
            let (c1, _) = try w.run("ud", "c1", [(6000, 60, "udp", nil)])
            // The same flow (same source port) now reaches the container.
            #expect(lab.peer("udp", from: w.out, to: "192.0.2.1", port: 6000, serverNS: c1, serverPort: 60, sourcePort: 40000) == "192.0.2.2")
        }
    }

    @Test func conditions() throws {
        try withLab { lab in
            let w = try Published(lab)
            try w.network("cond", portmap: #","conditionsV4":["!","-s","192.0.2.2"]"#)
            let (c1, _) = try w.run("cond", "c1", [(8080, 80, "tcp", nil)])
            #expect(lab.peer("tcp", from: w.out, to: "192.0.2.1", port: 8080, serverNS: c1, serverPort: 80) == nil)
            #expect(lab.peer("tcp", from: lab.host, to: "192.0.2.1", port: 8080, serverNS: c1, serverPort: 80) != nil)
            #expect(lab.cnictl(["del", "cond", c1]).status == 0)
            #expect(!lab.ruleset(lab.host).contains("portmap:cond"))
        }
    }

    @Test(arguments: [
        (#","markMasqBit":13"#, [(80, 80, "tcp", String?.none)], 2, "\"markMasqBit\": iptables-only"),
        (#","externalSetMarkChain":"KUBE-MARK-MASQ""#, [(80, 80, "tcp", nil)], 2, "\"externalSetMarkChain\" \"KUBE-MARK-MASQ\": iptables-only"),
        (#","hostBindingIPv4":"fd00::1""#, [(80, 80, "tcp", nil)], 7, "\"hostBindingIPv4\" \"fd00::1\": not an IPv4 address"),
        (#","conditionsV4":["-m","comment"]"#, [(80, 80, "tcp", nil)], 2, "\"conditionsV4\": \"-m\" is not a supported condition"),
        ("", [(0, 80, "tcp", nil)], 7, "\"runtimeConfig.portMappings[0].hostPort\" 0: must be between 1 and 65535"),
        ("", [(80, 70000, "tcp", nil)], 7, "\"runtimeConfig.portMappings[0].containerPort\" 70000: must be between 1 and 65535"),
        ("", [(80, 80, "icmp", nil)], 7, "\"runtimeConfig.portMappings[0].protocol\" \"icmp\": must be tcp, udp or sctp"),
        ("", [(80, 80, "tcp", "1.2.3")], 7, "\"runtimeConfig.portMappings[0].hostIP\" \"1.2.3\": not an IP address"),
        ("", [(80, 80, "tcp", "192.0.2.77")], 106, "cannot assign requested address 192.0.2.77: no host interface has it"),
    ] as [(String, [(Int, Int, String, String?)], Int, String)])
    func badInput(_ extra: String, _ m: [(Int, Int, String, String?)], _ code: Int, _ msg: String) throws {
        try withLab { lab in
            let w = try Published(lab)
            try w.network("bad", portmap: extra)
            let before = lab.ruleset(lab.host)
            let c = try lab.container("c")
            let r = lab.cnictl(["add", "bad", c, "--cap", Published.maps(m)])
            #expect(r.status == 1)
            #expect(r.err.contains(msg), "\(r.err)")
            #expect(r.err.hasSuffix("[code \(code)]\n"), "\(r.err)")
            #expect(lab.ruleset(lab.host) == before)
            #expect(lab.allocations("bad").isEmpty)
            #expect(lab.links(c) == ["lo"])
        }
    }

    @Test func needsPrevResult() throws {
        try withLab { lab in
            let c = try lab.container("c")
            let r = lab.plugin("portmap", "ADD", config: #"{"cniVersion":"1.0.0","name":"n","type":"portmap","runtimeConfig":{"portMappings":[{"hostPort":80,"containerPort":80}]}}"#,
                               containerID: "x", netns: c)
            #expect(r.error?.code == .invalidConfig)
            #expect(r.error?.msg.hasPrefix("portmap needs \"prevResult\"") == true)
            // No mappings: the previous result passes through.
            let prev = #"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]}"#
            let pass = lab.plugin("portmap", "ADD", config: withPrevResult(#"{"cniVersion":"1.0.0","name":"n","type":"portmap"}"#, prev), containerID: "x", netns: c)
            #expect(pass.result?.ips.first?.address.description == "10.0.0.2/24")
        }
    }
}
