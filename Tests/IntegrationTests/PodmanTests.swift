import Foundation
import Testing
@testable import CNI

let hasPodman = FileManager.default.isExecutableFile(atPath: "/usr/bin/podman")
let repoRoot: String = {
    // Tests/IntegrationTests/PodmanTests.swift → repository root.
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
}()

@Suite(.enabled(if: isRoot && hasPodman, "needs root and podman (scripts/deps.sh test installs it)"))
struct PodmanRuntime {
    /// A real runtime: Podman 4.3 with its CNI backend runs two containers on a network of our
    /// bridge + host-local, and they ping each other (scripts/podman-test.sh).
    @Test func twoContainersPing() throws {
        let r = run(["/bin/bash", repoRoot + "/scripts/podman-test.sh", buildDir])
        #expect(r.status == 0, "\(r.out)\n\(r.err)")
        #expect(r.out.contains("podman-test: ok"), "\(r.out)\n\(r.err)")
        #expect(r.out.contains("2 packets received"))
    }
}

@Suite(.enabled(if: isRoot, "needs root (network namespaces)"))
struct Demo {
    /// The README's first command, with this build: it must run green and clean up.
    @Test func runsGreen() throws {
        let r = run(["/bin/bash", repoRoot + "/scripts/demo.sh"], env: ProcessInfo.processInfo.environment.merging(["SWIFTCNI_DEMO_BIN": buildDir]) { $1 })
        #expect(r.status == 0, "\(r.out)\n\(r.err)")
        #expect(r.out.contains("2 packets transmitted, 2 received"))
        #expect(r.out.contains("check: ok"))
        #expect(r.out.contains("\n10.88.0.2\n") && r.out.contains("\ndb.demo.test.\n"), "names resolved")
        #expect(r.out.components(separatedBy: "hello from demo-c3-").count == 4, "published port answered 3 times")
        #expect(run(["/usr/bin/pgrep", "-f", "swiftcni-demo-.*/www"]).status == 1, "the demo's web server is gone")
        #expect(r.out.contains("address 10.88.0.2/24 is missing from interface eth0 in the container [code 105]") || r.err.contains("[code 105]"))
        // Its namespaces (swiftcni-demo-<pid>, demo-c1/2/3-<pid>) are gone.
        let left = run([ipCommand, "netns", "list"]).out.split(separator: "\n").filter {
            $0.hasPrefix("swiftcni-demo-") || $0.hasPrefix("demo-c")
        }
        #expect(left.isEmpty, "\(left)")
    }
}

@Suite(.enabled(if: isRoot, "needs root (network namespaces)"))
struct ExampleNetworks {
    static let files: [String] = {
        let dir = repoRoot + "/conf.d"
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".conflist") }.sorted()
    }()

    @Test func thereAreExamples() { #expect(ExampleNetworks.files.count >= 6) }

    /// Every example conflist works as shipped (state redirected into the lab).
    @Test(arguments: files)
    func addsAndDeletes(_ file: String) throws {
        try withLab { lab in
            let c1 = try lab.container("c1"), c2 = try lab.container("c2")
            var list = try JSON.parse(String(contentsOfFile: repoRoot + "/conf.d/" + file, encoding: .utf8)).objectValue!
            var plugins = list["plugins"]!.arrayValue!
            var first = plugins[0].objectValue!
            first["bridge"] = .string(lab.bridgeName())
            var ipam = first["ipam"]!.objectValue!
            ipam["dataDir"] = .string(lab.dataDir)
            first["ipam"] = .object(ipam)
            plugins[0] = .object(first)
            list["plugins"] = .array(plugins)
            let name = list["name"]!.stringValue!
            try lab.writeConflist(name, JSON.object(list).serialized())
            let a = lab.cnictl(["add", name, c1])
            #expect(a.status == 0, "\(a.err)")
            #expect(lab.cnictl(["add", name, c2]).status == 0)
            let r = try CNIResult(json: JSON.parse(a.out))
            let second = lab.cnictl(["add", name, c2, "--ifname", "eth1"])
            #expect(second.status == 0, "\(second.err)")
            let other = try CNIResult(json: JSON.parse(second.out))
            #expect(lab.ping(c1, other.ips[0].address.address.description))
            #expect(r.routes.contains { $0.dst.prefixLength == 0 })
            // A published port: refused on the networks bound to an address this host lacks
            // (Docker: "cannot assign requested address"), published elsewhere.
            let c3 = try lab.container("c3")
            let binding = plugins.compactMap(\.objectValue).first { $0["type"]?.stringValue == "portmap" }?["hostBindingIPv4"]?.stringValue
            let p = lab.cnictl(["add", name, c3, "--cap", #"{"portMappings":[{"hostPort":8081,"containerPort":80,"protocol":"tcp"}]}"#])
            if let binding {
                #expect(p.status == 1)
                #expect(p.err.contains("cannot assign requested address \(binding)"), "\(p.err)")
                #expect(!lab.ruleset(lab.host).contains("8081"))
            } else {
                #expect(p.status == 0, "\(p.err)")
                #expect(lab.ruleset(lab.host).contains("8081"))
                #expect(lab.cnictl(["del", name, c3]).status == 0)
            }
            for c in [c1, c2] { #expect(lab.cnictl(["del", name, c]).status == 0) }
            #expect(lab.cnictl(["del", name, c2, "--ifname", "eth1"]).status == 0)
            #expect(lab.allocations(name).isEmpty)
        }
    }
}
