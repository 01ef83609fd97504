import Foundation
import Testing
@testable import CNI

let hasEtcd = FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd")

@Suite(.enabled(if: isRoot && hasEtcd, "needs root and etcd (scripts/deps.sh test installs it)"))
struct MultiHostOverlay {
    /// scripts/overlay/multihost-test.py: a 3-member etcd cluster, three simulated hosts,
    /// 3 × 50 containers in parallel, deletes, an etcd member killed mid-churn, an agent
    /// restart, etcd down, bad input.
    @Test func multiHost() throws {
        let r = run(["/usr/bin/env", "python3", repoRoot + "/scripts/overlay/multihost-test.py", buildDir, "--per-host", "50"])
        #expect(r.status == 0, "\(r.out)\n\(r.err)")
        #expect(r.out.contains("multihost: all checks passed"), "\(r.out)\n\(r.err)")
        for what in ["mesh", "parallel", "delete", "etcd-kill", "agent", "etcd-down", "bad-input"] {
            #expect(r.out.contains("multihost: ok \(what):"), "\(what) did not pass")
        }
    }
}
