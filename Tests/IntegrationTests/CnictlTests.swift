import Foundation
import Testing
@testable import Base
@testable import CNI

@Suite(.enabled(if: isRoot, "needs root (network namespaces)"))
struct Cnictl {
    func setUpRecorder(_ lab: Lab) throws -> (bin: String, records: String) {
        let bin = lab.root + "/bin"
        let records = lab.root + "/records"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: records, withIntermediateDirectories: true)
        // The recording plugin (Tests/Helpers/recorder.py), installed under the type "recorder".
        try FileManager.default.copyItem(atPath: helper("recorder.py"), toPath: bin + "/recorder")
        chmod(bin + "/recorder", 0o755)
        return (bin, records)
    }

    func records(_ dir: String) -> [(String, JSON)] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
        return names.map { n in
            (String(n.split(separator: "-")[1]), try! JSON.parse(try! String(contentsOfFile: dir + "/" + n, encoding: .utf8)))
        }
    }

    @Test func netnsCommands() throws {
        try withLab { lab in
            let name = lab.id + "-made"
            #expect(lab.cnictl(["netns", "add", name]).status == 0)
            defer { run([ipCommand, "netns", "del", name]) }
            #expect(lab.cnictl(["netns", "ls"]).out.split(separator: "\n").contains(Substring(name)))
            let dup = lab.cnictl(["netns", "add", name])
            #expect(dup.status == 1)
            #expect(dup.err == "cnictl: network namespace \"\(name)\" already exists [code 7]\n")
            // It is a real network namespace: the bridge plugin can use it.
            #expect(FileManager.default.fileExists(atPath: "/run/netns/" + name))
            #expect(lab.exec(name, "\(ipCommand) -o link show").out.contains("lo:"))
            #expect(lab.cnictl(["netns", "del", name]).status == 0)
            #expect(!FileManager.default.fileExists(atPath: "/run/netns/" + name))
            let gone = lab.cnictl(["netns", "del", name])
            #expect(gone.status == 1)
            #expect(gone.err.contains("does not exist"))
        }
    }

    @Test func chainRunsLikeARuntime() throws {
        try withLab { lab in
            let (bin, recs) = try setUpRecorder(lab)
            let c1 = try lab.container("c1")
            let list = #"""
            {"cniVersions":["0.4.0","1.1.0","9.9.9"],"name":"chain","plugins":[
              {"type":"bridge","bridge":"\#(lab.bridgeName())","isGateway":true,"capabilities":{"ips":true},
               "ipam":{"type":"host-local","dataDir":"\#(lab.dataDir)","ranges":[[{"subnet":"10.140.0.0/24"}]]}},
              {"type":"recorder","capabilities":{"portMappings":true}, "custom":{"k":1.50}}]}
            """#
            try lab.writeConflist("chain", list)
            let env = ["RECORD_DIR": recs]
            func ctl(_ a: [String]) -> (status: Int32, out: String, err: String) {
                // Plugins from the recorder's dir and the build dir.
                var args = a
                args.insert(contentsOf: ["--cni-path", bin + ":" + buildDir], at: 1)
                return lab.cnictl(args, env: env)
            }
            let cap = #"{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}],"ips":["10.140.0.50/24"],"other":1}"#
            let add = ctl(["add", "chain", c1, "--cap", cap, "--args", "IgnoreUnknown=1;FOO=bar", "--container-id", "ctr-1"])
            #expect(add.status == 0, "\(add.err)")
            let result = try CNIResult(json: JSON.parse(add.out))
            #expect(result.cniVersion == "1.1.0")
            #expect(result.ips.first?.address.description == "10.140.0.50/24")
            #expect(lab.ping(c1, "10.140.0.1"))

            // What the second plugin received: injected name/version, prevResult, and only
            // the capabilities it declares.
            var r = records(recs)
            #expect(r.map(\.0) == ["ADD"])
            let stdin = r[0].1["stdin"]!
            #expect(stdin["name"] == .string("chain"))
            #expect(stdin["cniVersion"] == .string("1.1.0"))
            #expect(stdin["cniVersions"] == nil)
            #expect(r[0].1["raw"]?.stringValue?.contains(#""custom":{"k":1.50}"#) == true)
            #expect(stdin["runtimeConfig"]?.objectValue?.keys == ["portMappings"])
            #expect(stdin["prevResult"]?["ips"]?.arrayValue?.first?["address"] == .string("10.140.0.50/24"))
            let env1 = r[0].1["env"]!
            #expect(env1["CNI_CONTAINERID"] == .string("ctr-1"))
            #expect(env1["CNI_NETNS"] == .string("/run/netns/" + c1))
            #expect(env1["CNI_IFNAME"] == .string("eth0"))
            #expect(env1["CNI_ARGS"] == .string("IgnoreUnknown=1;FOO=bar"))

            // The libcni result cache.
            let cacheFile = lab.cacheDir + "/results/chain-ctr-1-eth0"
            let cache = try JSON.parse(String(contentsOfFile: cacheFile, encoding: .utf8))
            #expect(cache["kind"] == .string("cniCacheV1"))
            #expect(cache["containerId"] == .string("ctr-1"))
            #expect(cache["ifName"] == .string("eth0"))
            #expect(cache["networkName"] == .string("chain"))
            #expect(cache["netns"] == .string("/run/netns/" + c1))
            #expect(Data(base64Encoded: cache["config"]!.stringValue!) == Data(list.utf8))
            #expect(cache["result"]?["ips"]?.arrayValue?.first?["address"] == .string("10.140.0.50/24"))
            #expect(cache["cniArgs"]?.arrayValue?.count == 2)

            // CHECK gets the cached result; DEL runs in reverse, with the cached capability args.
            let chk = ctl(["check", "chain", c1, "--container-id", "ctr-1"])
            #expect(chk.status == 0, "\(chk.err)")
            let del = ctl(["del", "chain", c1, "--container-id", "ctr-1"])
            #expect(del.status == 0, "\(del.err)")
            r = records(recs)
            #expect(r.map(\.0) == ["ADD", "CHECK", "DEL"])
            #expect(r[1].1["stdin"]?["prevResult"]?["ips"]?.arrayValue?.count == 1)
            #expect(r[2].1["stdin"]?["prevResult"]?["ips"]?.arrayValue?.count == 1)
            #expect(r[2].1["stdin"]?["runtimeConfig"]?["portMappings"]?.arrayValue?.count == 1)
            #expect(r[2].1["env"]?["CNI_ARGS"] == .string("IgnoreUnknown=1;FOO=bar"))
            #expect(!FileManager.default.fileExists(atPath: cacheFile))
            #expect(lab.allocations("net").isEmpty)
            #expect(lab.allocations("chain").isEmpty)
            // The bridge (created by the ADD) is gone with its last port.
            #expect(lab.links(lab.host) == ["lo"])
        }
    }

    @Test func addCheckDelGcStatusVersion() throws {
        try withLab { lab in
            let c1 = try lab.container("c1"), c2 = try lab.container("c2")
            try lab.writeConflist("mynet", #"""
            {"cniVersion":"1.1.0","name":"mynet","plugins":[{"type":"bridge","bridge":"\#(lab.bridgeName())","isGateway":true,
             "ipam":{"type":"host-local","dataDir":"\#(lab.dataDir)","ranges":[[{"subnet":"10.141.0.0/24"}]]}}]}
            """#)
            #expect(lab.cnictl(["add", "mynet", c1]).status == 0)
            #expect(lab.cnictl(["add", "mynet", lab.path(c2)]).status == 0)
            #expect(lab.ping(c1, "10.141.0.3"))
            #expect(lab.cnictl(["check", "mynet", c1]).status == 0)
            #expect(lab.cnictl(["status", "mynet"]).out == "mynet: ready\n")
            let v = lab.cnictl(["version", "mynet"])
            #expect(v.out.hasPrefix("bridge: {\"cniVersion\":\"1.1.0\",\"supportedVersions\":["))
            // c2 disappears without a DEL; GC removes its attachment, keeps c1's.
            run([ipCommand, "netns", "del", c2])
            #expect(lab.cnictl(["gc", "mynet"]).status == 0)
            #expect(lab.allocations("mynet") == ["10.141.0.2"])
            #expect(lab.cnictl(["del", "mynet", c1]).status == 0)
            #expect(lab.cnictl(["del", "mynet", c1]).status == 0)
            let chk = lab.cnictl(["check", "mynet", c1])
            #expect(chk.status == 1)
            #expect(chk.err.hasPrefix("cnictl: no cached result for network \"mynet\""))
            #expect(lab.allocations("mynet").isEmpty)
        }
    }

    @Test func errorsAreOneLine() throws {
        try withLab { lab in
            let c1 = try lab.container("c1")
            try lab.writeConflist("bad", #"{"cniVersion":"1.0.0","name":"bad","plugins":[{"type":"bridge","ipam":{"type":"host-local","dataDir":"\#(lab.dataDir)","ranges":[[{"subnet":"10.0.0.0/33"}]]}}]}"#)
            let r = lab.cnictl(["add", "bad", c1])
            #expect(r.status == 1)
            #expect(r.err == "cnictl: plugin type=\"bridge\" failed (add): \"ipam.ranges[0][0].subnet\" \"10.0.0.0/33\": not a CIDR (address/prefix) [code 7]\n")
            let missing = lab.cnictl(["add", "nope", c1])
            #expect(missing.status == 1)
            #expect(missing.err == "cnictl: no network named \"nope\" in \(lab.confDir)\n")
            let badCap = lab.cnictl(["add", "bad", c1, "--cap", "[1]"])
            #expect(badCap.err.contains("--cap / CAP_ARGS must be a JSON object"))
            #expect(lab.cnictl(["add", "--help"]).out.contains("Examples:"))
        }
    }
}
