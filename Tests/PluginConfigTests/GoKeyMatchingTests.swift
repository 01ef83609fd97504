// Every configuration key of every plugin, spelled as Go's encoding/json would also accept it
// (`IPMasq`, `HostPort`, `DATADIR`), decodes to the same configuration as its canonical name;
// the same key spelled as an unknown one (ignored) does not — so each case shows the key is
// read at all. Runtimes built on Go (libcni, go-cni) send such spellings: go-cni's capability
// structs have no JSON tags, and the reference plugins accept them.
import Foundation
import Testing
@testable import BridgeNetwork
@testable import Base
@testable import CNI
@testable import DNSAliasPlugin
@testable import HostLocalIPAM
@testable import Overlay
@testable import PortmapPlugin

/// One key: the configuration with `@K@` where the key's name goes.
struct KeyCase: CustomTestStringConvertible, Sendable {
    var decoder: String
    var key: String
    var template: String
    /// Spellings besides those derived from `key` (capitalised, upper and lower case).
    var extra: [String] = []
    var testDescription: String { "\(decoder): \(key)" }

    var variants: [String] {
        let derived = [key.prefix(1).uppercased() + key.dropFirst(), key.uppercased(), key.lowercased()]
        var out: [String] = []
        for v in derived + extra where v != key && !out.contains(v) { out.append(v) }
        return out
    }

    func config(_ name: String) -> String { template.replacingOccurrences(of: "@K@", with: name) }
}

/// What a decoder made of a configuration (or the error it gave), as text to compare.
func decoded(_ decoder: String, _ config: String) -> String {
    do {
        let env = try CNIEnvironment(command: .add, containerID: "ctr", netns: "/run/netns/x", ifname: "eth0")
        let req = try CNIRequest(env: env, configBytes: Array(config.utf8))
        switch decoder {
        case "bridge": return "ok " + String(reflecting: try BridgeConfig(req))
        case "host-local":
            let c = try HostLocalConfig(req)
            // Ranges print as start-end; their gateways and ipRange too, here.
            let ranges = c.rangeSets.map { $0.ranges.map { "\($0) gw \(String(describing: $0.gateway)) ipRange \(String(describing: $0.ipRange))" } }
            return "ok \(ranges) " + String(reflecting: c)
        case "portmap": return "ok " + String(reflecting: try PortmapConfig(req))
        case "dns-alias": return "ok " + String(reflecting: try DNSAliasConfig(req))
        case "overlay":
            var c = try OverlayConfig(req)
            c.ipam = JSONObject()  // the section as given (its keys are host-local's)
            return "ok " + String(reflecting: c)
        case "prevResult": return "ok " + String(reflecting: try req.prevResult())
        case "contract": return "ok \(req.cniVersion) \(req.name) \(req.type)"
        default: return "no decoder \(decoder)"
        }
    } catch {
        return "error \(error)"
    }
}

private let ipam = #""ipam":{"type":"host-local","subnet":"10.1.0.0/24"}"#
private func br(_ member: String) -> String { #"{"cniVersion":"1.0.0","name":"net","type":"bridge",\#(member),\#(ipam)}"# }
private func hl(_ members: String) -> String { #"{"cniVersion":"1.0.0","name":"net","type":"bridge","ipam":{"type":"host-local",\#(members)}}"# }
private let range = #""ranges":[[{"subnet":"10.1.0.0/24"}]]"#
private func pm(_ member: String) -> String { #"{"cniVersion":"1.0.0","name":"net","type":"portmap",\#(member)}"# }
private func dn(_ member: String) -> String { #"{"cniVersion":"1.0.0","name":"net","type":"dns-alias",\#(member)}"# }
private let etcd = #""etcd":{"endpoints":["http://10.0.0.10:2379"]}"#
private func ov(_ member: String, etcd e: String = etcd) -> String {
    #"{"cniVersion":"1.0.0","name":"net","type":"overlay","vni":42,\#(e),\#(member),\#(ipam)}"#
}
private func ovEtcd(_ member: String) -> String {
    #"{"cniVersion":"1.0.0","name":"net","type":"overlay","vni":42,"etcd":{"endpoints":["http://10.0.0.10:2379"],\#(member)},\#(ipam)}"#
}
private func prev(_ result: String) -> String { #"{"cniVersion":"1.0.0","name":"net","type":"portmap","prevResult":\#(result)}"# }
private let addr = #""ips":[{"address":"10.1.0.2/24"}]"#

let keyCases: [KeyCase] = [
    // The contract.
    KeyCase(decoder: "contract", key: "cniVersion", template: #"{"@K@":"0.4.0","name":"net","type":"bridge"}"#, extra: ["CNIVersion"]),
    KeyCase(decoder: "contract", key: "name", template: #"{"cniVersion":"1.0.0","@K@":"net","type":"bridge"}"#),
    KeyCase(decoder: "contract", key: "type", template: #"{"cniVersion":"1.0.0","name":"net","@K@":"bridge"}"#),
    // bridge.
    KeyCase(decoder: "bridge", key: "bridge", template: br(#""@K@":"br9""#)),
    KeyCase(decoder: "bridge", key: "isGateway", template: br(#""@K@":true"#)),
    KeyCase(decoder: "bridge", key: "isDefaultGateway", template: br(#""@K@":true"#)),
    KeyCase(decoder: "bridge", key: "forceAddress", template: br(#""@K@":true"#)),
    KeyCase(decoder: "bridge", key: "allSubnetGateways", template: br(#""@K@":true"#)),
    KeyCase(decoder: "bridge", key: "ipMasq", template: br(#""@K@":true"#), extra: ["IPMasq"]),
    KeyCase(decoder: "bridge", key: "ipMasqBackend", template: br(#""@K@":"ebpf""#), extra: ["IPMasqBackend"]),
    KeyCase(decoder: "bridge", key: "mtu", template: br(#""@K@":1400"#), extra: ["MTU"]),
    KeyCase(decoder: "bridge", key: "hairpinMode", template: br(#""@K@":true"#), extra: ["HairpinMode"]),
    KeyCase(decoder: "bridge", key: "promiscMode", template: br(#""@K@":true"#)),
    KeyCase(decoder: "bridge", key: "vlan", template: br(#""@K@":5"#), extra: ["Vlan", "VLAN"]),
    KeyCase(decoder: "bridge", key: "vlanTrunk", template: br(#""@K@":[{"id":7}]"#)),
    KeyCase(decoder: "bridge", key: "id", template: br(#""vlanTrunk":[{"@K@":7}]"#), extra: ["ID"]),
    KeyCase(decoder: "bridge", key: "minID", template: br(#""vlanTrunk":[{"@K@":2,"maxID":3}]"#), extra: ["MinID"]),
    KeyCase(decoder: "bridge", key: "maxID", template: br(#""vlanTrunk":[{"minID":2,"@K@":3}]"#), extra: ["MaxID"]),
    KeyCase(decoder: "bridge", key: "preserveDefaultVlan", template: br(#""@K@":false"#)),
    KeyCase(decoder: "bridge", key: "macspoofchk", template: br(#""@K@":true"#), extra: ["MacSpoofChk"]),
    KeyCase(decoder: "bridge", key: "enabledad", template: br(#""@K@":true"#), extra: ["EnableDad"]),
    KeyCase(decoder: "bridge", key: "disableContainerInterface", template: br(#""@K@":true"#)),
    KeyCase(decoder: "bridge", key: "portIsolation", template: br(#""@K@":true"#)),
    KeyCase(decoder: "bridge", key: "icc", template: br(#""@K@":false"#)),
    KeyCase(decoder: "bridge", key: "internal", template: br(#""@K@":true"#)),
    KeyCase(decoder: "bridge", key: "mac", template: br(#""@K@":"02:00:00:00:00:09""#), extra: ["MAC"]),
    KeyCase(decoder: "bridge", key: "hostFirewall", template: br(#""@K@":"ignore""#)),
    KeyCase(decoder: "bridge", key: "gatewayModeIPv4", template: br(#""@K@":"routed""#), extra: ["GatewayModeIPV4"]),
    KeyCase(decoder: "bridge", key: "gatewayModeIPv6", template: br(#""@K@":"nat-unprotected""#), extra: ["GatewayModeIPV6"]),
    KeyCase(decoder: "bridge", key: "dns", template: br(#""@K@":{"nameservers":["10.0.0.53"]}"#), extra: ["DNS"]),
    KeyCase(decoder: "bridge", key: "nameservers", template: br(#""dns":{"@K@":["10.0.0.53"]}"#), extra: ["Nameservers"]),
    KeyCase(decoder: "bridge", key: "domain", template: br(#""dns":{"@K@":"corp"}"#)),
    KeyCase(decoder: "bridge", key: "search", template: br(#""dns":{"@K@":["corp"]}"#)),
    KeyCase(decoder: "bridge", key: "options", template: br(#""dns":{"@K@":["ndots:2"]}"#)),
    KeyCase(decoder: "bridge", key: "ipam", template: #"{"cniVersion":"1.0.0","name":"net","type":"bridge","@K@":{"type":"host-local"}}"#, extra: ["IPAM"]),
    KeyCase(decoder: "bridge", key: "type", template: #"{"cniVersion":"1.0.0","name":"net","type":"bridge","ipam":{"@K@":"host-local"}}"#),
    KeyCase(decoder: "bridge", key: "args", template: br(#""@K@":{"cni":{"mac":"02:00:00:00:00:0a"}}"#)),
    KeyCase(decoder: "bridge", key: "cni", template: br(#""args":{"@K@":{"mac":"02:00:00:00:00:0a"}}"#), extra: ["CNI"]),
    KeyCase(decoder: "bridge", key: "mac", template: br(#""args":{"cni":{"@K@":"02:00:00:00:00:0a"}}"#), extra: ["MAC"]),
    // go-cni's DNS struct: {"Servers","Searches","Options"}.
    KeyCase(decoder: "bridge", key: "dns", template: br(#""runtimeConfig":{"@K@":{"servers":["10.0.0.53"]}}"#), extra: ["DNS"]),
    KeyCase(decoder: "bridge", key: "servers", template: br(#""runtimeConfig":{"dns":{"@K@":["10.0.0.53"]}}"#), extra: ["Servers"]),
    KeyCase(decoder: "bridge", key: "searches", template: br(#""runtimeConfig":{"dns":{"@K@":["corp"]}}"#), extra: ["Searches"]),
    KeyCase(decoder: "bridge", key: "options", template: br(#""runtimeConfig":{"dns":{"@K@":["ndots:5"]}}"#), extra: ["Options"]),
    KeyCase(decoder: "bridge", key: "runtimeConfig", template: br(#""@K@":{"mac":"02:00:00:00:00:0b"}"#), extra: ["RuntimeConfig"]),
    KeyCase(decoder: "bridge", key: "mac", template: br(#""runtimeConfig":{"@K@":"02:00:00:00:00:0b"}"#), extra: ["Mac"]),
    // host-local.
    KeyCase(decoder: "host-local", key: "dataDir", template: hl(#""@K@":"/tmp/x",\#(range)"#), extra: ["DataDir"]),
    KeyCase(decoder: "host-local", key: "resolvConf", template: hl(#""@K@":"/tmp/r",\#(range)"#), extra: ["ResolvConf"]),
    KeyCase(decoder: "host-local", key: "ranges", template: hl(#""@K@":[[{"subnet":"10.1.0.0/24"}]]"#), extra: ["Ranges"]),
    KeyCase(decoder: "host-local", key: "subnet", template: hl(#""ranges":[[{"@K@":"10.1.0.0/24"}]]"#), extra: ["Subnet"]),
    KeyCase(decoder: "host-local", key: "rangeStart", template: hl(#""ranges":[[{"subnet":"10.1.0.0/24","@K@":"10.1.0.10"}]]"#), extra: ["RangeStart"]),
    KeyCase(decoder: "host-local", key: "rangeEnd", template: hl(#""ranges":[[{"subnet":"10.1.0.0/24","@K@":"10.1.0.20"}]]"#), extra: ["RangeEnd"]),
    KeyCase(decoder: "host-local", key: "gateway", template: hl(#""ranges":[[{"subnet":"10.1.0.0/24","@K@":"10.1.0.254"}]]"#), extra: ["Gateway"]),
    KeyCase(decoder: "host-local", key: "ipRange", template: hl(#""ranges":[[{"subnet":"10.1.0.0/24","@K@":"10.1.0.128/25"}]]"#), extra: ["IPRange"]),
    KeyCase(decoder: "host-local", key: "subnet", template: hl(#""@K@":"10.1.0.0/24""#)),
    KeyCase(decoder: "host-local", key: "rangeStart", template: hl(#""subnet":"10.1.0.0/24","@K@":"10.1.0.10""#)),
    KeyCase(decoder: "host-local", key: "gateway", template: hl(#""subnet":"10.1.0.0/24","@K@":"10.1.0.254""#)),
    KeyCase(decoder: "host-local", key: "routes", template: hl(#""@K@":[{"dst":"0.0.0.0/0"}],\#(range)"#), extra: ["Routes"]),
    KeyCase(decoder: "host-local", key: "dst", template: hl(#""routes":[{"@K@":"0.0.0.0/0"}],\#(range)"#), extra: ["Dst"]),
    KeyCase(decoder: "host-local", key: "gw", template: hl(#""routes":[{"dst":"0.0.0.0/0","@K@":"10.1.0.1"}],\#(range)"#), extra: ["GW"]),
    KeyCase(decoder: "host-local", key: "mtu", template: hl(#""routes":[{"dst":"0.0.0.0/0","@K@":1400}],\#(range)"#), extra: ["MTU"]),
    KeyCase(decoder: "host-local", key: "advmss", template: hl(#""routes":[{"dst":"0.0.0.0/0","@K@":1300}],\#(range)"#), extra: ["AdvMSS"]),
    KeyCase(decoder: "host-local", key: "priority", template: hl(#""routes":[{"dst":"0.0.0.0/0","@K@":5}],\#(range)"#)),
    KeyCase(decoder: "host-local", key: "table", template: hl(#""routes":[{"dst":"0.0.0.0/0","@K@":100}],\#(range)"#)),
    KeyCase(decoder: "host-local", key: "scope", template: hl(#""routes":[{"dst":"0.0.0.0/0","@K@":253}],\#(range)"#)),
    KeyCase(decoder: "host-local", key: "auxAddresses", template: hl(#""@K@":{"router":"10.1.0.5"},\#(range)"#), extra: ["AuxAddresses"]),
    KeyCase(decoder: "host-local", key: "etcd", template: hl(#""@K@":{"endpoints":["http://10.0.0.10:2379"]},\#(range)"#)),
    KeyCase(decoder: "host-local", key: "ips", template: #"{"cniVersion":"1.0.0","name":"net","type":"bridge","runtimeConfig":{"@K@":["10.1.0.9"]},"ipam":{"type":"host-local",\#(range)}}"#, extra: ["IPs"]),
    KeyCase(decoder: "host-local", key: "ips", template: #"{"cniVersion":"1.0.0","name":"net","type":"bridge","args":{"cni":{"@K@":["10.1.0.9"]}},"ipam":{"type":"host-local",\#(range)}}"#, extra: ["IPs"]),
    // go-cni's IPRanges struct: {"Subnet","RangeStart","RangeEnd","Gateway"}.
    KeyCase(decoder: "host-local", key: "ipRanges", template: #"{"cniVersion":"1.0.0","name":"net","type":"bridge","runtimeConfig":{"@K@":[[{"subnet":"10.2.0.0/24"}]]},"ipam":{"type":"host-local"}}"#, extra: ["IPRanges"]),
    KeyCase(decoder: "host-local", key: "subnet", template: #"{"cniVersion":"1.0.0","name":"net","type":"bridge","runtimeConfig":{"ipRanges":[[{"@K@":"10.2.0.0/24"}]]},"ipam":{"type":"host-local"}}"#, extra: ["Subnet"]),
    KeyCase(decoder: "host-local", key: "rangeStart", template: #"{"cniVersion":"1.0.0","name":"net","type":"bridge","runtimeConfig":{"ipRanges":[[{"subnet":"10.2.0.0/24","@K@":"10.2.0.10"}]]},"ipam":{"type":"host-local"}}"#, extra: ["RangeStart"]),
    KeyCase(decoder: "host-local", key: "rangeEnd", template: #"{"cniVersion":"1.0.0","name":"net","type":"bridge","runtimeConfig":{"ipRanges":[[{"subnet":"10.2.0.0/24","@K@":"10.2.0.20"}]]},"ipam":{"type":"host-local"}}"#, extra: ["RangeEnd"]),
    KeyCase(decoder: "host-local", key: "gateway", template: #"{"cniVersion":"1.0.0","name":"net","type":"bridge","runtimeConfig":{"ipRanges":[[{"subnet":"10.2.0.0/24","@K@":"10.2.0.254"}]]},"ipam":{"type":"host-local"}}"#, extra: ["Gateway"]),
    // go-cni's WithCapabilityIPRanges: a flat list of IPRanges structs.
    KeyCase(decoder: "host-local", key: "subnet", template: #"{"cniVersion":"1.0.0","name":"net","type":"bridge","runtimeConfig":{"ipRanges":[{"@K@":"10.2.0.0/24","RangeStart":"10.2.0.10"},{"@K@":"fd00:2::/64"}]},"ipam":{"type":"host-local"}}"#, extra: ["Subnet"]),
    // portmap, and go-cni's PortMapping struct: {"HostPort","ContainerPort","Protocol","HostIP"}.
    KeyCase(decoder: "portmap", key: "snat", template: pm(#""@K@":false"#), extra: ["SNAT"]),
    KeyCase(decoder: "portmap", key: "masqAll", template: pm(#""@K@":true"#), extra: ["MasqAll"]),
    KeyCase(decoder: "portmap", key: "markMasqBit", template: pm(#""@K@":13"#), extra: ["MarkMasqBit"]),
    KeyCase(decoder: "portmap", key: "externalSetMarkChain", template: pm(#""@K@":"KUBE-MARK""#)),
    KeyCase(decoder: "portmap", key: "backend", template: pm(#""@K@":"ebpf""#)),
    KeyCase(decoder: "portmap", key: "conditionsV4", template: pm(#""@K@":["-s","10.0.0.0/8"]"#), extra: ["ConditionsV4"]),
    KeyCase(decoder: "portmap", key: "conditionsV6", template: pm(#""@K@":["-s","fd00::/8"]"#), extra: ["ConditionsV6"]),
    KeyCase(decoder: "portmap", key: "hostBindingIPv4", template: pm(#""@K@":"10.0.0.1""#), extra: ["HostBindingIPv4"]),
    KeyCase(decoder: "portmap", key: "portMappings", template: pm(#""runtimeConfig":{"@K@":[{"hostPort":80,"containerPort":8080}]}"#), extra: ["PortMappings"]),
    KeyCase(decoder: "portmap", key: "hostPort", template: pm(#""runtimeConfig":{"portMappings":[{"@K@":80,"containerPort":8080}]}"#), extra: ["HostPort"]),
    KeyCase(decoder: "portmap", key: "containerPort", template: pm(#""runtimeConfig":{"portMappings":[{"hostPort":80,"@K@":8080}]}"#), extra: ["ContainerPort"]),
    KeyCase(decoder: "portmap", key: "protocol", template: pm(#""runtimeConfig":{"portMappings":[{"hostPort":80,"containerPort":8080,"@K@":"udp"}]}"#), extra: ["Protocol"]),
    KeyCase(decoder: "portmap", key: "hostIP", template: pm(#""runtimeConfig":{"portMappings":[{"hostPort":80,"containerPort":8080,"@K@":"10.0.0.1"}]}"#), extra: ["HostIP"]),
    // dns-alias.
    KeyCase(decoder: "dns-alias", key: "domainName", template: dn(#""@K@":"corp.example""#), extra: ["DomainName"]),
    KeyCase(decoder: "dns-alias", key: "upstream", template: dn(#""@K@":["10.0.0.53"]"#)),
    KeyCase(decoder: "dns-alias", key: "ttl", template: dn(#""@K@":60"#), extra: ["TTL"]),
    KeyCase(decoder: "dns-alias", key: "internal", template: dn(#""@K@":true"#)),
    KeyCase(decoder: "dns-alias", key: "name", template: dn(#""runtimeConfig":{"@K@":"web"}"#)),
    KeyCase(decoder: "dns-alias", key: "aliases", template: dn(#""runtimeConfig":{"@K@":["www"]}"#), extra: ["Aliases"]),
    KeyCase(decoder: "dns-alias", key: "links", template: dn(#""runtimeConfig":{"@K@":["db:database"]}"#), extra: ["Links"]),
    // go-cni sends the dns capability as {"Servers","Searches","Options"}.
    KeyCase(decoder: "dns-alias", key: "dns", template: dn(#""runtimeConfig":{"@K@":{"servers":["192.0.2.7"]}}"#), extra: ["DNS"]),
    KeyCase(decoder: "dns-alias", key: "servers", template: dn(#""runtimeConfig":{"dns":{"@K@":["192.0.2.7"]}}"#)),
    // overlay.
    KeyCase(decoder: "overlay", key: "vni", template: #"{"cniVersion":"1.0.0","name":"net","type":"overlay","@K@":42,\#(etcd),\#(ipam)}"#, extra: ["VNI"]),
    KeyCase(decoder: "overlay", key: "underlay", template: ov(#""@K@":"eth9""#)),
    KeyCase(decoder: "overlay", key: "mtu", template: ov(#""@K@":1400"#), extra: ["MTU"]),
    KeyCase(decoder: "overlay", key: "internal", template: ov(#""@K@":true"#)),
    KeyCase(decoder: "overlay", key: "ipMasq", template: ov(#""@K@":true"#), extra: ["IPMasq"]),
    KeyCase(decoder: "overlay", key: "hostFirewall", template: ov(#""@K@":"ignore""#)),
    KeyCase(decoder: "overlay", key: "etcd", template: #"{"cniVersion":"1.0.0","name":"net","type":"overlay","vni":42,"@K@":{"endpoints":["http://10.0.0.10:2379"]},\#(ipam)}"#, extra: ["Etcd"]),
    KeyCase(decoder: "overlay", key: "endpoints", template: #"{"cniVersion":"1.0.0","name":"net","type":"overlay","vni":42,"etcd":{"@K@":["http://10.0.0.10:2379"]},\#(ipam)}"#, extra: ["Endpoints"]),
    KeyCase(decoder: "overlay", key: "prefix", template: ovEtcd(#""@K@":"/other""#)),
    KeyCase(decoder: "overlay", key: "username", template: ovEtcd(#""@K@":"u","password":"p""#)),
    KeyCase(decoder: "overlay", key: "password", template: ovEtcd(#""username":"u","@K@":"p""#)),
    KeyCase(decoder: "overlay", key: "timeoutMs", template: ovEtcd(#""@K@":500"#), extra: ["TimeoutMS"]),
    // prevResult (any plugin's result, decoded by the contract).
    KeyCase(decoder: "prevResult", key: "prevResult", template: pm(#""@K@":{"cniVersion":"1.0.0",\#(addr)}"#), extra: ["PrevResult"]),
    KeyCase(decoder: "prevResult", key: "cniVersion", template: prev(#"{"@K@":"0.4.0",\#(addr)}"#), extra: ["CNIVersion"]),
    KeyCase(decoder: "prevResult", key: "interfaces", template: prev(#"{"@K@":[{"name":"eth0"}],\#(addr)}"#)),
    KeyCase(decoder: "prevResult", key: "name", template: prev(#"{"interfaces":[{"@K@":"eth0"}],\#(addr)}"#)),
    KeyCase(decoder: "prevResult", key: "mac", template: prev(#"{"interfaces":[{"name":"eth0","@K@":"02:00:00:00:00:01"}],\#(addr)}"#), extra: ["MAC"]),
    KeyCase(decoder: "prevResult", key: "mtu", template: prev(#"{"interfaces":[{"name":"eth0","@K@":1400}],\#(addr)}"#), extra: ["MTU"]),
    KeyCase(decoder: "prevResult", key: "sandbox", template: prev(#"{"interfaces":[{"name":"eth0","@K@":"/run/netns/x"}],\#(addr)}"#)),
    KeyCase(decoder: "prevResult", key: "socketPath", template: prev(#"{"interfaces":[{"name":"eth0","@K@":"/run/s"}],\#(addr)}"#)),
    KeyCase(decoder: "prevResult", key: "pciID", template: prev(#"{"interfaces":[{"name":"eth0","@K@":"0000:00:01.0"}],\#(addr)}"#), extra: ["PciID"]),
    KeyCase(decoder: "prevResult", key: "ips", template: prev(#"{"@K@":[{"address":"10.1.0.2/24"}]}"#), extra: ["IPs"]),
    KeyCase(decoder: "prevResult", key: "address", template: prev(#"{"ips":[{"@K@":"10.1.0.2/24"}]}"#)),
    KeyCase(decoder: "prevResult", key: "gateway", template: prev(#"{"ips":[{"address":"10.1.0.2/24","@K@":"10.1.0.1"}]}"#)),
    KeyCase(decoder: "prevResult", key: "interface", template: prev(#"{"interfaces":[{"name":"a"},{"name":"b"}],"ips":[{"address":"10.1.0.2/24","@K@":1}]}"#)),
    KeyCase(decoder: "prevResult", key: "version", template: prev(#"{"ips":[{"address":"10.1.0.2/24","@K@":"6"}]}"#)),
    KeyCase(decoder: "prevResult", key: "routes", template: prev(#"{\#(addr),"@K@":[{"dst":"0.0.0.0/0"}]}"#)),
    KeyCase(decoder: "prevResult", key: "gw", template: prev(#"{\#(addr),"routes":[{"dst":"0.0.0.0/0","@K@":"10.1.0.1"}]}"#), extra: ["GW"]),
    KeyCase(decoder: "prevResult", key: "dns", template: prev(#"{\#(addr),"@K@":{"nameservers":["10.1.0.1"]}}"#), extra: ["DNS"]),
    KeyCase(decoder: "prevResult", key: "nameservers", template: prev(#"{\#(addr),"dns":{"@K@":["10.1.0.1"]}}"#)),
]

@Suite struct GoKeyMatching {
    @Test func everyPluginCovered() {
        #expect(Set(keyCases.map(\.decoder)) == ["contract", "bridge", "host-local", "portmap", "dns-alias", "overlay", "prevResult"])
        #expect(keyCases.count >= 100)
    }

    @Test(arguments: keyCases)
    func caseVariantsDecodeAlike(_ c: KeyCase) {
        let canonical = decoded(c.decoder, c.config(c.key))
        // The key is read: spelled as no key at all, the outcome differs.
        let absent = decoded(c.decoder, c.config("zzNotAKey"))
        #expect(canonical != absent, "\(c.key) made no difference: \(canonical)")
        for v in c.variants {
            #expect(decoded(c.decoder, c.config(v)) == canonical, "\"\(v)\" decodes differently from \"\(c.key)\"")
        }
    }

    /// Go's precedence, where a variant and the exact key are both present: the exact key.
    @Test func exactKeyWinsOverVariant() {
        let both = decoded("bridge", br(#""IPMasq":false,"ipMasq":true"#))
        #expect(both == decoded("bridge", br(#""ipMasq":true"#)))
        let pmBoth = decoded("portmap", pm(#""runtimeConfig":{"portMappings":[{"hostPort":80,"HostPort":81,"containerPort":8080}]}"#))
        #expect(pmBoth == decoded("portmap", pm(#""runtimeConfig":{"portMappings":[{"hostPort":80,"containerPort":8080}]}"#)))
    }

    /// go-cni's flat ipRanges: one range set per family.
    @Test func flatIPRangesAreOneSetPerFamily() throws {
        let env = try CNIEnvironment(command: .add, containerID: "ctr", netns: "/x", ifname: "eth0")
        let flat = #"{"cniVersion":"1.0.0","name":"n","type":"bridge","runtimeConfig":{"ipRanges":[{"Subnet":"10.2.0.0/24"},{"Subnet":"fd00:2::/64"},{"Subnet":"10.3.0.0/24","Gateway":"10.3.0.9"}]},"ipam":{"type":"host-local"}}"#
        let c = try HostLocalConfig(try CNIRequest(env: env, configBytes: Array(flat.utf8)))
        #expect(c.rangeSets.map { $0.ranges.map(\.subnet.description) } == [["10.2.0.0/24", "10.3.0.0/24"], ["fd00:2::/64"]])
        #expect(c.rangeSets[0].ranges[1].gateway?.description == "10.3.0.9")
    }

    /// Maps stay maps: auxAddresses names and Podman's aliases map (network → names) keep
    /// their keys as given.
    @Test func mapsKeepTheirKeys() {
        let aux = decoded("host-local", hl(#""auxAddresses":{"Router":"10.1.0.5"},\#(range)"#))
        #expect(aux.contains("\"Router\""), "\(aux)")
        let mine = decoded("dns-alias", dn(#""runtimeConfig":{"aliases":{"net":["www"],"NET":["other"]}}"#))
        #expect(mine.contains("\"www\"") && !mine.contains("\"other\""), "\(mine)")
    }
}
