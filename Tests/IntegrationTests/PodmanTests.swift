import Foundation
import Testing
@testable import Base
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
        let out = r.out.replacingOccurrences(of: "\u{1B}[1m", with: "").replacingOccurrences(of: "\u{1B}[0m", with: "")
        // Walkthrough outcomes, in order of the demo.
        for expected in [
            "64 bytes from container3 (172.25.3.3)",                       // names on a user-defined network
            "(no name resolution on the default bridge)",
            "(container3 and container1 share no network)",
            "64 bytes from container5",                                   // c5, the link declared before its target
            "(c5 is an alias of container4 only)",
            "could not get container for no_such_container",             // legacy links: the target must exist
            "DB_ENV_DB_PASSWORD=example",                                 // … and give their variables
            "DB_PORT_5432_TCP_PORT=5432",
            "(c5 is gone with the disconnect)",
            "hello from nginx (a container on simple-network3)",         // host_binding_ipv4 present
            "cannot assign requested address 172.233.0.1 (hostBindingIPv4)",  // … and absent
            "requested IP 172.25.9.9 is already allocated",              // stale endpoint, then disconnect -f
            "network isolated_nw has active endpoints (name:",           // rm refused, then accepted
            "64 bytes from web-on-host1",                                // overlay across hosts, by name
            "64 bytes from db-on-host2",
            "network my-multihost-network has active endpoints (name:\"db-on-host2\"",  // global: rm refused while host2 uses it
        ] {
            #expect(out.contains(expected), "demo output lacks \"\(expected)\"")
        }
        // The shared alias answered with both containers.
        #expect(out.contains("$ cnictl exec container4 -- dig +short app\n172.25."), "\(out)")
        // Its namespaces and processes are gone.
        let left = run([ipCommand, "netns", "list"]).out.split(separator: "\n").filter {
            $0.hasPrefix("swd") || $0.hasPrefix("container") || $0.hasPrefix("nginx") || $0.hasPrefix("redis_db") || $0.hasPrefix("web-on-host1") || $0.hasPrefix("db-on-host2")
        }
        #expect(left.isEmpty, "\(left)")
        #expect(run(["/usr/bin/pgrep", "-f", "swiftcni-demo-"]).status == 1, "a process of the demo is left")
}
}

@Suite(.enabled(if: isRoot, "needs root (network namespaces)"))
struct ExampleNetworks {
    static let files: [String] = {
        let dir = repoRoot + "/conf.d"
        // The bridge networks (the overlay example needs etcd and hosts: the multi-host test runs that shape).
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter {
            $0.hasSuffix(".conflist") && ((try? String(contentsOfFile: dir + "/" + $0, encoding: .utf8))?.contains("\"type\": \"bridge\"") ?? false)
        }.sorted()
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
