// The callers that run CNI in production, as Debian 12 ships them, driving our plugins:
// libcni 1.1.2 (CRI-O, Podman 4's CNI backend, cnitool), go-cni 1.1.7 (containerd's CRI,
// nerdctl), containerd 1.6's `ctr run --cni`, and the reference meta plugins chained after
// ours. The libcni and go-cni drivers are small Go programs (scripts/callers) built from
// Debian's Go source packages, offline. Where a scenario applies to the Go reference plugins
// too, it runs against /usr/lib/cni as well, so the harness itself is shown right.
import Foundation
import Testing
@testable import Base
@testable import CNI

let referenceBin = "/usr/lib/cni"
let hasGoCallers = FileManager.default.fileExists(atPath: "/usr/share/gocode/src/github.com/containerd/go-cni/cni.go")
    && FileManager.default.fileExists(atPath: "/usr/share/gocode/src/github.com/containernetworking/cni/libcni/api.go")
    && FileManager.default.isExecutableFile(atPath: "/usr/bin/go")
let hasReference = FileManager.default.isExecutableFile(atPath: referenceBin + "/bridge")
let hasContainerd = FileManager.default.isExecutableFile(atPath: "/usr/bin/containerd")
    && FileManager.default.isExecutableFile(atPath: "/usr/bin/ctr")

/// The drivers, built once per test run next to the plugins (nil, and a recorded reason,
/// if the build failed).
let callerDrivers: Result<String, CLIFailure> = {
    let out = buildDir + "/callers"
    let r = run(["/bin/bash", repoRoot + "/scripts/callers/build.sh", out])
    return r.status == 0 ? .success(out) : .failure(CLIFailure("scripts/callers/build.sh: \(r.out)\(r.err)"))
}()

/// A network of our chain (bridge + portmap [+ dns-alias] + loopback) or the reference's.
private func chainConflist(_ lab: Lab, name: String, version: String, subnet: String, dnsAlias: Bool,
                           bridgeCaps: String = "", ipam: String? = nil, extra: String = "") -> String {
    let ipamJSON = ipam ?? #"{"type":"host-local","dataDir":"\#(lab.dataDir)","ranges":[[{"subnet":"\#(subnet)"}]]}"#
    let dns = dnsAlias ? #"{"type":"dns-alias","upstream":[],"capabilities":{"aliases":true}},"# : ""
    return #"""
    {"cniVersion":"\#(version)","name":"\#(name)","plugins":[
      {"type":"bridge","bridge":"\#(lab.bridgeName(String(name.prefix(2))))","isGateway":true,"isDefaultGateway":true,"ipMasq":true,
       "capabilities":{\#(bridgeCaps)},"ipam":\#(ipamJSON)},
      {"type":"portmap","capabilities":{"portMappings":true}},
      \#(dns)\#(extra){"type":"loopback"}]}
    """#
}

extension Lab {
    /// The libcni driver in the lab's host namespace, with the lab's cache and state roots.
    func libcni(_ verb: String, _ network: String, _ id: String, _ netns: String, path: String = buildDir,
                caps: String = "", args: String = "") throws -> (status: Int32, out: String, err: String) {
        let drivers = try callerDrivers.get()
        var argv = [nsenterCommand, "--net=" + self.path(host), drivers + "/libcni-driver", "-confdir", confDir, "-path", path,
                    "-cache", cacheDir]
        if !caps.isEmpty { argv += ["-caps", caps] }
        if !args.isEmpty { argv += ["-args", args] }
        argv += [verb, network, id, self.path(netns)]
        return run(argv, env: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SWIFTCNI_RUN_DIR": runDir, "SWIFTCNI_STATE_DIR": root + "/state"])
    }

    /// The go-cni driver, as containerd's CRI runs a pod sandbox: in the lab's host
    /// namespace, and in a mount namespace where libcni's fixed cache (/var/lib/cni) is the
    /// lab's (go-cni has no option to move it).
    func gocni(_ verb: String, _ id: String, _ netns: String, confDir conf: String, flags: [String] = []) throws -> (status: Int32, out: String, err: String) {
        let drivers = try callerDrivers.get()
        let cache = root + "/gocni-cache"
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        let argv = [nsenterCommand, "--net=" + path(host), "/bin/sh", helper("in-private-varlib.sh"), cache,
                    drivers + "/gocni-driver", "-confdir", conf, "-bindir", buildDir] + flags + [verb, id, path(netns)]
        return run(argv, env: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SWIFTCNI_RUN_DIR": runDir, "SWIFTCNI_STATE_DIR": root + "/state"])
    }

    /// The address of `ns`'s eth0.
    func address(_ ns: String) -> String {
        let out = exec(ns, "\(ipCommand) -o -4 addr show eth0").out
        return out.split(separator: " ").first { $0.contains("/") }.map { String($0.split(separator: "/")[0]) } ?? ""
    }

    /// `dig` from `ns` at `server` (the network's gateway), short answers.
    func dig(_ ns: String, _ server: String, _ name: String) -> [String] {
        exec(ns, "dig +short +time=2 +tries=1 @\(server) \(name)").out.split(separator: "\n").map(String.init).sorted()
    }

    /// Interfaces of the host namespace that are not its own (lo, the outside link).
    func hostLinksBesides(_ keep: [String]) -> [String] {
        links(host).filter { $0 != "lo" && !$0.hasPrefix("o") && !keep.contains($0) }
    }
}

struct LibcniCase: CustomTestStringConvertible, Sendable {
    var version: String
    var reference: Bool
    var testDescription: String { "\(reference ? "reference" : "swiftcni") plugins, cniVersion \(version)" }
}

@Suite(.enabled(if: isRoot && hasGoCallers, "needs root and Debian's Go packages (scripts/deps.sh test installs them)"))
struct RealCallers {
    /// libcni 1.1.2: add / check / del of bridge + host-local + portmap (+ dns-alias) +
    /// loopback at every cniVersion libcni speaks, through its result cache. Two containers
    /// ping each other, a published port answers from outside, names resolve (ours), lo is up.
    @Test(arguments: ["0.3.0", "0.3.1", "0.4.0", "1.0.0"].flatMap { v in
        [LibcniCase(version: v, reference: false)] + (hasReference ? [LibcniCase(version: v, reference: true)] : [])
    })
    func libcniChain(_ c: LibcniCase) throws {
        try withLab { lab in
            let out = try lab.outside()
            let path = c.reference ? referenceBin : buildDir
            try lab.writeConflist("lc", chainConflist(lab, name: "lc", version: c.version, subnet: "10.201.0.0/24", dnsAlias: !c.reference))
            let before = lab.ruleset(lab.host)
            let c1 = try lab.container("c1"), c2 = try lab.container("c2")
            let port = 18200
            // As CRI-O sends them: the pod name in CNI_ARGS with IgnoreUnknown (the reference
            // bridge refuses unknown CNI_ARGS without it), aliases as Podman's map.
            let a1 = try lab.libcni("add", "lc", "ctr1", c1, path: path,
                                    caps: #"{"portMappings":[{"hostPort":\#(port),"containerPort":80,"protocol":"tcp"}],"aliases":{"lc":["www"]}}"#,
                                    args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web")
            #expect(a1.status == 0, "\(a1.err)")
            let a2 = try lab.libcni("add", "lc", "ctr2", c2, path: path, args: "IgnoreUnknown=1;K8S_POD_NAME=client")
            #expect(a2.status == 0, "\(a2.err)")
            let r1 = try CNIResult(json: JSON.parse(a1.out))
            #expect(try JSON.parse(a1.out)["cniVersion"]?.stringValue == c.version)
            let ip1 = r1.ips.first?.address.address.description ?? "", gw = r1.ips.first?.gateway?.description ?? ""
            #expect(ip1.hasPrefix("10.201.0.") && gw == "10.201.0.1", "\(a1.out)")
            #expect(lab.address(c1) == ip1)
            // loopback, given CNI_IFNAME=eth0 like every plugin of the chain, brought lo up.
            #expect(lab.exec(c1, "ping -c 1 -W 2 127.0.0.1").status == 0)
            #expect(lab.ping(c2, ip1))
            #expect(lab.peer("tcp", from: out, to: "192.0.2.1", port: port, serverNS: c1, serverPort: 80) == "192.0.2.2")
            if !c.reference {
                #expect(lab.dig(c2, gw, "web") == [ip1])
                #expect(lab.dig(c2, gw, "www") == [ip1])
                #expect(r1.dns.nameservers.first == gw)
            }
            // CHECK: libcni refuses it below 0.4.0 itself. The reference portmap's CHECK fails
            // for port mappings (it checks ip6tables for IPv4-only containers): check c2 there.
            let checked = c.reference ? [("ctr2", c2)] : [("ctr1", c1), ("ctr2", c2)]
            for (id, ns) in checked {
                let chk = try lab.libcni("check", "lc", id, ns, path: path, args: "IgnoreUnknown=1")
                if CNIVersion.atLeast(c.version, "0.4.0") {
                    #expect(chk.status == 0, "CHECK \(id): \(chk.err)")
                } else {
                    #expect(chk.err.contains("configuration version \"\(c.version)\" does not support the CHECK command"), "\(chk.err)")
                }
            }
            for (id, ns) in [("ctr1", c1), ("ctr2", c2)] {
                let d = try lab.libcni("del", "lc", id, ns, path: path,
                                       caps: id == "ctr1" ? #"{"portMappings":[{"hostPort":\#(port),"containerPort":80,"protocol":"tcp"}]}"# : "",
                                       args: "IgnoreUnknown=1")
                #expect(d.status == 0, "DEL \(id): \(d.err)")
                #expect(lab.links(ns) == ["lo"])
            }
            #expect(lab.allocations("lc").isEmpty)
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: lab.cacheDir + "/results")) ?? []).isEmpty)
            #expect(lab.peer("tcp", from: out, to: "192.0.2.1", port: port, serverNS: c1, serverPort: 80) == nil)
            if !c.reference {
                // Ours leave the host as it was; the reference keeps its bridge and chains.
                #expect(lab.hostLinksBesides([]).isEmpty, "\(lab.links(lab.host))")
                #expect(lab.ruleset(lab.host) == before)
                #expect(stateFilesLeft(lab).isEmpty, "\(stateFilesLeft(lab))")
            }
        }
    }

    /// libcni 1.1.2 knows results up to 1.0.0: at 1.1.0 it refuses our (valid) ADD result
    /// itself. A runtime then DELs; nothing may be left.
    @Test func libcniAt110RefusesTheResultAndDelCleansUp() throws {
        try withLab { lab in
            try lab.writeConflist("lx", chainConflist(lab, name: "lx", version: "1.1.0", subnet: "10.202.0.0/24", dnsAlias: true))
            let before = lab.ruleset(lab.host)
            let c1 = try lab.container("c1")
            let a = try lab.libcni("add", "lx", "ctr1", c1, caps: #"{"portMappings":[{"hostPort":18210,"containerPort":80}]}"#)
            #expect(a.status == 1)
            #expect(a.err.contains("unsupported CNI result version \"1.1.0\""), "\(a.err)")
            let d = try lab.libcni("del", "lx", "ctr1", c1)
            #expect(d.status == 0, "\(d.err)")
            #expect(lab.links(c1) == ["lo"])
            #expect(lab.allocations("lx").isEmpty)
            #expect(lab.hostLinksBesides([]).isEmpty)
            #expect(lab.ruleset(lab.host) == before)
            #expect(stateFilesLeft(lab).isEmpty, "\(stateFilesLeft(lab))")
        }
    }

    /// go-cni 1.1.7, doing what containerd's CRI does for a pod sandbox: the loopback network
    /// (0.3.1, ifname lo) and the pod network set up in parallel, K8S_POD_* labels,
    /// IgnoreUnknown=1, and the portMappings / ipRanges / dns capabilities from go-cni's
    /// tag-less structs. Two pods ping each other, a published port answers from another
    /// namespace and from 127.0.0.1, names resolve, teardown leaves nothing.
    @Test func goCNIPodSandboxes() throws {
        try withLab { lab in
            let out = try lab.outside()
            let conf = lab.root + "/gocni-net.d"
            try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
            // No ranges in the file: the runtime gives them (capability ipRanges), as a kubelet
            // passes the node's pod CIDR.
            let list = chainConflist(lab, name: "pods", version: "1.0.0", subnet: "", dnsAlias: true,
                                     bridgeCaps: #""ipRanges":true,"dns":true"#,
                                     ipam: #"{"type":"host-local","dataDir":"\#(lab.dataDir)"}"#)
            try list.write(toFile: conf + "/10-pods.conflist", atomically: true, encoding: .utf8)
            let before = lab.ruleset(lab.host)
            let p1 = try lab.container("p1"), p2 = try lab.container("p2")
            let common = ["-iprange", "10.88.0.0/24,10.88.0.50,10.88.0.60,10.88.0.1", "-dns", "10.96.0.10", "-search", "svc.cluster.local"]
            let s1 = try lab.gocni("setup", "pod1", p1, confDir: conf, flags: common + ["-pod", "web", "-port", "18300:8080/tcp"])
            #expect(s1.status == 0, "\(s1.err)")
            let s2 = try lab.gocni("setup", "pod2", p2, confDir: conf, flags: common + ["-pod", "client"])
            #expect(s2.status == 0, "\(s2.err)")
            let ip1 = lab.address(p1), ip2 = lab.address(p2)
            let last1 = Int(ip1.split(separator: ".").last ?? "") ?? 0
            #expect(ip1.hasPrefix("10.88.0.") && (50...60).contains(last1), "pod1 has \(ip1), not from the runtime's ipRanges")
            #expect(s1.out.contains(ip1), "\(s1.out)")
            // go-cni's result: the pod network's DNS with our nameserver and the runtime's.
            let res = try JSON.parse(s1.out)
            let dns = res["DNS"]?.arrayValue?.compactMap { $0["nameservers"]?.arrayValue?.compactMap(\.stringValue) }.flatMap { $0 } ?? []
            #expect(dns.contains("10.88.0.1") && dns.contains("10.96.0.10"), "\(s1.out)")
            // The loopback network (go-cni's own, ifname lo) and the pod network.
            #expect(lab.exec(p1, "ping -c 1 -W 2 127.0.0.1").status == 0)
            #expect(lab.ping(p2, ip1) && lab.ping(p1, ip2))
            #expect(lab.peer("tcp", from: out, to: "192.0.2.1", port: 18300, serverNS: p1, serverPort: 8080) == "192.0.2.2")
            #expect(lab.peer("tcp", from: lab.host, to: "127.0.0.1", port: 18300, serverNS: p1, serverPort: 8080) != nil)
            #expect(lab.dig(p2, "10.88.0.1", "web") == [ip1])
            #expect(lab.dig(p1, "10.88.0.1", "client") == [ip2])
            // go-cni's own loopback network is cniVersion 0.3.1, for which libcni refuses
            // CHECK: go-cni's Check fails whenever WithLoNetwork is loaded (containerd's CRI
            // never calls it). Without it, Check passes for both pods.
            let loCheck = try lab.gocni("check", "pod1", p1, confDir: conf, flags: common + ["-pod", "web", "-port", "18300:8080/tcp"])
            #expect(loCheck.err.contains("configuration version \"0.3.1\" does not support the CHECK command"), "\(loCheck.err)")
            for (id, ns) in [("pod1", p1), ("pod2", p2)] {
                let chk = try lab.gocni("check", id, ns, confDir: conf,
                                        flags: ["-no-lo"] + common + (id == "pod1" ? ["-pod", "web", "-port", "18300:8080/tcp"] : ["-pod", "client"]))
                #expect(chk.status == 0, "check \(id): \(chk.err)")
            }
            for (id, ns) in [("pod1", p1), ("pod2", p2)] {
                let rm = try lab.gocni("remove", id, ns, confDir: conf, flags: common + (id == "pod1" ? ["-pod", "web", "-port", "18300:8080/tcp"] : ["-pod", "client"]))
                #expect(rm.status == 0, "remove \(id): \(rm.err)")
                #expect(lab.links(ns) == ["lo"])
            }
            #expect(lab.allocations("pods").isEmpty)
            #expect(lab.hostLinksBesides([]).isEmpty, "\(lab.links(lab.host))")
            #expect(lab.ruleset(lab.host) == before)
            #expect(stateFilesLeft(lab).filter { !$0.hasPrefix("gocni-cache/") }.isEmpty, "\(stateFilesLeft(lab))")
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: lab.root + "/gocni-cache/results")) ?? []).isEmpty)
        }
    }

    /// The reference meta plugins chained after ours (tuning, bandwidth, firewall from
    /// /usr/lib/cni) consume our prevResult: ADD, CHECK and DEL pass through libcni, and each
    /// did its part.
    @Test(.enabled(if: hasReference)) func referenceMetaPluginsAfterOurs() throws {
        try withLab { lab in
            let extra = #"{"type":"tuning","sysctl":{"net.core.somaxconn":"777"}},{"type":"bandwidth","capabilities":{"bandwidth":true}},{"type":"firewall","backend":"iptables"},"#
            try lab.writeConflist("meta", chainConflist(lab, name: "meta", version: "1.0.0", subnet: "10.203.0.0/24", dnsAlias: true, extra: extra))
            let c1 = try lab.container("c1")
            let path = buildDir + ":" + referenceBin
            let caps = #"{"portMappings":[{"hostPort":18220,"containerPort":80}],"bandwidth":{"ingressRate":1000000,"ingressBurst":100000}}"#
            let a = try lab.libcni("add", "meta", "ctr1", c1, path: path, caps: caps, args: "IgnoreUnknown=1;K8S_POD_NAME=web")
            #expect(a.status == 0, "\(a.err)")
            let r = try CNIResult(json: JSON.parse(a.out))
            let ip = r.ips.first?.address.address.description ?? ""
            let hostVeth = r.interfaces.first { ($0.sandbox ?? "").isEmpty && $0.name.hasPrefix("veth") }?.name ?? ""
            #expect(lab.exec(c1, "cat /proc/sys/net/core/somaxconn").out.trimmingCharacters(in: .whitespacesAndNewlines) == "777")
            #expect(lab.exec(lab.host, "tc qdisc show dev \(hostVeth)").out.contains("tbf"), "bandwidth: no tbf on \(hostVeth)")
            #expect(lab.exec(lab.host, "iptables -S CNI-FORWARD").out.contains(ip), "firewall: \(ip) not in CNI-FORWARD")
            #expect(lab.ping(lab.host, ip))
            let chk = try lab.libcni("check", "meta", "ctr1", c1, path: path, caps: caps, args: "IgnoreUnknown=1")
            #expect(chk.status == 0, "\(chk.err)")
            let d = try lab.libcni("del", "meta", "ctr1", c1, path: path, caps: caps, args: "IgnoreUnknown=1")
            #expect(d.status == 0, "\(d.err)")
            #expect(lab.links(c1) == ["lo"])
            #expect(lab.allocations("meta").isEmpty)
            #expect(!lab.exec(lab.host, "iptables -S CNI-FORWARD").out.contains(ip))
            #expect(!lab.ruleset(lab.host).contains("18220"))
        }
    }
}

/// State files the lab holds (see `Lab.files`), but the conflists and the DNS server's log,
/// once the DNS server had time to exit (it does when it serves no record).
func stateFilesLeft(_ lab: Lab) -> [String] {
    #expect(lab.dnsServerExited(), "the DNS server still runs")
    return lab.files().filter { !$0.hasPrefix("net.d/") && !$0.hasSuffix(".log") && !$0.hasSuffix(".conflist") && !$0.hasPrefix("ready-") }
}

@Suite(.serialized, .enabled(if: isRoot && hasContainerd, "needs root and containerd (scripts/deps.sh test installs it)"))
struct ContainerdRuntime {
    /// containerd 1.6's `ctr run --cni` starts a real container on our network; it is
    /// reachable, and its end (DEL with an empty CNI_NETNS) leaves nothing
    /// (scripts/callers/containerd-test.sh).
    @Test func ctrRunCNI() throws {
        let r = run(["/bin/bash", repoRoot + "/scripts/callers/containerd-test.sh", buildDir])
        #expect(r.status == 0, "\(r.out)\n\(r.err)")
        #expect(r.out.contains("answers from the host"), "\(r.out)")
        #expect(r.out.contains("containerd-test: ok"), "\(r.out)\n\(r.err)")
    }

    /// The same with the Go reference plugins: the harness itself is right.
    @Test(.enabled(if: hasReference)) func ctrRunCNIReference() throws {
        let r = run(["/bin/bash", repoRoot + "/scripts/callers/containerd-test.sh", referenceBin, "reference"])
        #expect(r.status == 0, "\(r.out)\n\(r.err)")
        #expect(r.out.contains("containerd-test: ok"), "\(r.out)\n\(r.err)")
    }
}
