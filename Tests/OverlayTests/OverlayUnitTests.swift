import Testing
@testable import Base
@testable import CNI
@testable import Etcd
@testable import EtcdSettings
@testable import Overlay

@Suite struct EtcdBasics {
    @Test func base64() {
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar", "/swiftcni/networks/x/ipam/blocks/10.0.0.0-26"] {
            #expect(Base64.decode(Base64.encode(s)) == Array(s.utf8))
        }
        #expect(Base64.encode("foobar") == "Zm9vYmFy")
        #expect(Base64.encode("fo") == "Zm8=")
        #expect(Base64.decode("Zm9v!") == nil)
    }

    @Test func prefixEnd() {
        #expect(EtcdClient.prefixEnd("/a/") == "/a0")
        #expect(EtcdClient.prefixEnd("abc") == "abd")
    }

    @Test func endpoints() {
        #expect(EtcdConfig.endpoint("http://10.0.0.10:2379") == EtcdConfig.Endpoint(host: "10.0.0.10", port: 2379))
        #expect(EtcdConfig.endpoint("etcd://10.0.0.10:4001")?.port == 4001)
        #expect(EtcdConfig.endpoint("10.0.0.10")?.port == 2379)
        #expect(EtcdConfig.endpoint("http://[fd00::1]:2379")?.host == "fd00::1")
        #expect(EtcdConfig.endpoint("http://etcd.example:2379") == nil)
        #expect(EtcdConfig.endpoint("http://10.0.0.10:0") == nil)
    }

    func config(_ s: String) throws(CNIError) -> EtcdConfig {
        try EtcdConfig(try JSONReader(try! JSON.parse(s), path: "etcd"))
    }

    @Test func configErrors() throws {
        #expect(throws: CNIError(.invalidConfig, "\"etcd.endpoints\" is required (e.g. [\"https://10.0.0.10:2379\"])")) { try config("{}") }
        #expect(throws: CNIError(.invalidConfig, "\"etcd.endpoints[1]\" \"http://10.0.0.2:2379\": every member is reached the same way (https://, as the first)")) {
            try config(#"{"endpoints":["https://10.0.0.1:2379","http://10.0.0.2:2379"]}"#)
        }
        #expect(try config(#"{"endpoints":["https://10.0.0.1:2379"]}"#).endpoints == [EtcdConfig.Endpoint(host: "10.0.0.1", port: 2379, secure: true)])
        #expect(throws: CNIError(.unsupportedField, "\"etcd.cacert\": not a key of this section; the CA certificates are \"caFile\", the client's certificate and key \"certFile\" and \"keyFile\" (use \"caFile\")")) {
            try config(#"{"endpoints":["https://10.0.0.1:2379"],"cacert":"/x"}"#)
        }
        #expect(throws: CNIError(.invalidConfig, "\"etcd.endpoints[1]\" \"nowhere\": expected http://IP:PORT or https://IP:PORT")) {
            try config(#"{"endpoints":["10.0.0.1:2379","nowhere"]}"#)
        }
        #expect(throws: CNIError(.invalidConfig, "\"etcd.prefix\" \"swiftcni\": must start with \"/\"")) {
            try config(#"{"endpoints":["10.0.0.1:2379"],"prefix":"swiftcni"}"#)
        }
        let c = try config(#"{"endpoints":["10.0.0.1:2379"],"prefix":"/x/"}"#)
        #expect(c.prefix == "/x")
        #expect(try EtcdConfig(JSONReader(c.json, path: "etcd")) == c)
    }
}

@Suite struct OverlayModel {
    /// The one key layout: every key built parses back to the names it was built from, the
    /// kinds do not mistake each other, and the spellings are the documented ones.
    @Test(arguments: ["/swiftcni", "/x/y"])
    func keyLayoutRoundTrips(_ prefix: String) {
        let k = ClusterKeys(prefix)
        for (net, host, cid, ifn) in [("net", "h1", "c1", "eth0"), ("my-multihost-network", "host-b", "cnictl-0a1b2c", "eth1"),
                                      ("n.1", "h_2", "abc:def", "net0")] {
            let e = k.endpoint(net, host: host, containerID: cid, ifname: ifn)
            #expect(e == "\(prefix)/networks/\(net)/endpoints/\(host)/\(cid):\(ifn)")
            let p = k.parseEndpoint(e)
            #expect(p?.network == net && p?.host == host && p?.containerID == cid && p?.ifname == ifn, "\(e)")
            #expect(e.hasPrefix(k.endpoints(net, host: host)) && e.hasPrefix(k.endpoints(net)) && e.hasPrefix(k.network(net)))
            #expect(k.parseHost(k.host(host)) == host)
            #expect(k.parseNetconfig(k.netconfig(net)) == net)
            let a = k.block(net, "10.10.1.0-26")
            #expect(a == "\(prefix)/networks/\(net)/ipam/blocks/10.10.1.0-26" && a.hasPrefix(k.blocks(net)))
            #expect(k.parseBlock(a)?.network == net && k.parseBlock(a)?.block == "10.10.1.0-26")
            #expect(k.cnictlNetwork(net) == "\(prefix)/cnictl/networks/\(net)" && k.cnictlNetwork(net).hasPrefix(k.cnictlNetworks))
            // No kind parses as another.
            #expect(k.parseEndpoint(a) == nil && k.parseBlock(e) == nil && k.parseHost(e) == nil && k.parseNetconfig(e) == nil)
            #expect(k.parseEndpoint(k.host(host)) == nil && k.parseBlock(k.host(host)) == nil)
        }
        #expect(k.parseHost("\(prefix)/hosts/") == nil)
        #expect(k.parseHost("\(prefix)/hosts/a/b") == nil)
        #expect(k.parseEndpoint("\(prefix)/networks/net/endpoints/h1/nocolon") == nil)
        #expect(k.parseEndpoint("/other/networks/net/endpoints/h1/c:eth0") == nil)
    }

    @Test func endpointRecord() {
        let r = EndpointRecord(network: "n", host: "h", containerID: "c", ifname: "eth0", vtep: IPAddress("10.99.0.1")!,
                               mac: MACAddress("02:00:00:00:00:01")!, ips: [IPAddress("10.10.1.2")!], name: "web", aliases: ["www"])
        #expect(EndpointRecord(network: "n", bytes: r.json.serializedBytes()) == r)
        #expect(EndpointRecord(network: "n", bytes: Array("{}".utf8)) == nil)
    }

    func overlayConfig(_ body: String) throws(CNIError) -> OverlayConfig {
        let json = try! JSON.parse(#"{"cniVersion":"1.1.0","name":"ov","type":"overlay",\#(body)}"#)
        let env = try! CNIEnvironment(command: .add, containerID: "c", netns: "/x", ifname: "eth0", path: ["/x"])
        return try OverlayConfig(try CNIRequest(env: env, configBytes: json.serializedBytes(), json: json))
    }

    @Test func configErrorsAndDefaults() throws {
        let etcd = #""etcd":{"endpoints":["10.0.0.1:2379"]}"#
        let ipam = #""ipam":{"type":"host-local","ranges":[[{"subnet":"10.10.0.0/16","gateway":"10.10.0.100"},{"subnet":"10.11.0.0/16"}]]}"#
        #expect(throws: CNIError(.invalidConfig, "\"vni\" is required (1 to 16777215)")) { try overlayConfig("\(etcd),\(ipam)") }
        #expect(throws: CNIError(.invalidConfig, "\"vni\" 0: must be between 1 and 16777215")) { try overlayConfig("\"vni\":0,\(etcd),\(ipam)") }
        #expect(throws: CNIError(.invalidConfig, "\"etcd\" is required: {\"endpoints\": [\"http://IP:2379\", …]}")) { try overlayConfig("\"vni\":7,\(ipam)") }
        let c = try overlayConfig("\"vni\":4096,\(etcd),\(ipam)")
        #expect(c.bridgeName == "ovbr4096" && c.vxlanName == "ovvx4096")
        #expect(c.subnets.map(\.description) == ["10.10.0.0/16", "10.11.0.0/16"])
        #expect(c.gateways.map(\.description) == ["10.10.0.100/16", "10.11.0.1/16"])
        #expect(try overlayConfig("\"vni\":16777215,\(etcd),\(ipam)").bridgeName.utf8.count <= 15)
    }
}
