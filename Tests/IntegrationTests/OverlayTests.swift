import Foundation
import Testing
@testable import Base
@testable import CNI

let hasEtcd = FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd")

@Suite(.serialized, .enabled(if: isRoot && hasEtcd, "needs root and etcd (scripts/deps.sh test installs it)"))
struct MultiHostOverlay {
    /// scripts/overlay/multihost-test.py: a 3-member etcd cluster, three simulated hosts,
    /// 3 × 50 containers in parallel, deletes, an etcd member killed mid-churn, an agent
    /// restart, etcd down, bad input.
    @Test func multiHost() throws {
        let r = run(["/usr/bin/env", "python3", repoRoot + "/scripts/overlay/multihost-test.py", buildDir, "--per-host", "50"])
        #expect(r.status == 0, "\(r.out)\n\(r.err)")
        #expect(r.out.contains("multihost: all checks passed"), "\(r.out)\n\(r.err)")
        for what in ["mesh", "late-peer", "ipv6", "parallel", "delete", "gc", "retry", "etcd-kill", "agent", "agent-kill", "etcd-down", "bad-input", "reclaim"] {
            #expect(r.out.contains("multihost: ok \(what):"), "\(what) did not pass")
        }
    }

    /// scripts/overlay/stress-test.py: 20 rounds of 3 hosts × 6 containers added at once on a
    /// two-subnet overlay network with DNS; each container reaches and resolves every other
    /// within 1 s of the last ADD; all DELs at once leave nothing; rounds with an agent killed
    /// -9 and an etcd member restarted mid-round.
    @Test func stress() throws {
        let r = run(["/usr/bin/env", "python3", repoRoot + "/scripts/overlay/stress-test.py", buildDir, "--rounds", "20"])
        #expect(r.status == 0, "\(r.out)\n\(r.err)")
        #expect(r.out.contains("stress: all rounds passed"), "\(r.out)\n\(r.err)")
        for round in 0..<20 { #expect(r.out.contains(String(format: "stress: round %2d ok", round)), "round \(round)") }
    }

    /// etcd unreachable (nothing listens there): ADD fails with code 11 within the bound, and
    /// creates nothing — no link on either side, no state.
    @Test func unreachableEtcdIsCode11AndCreatesNothing() throws {
        try withLab { lab in
            let c1 = try lab.container("c1")
            let conf = #"{"cniVersion":"1.1.0","name":"ov","type":"overlay","vni":78,"underlay":"lo","etcd":{"endpoints":["http://127.0.0.1:1"],"timeoutMs":500},"ipam":{"type":"host-local","dataDir":"\#(lab.dataDir)","subnet":"10.236.0.0/24"}}"#
            let before = lab.links(lab.host)
            let start = Date()
            let r = lab.plugin("overlay", "ADD", config: conf, containerID: "x1", netns: c1)
            #expect(r.error?.code == .tryAgainLater, "\(r.stdout)")
            #expect(r.error?.msg.contains("127.0.0.1:1") == true, "\(r.stdout)")
            #expect(Date().timeIntervalSince(start) < 5)
            #expect(lab.links(lab.host) == before)
            #expect(lab.links(c1) == ["lo"])
            #expect(lab.allocations("ov").isEmpty)
        }
    }
}
