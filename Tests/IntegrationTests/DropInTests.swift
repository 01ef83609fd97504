// What the real callers do that a plugin must take: go-cni's tag-less capability structs,
// libcni's one CNI_IFNAME for every plugin of a chain, a DEL whose arguments it cannot read,
// and the leftovers of a plugin killed half-way.
import Foundation
import Testing
@testable import Base
@testable import CNI

/// A bridge + portmap + dns-alias network for the lab (as a runtime's conflist).
private func writeChain(_ lab: Lab, _ name: String, subnet: String, loopback: Bool = false, version: String = "1.0.0") throws {
    try lab.writeConflist(name, #"""
    {"cniVersion":"\#(version)","name":"\#(name)","plugins":[
      {"type":"bridge","bridge":"\#(lab.bridgeName(String(name.prefix(2))))","isGateway":true,"isDefaultGateway":true,"ipMasq":true,
       "ipam":{"type":"host-local","dataDir":"\#(lab.dataDir)","ranges":[[{"subnet":"\#(subnet)"}]]}},
      {"type":"portmap","capabilities":{"portMappings":true}},
      {"type":"dns-alias","upstream":["192.0.2.2"],"capabilities":{"aliases":true}}\#(loopback ? #",{"type":"loopback"}"# : "")]}
    """#)
}

/// The state files of the lab (see `Lab.files`), without the cnictl result cache.
private func stateFiles(_ lab: Lab) -> [String] {
    lab.files().filter { !$0.hasPrefix("cache/") && !$0.hasPrefix("net.d/") && !$0.hasSuffix(".pid") && !$0.hasSuffix(".log") }
}

@Suite(.enabled(if: isRoot, "needs root (network namespaces)"))
struct DropIn {
    /// go-cni sends capability arguments from structs without JSON tags; Go's decoder (and
    /// so the reference portmap) takes `HostPort` for `hostPort`. ADD publishes, DEL removes.
    @Test func goCNIPortMappingsPublishAndTearDown() throws {
        try withLab { lab in
            let out = try lab.outside()
            try writeChain(lab, "gocni", subnet: "10.197.0.0/24")
            let c = try lab.container("c1")
            let caps = #"{"portMappings":[{"HostPort":18093,"ContainerPort":8080,"Protocol":"tcp","HostIP":""}]}"#
            let add = lab.cnictl(["add", "gocni", c, "--cap", caps, "--args", "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web"])
            #expect(add.status == 0, "\(add.err)")
            lab.exec(c, "\(ipCommand) link set lo up")
            #expect(lab.peer("tcp", from: out, to: "192.0.2.1", port: 18093, serverNS: c, serverPort: 8080) == "192.0.2.2")
            #expect(lab.ruleset(lab.host).contains("tcp . 18093"))
            let del = lab.cnictl(["del", "gocni", c, "--cap", caps])
            #expect(del.status == 0, "\(del.err)")
            #expect(!lab.ruleset(lab.host).contains("18093"))
            #expect(lab.links(c) == ["lo"])
            #expect(lab.allocations("gocni").isEmpty)
        }
    }

    /// A DEL given capability arguments, keys and CNI_ARGS it cannot read still tears down
    /// what the attachment owns: libcni stops the DEL chain at the first failure, so one
    /// refusal leaves the veth, the address, the DNAT and the name behind for good.
    @Test func delIsNotBlockedByItsArguments() throws {
        try withLab { lab in
            try writeChain(lab, "junk", subnet: "10.198.0.0/24")
            let c = try lab.container("c1")
            let add = lab.cnictl(["add", "junk", c, "--cap", #"{"portMappings":[{"hostPort":18094,"containerPort":80}],"aliases":["www"]}"#,
                                  "--args", "K8S_POD_NAME=web"])
            #expect(add.status == 0, "\(add.err)")
            let result = try JSON.parse(add.out)
            let id = "cnictl-" + stableHash(lab.path(c))
            #expect(lab.ruleset(lab.host).contains("18094"))
            #expect(FileManager.default.fileExists(atPath: lab.dnsRoot + "/networks/junk/\(id):eth0"))
            // What a runtime sends on DEL that no plugin can use: wrong types, unknown and
            // malformed CNI_ARGS, a bad MAC, a bad requested IP, an unusable prevResult.
            let junk = #""runtimeConfig":{"portMappings":[{"hostPort":"x"}],"aliases":[5],"ipRanges":"junk","ips":["nope"],"mac":"zz"},"args":{"cni":{"ips":[7]}}"#
            let chain: [(String, String)] = [
                ("dns-alias", #"{"cniVersion":"1.0.0","name":"junk","type":"dns-alias","upstream":"bad","ttl":"x",\#(junk),"prevResult":{"ips":"x"}}"#),
                ("portmap", #"{"cniVersion":"1.0.0","name":"junk","type":"portmap","snat":"yes","conditionsV4":7,\#(junk),"prevResult":\#(result.serialized())}"#),
                ("bridge", #"{"cniVersion":"1.0.0","name":"junk","type":"bridge","bridge":"\#(lab.bridgeName("ju"))","mtu":"big","vlan":-1,\#(junk),"ipam":{"type":"host-local","dataDir":"\#(lab.dataDir)","ranges":"none","routes":5}}"#),
            ]
            for (plugin, cfg) in chain {
                let d = lab.plugin(plugin, "DEL", config: cfg, containerID: id, netns: c, args: "IP=garbage;COLOR=blue;MALFORMED")
                #expect(d.status == 0, "\(plugin) DEL: \(d.stdout)")
            }
            #expect(!lab.ruleset(lab.host).contains("18094"))
            #expect(lab.links(c) == ["lo"])
            #expect(lab.allocations("junk").isEmpty)
            #expect(!FileManager.default.fileExists(atPath: lab.dnsRoot + "/networks/junk/\(id):eth0"))
            #expect(!FileManager.default.fileExists(atPath: lab.runDir + "/portmap/junk/\(id):eth0"))
            // A configuration that names nothing is still refused.
            let bad = lab.plugin("bridge", "DEL", config: #"{"cniVersion":"1.0.0","name":"junk","type":"bridge","bridge":5}"#,
                                 containerID: id, netns: c)
            #expect(bad.error?.code == .decodingFailure, "\(bad.stdout)")
        }
    }

    /// libcni gives every plugin of a chain the chain's CNI_IFNAME; loopback acts on `lo`
    /// whatever it is told, and touches no other link.
    @Test func loopbackInAChainActsOnLo() throws {
        try withLab { lab in
            try writeChain(lab, "lochain", subnet: "10.199.0.0/24", loopback: true)
            let c = try lab.container("c1")
            #expect(!lab.exec(c, "\(ipCommand) -o link show lo").out.contains("UP"))
            let add = lab.cnictl(["add", "lochain", c])
            #expect(add.status == 0, "\(add.err)")
            #expect(lab.exec(c, "\(ipCommand) -o link show lo").out.contains("state UNKNOWN"), "lo is not up")
            #expect(lab.exec(c, "ping -c 1 -W 2 127.0.0.1").status == 0)
            #expect(lab.exec(c, "\(ipCommand) -o -4 addr show eth0").out.contains("10.199.0."))
            #expect(lab.exec(c, "\(ipCommand) -o link show eth0").out.contains("state UP"))
            let chk = lab.cnictl(["check", "lochain", c])
            #expect(chk.status == 0, "\(chk.err)")
            #expect(lab.cnictl(["del", "lochain", c]).status == 0)
            #expect(lab.links(c) == ["lo"])
            #expect(!lab.exec(c, "\(ipCommand) -o link show lo").out.contains("state UNKNOWN"), "lo is still up after DEL")

            // Alone, told eth0: lo goes up and down, an existing eth0 keeps its state.
            lab.exec(c, "\(ipCommand) link add eth0 type veth peer name peer0 && \(ipCommand) link set eth0 up")
            let lo = #"{"cniVersion":"1.0.0","name":"lo","type":"loopback"}"#
            let r = lab.plugin("loopback", "ADD", config: lo, containerID: "x", netns: c, ifname: "eth0")
            #expect(r.status == 0, "\(r.stdout)")
            #expect(r.result?.interfaces.map(\.name) == ["lo"])
            #expect(lab.plugin("loopback", "CHECK", config: lo, containerID: "x", netns: c, ifname: "eth0").status == 0)
            #expect(lab.plugin("loopback", "DEL", config: lo, containerID: "x", netns: c, ifname: "eth0").status == 0)
            #expect(!lab.exec(c, "\(ipCommand) -o link show lo").out.contains("state UNKNOWN"))
            #expect(lab.exec(c, "\(ipCommand) -o link show eth0").out.contains(",UP"), "eth0 was touched")
        }
    }

    /// The files a writer killed between writing and renaming leaves — portmap's record temp,
    /// host-local's reservation and index temps, dns-alias's record temp — go with the next
    /// DEL of that attachment, or the next GC of the network.
    @Test func crashLeftoversGoWithDelAndGC() throws {
        try withLab { lab in
            try writeChain(lab, "crash", subnet: "10.196.0.0/24", version: "1.1.0")
            let c1 = try lab.container("c1"), c2 = try lab.container("c2")
            for c in [c1, c2] {
                let a = lab.cnictl(["add", "crash", c, "--cap", #"{"portMappings":[{"hostPort":\#(c == c1 ? 18095 : 18096),"containerPort":80}]}"#,
                                    "--args", "K8S_POD_NAME=n\(c == c1 ? 1 : 2)"])
                #expect(a.status == 0, "\(a.err)")
            }
            let id1 = "cnictl-" + stableHash(lab.path(c1)), id2 = "cnictl-" + stableHash(lab.path(c2))
            // A pid no process has (an exited child's).
            let dead = Process()
            dead.executableURL = URL(fileURLWithPath: "/bin/true")
            try dead.run()
            dead.waitUntilExit()
            let pid = dead.processIdentifier
            let pm = lab.runDir + "/portmap/crash", dns = lab.dnsRoot + "/networks/crash", ipam = lab.dataDir + "/crash"
            let index = lab.dataDir + "/.swiftcni/crash"
            func plant(_ paths: [String]) {
                for p in paths { _ = FileManager.default.createFile(atPath: p, contents: Data("half".utf8)) }
            }
            let mine = ["\(pm)/\(id1):eth0.tmp.\(pid)", "\(dns)/\(id1):eth0.tmp.\(pid)", "\(ipam)/.reserve-\(pid)",
                        "\(index)/\(id1):eth0.tmp.\(pid)"]
            plant(mine)
            #expect(lab.cnictl(["del", "crash", c1]).status == 0)
            for p in mine { #expect(!FileManager.default.fileExists(atPath: p), "\(p) survived DEL") }

            // GC of the network: every leftover, whoever wrote it; the valid attachment stays.
            let others = ["\(pm)/gone:eth0.tmp.\(pid)", "\(dns)/gone:eth0.tmp.\(pid)", "\(ipam)/.reserve-\(pid)",
                          "\(ipam)/10.196.0.77.tmp.\(pid)", "\(index)/gone:eth0.tmp.\(pid)"]
            plant(others)
            let gc = lab.cnictl(["gc", "crash", "--valid", "\(id2)/eth0"])
            #expect(gc.status == 0, "\(gc.err)")
            for p in others { #expect(!FileManager.default.fileExists(atPath: p), "\(p) survived GC") }
            #expect(FileManager.default.fileExists(atPath: "\(pm)/\(id2):eth0"))
            #expect(lab.allocations("crash").count == 1)
        }
    }

    /// host-local and portmap killed -9 at points spread over their ADD; after the runtime's
    /// DEL nothing of the attachment is left, wherever the kill landed.
    @Test func killedAddThenDelLeavesNothing() throws {
        try withLab { lab in
            let ipam = #"{"cniVersion":"1.0.0","name":"kill","type":"host-local","ipam":{"type":"host-local","dataDir":"\#(lab.dataDir)","ranges":[[{"subnet":"10.195.0.0/24"}]]}}"#
            let prev = #"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"interface":0,"address":"10.195.0.9/24"}]}"#
            let pm = #"{"cniVersion":"1.0.0","name":"kill","type":"portmap","runtimeConfig":{"portMappings":[{"hostPort":18097,"containerPort":80}]},"prevResult":\#(prev)}"#
            let c = try lab.container("c1")
            let before = lab.ruleset(lab.host)
            var landed = Set<String>()
            for round in 0..<16 {
                for (plugin, cfg) in [("host-local", ipam), ("portmap", pm)] {
                    let p = try lab.startPlugin(plugin, "ADD", config: cfg, containerID: "k\(round)", netns: c)
                    usleep(useconds_t(round * 700))
                    kill(p.processIdentifier, SIGKILL)
                    p.waitUntilExit()
                    landed.insert(p.terminationReason == .uncaughtSignal ? "killed" : "finished")
                    let d = lab.plugin(plugin, "DEL", config: cfg, containerID: "k\(round)", netns: c)
                    #expect(d.status == 0, "\(plugin) DEL after a kill at \(round * 700) µs: \(d.stdout)")
                }
                #expect(lab.allocations("kill").isEmpty, "round \(round)")
                #expect(stateFiles(lab).isEmpty, "round \(round): \(stateFiles(lab))")
            }
            #expect(lab.ruleset(lab.host) == before)
            // The schedule reaches both ends: some runs were killed, some finished.
            #expect(landed == ["killed", "finished"], "\(landed)")
        }
    }
}
