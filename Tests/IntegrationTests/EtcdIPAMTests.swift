// The overlay agent's address store in etcd when a member commits a claim and dies before
// answering: the client asks the next member, which refuses the claim as taken — by this
// very request. Driven as a runtime does: the overlay plugin, which asks its agent.

import Foundation
import Testing
import CNI

@Suite(.serialized, .enabled(if: isRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd"), "needs root and etcd"))
struct EtcdClaimsAnswerLost {
    /// A real etcd behind Tests/Helpers/lossy-proxy.py, which passes the first `/v3/kv/txn`
    /// on the address block 10.237.0.0/26 (the claim, with the endpoint) on and then closes
    /// the connection instead of answering; the configuration lists the proxy first and the
    /// member itself second.
    func withLossyEtcd(_ body: (Lab, String, String) throws -> Void) throws {
        try withLab { lab in
            let c1 = try lab.container("c1")
            let etcd = try lab.startEtcd(client: 23793, peer: 23803)
            defer { lab.stop(etcd) }
            let proxy = Process()
            proxy.executableURL = URL(fileURLWithPath: nsenterCommand)
            proxy.arguments = ["--net=" + lab.path(lab.host), "python3", helper("lossy-proxy.py"), "23794", "23793", "/v3/kv/txn", "1",
                               Data("/swiftcni/networks/lossy/ipam/blocks/10.237.0.0-26".utf8).base64EncodedString()]
            let out = Pipe()
            proxy.standardOutput = out
            try proxy.run()
            defer { lab.stop(proxy) }
            let ready = out.fileHandleForReading.availableData
            #expect(String(decoding: ready, as: UTF8.self).hasPrefix("ready"))
            let conf = #"{"cniVersion":"1.1.0","name":"lossy","type":"overlay","vni":79,"underlay":"lo","etcd":{"endpoints":["http://127.0.0.1:23794","http://127.0.0.1:23793"],"timeoutMs":3000},"ipam":{"type":"host-local","subnet":"10.237.0.0/24"}}"#
            try body(lab, conf, c1)
        }
    }

    /// The claimed addresses of every block, and the endpoint keys.
    func addresses(_ lab: Lab) -> [String] {
        lab.exec(lab.host, "etcdctl --endpoints=http://127.0.0.1:23793 get --prefix /swiftcni/networks/lossy/ipam/blocks/ --print-value-only")
            .out.split(separator: "\n").flatMap { line -> [String] in
                guard let j = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let c = j["claims"] as? [String: Any] else { return [] }
                return c.keys.sorted()
            }
    }

    func endpoints(_ lab: Lab) -> [String] {
        lab.exec(lab.host, "etcdctl --endpoints=http://127.0.0.1:23793 get --prefix /swiftcni/networks/lossy/endpoints/ --keys-only")
            .out.split(separator: "\n").map { String($0.split(separator: "/").last ?? "") }
    }

    @Test func requestedAddress() throws {
        try withLossyEtcd { lab, conf, c1 in
            let r = lab.plugin("overlay", "ADD", config: conf, containerID: "x1", netns: c1, args: "IP=10.237.0.9")
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            #expect(r.stdout.contains("\"10.237.0.9/24\""), "\(r.stdout)")
            #expect(addresses(lab) == ["10.237.0.9"])
            #expect(endpoints(lab) == ["x1:eth0"])
        }
    }

    @Test func nextFreeAddress() throws {
        try withLossyEtcd { lab, conf, c1 in
            let r = lab.plugin("overlay", "ADD", config: conf, containerID: "x1", netns: c1)
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            // The address claimed by the lost answer, not the one after it.
            #expect(r.stdout.contains("\"10.237.0.2/24\""), "\(r.stdout)")
            #expect(addresses(lab) == ["10.237.0.2"])
            #expect(endpoints(lab) == ["x1:eth0"])
            // And DEL releases it.
            let d = lab.plugin("overlay", "DEL", config: conf, containerID: "x1", netns: c1)
            #expect(d.status == 0, "\(d.stdout)\(d.stderr)")
            #expect(addresses(lab) == [])
            #expect(endpoints(lab) == [])
        }
    }
}
