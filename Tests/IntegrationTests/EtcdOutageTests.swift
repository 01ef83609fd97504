// The first overlay ADD after an etcd outage succeeds. Every failed connection used to make
// async-http-client's pool wait longer before its next attempt (100 ms × 1.25ⁿ, reset only by
// a success), so after some seconds of outage the first request once etcd was back waited
// past its deadline and failed with the last "connection refused" (seen in a multi-host CI
// run). Driven as a runtime does: the overlay plugin, which asks its agent.

import Foundation
import Testing
import CNI

@Suite(.serialized, .enabled(if: isRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd"), "needs root and etcd"))
struct EtcdOutage {
    @Test func firstADDAfterAnOutageSucceeds() throws {
        try withLab { lab in
            var etcd = try lab.startEtcd(client: 23797, peer: 23807)
            defer { lab.stop(etcd) }
            let conf = #"{"cniVersion":"1.1.0","name":"outage","type":"overlay","vni":81,"underlay":"lo","etcd":{"endpoints":["http://127.0.0.1:23797"],"timeoutMs":1000},"ipam":{"type":"host-local","subnet":"10.238.0.0/24"}}"#
            let c1 = try lab.container("c1"), c2 = try lab.container("c2"), c3 = try lab.container("c3")
            let first = lab.plugin("overlay", "ADD", config: conf, containerID: "o1", netns: c1)
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            // About ten seconds of outage, with ADDs failing meanwhile (code 11, nothing made).
            lab.stop(etcd)
            let start = Date()
            var refused = 0
            while Date().timeIntervalSince(start) < 30 {
                let r = lab.plugin("overlay", "ADD", config: conf, containerID: "o2", netns: c2)
                #expect(r.status == 1 && r.error?.code == .tryAgainLater, "\(r.stdout)\(r.stderr)")
                refused += 1
            }
            #expect(refused >= 3)
            #expect(!lab.links(c2).contains("eth0"))
            // etcd back (the same data): the very next ADD works, well within its 1 s.
            etcd = try lab.startEtcd(client: 23797, peer: 23807)
            let t0 = Date()
            let after = lab.plugin("overlay", "ADD", config: conf, containerID: "o3", netns: c3)
            #expect(after.status == 0, "the first ADD after the outage: \(after.stdout)\(after.stderr)")
            #expect(Date().timeIntervalSince(t0) < 3)
            for (id, ns) in [("o1", c1), ("o3", c3)] {
                let d = lab.plugin("overlay", "DEL", config: conf, containerID: id, netns: ns)
                #expect(d.status == 0, "DEL \(id): \(d.stdout)\(d.stderr)")
            }
        }
    }
}
