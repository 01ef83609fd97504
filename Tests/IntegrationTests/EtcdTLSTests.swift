// The overlay agent's etcd session over TLS: mutual TLS with a client certificate, every
// misconfiguration refused with its code and a message naming the file or endpoint (and
// nothing created), username/password authentication. A real etcd serving TLS with
// certificates made by Tests/Helpers/make-certs.sh (openssl); the overlay plugin driven as a
// runtime drives it.

import Foundation
import Testing
import CNI

struct TLSCase: CustomTestStringConvertible, Sendable {
    var name: String
    /// The `etcd` section; `{{c}}` is the certificates' directory, `{{tls}}` / `{{plain}}`
    /// the endpoints of the TLS and the plain member.
    var etcd: String
    var code: CNIErrorCode
    var msg: String
    var testDescription: String { name }
}

let tlsCases: [TLSCase] = [
    TLSCase(name: "wrong CA", etcd: #"{"endpoints":["{{tls}}"],"caFile":"{{c}}/other-ca.crt","certFile":"{{c}}/client.crt","keyFile":"{{c}}/client.key","timeoutMs":1500}"#,
            code: .invalidConfig, msg: "etcd https://127.0.0.1:23797: its certificate does not verify against caFile {{c}}/other-ca.crt"),
    TLSCase(name: "client certificate of an unknown CA", etcd: #"{"endpoints":["{{tls}}"],"caFile":"{{c}}/ca.crt","certFile":"{{c}}/stranger.crt","keyFile":"{{c}}/stranger.key","timeoutMs":1500}"#,
            code: .invalidConfig, msg: "etcd https://127.0.0.1:23797: the member refused the client certificate certFile {{c}}/stranger.crt"),
    TLSCase(name: "expired client certificate", etcd: #"{"endpoints":["{{tls}}"],"caFile":"{{c}}/ca.crt","certFile":"{{c}}/expired.crt","keyFile":"{{c}}/expired.key","timeoutMs":1500}"#,
            code: .invalidConfig, msg: "etcd https://127.0.0.1:23797: the member refused the client certificate certFile {{c}}/expired.crt"),
    TLSCase(name: "no client certificate", etcd: #"{"endpoints":["{{tls}}"],"caFile":"{{c}}/ca.crt","timeoutMs":1500}"#,
            code: .invalidConfig, msg: "etcd https://127.0.0.1:23797: the member refused a client without a certificate (certFile, keyFile)"),
    TLSCase(name: "plain HTTP to a TLS member", etcd: #"{"endpoints":["http://127.0.0.1:23797"],"timeoutMs":1500}"#,
            code: .invalidConfig, msg: "etcd http://127.0.0.1:23797: the member closes the connection without answering; does it speak TLS? (use https:// endpoints and caFile, certFile, keyFile)"),
    TLSCase(name: "TLS to a plain member", etcd: #"{"endpoints":["https://127.0.0.1:23798"],"caFile":"{{c}}/ca.crt","certFile":"{{c}}/client.crt","keyFile":"{{c}}/client.key","timeoutMs":1500}"#,
            code: .invalidConfig, msg: "etcd https://127.0.0.1:23798: the member does not speak TLS (an http:// endpoint?)"),
    TLSCase(name: "caFile missing", etcd: #"{"endpoints":["{{tls}}"],"caFile":"{{c}}/nope.crt"}"#,
            code: .invalidConfig, msg: "\"etcd.caFile\" \"{{c}}/nope.crt\": no such file, or not readable"),
    TLSCase(name: "certFile without keyFile", etcd: #"{"endpoints":["{{tls}}"],"caFile":"{{c}}/ca.crt","certFile":"{{c}}/client.crt"}"#,
            code: .invalidConfig, msg: "\"etcd.certFile\" \"{{c}}/client.crt\": needs \"keyFile\" too"),
    TLSCase(name: "caFile with plain endpoints", etcd: #"{"endpoints":["http://127.0.0.1:23798"],"caFile":"{{c}}/ca.crt"}"#,
            code: .invalidConfig, msg: "\"etcd.caFile\" \"{{c}}/ca.crt\": needs https:// endpoints (TLS)"),
    TLSCase(name: "a key file that is not a key", etcd: #"{"endpoints":["{{tls}}"],"caFile":"{{c}}/ca.crt","certFile":"{{c}}/client.crt","keyFile":"{{c}}/ca.crt","timeoutMs":1500}"#,
            code: .invalidConfig, msg: "etcd keyFile {{c}}/ca.crt: not a PEM private key"),
    TLSCase(name: "unreachable TLS member", etcd: #"{"endpoints":["https://127.0.0.1:1"],"caFile":"{{c}}/ca.crt","certFile":"{{c}}/client.crt","keyFile":"{{c}}/client.key","timeoutMs":500}"#,
            code: .tryAgainLater, msg: "etcd unreachable: https://127.0.0.1:1"),
]

@Suite(.serialized, .enabled(if: isRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd"), "needs root and etcd"))
struct EtcdTLS {
    /// A TLS member requiring client certificates on 23797 and a plain one on 23798.
    func withTLSEtcd(clientCertAuth: Bool = true, _ body: (Lab, String) throws -> Void) throws {
        try withLab { lab in
            let certs = lab.root + "/certs"
            let r = run([helper("make-certs.sh"), certs, "127.0.0.1"])
            #expect(r.status == 0, "\(r.err)")
            let tls = try lab.startEtcd(client: 23797, peer: 23807, tls: certs, clientCertAuth: clientCertAuth)
            defer { lab.stop(tls) }
            let plain = try lab.startEtcd(client: 23798, peer: 23808)
            defer { lab.stop(plain) }
            try body(lab, certs)
        }
    }

    func conf(_ etcd: String, _ certs: String) -> String {
        let e = etcd.replacingOccurrences(of: "{{c}}", with: certs).replacingOccurrences(of: "{{tls}}", with: "https://127.0.0.1:23797")
        return #"{"cniVersion":"1.1.0","name":"tlsnet","type":"overlay","vni":81,"underlay":"lo","etcd":\#(e),"ipam":{"type":"host-local","subnet":"10.238.0.0/24"}}"#
    }

    func keys(_ lab: Lab, _ certs: String) -> [String] {
        lab.exec(lab.host, lab.etcdctl(23797, tls: certs) + " get --prefix /swiftcni/networks/ --keys-only").out
            .split(separator: "\n").map(String.init)
    }

    @Test func mutualTLS() throws {
        try withTLSEtcd { lab, certs in
            let c1 = try lab.container("c1")
            let cfg = conf(#"{"endpoints":["{{tls}}"],"caFile":"{{c}}/ca.crt","certFile":"{{c}}/client.crt","keyFile":"{{c}}/client.key"}"#, certs)
            let r = lab.plugin("overlay", "ADD", config: cfg, containerID: "x1", netns: c1)
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            #expect(r.stdout.contains("\"10.238.0.2/24\""), "\(r.stdout)")
            let k = keys(lab, certs)
            #expect(k.contains { $0.hasPrefix("/swiftcni/networks/tlsnet/endpoints/") && $0.hasSuffix("/x1:eth0") }, "\(k)")
            #expect(k.contains("/swiftcni/networks/tlsnet/ipam/blocks/10.238.0.0-26"), "\(k)")
            let withPrev = String(cfg.dropLast()) + #","prevResult":"# + r.stdout + "}"
            let chk = lab.plugin("overlay", "CHECK", config: withPrev, containerID: "x1", netns: c1)
            #expect(chk.status == 0, "\(chk.stdout)")
            let d = lab.plugin("overlay", "DEL", config: cfg, containerID: "x1", netns: c1)
            #expect(d.status == 0, "\(d.stdout)\(d.stderr)")
            #expect(!keys(lab, certs).contains { $0.contains("/endpoints/") })
        }
    }

    /// A DEL does not check the certificate files (the host's agent runs with them loaded): a
    /// runtime can delete a container after its certificates were removed.
    @Test func delAfterCertificatesRemoved() throws {
        try withTLSEtcd { lab, certs in
            let own = certs + "/own"
            try FileManager.default.createDirectory(atPath: own, withIntermediateDirectories: true)
            for f in ["ca.crt", "client.crt", "client.key"] { try FileManager.default.copyItem(atPath: certs + "/" + f, toPath: own + "/" + f) }
            let c1 = try lab.container("c1")
            let cfg = conf(#"{"endpoints":["{{tls}}"],"caFile":"{{c}}/own/ca.crt","certFile":"{{c}}/own/client.crt","keyFile":"{{c}}/own/client.key"}"#, certs)
            let r = lab.plugin("overlay", "ADD", config: cfg, containerID: "x1", netns: c1)
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            try FileManager.default.removeItem(atPath: own)
            let again = lab.plugin("overlay", "ADD", config: cfg, containerID: "x2", netns: c1, ifname: "eth1")
            #expect(again.error?.code == .invalidConfig && again.error?.msg.contains("no such file") == true, "\(again.stdout)")
            let d = lab.plugin("overlay", "DEL", config: cfg, containerID: "x1", netns: c1)
            #expect(d.status == 0, "\(d.stdout)\(d.stderr)")
            #expect(!keys(lab, certs).contains { $0.contains("/endpoints/") })
            #expect(lab.links(c1) == ["lo"])
        }
    }

    @Test(arguments: tlsCases)
    func refused(_ c: TLSCase) throws {
        try withTLSEtcd { lab, certs in
            let c1 = try lab.container("c1")
            let before = lab.links(lab.host)
            let start = Date()
            let r = lab.plugin("overlay", "ADD", config: conf(c.etcd, certs), containerID: "x1", netns: c1)
            #expect(r.error?.code == c.code, "\(r.stdout)\(r.stderr)")
            let want = c.msg.replacingOccurrences(of: "{{c}}", with: certs)
            #expect(r.error?.msg.hasPrefix(want) == true, "\(r.error?.msg ?? r.stdout)\n  expected: \(want)")
            #expect(Date().timeIntervalSince(start) < 10)
            #expect(lab.links(lab.host) == before)
            #expect(lab.links(c1) == ["lo"])
            #expect(keys(lab, certs).isEmpty)
        }
    }

    /// Server TLS only, and etcd's own users: the agent authenticates with a username and a
    /// password read from a file; a wrong password is refused naming the user.
    @Test func usernameAndPassword() throws {
        try withTLSEtcd(clientCertAuth: false) { lab, certs in
            let ctl = "etcdctl --endpoints=https://127.0.0.1:23797 --cacert=\(certs)/ca.crt"
            for cmd in ["user add root --new-user-password=s3cret", "auth enable"] {
                let r = lab.exec(lab.host, "\(ctl) \(cmd)")
                #expect(r.status == 0, "\(cmd): \(r.err)")
            }
            try "s3cret\n".write(toFile: certs + "/password", atomically: true, encoding: .utf8)
            try "wrong\n".write(toFile: certs + "/wrong", atomically: true, encoding: .utf8)
            let c1 = try lab.container("c1")
            let good = conf(#"{"endpoints":["{{tls}}"],"caFile":"{{c}}/ca.crt","username":"root","passwordFile":"{{c}}/password"}"#, certs)
            let r = lab.plugin("overlay", "ADD", config: good, containerID: "x1", netns: c1)
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            let listed = lab.exec(lab.host, "\(ctl) --user root:s3cret get --prefix /swiftcni/networks/tlsnet/endpoints/ --keys-only").out
            #expect(listed.contains("/x1:eth0"), "\(listed)")
            let d = lab.plugin("overlay", "DEL", config: good, containerID: "x1", netns: c1)
            #expect(d.status == 0, "\(d.stdout)")
            // The agent of this host runs with the good settings; a wrong password is another
            // configuration, which restarts it with those.
            let bad = conf(#"{"endpoints":["{{tls}}"],"caFile":"{{c}}/ca.crt","username":"root","passwordFile":"{{c}}/wrong","timeoutMs":1500}"#, certs)
            let w = lab.plugin("overlay", "ADD", config: bad, containerID: "x2", netns: c1)
            #expect(w.error?.code == .invalidConfig, "\(w.stdout)")
            #expect(w.error?.msg.hasPrefix("etcd https://127.0.0.1:23797: user root and its password are refused") == true, "\(w.stdout)")
            #expect(lab.links(c1) == ["lo"])
        }
    }

    /// cnictl's overlay networks over TLS with Docker's --cluster-store-opt names: the
    /// network is published to etcd through the TLS client, and its configuration carries
    /// the certificate files to the plugin.
    @Test func cnictlKVOptions() throws {
        try withTLSEtcd { lab, certs in
            let r = lab.ctl(["network", "create", "-d", "overlay", "--kv", "etcd://127.0.0.1:23797",
                                "--kv-opt", "kv.cacertfile=\(certs)/ca.crt", "--kv-opt", "kv.certfile=\(certs)/client.crt",
                                "--kv-opt", "kv.keyfile=\(certs)/client.key", "--subnet", "10.239.0.0/24", "tlsov"])
            #expect(r.status == 0, "\(r.out)\(r.err)")
            let published = lab.exec(lab.host, lab.etcdctl(23797, tls: certs) + " get /swiftcni/cnictl/networks/tlsov --print-value-only").out
            #expect(published.contains("10.239.0.0/24"), "\(published)")
            let conflist = (try? String(contentsOfFile: lab.confDir + "/tlsov.conflist", encoding: .utf8)) ?? ""
            #expect(conflist.contains("https://127.0.0.1:23797") && conflist.contains("\"caFile\": \"\(certs)/ca.crt\"")
                    && conflist.contains("\"certFile\": \"\(certs)/client.crt\"") && conflist.contains("\"keyFile\": \"\(certs)/client.key\""), "\(conflist)")
            let bad = lab.ctl(["network", "create", "-d", "overlay", "--kv", "etcd://127.0.0.1:23797",
                                  "--kv-opt", "kv.certfile=\(certs)/client.crt", "--subnet", "10.240.0.0/24", "half"])
            #expect(bad.status != 0 && bad.err.contains("--kv-opt kv.certfile and kv.keyfile go together"), "\(bad.err)")
        }
    }
}
