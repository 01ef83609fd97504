import Testing
@testable import Base
@testable import CNI

@Suite struct Addresses {
    @Test(arguments: [
        ("10.1.2.3", "10.1.2.3"), ("0.0.0.0", "0.0.0.0"), ("255.255.255.255", "255.255.255.255"),
        ("::", "::"), ("::1", "::1"), ("fd00::", "fd00::"), ("FD00:0:0:0:0:0:0:1", "fd00::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"), ("2001:0db8:0000:0000:0000:ff00:0042:8329", "2001:db8::ff00:42:8329"),
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"), ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"), ("::ffff:10.1.2.3", "10.1.2.3"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"), ("fe80::1:0", "fe80::1:0"),
    ])
    func parseAndFormat(_ input: String, _ out: String) {
        #expect(IPAddress(input)?.description == out)
    }

    @Test(arguments: ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.-4", "a.b.c.d", ":::", "1::2::3",
                      "12345::", "1:2:3:4:5:6:7:8:9", ":1:2", "1:2:", "g::1", "1.2.3.4/24", " 1.2.3.4", "::1.2.3"])
    func rejects(_ input: String) {
        #expect(IPAddress(input) == nil, "\(input)")
    }

    @Test func prefixes() throws {
        let n = try #require(IPNetwork("10.1.2.3/24"))
        #expect(n.networkAddress.description == "10.1.2.0")
        #expect(n.lastAddress.description == "10.1.2.255")
        #expect(n.hasHostBits)
        #expect(n.contains(IPAddress("10.1.2.200")!))
        #expect(!n.contains(IPAddress("10.1.3.1")!))
        #expect(!n.contains(IPAddress("fd00::1")!))
        let v6 = try #require(IPNetwork("fd00:1::/64"))
        #expect(v6.lastAddress.description == "fd00:1::ffff:ffff:ffff:ffff")
        #expect(v6.size == UInt128(1) << 64)
        #expect(IPNetwork("0.0.0.0/0")!.contains(IPAddress("8.8.8.8")!))
        #expect(IPNetwork("10.0.0.0/8")!.overlaps(IPNetwork("10.5.0.0/16")!))
        #expect(!IPNetwork("10.0.0.0/16")!.overlaps(IPNetwork("10.1.0.0/16")!))
        for bad in ["10.0.0.0/33", "10.0.0.0/", "10.0.0/24", "fd00::/129", "10.0.0.0/024", "10.0.0.0/a", "10.0.0.0"] {
            #expect(IPNetwork(bad) == nil, "\(bad)")
        }
    }

    @Test func arithmetic() {
        #expect(IPAddress("10.0.0.255")!.next().description == "10.0.1.0")
        #expect(IPAddress("255.255.255.255")!.next().description == "0.0.0.0")
        #expect(IPAddress("fd00::ffff")!.next().description == "fd00::1:0")
        #expect(IPAddress("10.0.0.1")! < IPAddress("10.0.0.2")!)
        #expect(IPAddress("255.0.0.0")! < IPAddress("::")!)
    }

    @Test func macs() {
        #expect(MACAddress("AA:bb:0c:dd:ee:0F")?.description == "aa:bb:0c:dd:ee:0f")
        #expect(MACAddress("aa-bb-cc-dd-ee-ff")?.description == "aa:bb:cc:dd:ee:ff")
        #expect(MACAddress("aa:bb:cc:dd:ee") == nil)
        #expect(MACAddress("zz:bb:cc:dd:ee:ff") == nil)
        let r = MACAddress.random()
        #expect(r.bytes[0] & 0x03 == 0x02)  // locally administered unicast
    }
}

@Suite struct Environment {
    func env(_ d: [String: String]) -> (String) -> String? { { d[$0] } }
    let full = ["CNI_COMMAND": "ADD", "CNI_CONTAINERID": "abc-1.x_y", "CNI_NETNS": "/run/netns/x", "CNI_IFNAME": "eth0",
                "CNI_PATH": "/a:/b", "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=web"]

    @Test func readsEverything() throws {
        let e = try CNIEnvironment.from(env(full))
        #expect(e.command == .add)
        #expect(e.containerID == "abc-1.x_y")
        #expect(e.path == ["/a", "/b"])
        #expect(e.arg("K8S_POD_NAME") == "web")
        #expect(e.args.count == 2)
    }

    @Test(arguments: [
        ("CNI_COMMAND", nil, "CNI_COMMAND is not set"),
        ("CNI_COMMAND", "FOO", "CNI_COMMAND \"FOO\" is not one of"),
        ("CNI_CONTAINERID", nil, "CNI_CONTAINERID is required"),
        ("CNI_CONTAINERID", "-abc", "CNI_CONTAINERID \"-abc\" is invalid"),
        ("CNI_CONTAINERID", "a b", "CNI_CONTAINERID \"a b\" is invalid"),
        ("CNI_CONTAINERID", "a/b", "CNI_CONTAINERID \"a/b\" is invalid"),
        ("CNI_NETNS", nil, "CNI_NETNS is required for ADD"),
        ("CNI_IFNAME", nil, "CNI_IFNAME is required"),
        ("CNI_IFNAME", "0123456789abcdef", "longer than 15"),
        ("CNI_IFNAME", "a/b", "may not contain"),
        ("CNI_IFNAME", "a:b", "may not contain"),
        ("CNI_IFNAME", "a b", "may not contain"),
        ("CNI_IFNAME", ".", "may not be"),
        ("CNI_IFNAME", "..", "may not be"),
        ("CNI_ARGS", "FOO", "invalid pair \"FOO\""),
        ("CNI_ARGS", "=x", "invalid pair \"=x\""),
    ] as [(String, String?, String)])
    func invalid(_ key: String, _ value: String?, _ msg: String) {
        var d = full
        d[key] = value
        do {
            _ = try CNIEnvironment.from(env(d))
            Issue.record("accepted \(key)=\(value ?? "<unset>")")
        } catch {
            #expect(error.code == .invalidEnvironment)
            #expect(error.msg.contains(msg), "\(error.msg)")
        }
    }

    @Test func requiredVariablesPerVerb() throws {
        // DEL needs no netns; GC, STATUS and VERSION need only the command.
        var d = full
        d["CNI_COMMAND"] = "DEL"
        d["CNI_NETNS"] = nil
        #expect(try CNIEnvironment.from(env(d)).command == .del)
        for c in ["GC", "STATUS", "VERSION"] {
            #expect(try CNIEnvironment.from(env(["CNI_COMMAND": c])).command.rawValue == c)
        }
        d = full
        d["CNI_COMMAND"] = "CHECK"
        d["CNI_NETNS"] = nil
        #expect(throws: CNIError.self) { try CNIEnvironment.from(env(d)) }
    }

    @Test func unknownArgs() throws {
        var d = full
        d["CNI_ARGS"] = "FOO=1;K8S_POD_NAME=x"
        let e = try CNIEnvironment.from(env(d))
        #expect(throws: CNIError(.invalidEnvironment, "CNI_ARGS: unknown key(s) \"FOO\" (set IgnoreUnknown=1 to ignore)")) {
            try e.validateArgs(known: ["IP"])
        }
        try e.validateArgs(known: ["FOO"])
        d["CNI_ARGS"] = "FOO=1;IgnoreUnknown=true"
        try CNIEnvironment.from(env(d)).validateArgs(known: [])
        d["CNI_ARGS"] = "IgnoreUnknown=maybe"
        #expect(throws: CNIError.self) { try CNIEnvironment.from(env(d)).validateArgs(known: []) }
    }
}

@Suite struct Results {
    static let v11 = CNIResult(
        interfaces: [CNIInterface(name: "br0", mac: "aa:bb:cc:dd:ee:01"),
                     CNIInterface(name: "eth0", mac: "aa:bb:cc:dd:ee:02", mtu: 1400, sandbox: "/run/netns/c", pciID: "0000:01:00.0")],
        ips: [CNIIPConfig(interface: 1, address: IPNetwork("10.1.0.5/24")!, gateway: IPAddress("10.1.0.1")),
              CNIIPConfig(interface: 1, address: IPNetwork("fd00::5/64")!)],
        routes: [CNIRoute(dst: IPNetwork("0.0.0.0/0")!, gw: IPAddress("10.1.0.1"), mtu: 1300, priority: 10, table: 100)],
        dns: CNIDNS(nameservers: ["10.1.0.1"], domain: "x", search: ["a", "b"], options: ["ndots:2"]))

    @Test(arguments: CNIVersion.supported)
    func writesEachVersion(_ v: String) throws {
        let j = Results.v11.json(version: v)
        #expect(j["cniVersion"] == .string(v))
        let ip0 = j["ips"]?.arrayValue?[0]
        if CNIVersion.atLeast(v, "1.0.0") {
            #expect(ip0?["version"] == nil)
            #expect(j["interfaces"]?.arrayValue?[1]["mtu"]?.intValue == 1400)
            #expect(j["routes"]?.arrayValue?[0]["table"]?.intValue == 100)
        } else {
            #expect(ip0?["version"] == .string("4"))
            #expect(j["ips"]?.arrayValue?[1]["version"] == .string("6"))
            #expect(j["interfaces"]?.arrayValue?[1]["mtu"] == nil)
            #expect(j["interfaces"]?.arrayValue?[1]["pciID"] == nil)
            #expect(j["routes"]?.arrayValue?[0]["table"] == nil)
        }
    }

    @Test(arguments: CNIVersion.supported, CNIVersion.supported)
    func convertsBetweenVersions(_ from: String, _ to: String) throws {
        // Write in `from`, read back, write in `to`: addresses, routes, DNS survive.
        let back = try CNIResult(json: Results.v11.json(version: from))
        let out = back.json(version: to)
        let again = try CNIResult(json: out)
        #expect(again.ips == Results.v11.ips)
        #expect(again.dns == Results.v11.dns)
        #expect(again.routes.map(\.dst) == Results.v11.routes.map(\.dst))
        #expect(again.routes.map(\.gw) == Results.v11.routes.map(\.gw))
        #expect(again.interfaces.map(\.name) == ["br0", "eth0"])
        #expect(again.interfaces.map(\.sandbox) == [nil, "/run/netns/c"])
        if CNIVersion.atLeast(from, "1.0.0") && CNIVersion.atLeast(to, "1.0.0") {
            var want = Results.v11
            want.cniVersion = to
            #expect(again == want)
        }
    }

    @Test func readsAnOldResult() throws {
        let old = try JSON.parse(#"{"cniVersion":"0.3.1","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"version":"4","interface":0,"address":"10.0.0.2/16","gateway":"10.0.0.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{}}"#)
        let r = try CNIResult(json: old)
        #expect(r.ips[0].address.description == "10.0.0.2/16")
        #expect(r.dns.isEmpty)
    }

    @Test func rejectsInconsistentResults() throws {
        #expect(throws: CNIError.self) {
            try CNIResult(json: JSON.parse(#"{"cniVersion":"0.4.0","ips":[{"version":"6","address":"10.0.0.2/16"}]}"#))
        }
        #expect(throws: CNIError.self) {
            try CNIResult(json: JSON.parse(#"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2"}]}"#))
        }
        #expect(throws: CNIError.self) {
            try CNIResult(json: JSON.parse(#"{"cniVersion":"1.0.0","routes":[{"dst":"0.0.0.0/0","gw":"fd00::1"}]}"#))
        }
    }
}

/// A plugin that records which verb ran.
struct Recorder: CNIPlugin {
    nonisolated(unsafe) static var calls: [String] = []
    func add(_ req: CNIRequest) throws -> CNIResult {
        Recorder.calls.append("ADD")
        return CNIResult(ips: [CNIIPConfig(address: IPNetwork("10.0.0.2/24")!)])
    }
    func del(_ req: CNIRequest) throws { Recorder.calls.append("DEL") }
    func check(_ req: CNIRequest) throws { Recorder.calls.append("CHECK") }
    func gc(_ req: CNIRequest) throws { Recorder.calls.append("GC:\(try req.validAttachments().count)") }
    func status(_ req: CNIRequest) throws { throw CNIError(.notAvailable, "not ready") }
}

@Suite(.serialized) struct Requests {
    func request(_ cmd: CNICommand, _ config: String) throws -> CNIRequest {
        let env = try CNIEnvironment(command: cmd, containerID: "c1", netns: "/x", ifname: "eth0")
        return try CNIRequest(env: env, configBytes: Array(config.utf8))
    }

    @Test func everyVerbDispatches() throws {
        Recorder.calls = []
        let cfg = #"{"cniVersion":"1.1.0","name":"n","type":"recorder","cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}]}"#
        let add = try CNIMain.dispatch(Recorder(), try request(.add, cfg))
        #expect(add?["ips"]?.arrayValue?.count == 1)
        #expect(add?["cniVersion"] == .string("1.1.0"))
        _ = try CNIMain.dispatch(Recorder(), try request(.del, cfg))
        _ = try CNIMain.dispatch(Recorder(), try request(.check, cfg))
        _ = try CNIMain.dispatch(Recorder(), try request(.gc, cfg))
        #expect(throws: CNIError(.notAvailable, "not ready")) { try CNIMain.dispatch(Recorder(), try request(.status, cfg)) }
        let v = try CNIMain.dispatch(Recorder(), try request(.version, cfg))
        #expect(v?["supportedVersions"]?.arrayValue?.count == CNIVersion.supported.count)
        #expect(Recorder.calls == ["ADD", "DEL", "CHECK", "GC:1"])
    }

    @Test func answersInTheConfigVersion() throws {
        let out = try CNIMain.dispatch(Recorder(), try request(.add, #"{"cniVersion":"0.3.1","name":"n"}"#))
        #expect(out?["cniVersion"] == .string("0.3.1"))
        #expect(out?["ips"]?.arrayValue?[0]["version"] == .string("4"))
    }

    @Test func validAttachmentsUnderBothKeys() throws {
        let a = try request(.gc, #"{"cniVersion":"1.1.0","name":"n","cni.dev/attachments":[{"containerID":"x","ifname":"eth1"}]}"#)
        #expect(try a.validAttachments() == [Base.Attachment(containerID: "x", ifname: "eth1")])
        let b = try request(.gc, #"{"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":[]}"#)
        #expect(try b.validAttachments().isEmpty)
    }

    @Test(arguments: [
        ("{", CNIErrorCode.decodingFailure, "not valid JSON"),
        ("[]", .decodingFailure, "must be a JSON object"),
        (#"{"name":"n"}"#, .incompatibleVersion, "\"cniVersion\" is missing"),
        (#"{"cniVersion":"9.9.9","name":"n"}"#, .incompatibleVersion, "\"cniVersion\" \"9.9.9\" is not supported"),
        (#"{"cniVersion":"0.2.0","name":"n"}"#, .incompatibleVersion, "\"cniVersion\" \"0.2.0\" is not supported"),
        (#"{"cniVersion":1,"name":"n"}"#, .decodingFailure, "\"cniVersion\": expected a string"),
        (#"{"cniVersion":"1.0.0"}"#, .invalidConfig, "\"name\" (the network name) is required"),
        (#"{"cniVersion":"1.0.0","name":"a b"}"#, .invalidConfig, "\"name\" \"a b\" is invalid"),
    ])
    func rejectsBadConfig(_ cfg: String, _ code: CNIErrorCode, _ msg: String) {
        do {
            _ = try request(.add, cfg)
            Issue.record("accepted \(cfg)")
        } catch let e as CNIError {
            #expect(e.code == code)
            #expect(e.msg.contains(msg), "\(e.msg)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func verbsNeedTheirVersion() {
        #expect(throws: CNIError.self) { try request(.gc, #"{"cniVersion":"1.0.0","name":"n"}"#) }
        #expect(throws: CNIError.self) { try request(.status, #"{"cniVersion":"0.4.0","name":"n"}"#) }
        #expect(throws: CNIError.self) { try request(.check, #"{"cniVersion":"0.3.1","name":"n"}"#) }
    }

    @Test func prevResultIsParsed() throws {
        let r = try request(.check, #"{"cniVersion":"1.0.0","name":"n","prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.9/8"}]}}"#)
        #expect(try r.prevResult()?.ips.first?.address.description == "10.0.0.9/8")
    }
}

@Suite struct Errors {
    /// Every code the suite declares, and only those: the README's table lists the same.
    @Test func everyCodeDeclaredOnce() throws {
        let codes = CNIErrorCode.all.map(\.rawValue)
        #expect(codes == [1, 2, 3, 4, 5, 6, 7, 11, 50, 51, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 999])
        #expect(Set(codes).count == codes.count)
        // The README documents each of them.
        let root = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        let readme = try #require(try Posix.readText(root + "/README.md"))
        for c in codes where c != 999 {
            let row = c == 50 || c == 51 ? "| 50 / 51 |" : "| \(c) |"
            #expect(readme.contains(row), "README has no row for code \(c)")
        }
    }

    @Test(arguments: CNIErrorCode.all)
    func errorJSON(_ code: CNIErrorCode) throws {
        let c = code.rawValue
        let e = CNIError(code, "m \(c)", details: "d")
        let j = e.json(cniVersion: "1.0.0")
        #expect(j.serialized() == #"{"cniVersion":"1.0.0","code":\#(c),"msg":"m \#(c)","details":"d"}"#)
        #expect(CNIError.from(json: j) == e)
    }

    /// The one mapping: each kind of failure a lower module reports gets its code.
    @Test(arguments: [
        (FailureKind.io, 5), (.kernel, 100), (.namespaceMissing, 3), (.notANamespace, 4), (.malformed, 6), (.invalidArgument, 7),
        (.conflict, 107), (.hostAddressMissing, 106), (.hostFirewall, 108), (.differs, 105), (.daemon(.dnsServer), 109),
        (.storeFailed, 110), (.daemon(.overlayAgent), 111), (.unavailable, 11),
    ] as [(FailureKind, Int)])
    func mapping(_ kind: FailureKind, _ code: Int) {
        struct Lower: ClassifiedError { var kind: FailureKind; var description: String { "what happened" } }
        let e = CNIError(Lower(kind: kind))
        #expect(e.code.rawValue == code)
        #expect(e.msg == (kind == .namespaceMissing || kind == .notANamespace ? "CNI_NETNS: what happened" : "what happened"))
    }

    @Test func unclassifiedIsABug() {
        struct Stray: Error {}
        #expect(CNIError(Stray()).code == .internal)
        #expect(CNIError(CNIError(.etcd, "kept")) == CNIError(.etcd, "kept"))
        #expect(CNIError.wrap(SystemError("open", "/x", errno: 2), context: "state").msg == "state: open /x: No such file or directory (errno 2)")
    }

    @Test func detailsOmittedWhenEmpty() {
        #expect(CNIError(.invalidConfig, "x").json(cniVersion: "0.4.0").serialized() == #"{"cniVersion":"0.4.0","code":7,"msg":"x"}"#)
    }

    @Test func versionAnswer() {
        #expect(CNIVersion.versionInfo(answering: "0.4.0").serialized() ==
                #"{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}"#)
        #expect(CNIVersion.versionInfo(answering: nil)["cniVersion"] == .string("1.1.0"))
        #expect(CNIVersion.highestSupported(of: ["0.4.0", "1.0.0", "2.0.0"]) == "1.0.0")
    }
}

@Suite struct Teardowns {
    struct Failed: ClassifiedError { var kind: FailureKind; var description: String }

    @Test func collectsErrorsAndStopsOnlyWhereUnsafe() {
        var ran: [String] = []
        var t = Teardown()
        t.add("firewall") { ran.append("firewall") }
        t.add("etcd") { ran.append("etcd"); throw Failed(kind: .unavailable, description: "etcd unreachable") }
        t.add("devices") { ran.append("devices"); throw Failed(kind: .kernel, description: "device busy") }
        t.add("dns") { ran.append("dns") }
        do {
            try t.run()
            Issue.record("no error")
        } catch {
            let e = CNIError.wrap(error)
            #expect(e.code == .tryAgainLater)  // the first failure's code
            #expect(e.msg == "etcd: etcd unreachable; devices: device busy")
        }
        #expect(ran == ["firewall", "etcd", "devices", "dns"])
    }

    @Test func aStopStepEndsTheRun() {
        var ran: [String] = []
        var t = Teardown()
        t.add("firewall", onFailure: .stop) { ran.append("firewall"); throw Failed(kind: .kernel, description: "nft: EPERM") }
        t.add("veth") { ran.append("veth") }
        #expect(throws: CNIError(.kernel, "nft: EPERM")) { try t.run() }
        #expect(ran == ["firewall"])
    }

    @Test func undoRunsBackwardsAndSwallowsErrors() {
        var ran: [String] = []
        var t = Teardown()
        t.add("a") { ran.append("a") }
        t.add("b") { ran.append("b"); throw Failed(kind: .io, description: "x") }
        t.add("c") { ran.append("c") }
        t.undo()
        #expect(ran == ["c", "b", "a"])
        #expect(!t.isEmpty)
        #expect(throws: Never.self) { try Teardown().run() }
    }
}
