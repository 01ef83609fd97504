import Foundation
import Testing
@testable import Base
@testable import CNI

@Suite(.enabled(if: isRoot, "needs root (network namespaces)"))
struct BridgeNetwork {
    @Test func twoContainersPingOverIPv4AndIPv6() throws {
        try withLab { lab in
            let c1 = try lab.container("c1"), c2 = try lab.container("c2")
            let cfg = bridgeConfig(lab, extra: #","isDefaultGateway":true"#, subnets: ["10.123.0.0/24", "fd12:3::/64"])
            let r1 = lab.plugin("bridge", "ADD", config: cfg, containerID: "ctr1", netns: c1)
            let r2 = lab.plugin("bridge", "ADD", config: cfg, containerID: "ctr2", netns: c2)
            #expect(r1.status == 0, "\(r1.stdout)\(r1.stderr)")
            #expect(r2.status == 0, "\(r2.stdout)\(r2.stderr)")
            let res1 = try #require(r1.result), res2 = try #require(r2.result)
            #expect(res1.ips.map(\.address.description) == ["10.123.0.2/24", "fd12:3::2/64"])
            #expect(res2.ips.map(\.address.description) == ["10.123.0.3/24", "fd12:3::3/64"])
            #expect(res1.interfaces.map(\.name)[0] == lab.bridgeName())
            #expect(res1.interfaces[2].sandbox == lab.path(c1))
            #expect(res1.ips.allSatisfy { $0.interface == 2 })
            #expect(res1.routes.map(\.dst.description) == ["0.0.0.0/0", "::/0"])
            #expect(lab.ping(c1, "10.123.0.3"))
            #expect(lab.ping(c2, "10.123.0.2"))
            #expect(lab.ping(c1, "fd12:3::3"))
            #expect(lab.ping(c2, "fd12:3::2"))
            // The gateway (the bridge) answers too.
            #expect(lab.ping(c1, "10.123.0.1"))
            // The MAC in the result is the container's.
            let mac = lab.exec(c1, "cat /sys/class/net/eth0/address").out.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(res1.interfaces[2].mac == mac)
        }
    }

    @Test func checkPassesThenFailsWhenTheAddressIsRemoved() throws {
        try withLab { lab in
            let c1 = try lab.container("c1")
            let cfg = bridgeConfig(lab)
            let add = lab.plugin("bridge", "ADD", config: cfg, containerID: "ctr1", netns: c1)
            #expect(add.status == 0)
            let chk = withPrevResult(cfg, add.stdout)
            let ok = lab.plugin("bridge", "CHECK", config: chk, containerID: "ctr1", netns: c1)
            #expect(ok.status == 0, "\(ok.stdout)")
            #expect(ok.stdout.isEmpty)
            lab.exec(c1, "\(ipCommand) addr del 10.123.0.2/24 dev eth0")
            let bad = lab.plugin("bridge", "CHECK", config: chk, containerID: "ctr1", netns: c1)
            #expect(bad.status == 1)
            #expect(bad.error == CNIError(.checkFailed, "address 10.123.0.2/24 is missing from interface eth0 in the container"))
            // And when the interface is gone altogether.
            lab.exec(c1, "\(ipCommand) link del eth0")
            let gone = lab.plugin("bridge", "CHECK", config: chk, containerID: "ctr1", netns: c1)
            #expect(gone.error == CNIError(.checkFailed, "interface eth0 is missing from the container"))
        }
    }

    @Test func checkNoticesAMissingAllocation() throws {
        try withLab { lab in
            let c1 = try lab.container("c1")
            let cfg = bridgeConfig(lab)
            let add = lab.plugin("bridge", "ADD", config: cfg, containerID: "ctr1", netns: c1)
            try FileManager.default.removeItem(atPath: lab.dataDir + "/net/10.123.0.2")
            let chk = lab.plugin("bridge", "CHECK", config: withPrevResult(cfg, add.stdout), containerID: "ctr1", netns: c1)
            #expect(chk.error?.code == .checkFailed)
            #expect(chk.error?.msg.contains("host-local") == true)
        }
    }

    @Test func delTwiceAndEverythingGoes() throws {
        try withLab { lab in
            let c1 = try lab.container("c1"), c2 = try lab.container("c2")
            let cfg = bridgeConfig(lab)
            let before = lab.links(lab.host)
            _ = lab.plugin("bridge", "ADD", config: cfg, containerID: "ctr1", netns: c1)
            let add2 = lab.plugin("bridge", "ADD", config: cfg, containerID: "ctr2", netns: c2)
            #expect(lab.links(lab.host).count == before.count + 3)  // bridge + two host veths
            for _ in 0..<2 {
                let d = lab.plugin("bridge", "DEL", config: withPrevResult(cfg, add2.stdout), containerID: "ctr2", netns: c2)
                #expect(d.status == 0, "\(d.stdout)")
            }
            #expect(lab.allocations("net") == ["10.123.0.2"])
            #expect(lab.links(c2) == ["lo"])
            #expect(lab.ping(c1, "10.123.0.1"))
            for _ in 0..<2 {
                #expect(lab.plugin("bridge", "DEL", config: cfg, containerID: "ctr1", netns: c1).status == 0)
            }
            // No allocation, no index entry, and the host's links are what they were.
            #expect(lab.allocations("net").isEmpty)
            #expect((try? FileManager.default.contentsOfDirectory(atPath: lab.dataDir + "/.swiftcni/net"))?.isEmpty ?? true)
            #expect(lab.links(lab.host) == before)
            #expect(lab.links(c1) == ["lo"])
        }
    }

    @Test func delWithTheNamespaceGoneFreesTheAddress() throws {
        try withLab { lab in
            let c1 = try lab.container("c1")
            let cfg = bridgeConfig(lab)
            #expect(lab.plugin("bridge", "ADD", config: cfg, containerID: "ctr1", netns: c1).status == 0)
            #expect(lab.allocations("net") == ["10.123.0.2"])
            run([ipCommand, "netns", "del", c1])
            let d = lab.plugin("bridge", "DEL", config: cfg, containerID: "ctr1", netns: c1)
            #expect(d.status == 0, "\(d.stdout)")
            #expect(lab.allocations("net").isEmpty)
            // Also with no CNI_NETNS at all.
            let c2 = try lab.container("c2")
            #expect(lab.plugin("bridge", "ADD", config: cfg, containerID: "ctr2", netns: c2).status == 0)
            #expect(lab.plugin("bridge", "DEL", config: cfg, containerID: "ctr2", netns: "").status == 0)
            #expect(lab.allocations("net").isEmpty)
        }
    }

    @Test func hundredConcurrentAddsGetDistinctAddresses() throws {
        try withLab { lab in
            let cfg = bridgeConfig(lab, subnets: ["10.124.0.0/24"])
            var made: [String] = []
            for i in 0..<100 { made.append(try lab.container("p\(i)")) }
            let names = made
            nonisolated(unsafe) var results = [String?](repeating: nil, count: 100)
            let lock = NSLock()
            // 4 workers, 25 ADDs each.
            DispatchQueue.concurrentPerform(iterations: 4) { w in
                for k in 0..<25 {
                    let i = w * 25 + k
                    let r = lab.plugin("bridge", "ADD", config: cfg, containerID: "ctr\(i)", netns: names[i])
                    let a = r.result?.ips.first?.address.address.description
                    lock.lock(); results[i] = a; lock.unlock()
                }
            }
            let got = results.compactMap { $0 }
            #expect(got.count == 100)
            #expect(Set(got).count == 100)
            #expect(lab.allocations("net").count == 100)
            #expect(Set(lab.allocations("net")) == Set(got))
            DispatchQueue.concurrentPerform(iterations: 4) { w in
                for k in 0..<25 {
                    let i = w * 25 + k
                    _ = lab.plugin("bridge", "DEL", config: cfg, containerID: "ctr\(i)", netns: names[i])
                }
            }
            #expect(lab.allocations("net").isEmpty)
            #expect(lab.links(lab.host) == ["lo"])
        }
    }

    @Test func failureAfterIPAMUndoesEverything() throws {
        try withLab { lab in
            let c1 = try lab.container("c1")
            // A route whose gateway is not on the link: the kernel refuses it after IPAM has
            // allocated and the veth exists; all of it must be undone.
            let ipam = #"{"type":"host-local","dataDir":"\#(lab.dataDir)","ranges":[[{"subnet":"10.125.0.0/24"}]],"routes":[{"dst":"10.200.0.0/16","gw":"10.9.9.9"}]}"#
            let cfg = bridgeConfig(lab, ipam: ipam)
            let r = lab.plugin("bridge", "ADD", config: cfg, containerID: "ctr1", netns: c1)
            #expect(r.status == 1)
            #expect(r.error?.code == .kernel)
            #expect(r.error?.msg.contains("10.200.0.0/16 via 10.9.9.9") == true, "\(r.stdout)")
            #expect(lab.allocations("net").isEmpty)
            #expect(lab.links(lab.host) == ["lo"])
            #expect(lab.links(c1) == ["lo"])
        }
    }

    @Test func delegatesByExecToo() throws {
        try withLab { lab in
            let c1 = try lab.container("c1"), c2 = try lab.container("c2")
            // The reference host-local speaks up to 1.0.0.
            let cfg = bridgeConfig(lab, version: "1.0.0")
            // Our host-local exec'd instead of run in-process…
            let a = lab.plugin("bridge", "ADD", config: cfg, containerID: "ctr1", netns: c1, env: ["SWIFTCNI_EXEC_DELEGATES": "1"])
            #expect(a.status == 0, "\(a.stdout)")
            // …and the reference host-local (Go) when CNI_PATH finds it first: same files.
            let ref = "/usr/lib/cni"
            if FileManager.default.fileExists(atPath: ref + "/host-local") {
                let b = lab.plugin("bridge", "ADD", config: cfg, containerID: "ctr2", netns: c2, path: ref + ":" + buildDir)
                #expect(b.status == 0, "\(b.stdout)")
                #expect(b.result?.ips.first?.address.description == "10.123.0.3/24")
                #expect(lab.ping(c2, "10.123.0.2"))
                #expect(try String(contentsOfFile: lab.dataDir + "/net/10.123.0.3", encoding: .utf8) == "ctr2\r\neth0")
                #expect(lab.plugin("bridge", "DEL", config: cfg, containerID: "ctr2", netns: c2, path: ref + ":" + buildDir).status == 0)
            }
            #expect(lab.plugin("bridge", "DEL", config: cfg, containerID: "ctr1", netns: c1, env: ["SWIFTCNI_EXEC_DELEGATES": "1"]).status == 0)
            #expect(lab.allocations("net").isEmpty)
        }
    }

    @Test func staticAddressFromEverySource() throws {
        try withLab { lab in
            let c1 = try lab.container("c1"), c2 = try lab.container("c2"), c3 = try lab.container("c3")
            let cfg = bridgeConfig(lab, extra: #","capabilities":{"ips":true},"runtimeConfig":{"ips":["10.123.0.77/24"]}"#)
            #expect(lab.plugin("bridge", "ADD", config: cfg, containerID: "a", netns: c1).result?.ips.first?.address.description == "10.123.0.77/24")
            let plain = bridgeConfig(lab)
            #expect(lab.plugin("bridge", "ADD", config: plain, containerID: "b", netns: c2, args: "IP=10.123.0.78").result?.ips.first?.address.description == "10.123.0.78/24")
            let viaArgs = bridgeConfig(lab, extra: #","args":{"cni":{"ips":["10.123.0.79"]}}"#)
            #expect(lab.plugin("bridge", "ADD", config: viaArgs, containerID: "c", netns: c3).result?.ips.first?.address.description == "10.123.0.79/24")
            #expect(lab.ping(c1, "10.123.0.79"))
        }
    }

    @Test func interfaceOptions() throws {
        try withLab { lab in
            let c1 = try lab.container("c1"), c2 = try lab.container("c2")
            let br = lab.bridgeName()
            let cfg = bridgeConfig(lab, extra: #","mtu":1400,"hairpinMode":true,"mac":"02:11:22:33:44:55""#)
            let r = lab.plugin("bridge", "ADD", config: cfg, containerID: "a", netns: c1)
            #expect(r.status == 0, "\(r.stdout)")
            #expect(lab.exec(c1, "cat /sys/class/net/eth0/mtu").out.trimmingCharacters(in: .whitespacesAndNewlines) == "1400")
            #expect(lab.exec(c1, "cat /sys/class/net/eth0/address").out.trimmingCharacters(in: .whitespacesAndNewlines) == "02:11:22:33:44:55")
            let hostVeth = try #require(r.result?.interfaces[1].name)
            #expect(lab.exec(lab.host, "\(ipCommand) -d link show \(hostVeth)").out.contains("hairpin on"))
            #expect(lab.exec(lab.host, "cat /sys/class/net/\(hostVeth)/mtu").out.trimmingCharacters(in: .whitespacesAndNewlines) == "1400")
            // CNI_ARGS MAC wins over the configuration's; a container interface can stay down.
            let cfg2 = bridgeConfig(lab, extra: #","disableContainerInterface":true"#)
            let r2 = lab.plugin("bridge", "ADD", config: cfg2, containerID: "b", netns: c2, args: "MAC=02:aa:bb:cc:dd:ee")
            #expect(r2.status == 0, "\(r2.stdout)")
            #expect(r2.result?.interfaces[2].mac == "02:aa:bb:cc:dd:ee")
            #expect(!lab.exec(c2, "\(ipCommand) link show eth0").out.contains(",UP"))
            #expect(lab.exec(lab.host, "\(ipCommand) -d link show \(br)").out.contains("bridge"))
        }
    }

    /// Whether this kernel's bridges can filter VLANs (CONFIG_BRIDGE_VLAN_FILTERING).
    static let kernelHasVlanFiltering: Bool = {
        let ns = "sctvlanprobe\(getpid())"
        run([ipCommand, "netns", "add", ns])
        defer { run([ipCommand, "netns", "del", ns]) }
        return run([ipCommand, "-n", ns, "link", "add", "probe0", "type", "bridge", "vlan_filtering", "1"]).status == 0
    }()

    @Test func vlanAccessPort() throws {
        try withLab { lab in
            let c1 = try lab.container("c1"), c2 = try lab.container("c2")
            let cfg = bridgeConfig(lab, extra: #","vlan":100,"preserveDefaultVlan":false"#)
            let r1 = lab.plugin("bridge", "ADD", config: cfg, containerID: "a", netns: c1)
            guard BridgeNetwork.kernelHasVlanFiltering else {
                // The nearest right thing on a kernel without VLAN filtering: a clear refusal,
                // and nothing left behind.
                #expect(r1.error == CNIError(.unsupportedField, "\"vlan\"/\"vlanTrunk\": this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)"), "\(r1.stdout)")
                #expect(lab.links(lab.host) == ["lo"])
                #expect(lab.links(c1) == ["lo"])
                #expect(lab.allocations("net").isEmpty)
                return
            }
            #expect(r1.status == 0, "\(r1.stdout)")
            let r2 = lab.plugin("bridge", "ADD", config: cfg, containerID: "b", netns: c2)
            let port = try #require(r1.result?.interfaces[1].name)
            let vl = lab.exec(lab.host, "bridge vlan show dev \(port)").out
            #expect(vl.contains("100 PVID Egress Untagged"), "\(vl)")
            #expect(!vl.contains(" 1 PVID"), "\(vl)")
            // Same VLAN: they talk; the gateway lives on <bridge>.100.
            #expect(lab.ping(c1, "10.123.0.3"))
            #expect(r2.result?.interfaces.contains { $0.name == lab.bridgeName() + ".100" } == true)
            #expect(lab.ping(c1, "10.123.0.1"))
        }
    }

    @Test func forceAddress() throws {
        try withLab { lab in
            let c1 = try lab.container("c1"), c2 = try lab.container("c2")
            let br = lab.bridgeName()
            sh("\(ipCommand) -n \(lab.host) link add \(br) type bridge && \(ipCommand) -n \(lab.host) addr add 10.99.0.1/24 dev \(br)")
            let refused = lab.plugin("bridge", "ADD", config: bridgeConfig(lab), containerID: "a", netns: c1)
            #expect(refused.error?.code == .conflict, "\(refused.stdout)")
            #expect(refused.error?.msg.contains("already has address 10.99.0.1/24") == true)
            #expect(lab.allocations("net").isEmpty)
            #expect(lab.links(c1) == ["lo"])
            let forced = lab.plugin("bridge", "ADD", config: bridgeConfig(lab, extra: #","forceAddress":true"#), containerID: "b", netns: c2)
            #expect(forced.status == 0, "\(forced.stdout)\(forced.stderr)")
            let addrs = lab.exec(lab.host, "\(ipCommand) -4 -o addr show dev \(br)").out
            #expect(addrs.contains("10.123.0.1/24") && !addrs.contains("10.99.0.1"))
        }
    }

    @Test(arguments: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    func everyVersion(_ v: String) throws {
        try withLab { lab in
            let c1 = try lab.container("c1")
            let cfg = bridgeConfig(lab, version: v)
            let r = lab.plugin("bridge", "ADD", config: cfg, containerID: "a", netns: c1)
            #expect(r.status == 0, "\(r.stdout)")
            #expect(r.json?["cniVersion"] == .string(v))
            #expect((r.json?["ips"]?.arrayValue?.first?["version"] != nil) == !CNIVersion.atLeast(v, "1.0.0"))
            if CNIVersion.atLeast(v, "0.4.0") {
                #expect(lab.plugin("bridge", "CHECK", config: withPrevResult(cfg, r.stdout), containerID: "a", netns: c1).status == 0)
            }
            #expect(lab.plugin("bridge", "DEL", config: withPrevResult(cfg, r.stdout), containerID: "a", netns: c1).status == 0)
        }
    }

    @Test func gcAndStatus() throws {
        try withLab { lab in
            let c1 = try lab.container("c1"), c2 = try lab.container("c2")
            let cfg = bridgeConfig(lab)
            _ = lab.plugin("bridge", "ADD", config: cfg, containerID: "keep", netns: c1)
            _ = lab.plugin("bridge", "ADD", config: cfg, containerID: "stale", netns: c2)
            #expect(lab.allocations("net") == ["10.123.0.2", "10.123.0.3"])
            var o = (try JSON.parse(cfg)).objectValue!
            o["cni.dev/valid-attachments"] = [["containerID": "keep", "ifname": "eth0"]]
            let gc = lab.plugin("bridge", "GC", config: JSON.object(o).serialized(), ifname: "")
            #expect(gc.status == 0, "\(gc.stdout)")
            #expect(lab.allocations("net") == ["10.123.0.2"])
            #expect(lab.plugin("bridge", "STATUS", config: cfg, ifname: "").status == 0)
            // A /30 has two usable addresses besides the gateway… one of which we take.
            let tiny = bridgeConfig(lab, name: "tiny", bridge: lab.bridgeName("t"), subnets: ["10.126.0.0/30"])
            #expect(lab.plugin("bridge", "ADD", config: tiny, containerID: "x", netns: c2, ifname: "eth1").status == 0)
            let st = lab.plugin("bridge", "STATUS", config: tiny, ifname: "")
            #expect(st.error?.code == .notAvailable)
            #expect(st.error?.msg.contains("exhausted") == true, "\(st.stdout)")
            // A data dir that cannot be used.
            let unusable = bridgeConfig(lab, name: "nodir", ipam: #"{"type":"host-local","dataDir":"/proc/swiftcni-cannot-be","ranges":[[{"subnet":"10.127.0.0/24"}]]}"#)
            let st2 = lab.plugin("bridge", "STATUS", config: unusable, ifname: "")
            #expect(st2.error?.code == .notAvailable)
            #expect(st2.error?.msg.hasPrefix("host-local: data dir unusable") == true, "\(st2.stdout)")
        }
    }
}

@Suite(.enabled(if: isRoot, "needs root (network namespaces)"))
struct Loopback {
    @Test func bringsLoUp() throws {
        try withLab { lab in
            let c1 = try lab.container("c1")
            let cfg = #"{"cniVersion":"1.0.0","name":"lo","type":"loopback"}"#
            #expect(!lab.exec(c1, "\(ipCommand) link show lo").out.contains("UP"))
            let r = lab.plugin("loopback", "ADD", config: cfg, containerID: "a", netns: c1, ifname: "lo")
            #expect(r.status == 0)
            #expect(r.result?.ips.map(\.address.description) == ["127.0.0.1/8", "::1/128"])
            #expect(lab.ping(c1, "127.0.0.1"))
            #expect(lab.plugin("loopback", "CHECK", config: cfg, containerID: "a", netns: c1, ifname: "lo").status == 0)
            #expect(lab.plugin("loopback", "DEL", config: cfg, containerID: "a", netns: c1, ifname: "lo").status == 0)
            #expect(lab.plugin("loopback", "CHECK", config: cfg, containerID: "a", netns: c1, ifname: "lo").error?.code == .checkFailed)
            run([ipCommand, "netns", "del", c1])
            #expect(lab.plugin("loopback", "DEL", config: cfg, containerID: "a", netns: c1, ifname: "lo").status == 0)
        }
    }
}

@Suite(.enabled(if: isRoot, "needs root (network namespaces)"))
struct VersionAnswers {
    @Test(arguments: ["bridge", "host-local", "loopback"])
    func version(_ p: String) throws {
        try withLab { lab in
            let r = lab.plugin(p, "VERSION", config: #"{"cniVersion":"0.4.0"}"#, ifname: "")
            #expect(r.status == 0)
            #expect(r.stdout == #"{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}"# + "\n")
            let bad = lab.plugin(p, "VERSION", config: #"{"cniVersion":"0.1.0"}"#, ifname: "")
            #expect(bad.error?.code == .incompatibleVersion)
        }
    }
}
