import Foundation
import Testing
@testable import Base

/// Overlay networks are global (issue 14, item 10): a network created with `-d overlay` on one
/// host shows in `network ls` (scope global) and `network inspect` of another host sharing the
/// store, is used there without `network create`, and `network rm` refuses while any host has a
/// container on it. Host A is the lab's host namespace, host B its "outside" namespace; they
/// share etcd on A's underlay address and their own VXLAN underlay (the veth between them).
@Suite(.enabled(if: isRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd"), "needs root and etcd"))
struct GlobalOverlay {
    @Test func seenAndUsedByEveryHost() throws {
        try withLab { lab in
            let hostB = try lab.outside()
            let etcd = Process()
            etcd.executableURL = URL(fileURLWithPath: nsenterCommand)
            etcd.arguments = ["--net=" + lab.path(lab.host), "etcd", "--name", "g", "--data-dir", lab.root + "/etcd-g",
                              "--listen-client-urls", "http://192.0.2.1:23811", "--advertise-client-urls", "http://192.0.2.1:23811",
                              "--listen-peer-urls", "http://127.0.0.1:23812", "--initial-advertise-peer-urls", "http://127.0.0.1:23812",
                              "--initial-cluster", "g=http://127.0.0.1:23812"]
            etcd.standardOutput = FileHandle.nullDevice
            etcd.standardError = FileHandle.nullDevice
            try etcd.run()
            let b = lab.root + "/hostB"
            defer {
                // Host B's daemons (the lab's cleanup knows host A's).
                if let pid = Lab.daemonPID(b + "/run/overlay/server.pid", "swiftcni-overlay-agent", b + "/run") { kill(pid, SIGKILL) }
                for d in (try? FileManager.default.contentsOfDirectory(atPath: b + "/run/dns")) ?? [] {
                    if let pid = Lab.daemonPID(b + "/run/dns/\(d)/server.pid", "swiftcni-dns", b + "/run") { kill(pid, SIGKILL) }
                }
                lab.stop(etcd)
            }
            var healthy = false
            for _ in 0..<100 where !healthy {
                healthy = lab.exec(lab.host, "etcdctl --endpoints=http://192.0.2.1:23811 endpoint health").status == 0
                if !healthy { usleep(50_000) }
            }
            try #require(healthy, "etcd did not start")
            // Each host's cnictl config: the store, and its own underlay address.
            for (root, addr) in [(lab.root + "/state", "192.0.2.1"), (b + "/state", "192.0.2.2")] {
                try FileManager.default.createDirectory(atPath: root + "/cnictl", withIntermediateDirectories: true)
                try #"{"kv": "etcd://192.0.2.1:23811", "underlay": "\#(addr)"}"#.write(toFile: root + "/cnictl/config.json", atomically: true, encoding: .utf8)
            }
            func onB(_ args: [String]) -> (status: Int32, out: String, err: String) {
                run([nsenterCommand, "--net=" + lab.path(hostB), buildDir + "/cnictl"] + args,
                    env: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SWIFTCNI_RUN_DIR": b + "/run", "SWIFTCNI_STATE_DIR": b + "/state",
                          "NETCONFPATH": b + "/conf", "CNI_PATH": buildDir, "CNI_CACHE_DIR": b + "/cache", "SWIFTCNI_HOST_ID": "hostb"])
            }
            let a1 = lab.id + "-ga", b1 = lab.id + "-gb"
            let id = DockerStyleCommands().ok(lab, ["network", "create", "-d", "overlay", "--subnet", "10.88.0.0/24", "gov"])
                .trimmingCharacters(in: .whitespacesAndNewlines)
            _ = DockerStyleCommands().ok(lab, ["run", "--name", a1, "--network", "gov"])
            // Host B sees it, global, with the same ID, without creating it.
            let ls = onB(["network", "ls", "--no-trunc", "--format", "{{.ID}} {{.Name}} {{.Driver}} {{.Scope}}"])
            #expect(ls.status == 0 && ls.out.split(separator: "\n").contains("\(id) gov overlay global"), "\(ls)")
            #expect(onB(["network", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Scope}} {{range .IPAM.Config}}{{.Subnet}}{{end}}", "gov"]).out
                    == "gov overlay global 10.88.0.0/24\n")
            // ... and uses it: its container reaches host A's by name, across the VXLAN.
            let r = onB(["run", "--name", b1, "--network", "gov"])
            #expect(r.status == 0, "\(r.err)")
            var reached = false
            for _ in 0..<30 where !reached {
                reached = onB(["exec", b1, "--", "ping", "-c", "1", "-W", "1", a1]).status == 0
                if !reached { usleep(100_000) }
            }
            #expect(reached, "\(b1) on host B cannot ping \(a1) on host A")
            // Removal is refused while any host has a container on it.
            _ = onB(["rm", b1])
            let refused = onB(["network", "rm", "gov"])
            let cid = try #require(try JSON.parse(DockerStyleCommands().ok(lab, ["inspect", a1])).arrayValue?.first?["Id"]?.stringValue)
            #expect(refused.status == 1 && refused.err.hasPrefix(
                "cnictl: error while removing network: network gov has active endpoints (name:\"\(a1)\" id:\"\(cid.prefix(12))\" host:"), "\(refused)")
            _ = DockerStyleCommands().ok(lab, ["rm", a1])
            #expect(onB(["network", "rm", "gov"]) == (0, "gov\n", ""))
            // The shared definition is gone from the store; host A's own copy goes with its rm.
            #expect(lab.exec(lab.host, "etcdctl --endpoints=http://192.0.2.1:23811 get --prefix /swiftcni/cnictl/ --keys-only").out
                        .trimmingCharacters(in: .whitespacesAndNewlines) == "")
            _ = DockerStyleCommands().ok(lab, ["network", "rm", "gov"])
        }
    }
}
