import Foundation
import Testing
@testable import Base
@testable import CNI

/// A DNS upstream the test runs itself, in the lab's "outside" namespace (192.0.2.2:53, UDP
/// and TCP): the test-dns-stub helper, on the suite's own DNS codec (example.test →
/// 198.51.100.7; big.example.test → truncated over UDP, 198.51.100.8 over TCP; everything
/// else NXDOMAIN).
final class StubUpstream {
    let process = Process()
    let lab: Lab

    init(_ lab: Lab, outside: String) throws {
        self.lab = lab
        let ready = lab.root + "/stub.ready"
        process.executableURL = URL(fileURLWithPath: nsenterCommand)
        process.arguments = ["--net=" + lab.path(outside), buildDir + "/test-dns-stub", "192.0.2.2", ready]
        try process.run()
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: ready) { usleep(20000) }
        if !FileManager.default.fileExists(atPath: ready) { throw CLIFailure("the stub upstream did not start") }
    }

    deinit {
        // SIGKILL: children of the test runner may start with SIGTERM blocked.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// A lab with DNS-enabled networks (bridge + dns-alias) and helpers to query from containers.
struct Named {
    let lab: Lab

    func network(_ name: String, subnet: String, v6: String? = nil, domain: String? = "swiftcni.test",
                 isInternal: Bool = false, upstream: [String] = ["192.0.2.2"]) throws {
        let ranges = (["[{\"subnet\":\"\(subnet)\"}]"] + (v6.map { ["[{\"subnet\":\"\($0)\"}]"] } ?? [])).joined(separator: ",")
        let ups = upstream.map { "\"\($0)\"" }.joined(separator: ",")
        try lab.writeConflist(name, #"""
        {"cniVersion":"1.1.0","name":"\#(name)","plugins":[
          {"type":"bridge","bridge":"\#(lab.bridgeName(String(name.prefix(3))))","isGateway":true,"isDefaultGateway":true,"internal":\#(isInternal),
           "ipam":{"type":"host-local","dataDir":"\#(lab.dataDir)","ranges":[\#(ranges)]}},
          {"type":"dns-alias",\#(domain.map { "\"domainName\":\"\($0)\"," } ?? "")"upstream":[\#(ups)],
           "capabilities":{"aliases":true,"links":true}}]}
        """#)
    }

    /// ADD of container namespace `ns` (created if needed) named `name`.
    @discardableResult
    func run(_ network: String, _ ns: String, name: String?, aliases: [String] = [], links: [String] = [],
             ifname: String = "eth0") throws -> CNIResult {
        if !lab.namespaces.contains(ns) { try lab.addNamespace(ns) }
        var args = ["add", network, ns, "--ifname", ifname]
        if let name { args += ["--args", "K8S_POD_NAME=\(name)"] }
        let cap = #"{"aliases":[\#(aliases.map { "\"\($0)\"" }.joined(separator: ","))],"links":[\#(links.map { "\"\($0)\"" }.joined(separator: ","))]}"#
        args += ["--cap", cap]
        let r = lab.cnictl(args)
        guard r.status == 0 else { throw CLIFailure("cnictl add \(network) \(ns): \(r.err)") }
        return try CNIResult(json: JSON.parse(r.out))
    }

    func address(_ r: CNIResult, _ family: IPFamily = .v4) -> String {
        r.ips.first { $0.address.address.family == family }!.address.address.description
    }

    /// `dig` inside `ns` through its resolv.conf (as `ip netns exec` sets it up): the
    /// answer section's data, in order.
    func dig(_ ns: String, _ name: String, _ type: String = "A", tcp: Bool = false, server: String? = nil) -> [String] {
        let r = lab.exec(ns, "dig +short +time=2 +tries=1 \(tcp ? "+tcp " : "")\(server.map { "@\($0) " } ?? "")\(name) \(type)")
        return r.out.split(separator: "\n").map(String.init).filter { !$0.hasPrefix(";") }
    }

    /// The response code dig reports ("NOERROR", "NXDOMAIN", "REFUSED", …).
    func status(_ ns: String, _ name: String, _ type: String = "A", server: String? = nil) -> String {
        let r = lab.exec(ns, "dig +time=2 +tries=1 \(server.map { "@\($0) " } ?? "")\(name) \(type)")
        guard let line = r.out.split(separator: "\n").first(where: { $0.contains("status:") }),
              let s = line.split(separator: ",").first(where: { $0.contains("status:") }) else { return "no answer" }
        return s.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)
    }
}

@Suite(.enabled(if: isRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/dig"), "needs root and dig"))
struct EmbeddedDNS {
    @Test func namesOnOneNetworkOverUDPAndTCP() throws {
        try withLab { lab in
            let d = Named(lab: lab)
            try d.network("n1", subnet: "10.201.0.0/24")
            let c1 = lab.id + "-c1", c2 = lab.id + "-c2"
            let r1 = try d.run("n1", c1, name: "web")
            let r2 = try d.run("n1", c2, name: "db")
            // The nameserver came with the result and cnictl wrote the netns' resolv.conf.
            #expect(r1.dns.nameservers == ["10.201.0.1"])
            #expect(r1.dns.search == ["swiftcni.test"])
            let conf = try String(contentsOfFile: "/etc/netns/\(c2)/resolv.conf", encoding: .utf8)
            #expect(conf.contains("nameserver 10.201.0.1\n") && conf.contains("search swiftcni.test\n"))
            #expect(d.dig(c2, "web") == [d.address(r1)])
            #expect(d.dig(c2, "web.swiftcni.test") == [d.address(r1)])
            #expect(d.dig(c1, "db") == [d.address(r2)])
            #expect(d.dig(c1, "db", tcp: true) == [d.address(r2)])
            #expect(d.dig(c1, "WEB") == [d.address(r1)])
            // A container leaving stops being returned, and its resolv.conf goes.
            #expect(lab.cnictl(["del", "n1", c1]).status == 0)
            #expect(d.dig(c2, "web") == [])
            #expect(d.status(c2, "web.swiftcni.test") == "NXDOMAIN")
            #expect(!FileManager.default.fileExists(atPath: "/etc/netns/\(c1)"))
            #expect(lab.cnictl(["del", "n1", c2]).status == 0)
            // The server exits once it serves nothing.
            #expect(lab.dnsServerExited(within: 10))
            #expect(lab.dnsServerPID == nil)
        }
    }

    @Test func twoNetworksAndNothingAcross() throws {
        try withLab { lab in
            let d = Named(lab: lab)
            let out = try lab.outside()
            let stub = try StubUpstream(lab, outside: out)
            defer { _ = stub }
            try d.network("na", subnet: "10.202.0.0/24")
            try d.network("nb", subnet: "10.203.0.0/24")
            let multi = lab.id + "-m", a = lab.id + "-a", b = lab.id + "-b"
            let ma = try d.run("na", multi, name: "multi")
            let mb = try d.run("nb", multi, name: "multi", ifname: "eth1")
            try d.run("na", a, name: "alpha")
            let rb = try d.run("nb", b, name: "beta")
            // Each asker gets multi's address on the network it shares with it.
            #expect(d.dig(a, "multi") == [d.address(ma)])
            #expect(d.dig(b, "multi") == [d.address(mb)])
            // multi sees both networks' names.
            #expect(d.dig(multi, "beta") == [d.address(rb)])
            // alpha and beta share no network: no answer (the stub upstream says NXDOMAIN).
            #expect(d.dig(a, "beta") == [])
            #expect(d.status(a, "beta") == "NXDOMAIN")
            #expect(d.status(a, "beta.swiftcni.test") == "NXDOMAIN")
            // Forwarded names come from the stub, including over TCP after truncation.
            #expect(d.dig(a, "example.test") == ["198.51.100.7"])
            #expect(d.dig(a, "big.example.test") == ["198.51.100.8"])
            #expect(d.dig(a, "example.test", tcp: true) == ["198.51.100.7"])
        }
    }

    @Test func sharedAliasesRoundRobinAndLinks() throws {
        try withLab { lab in
            let d = Named(lab: lab)
            try d.network("nr", subnet: "10.204.0.0/24")
            let ctr = (1...4).map { "\(lab.id)-r\($0)" }
            var addrs: [String] = []
            // The linker declares its link before the target exists.
            try d.run("nr", ctr[0], name: "linker", links: ["later:buddy"])
            #expect(d.dig(ctr[0], "buddy") == [])
            for i in 1...3 { addrs.append(d.address(try d.run("nr", ctr[i], name: "s\(i)", aliases: ["pool"]))) }
            var orders = Set<[String]>()
            for _ in 0..<12 {
                let got = d.dig(ctr[0], "pool")
                #expect(got.sorted() == addrs.sorted())
                orders.insert(got)
            }
            #expect(orders.count > 1, "the order never changed: \(orders)")
            // The link target arrives: the alias resolves for the linker only.
            let later = lab.id + "-later"
            let rl = try d.run("nr", later, name: "later")
            #expect(d.dig(ctr[0], "buddy") == [d.address(rl)])
            #expect(d.dig(ctr[1], "buddy") == [])
            // The alias belongs to network nr: on a second network both are on, the linker
            // still gets the target's nr address, and that network's others get nothing.
            try d.network("ns", subnet: "10.205.0.0/24", upstream: [])
            try d.run("ns", ctr[0], name: "linker", ifname: "eth1")
            let ls = try d.run("ns", later, name: "later", ifname: "eth1")
            let other = lab.id + "-other"
            try d.run("ns", other, name: "other")
            #expect(d.dig(ctr[0], "buddy", server: "10.205.0.1") == [d.address(rl)])
            #expect(d.dig(ctr[0], "later", server: "10.205.0.1") == [d.address(ls)])
            #expect(d.dig(other, "buddy") == [])
        }
    }

    @Test func ptrAndAAAA() throws {
        try withLab { lab in
            let d = Named(lab: lab)
            try d.network("n6", subnet: "10.206.0.0/24", v6: "fd20:6::/64")
            let c1 = lab.id + "-c1", c2 = lab.id + "-c2"
            let r1 = try d.run("n6", c1, name: "web")
            try d.run("n6", c2, name: "client")
            #expect(d.dig(c2, "web", "AAAA") == [d.address(r1, .v6)])
            #expect(d.dig(c2, "-x \(d.address(r1))", "") == ["web.swiftcni.test."])
            #expect(d.dig(c2, "-x \(d.address(r1, .v6))", "") == ["web.swiftcni.test."])
            // Both nameservers (v4 and v6 gateways) serve.
            #expect(d.dig(c2, "web", server: "fd20:6::1") == [d.address(r1)])
        }
    }

    @Test func internalNetworksDoNotForward() throws {
        try withLab { lab in
            let d = Named(lab: lab)
            let out = try lab.outside()
            let stub = try StubUpstream(lab, outside: out)
            defer { _ = stub }
            try d.network("ni", subnet: "10.207.0.0/24", isInternal: true)
            let c1 = lab.id + "-c1", c2 = lab.id + "-c2"
            let r1 = try d.run("ni", c1, name: "web")
            try d.run("ni", c2, name: "db")
            #expect(d.dig(c2, "web") == [d.address(r1)])
            #expect(d.status(c2, "example.test") == "REFUSED")
        }
    }

    @Test func refusedFromOtherSources() throws {
        try withLab { lab in
            let d = Named(lab: lab)
            try d.network("nf", subnet: "10.208.0.0/24")
            try d.run("nf", lab.id + "-c1", name: "web")
            #expect(d.status(lab.host, "web", server: "10.208.0.1") == "REFUSED")
        }
    }

    @Test func malformedPacketsAndKillRestore() throws {
        try withLab { lab in
            let d = Named(lab: lab)
            try d.network("nm", subnet: "10.209.0.0/24")
            let c1 = lab.id + "-c1", c2 = lab.id + "-c2", c3 = lab.id + "-c3"
            let r1 = try d.run("nm", c1, name: "web")
            try d.run("nm", c2, name: "client")
            let pid = try #require(lab.dnsServerPID)
            // A corpus of malformed packets over UDP and TCP, then a real query.
            #expect(lab.exec(c2, "python3 \(helper("dns-corpus.py")) 10.209.0.1").out.hasPrefix("sent"))
            #expect(d.dig(c2, "web") == [d.address(r1)])
            #expect(lab.dnsServerPID == pid)
            // CHECK passes; kill -9 the server; CHECK brings it back with every record.
            #expect(lab.cnictl(["check", "nm", c1]).status == 0)
            kill(pid, SIGKILL)
            #expect(processGone(pid))
            #expect(lab.cnictl(["check", "nm", c2]).status == 0)
            #expect(lab.dnsServerPID != nil && lab.dnsServerPID != pid)
            #expect(d.dig(c2, "web") == [d.address(r1)])
            // Killed again: the next ADD restores every record too.
            let second = lab.dnsServerPID!
            kill(second, SIGKILL)
            #expect(processGone(second))
            try d.run("nm", c3, name: "third")
            #expect(d.dig(c3, "web") == [d.address(r1)])
            #expect(d.dig(c3, "client").count == 1)
            // CHECK fails when a record is gone.
            let key = "cnictl-" + stableHash(lab.path(c1)) + ":eth0"
            try FileManager.default.removeItem(atPath: lab.dnsRoot + "/networks/nm/" + key)
            let chk = lab.cnictl(["check", "nm", c1])
            #expect(chk.status == 1)
            #expect(chk.err.contains("no DNS record for \(key) in network nm [code 105]"), "\(chk.err)")
        }
    }

    @Test func gcDropsStaleRecords() throws {
        try withLab { lab in
            let d = Named(lab: lab)
            try d.network("ng", subnet: "10.210.0.0/24")
            let c1 = lab.id + "-c1", c2 = lab.id + "-c2"
            try d.run("ng", c1, name: "web")
            let r2 = try d.run("ng", c2, name: "keep")
            let id2 = "cnictl-" + stableHash(lab.path(c2))
            let dns = #"{"cniVersion":"1.1.0","name":"ng","type":"dns-alias","cni.dev/valid-attachments":[{"containerID":"\#(id2)","ifname":"eth0"}]}"#
            let g = lab.plugin("dns-alias", "GC", config: dns)
            #expect(g.status == 0, "\(g.stdout)")
            #expect(d.dig(c2, "web") == [])
            #expect(d.dig(c2, "keep") == [d.address(r2)])
            let st = lab.plugin("dns-alias", "STATUS", config: #"{"cniVersion":"1.1.0","name":"ng","type":"dns-alias"}"#)
            #expect(st.status == 0, "\(st.stdout)")
        }
    }

    @Test(arguments: [
        (#""aliases":7"#, "", 6, "\"runtimeConfig.aliases\": expected a list of names or a map of network name to list"),
        (#""aliases":["ok","bad name!"]"#, "", 7, "\"runtimeConfig.aliases[1]\" \"bad name!\": not a DNS name"),
        (#""links":["a:b:c"]"#, "", 7, "\"runtimeConfig.links[0]\" \"a:b:c\": expected \"container:alias\""),
        (#""dns":{"servers":["192.0.2.7","ns.example"]}"#, "", 7, "\"runtimeConfig.dns.servers[1]\" \"ns.example\": not an address (IP, IP:port or [IPv6]:port)"),
        (#""dns":{"servers":"192.0.2.7"}"#, "", 6, "\"runtimeConfig.dns.servers\": expected"),
        ("", #","upstream":["dns.example"]"#, 7, "\"upstream[0]\" \"dns.example\": not an address (IP, IP:port or [IPv6]:port)"),
        ("", #","ttl":-1"#, 7, "\"ttl\" -1"),
        ("", #","domainName":"bad..name""#, 7, "\"domainName\" \"bad..name\": not a DNS name"),
    ] as [(String, String, Int, String)])
    func badInput(_ rc: String, _ extra: String, _ code: Int, _ msg: String) throws {
        try withLab { lab in
            let prev = #"{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"address":"10.211.0.2/24","gateway":"10.211.0.1","interface":0}]}"#
            let cfg = #"{"cniVersion":"1.1.0","name":"nb","type":"dns-alias"\#(extra),"runtimeConfig":{\#(rc)},"prevResult":\#(prev)}"#
            let r = lab.plugin("dns-alias", "ADD", config: cfg, containerID: "c1", netns: lab.path(lab.host))
            #expect(r.status == 1)
            #expect(r.error?.code.rawValue == code, "\(r.stdout)")
            #expect(r.error?.msg.hasPrefix(msg) == true, "\(r.stdout)")
            #expect(!FileManager.default.fileExists(atPath: lab.dnsRoot + "/networks/nb"))
        }
    }

    @Test func needsPrevResultAndAGateway() throws {
        try withLab { lab in
            let r = lab.plugin("dns-alias", "ADD", config: #"{"cniVersion":"1.1.0","name":"np","type":"dns-alias"}"#,
                               containerID: "c1", netns: lab.path(lab.host))
            #expect(r.error?.code.rawValue == 7)
            #expect(r.error?.msg.contains("needs \"prevResult\"") == true)
            let prev = #"{"cniVersion":"1.1.0","ips":[{"address":"10.211.0.2/24"}]}"#
            let g = lab.plugin("dns-alias", "ADD", config: #"{"cniVersion":"1.1.0","name":"np","type":"dns-alias","prevResult":\#(prev)}"#,
                               containerID: "c1", netns: lab.path(lab.host))
            #expect(g.error?.code.rawValue == 7)
            #expect(g.error?.msg.contains("no gateway address") == true, "\(g.stdout)")
            let n = lab.plugin("dns-alias", "ADD", config: #"{"cniVersion":"1.1.0","name":"np","type":"dns-alias","prevResult":\#(prev)}"#,
                               containerID: "c1", netns: lab.path(lab.host), args: "K8S_POD_NAME=no_way!")
            #expect(n.error?.code.rawValue == 4, "\(n.stdout)")
        }
    }
}

extension Lab {
    /// The DNS server's "status" reply (its control socket), or "" when none answers.
    func dnsStatus() -> String {
        (try? Daemon(root: dnsRoot, role: .dnsServer).request("status", timeoutMs: 2000)) ?? ""
    }

    /// The addresses the DNS server listens on (from its status).
    func dnsListening() -> [String] {
        guard let f = dnsStatus().split(separator: " ").first(where: { $0.hasPrefix("listening=") }) else { return [] }
        return f.dropFirst("listening=".count).split(separator: ",").map(String.init).sorted()
    }
}

@Suite(.enabled(if: isRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/dig"), "needs root and dig"))
struct EveryGatewayServed {
    /// A network of two subnets (one range set, as Docker's --subnet A --subnet B): a
    /// container in the second must not take DNS away from those in the first; the server
    /// listens on each gateway while a container uses it.
    @Test func twoSubnetsOneRangeSet() throws {
        try withLab { lab in
            let d = Named(lab: lab)
            try lab.writeConflist("two", #"""
            {"cniVersion":"1.1.0","name":"two","plugins":[
              {"type":"bridge","bridge":"\#(lab.bridgeName("tw"))","isGateway":true,"allSubnetGateways":true,
               "ipam":{"type":"host-local","dataDir":"\#(lab.dataDir)","ranges":[[
                 {"subnet":"10.231.0.0/24","rangeStart":"10.231.0.2","rangeEnd":"10.231.0.3"},{"subnet":"10.232.0.0/24"}]]}},
              {"type":"dns-alias","upstream":[]}]}
            """#)
            let a1 = lab.id + "-a1", a2 = lab.id + "-a2", b1 = lab.id + "-b1"
            let r1 = try d.run("two", a1, name: "first")
            let r2 = try d.run("two", a2, name: "second")
            let r3 = try d.run("two", b1, name: "third")
            #expect(r1.dns.nameservers == ["10.231.0.1"] && r2.dns.nameservers == ["10.231.0.1"])
            #expect(r3.dns.nameservers == ["10.232.0.1"], "\(r3.dns)")
            #expect(d.address(r3).hasPrefix("10.232.0."))
            #expect(lab.dnsListening() == ["10.231.0.1", "10.232.0.1"], "\(lab.dnsStatus())")
            // Each container asks its own gateway, and every name answers everywhere.
            for (ns, server) in [(a1, "10.231.0.1"), (a2, "10.231.0.1"), (b1, "10.232.0.1")] {
                #expect(d.dig(ns, "first", server: server) == [d.address(r1)], "\(ns) via \(server)")
                #expect(d.dig(ns, "third", server: server) == [d.address(r3)], "\(ns) via \(server)")
            }
            // The second subnet's only container leaves: its gateway goes, the first's stays.
            #expect(lab.cnictl(["del", "two", b1]).status == 0)
            #expect(lab.dnsListening() == ["10.231.0.1"], "\(lab.dnsStatus())")
            #expect(d.dig(a2, "first", server: "10.231.0.1") == [d.address(r1)])
            // One of the first subnet's two leaves: still served for the other.
            #expect(lab.cnictl(["del", "two", a1]).status == 0)
            #expect(lab.dnsListening() == ["10.231.0.1"])
            #expect(d.dig(a2, "second", server: "10.231.0.1") == [d.address(r2)])
        }
    }

    /// A bridge with two range sets (IPv4 and IPv6): every container gets both gateways as
    /// nameservers, and the server answers on both.
    @Test func twoRangeSetsBothFamilies() throws {
        try withLab { lab in
            let d = Named(lab: lab)
            try d.network("dual", subnet: "10.233.0.0/24", v6: "fd00:233::/64")
            let c1 = lab.id + "-c1", c2 = lab.id + "-c2"
            let r1 = try d.run("dual", c1, name: "one")
            try d.run("dual", c2, name: "two")
            #expect(Set(r1.dns.nameservers) == ["10.233.0.1", "fd00:233::1"], "\(r1.dns)")
            #expect(lab.dnsListening() == ["10.233.0.1", "fd00:233::1"], "\(lab.dnsStatus())")
            #expect(d.dig(c2, "one", server: "10.233.0.1") == [d.address(r1)])
            #expect(d.dig(c2, "one", "AAAA", server: "fd00:233::1") == [d.address(r1, .v6)])
        }
    }
}

@Suite(.enabled(if: isRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/dig"), "needs root and dig"))
struct DaemonsBoundToTheirNamespace {
    /// A DNS server running in another network namespace with the same run directory (a
    /// nested runtime, a simulated host, a namespace deleted but still held) is never used:
    /// the plugin starts the server of its own namespace, and names resolve there.
    @Test func dnsServerOfAnotherNamespaceIsNotUsed() throws {
        try withLab { lab in
            let other = try lab.container("elsewhere")
            // A server started in the other namespace, with the lab's run dir, serving nothing
            // there yet (--stay: it does not exit when idle).
            let p = Process()
            p.executableURL = URL(fileURLWithPath: nsenterCommand)
            p.arguments = ["--net=" + lab.path(other), buildDir + "/swiftcni-dns", "--run-dir", lab.runDir, "--stay"]
            p.standardError = FileHandle.nullDevice
            try p.run()
            defer { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
            func theirSocket() -> String? {
                let dirs = (try? FileManager.default.contentsOfDirectory(atPath: lab.runDir + "/dns")) ?? []
                return dirs.first { FileManager.default.fileExists(atPath: lab.runDir + "/dns/\($0)/control.sock") }
            }
            let deadline = Date().addingTimeInterval(5)
            while theirSocket() == nil, Date() < deadline { usleep(20_000) }
            let theirs = try #require(theirSocket(), "the other namespace's server did not start")
            let d = Named(lab: lab)
            try d.network("here", subnet: "10.234.0.0/24", upstream: [])
            let c1 = lab.id + "-c1", c2 = lab.id + "-c2"
            let r1 = try d.run("here", c1, name: "web")
            try d.run("here", c2, name: "client")
            // Ours is another server, in the lab's host namespace; its records are its own.
            let dirs = try FileManager.default.contentsOfDirectory(atPath: lab.runDir + "/dns").sorted()
            #expect(dirs.count == 2, "\(dirs)")
            let mine = try #require(dirs.first { $0 != theirs })
            #expect(FileManager.default.fileExists(atPath: lab.runDir + "/dns/\(mine)/networks/here"))
            #expect(!FileManager.default.fileExists(atPath: lab.runDir + "/dns/\(theirs)/networks/here"))
            #expect(d.dig(c2, "web", server: "10.234.0.1") == [d.address(r1)])
            // The other one still runs, serving nothing of ours.
            #expect(kill(p.processIdentifier, 0) == 0)
        }
    }

    /// An overlay agent of another network namespace holding this host's state: ADD fails
    /// with code 111 naming it, and creates nothing (the agent would program the other
    /// namespace's VXLAN device, and this one would learn no other host).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd")))
    func overlayAgentOfAnotherNamespaceFailsTheAdd() throws {
        try withLab { lab in
            let other = try lab.container("elsewhere")
            let c1 = try lab.container("c1")
            let etcd = try lab.startEtcd(client: 23790, peer: 23800)
            defer { lab.stop(etcd) }
            // The agent this host's plugin would start (same settings), but in another namespace.
            let agentDir = lab.runDir + "/overlay"
            try FileManager.default.createDirectory(atPath: agentDir, withIntermediateDirectories: true)
            try #"{"etcd":{"endpoints":["http://127.0.0.1:23790"],"prefix":"/swiftcni","timeoutMs":3000},"host":"h1","vtep":"127.0.0.1"}"#
                .write(toFile: agentDir + "/agent.json", atomically: false, encoding: .utf8)
            let agent = Process()
            agent.executableURL = URL(fileURLWithPath: nsenterCommand)
            agent.arguments = ["--net=" + lab.path(other), buildDir + "/swiftcni-overlay-agent", "--stay"]
            agent.environment = ["SWIFTCNI_RUN_DIR": lab.runDir, "SWIFTCNI_STATE_DIR": lab.root + "/state", "SWIFTCNI_HOST_ID": "h1"]
            agent.standardError = FileHandle.nullDevice
            try agent.run()
            defer { kill(agent.processIdentifier, SIGKILL); agent.waitUntilExit() }
            let deadline = Date().addingTimeInterval(5)
            while !FileManager.default.fileExists(atPath: agentDir + "/control.sock"), Date() < deadline { usleep(20_000) }
            let before = lab.links(lab.host)
            let conf = #"{"cniVersion":"1.1.0","name":"ov","type":"overlay","vni":77,"underlay":"lo","etcd":{"endpoints":["http://127.0.0.1:23790"]},"ipam":{"type":"host-local","dataDir":"\#(lab.dataDir)","subnet":"10.235.0.0/24"}}"#
            let r = lab.plugin("overlay", "ADD", config: conf, containerID: "x1", netns: c1, env: ["SWIFTCNI_HOST_ID": "h1"])
            #expect(r.status == 1)
            #expect(r.error?.code == CNIErrorCode(rawValue: 111), "\(r.stdout)")
            #expect(r.error?.msg.contains("serves another network namespace") == true, "\(r.stdout)")
            #expect(lab.links(lab.host) == before)
            #expect(lab.links(c1) == ["lo"])
            let keys = lab.exec(lab.host, "etcdctl --endpoints=http://127.0.0.1:23790 get --prefix /swiftcni --keys-only").out
            #expect(!keys.contains("/netconfigs/") && !keys.contains("/endpoints/") && !keys.contains("/ipam/"), "\(keys)")
        }
    }
}
