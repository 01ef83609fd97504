import Foundation
import Testing
@testable import Base
@testable import CNI

/// One refused invocation: what is sent, the error code and message expected, and (checked
/// for every case) that nothing was created on the host, in the container or in the state.
struct BadInput: CustomTestStringConvertible, Sendable {
    var name: String
    var plugin = "bridge"
    var command = "ADD"
    /// The configuration; `{{data}}` is replaced by the lab's data dir, `{{br}}` by a bridge name.
    var config: String
    var containerID = "ctr1"
    /// nil: the lab's container; "" unset; anything else as given.
    var netns: String? = nil
    var ifname = "eth0"
    var args = ""
    /// Shell run in the lab's host namespace before the call (`{{c}}` is the container).
    var setup = ""
    /// An ADD of another container made first, with this config (for "taken" cases).
    var preAdd: String? = nil
    var code: CNIErrorCode
    var msg: String

    var testDescription: String { name }
}

func ipamCfg(_ ranges: String, extra: String = "") -> String {
    #"{"type":"host-local","dataDir":"{{data}}","ranges":\#(ranges)\#(extra)}"#
}

func brCfg(_ extra: String = "", ipam: String = ipamCfg(#"[[{"subnet":"10.130.0.0/24"}]]"#), version: String = "1.0.0") -> String {
    #"{"cniVersion":"\#(version)","name":"net","type":"bridge","bridge":"{{br}}","isGateway":true\#(extra),"ipam":\#(ipam)}"#
}

let badInputs: [BadInput] = [
    // The contract.
    BadInput(name: "malformed JSON", config: "{\"cniVersion\":", code: .decodingFailure, msg: "network configuration is not valid JSON: malformed JSON at byte 14"),
    BadInput(name: "JSON array", config: "[]", code: .decodingFailure, msg: "network configuration must be a JSON object"),
    BadInput(name: "empty stdin", config: "", code: .decodingFailure, msg: "empty input"),
    BadInput(name: "missing cniVersion", config: #"{"name":"net","type":"bridge"}"#, code: .incompatibleVersion, msg: "\"cniVersion\" is missing"),
    BadInput(name: "unknown cniVersion", config: brCfg(version: "2.0.0"), code: .incompatibleVersion, msg: "\"cniVersion\" \"2.0.0\" is not supported"),
    BadInput(name: "too old cniVersion", config: brCfg(version: "0.2.0"), code: .incompatibleVersion, msg: "\"cniVersion\" \"0.2.0\" is not supported"),
    BadInput(name: "GC before 1.1.0", command: "GC", config: brCfg(version: "1.0.0"), code: .incompatibleVersion, msg: "GC needs cniVersion 1.1.0"),
    BadInput(name: "missing name", config: #"{"cniVersion":"1.0.0","type":"bridge"}"#, code: .invalidConfig, msg: "\"name\" (the network name) is required"),
    BadInput(name: "invalid name", config: #"{"cniVersion":"1.0.0","name":"a/b","type":"bridge"}"#, code: .invalidConfig, msg: "\"name\" \"a/b\" is invalid"),
    BadInput(name: "missing CNI_COMMAND", command: "", config: brCfg(), code: .invalidEnvironment, msg: "CNI_COMMAND is not set"),
    BadInput(name: "unknown CNI_COMMAND", command: "ATTACH", config: brCfg(), code: .invalidEnvironment, msg: "CNI_COMMAND \"ATTACH\" is not one of"),
    BadInput(name: "missing CNI_CONTAINERID", config: brCfg(), containerID: "", code: .invalidEnvironment, msg: "CNI_CONTAINERID is required"),
    BadInput(name: "container ID starting with '-'", config: brCfg(), containerID: "-ctr", code: .invalidEnvironment, msg: "CNI_CONTAINERID \"-ctr\" is invalid"),
    BadInput(name: "container ID with a space", config: brCfg(), containerID: "ctr 1", code: .invalidEnvironment, msg: "CNI_CONTAINERID \"ctr 1\" is invalid"),
    BadInput(name: "missing CNI_NETNS", config: brCfg(), netns: "", code: .invalidEnvironment, msg: "CNI_NETNS is required for ADD"),
    BadInput(name: "missing CNI_IFNAME", config: brCfg(), ifname: "", code: .invalidEnvironment, msg: "CNI_IFNAME is required"),
    BadInput(name: "interface name too long", config: brCfg(), ifname: "eth0123456789abc", code: .invalidEnvironment, msg: "longer than 15 bytes"),
    BadInput(name: "interface name with '/'", config: brCfg(), ifname: "eth/0", code: .invalidEnvironment, msg: "may not contain '/', ':' or whitespace"),
    BadInput(name: "interface name '..'", config: brCfg(), ifname: "..", code: .invalidEnvironment, msg: "may not be \".\" or \"..\""),
    BadInput(name: "netns that does not exist", config: brCfg(), netns: "/run/netns/swiftcni-no-such-ns", code: .unknownContainer, msg: "network namespace \"/run/netns/swiftcni-no-such-ns\" does not exist"),
    BadInput(name: "netns path that is not a netns", config: brCfg(), netns: "/etc/hostname", code: .invalidEnvironment, msg: "\"/etc/hostname\" is not a network namespace"),
    BadInput(name: "unknown CNI_ARGS key", config: brCfg(), args: "COLOR=blue", code: .invalidEnvironment, msg: "CNI_ARGS: unknown key(s) \"COLOR\""),
    BadInput(name: "malformed CNI_ARGS", config: brCfg(), args: "IP", code: .invalidEnvironment, msg: "CNI_ARGS: invalid pair \"IP\""),
    BadInput(name: "CNI_ARGS IP not an address", config: brCfg(), args: "IP=10.130.0", code: .invalidEnvironment, msg: "CNI_ARGS: IP \"10.130.0\" is not an IP address"),
    BadInput(name: "CNI_ARGS MAC not a MAC", config: brCfg(), args: "MAC=11:22", code: .invalidEnvironment, msg: "CNI_ARGS MAC \"11:22\": not a MAC address"),
    // bridge configuration.
    BadInput(name: "mtu as a string", config: brCfg(#","mtu":"1500""#), code: .decodingFailure, msg: "\"mtu\": expected an integer, got a string \"1500\""),
    BadInput(name: "mtu too small", config: brCfg(#","mtu":60"#), code: .invalidConfig, msg: "\"mtu\" 60: must be at least 68"),
    BadInput(name: "isGateway as a string", config: brCfg(#","isGateway":"yes""#), code: .decodingFailure, msg: "\"isGateway\": expected true or false"),
    BadInput(name: "bridge name too long", config: brCfg(#","bridge":"averyveryverylongbridge""#), code: .invalidConfig, msg: "\"bridge\" \"averyveryverylongbridge\": not a valid interface name"),
    BadInput(name: "vlan out of range", config: brCfg(#","vlan":5000"#), code: .invalidConfig, msg: "\"vlan\" 5000: invalid VLAN ID"),
    BadInput(name: "vlan and vlanTrunk", config: brCfg(#","vlan":10,"vlanTrunk":[{"id":20}]"#), code: .invalidConfig, msg: "\"vlan\" and \"vlanTrunk\" cannot be set at the same time"),
    BadInput(name: "vlanTrunk minID without maxID", config: brCfg(#","vlanTrunk":[{"minID":20}]"#), code: .invalidConfig, msg: "minID and maxID must be set together, maxID is missing"),
    BadInput(name: "hairpin and promiscuous", config: brCfg(#","hairpinMode":true,"promiscMode":true"#), code: .invalidConfig, msg: "\"hairpinMode\" and \"promiscMode\" cannot both be true"),
    BadInput(name: "invalid mac", config: brCfg(#","mac":"zz:11:22:33:44:55""#), code: .invalidConfig, msg: "\"mac\" \"zz:11:22:33:44:55\": not a MAC address"),
    BadInput(name: "multicast mac", config: brCfg(#","mac":"01:00:5e:00:00:01""#), code: .invalidConfig, msg: "a multicast MAC cannot be an interface address"),
    BadInput(name: "macspoofchk", config: brCfg(#","macspoofchk":true"#), code: .unsupportedField, msg: "\"macspoofchk\": not supported"),
    BadInput(name: "gateway mode unknown", config: brCfg(#","gatewayModeIPv4":"natted""#), code: .invalidConfig, msg: "\"gatewayModeIPv4\" \"natted\": unknown gateway mode (nat, nat-unprotected, routed or isolated)"),
    BadInput(name: "gateway mode isolated on a network not internal", config: brCfg(#","gatewayModeIPv6":"isolated""#), code: .invalidConfig, msg: "\"gatewayModeIPv6\" \"isolated\": gateway mode 'isolated' can only be used for an internal network"),
    BadInput(name: "ipMasqBackend unknown", config: brCfg(#","ipMasqBackend":"ebpf""#), code: .invalidConfig, msg: "\"ipMasqBackend\" \"ebpf\""),
    BadInput(name: "isGateway without ipam", config: #"{"cniVersion":"1.0.0","name":"net","type":"bridge","bridge":"{{br}}","isGateway":true}"#, code: .invalidConfig, msg: "\"isGateway\" needs an \"ipam\" section"),
    BadInput(name: "ipam plugin not found", config: brCfg(ipam: #"{"type":"no-such-ipam"}"#), code: .delegateFailed, msg: "failed to find plugin \"no-such-ipam\" in CNI_PATH"),
    BadInput(name: "existing interface name in the container", config: brCfg(), setup: "ip -n {{c}} link add eth0 type veth peer name peer0", code: .interfaceExists, msg: "interface \"eth0\" already exists in the container"),
    BadInput(name: "bridge name taken by a non-bridge", config: brCfg(), setup: "ip link add {{br}} type veth peer name {{br}}p", code: .invalidConfig, msg: "a link with that name exists and is not a bridge (kind veth)"),
    // host-local configuration (through bridge, and the plugin itself).
    BadInput(name: "ipam missing", plugin: "host-local", config: #"{"cniVersion":"1.0.0","name":"net","type":"host-local"}"#, code: .invalidConfig, msg: "\"ipam\" is required"),
    BadInput(name: "no ranges", config: brCfg(ipam: #"{"type":"host-local","dataDir":"{{data}}"}"#), code: .invalidConfig, msg: "\"ipam.ranges\": no IP ranges specified"),
    BadInput(name: "range without subnet", config: brCfg(ipam: ipamCfg(#"[[{"gateway":"10.130.0.1"}]]"#)), code: .invalidConfig, msg: "\"ipam.ranges[0][0].subnet\" is required"),
    BadInput(name: "invalid CIDR prefix", config: brCfg(ipam: ipamCfg(#"[[{"subnet":"10.130.0.0/33"}]]"#)), code: .invalidConfig, msg: "\"ipam.ranges[0][0].subnet\" \"10.130.0.0/33\": not a CIDR"),
    BadInput(name: "invalid CIDR address", config: brCfg(ipam: ipamCfg(#"[[{"subnet":"10.130.0/24"}]]"#)), code: .invalidConfig, msg: "\"10.130.0/24\": not a CIDR"),
    BadInput(name: "subnet with host bits", config: brCfg(ipam: ipamCfg(#"[[{"subnet":"10.130.0.9/24"}]]"#)), code: .invalidConfig, msg: "has host bits set; the network is 10.130.0.0/24"),
    BadInput(name: "subnet too small", config: brCfg(ipam: ipamCfg(#"[[{"subnet":"10.130.0.0/31"}]]"#)), code: .invalidConfig, msg: "network too small to allocate from"),
    BadInput(name: "gateway outside subnet", config: brCfg(ipam: ipamCfg(#"[[{"subnet":"10.130.0.0/24","gateway":"10.131.0.1"}]]"#)), code: .invalidConfig, msg: "\"ipam.ranges[0][0].gateway\" \"10.131.0.1\": not in subnet 10.130.0.0/24"),
    BadInput(name: "rangeStart after rangeEnd", config: brCfg(ipam: ipamCfg(#"[[{"subnet":"10.130.0.0/24","rangeStart":"10.130.0.200","rangeEnd":"10.130.0.100"}]]"#)), code: .invalidConfig, msg: "\"ipam.ranges[0][0].rangeStart\" \"10.130.0.200\" is after \"ipam.ranges[0][0].rangeEnd\" \"10.130.0.100\""),
    BadInput(name: "rangeStart outside subnet", config: brCfg(ipam: ipamCfg(#"[[{"subnet":"10.130.0.0/24","rangeStart":"10.1.0.5"}]]"#)), code: .invalidConfig, msg: "\"ipam.ranges[0][0].rangeStart\" \"10.1.0.5\": not in subnet"),
    BadInput(name: "ipRange outside subnet", config: brCfg(ipam: ipamCfg(#"[[{"subnet":"10.130.0.0/24","ipRange":"10.131.0.0/25"}]]"#)), code: .invalidConfig, msg: "\"ipam.ranges[0][0].ipRange\" \"10.131.0.0/25\": not inside subnet 10.130.0.0/24"),
    BadInput(name: "overlapping range sets", config: brCfg(ipam: ipamCfg(#"[[{"subnet":"10.130.0.0/24"}],[{"subnet":"10.130.0.0/25"}]]"#)), code: .invalidConfig, msg: "range set 0 overlaps with range set 1"),
    BadInput(name: "aux address outside subnets", config: brCfg(ipam: ipamCfg(#"[[{"subnet":"10.130.0.0/24"}]]"#, extra: #","auxAddresses":{"router":"10.9.9.9"}"#)), code: .invalidConfig, msg: "\"ipam.auxAddresses.router\" \"10.9.9.9\": not in any configured subnet"),
    BadInput(name: "requested IP is the gateway", config: brCfg(), args: "IP=10.130.0.1", code: .invalidConfig, msg: "requested IP 10.130.0.1 is the gateway of 10.130.0.0/24"),
    BadInput(name: "requested IP is an aux address", config: brCfg(ipam: ipamCfg(#"[[{"subnet":"10.130.0.0/24"}]]"#, extra: #","auxAddresses":{"router":"10.130.0.5"}"#)), args: "IP=10.130.0.5", code: .invalidConfig, msg: "requested IP 10.130.0.5 is reserved as auxiliary address \"router\""),
    BadInput(name: "requested IP is the broadcast", config: brCfg(), args: "IP=10.130.0.255", code: .invalidConfig, msg: "requested IP 10.130.0.255 is the broadcast address of 10.130.0.0/24"),
    BadInput(name: "requested IP outside every subnet", config: brCfg(), args: "IP=192.168.7.7", code: .invalidConfig, msg: "requested IP 192.168.7.7 is not in any configured subnet (10.130.0.0/24)"),
    BadInput(name: "requested IP taken", config: brCfg(), args: "IP=10.130.0.2", preAdd: brCfg(), code: .addressInUse, msg: "requested IP 10.130.0.2 is already allocated to container other (eth0)"),
    BadInput(name: "range exhausted", config: brCfg(ipam: ipamCfg(#"[[{"subnet":"10.130.0.0/24","rangeStart":"10.130.0.2","rangeEnd":"10.130.0.2"}]]"#)),
             preAdd: brCfg(ipam: ipamCfg(#"[[{"subnet":"10.130.0.0/24","rangeStart":"10.130.0.2","rangeEnd":"10.130.0.2"}]]"#)),
             code: .addressesExhausted, msg: "no IP addresses available in range set 10.130.0.2-10.130.0.2"),
    BadInput(name: "route with a bad dst", config: brCfg(ipam: ipamCfg(#"[[{"subnet":"10.130.0.0/24"}]]"#, extra: #","routes":[{"dst":"default"}]"#)), code: .invalidConfig, msg: "\"ipam.routes[0].dst\" \"default\": not a CIDR"),
    BadInput(name: "CHECK without prevResult", command: "CHECK", config: brCfg(), code: .invalidConfig, msg: "\"prevResult\" is required for CHECK"),
    BadInput(name: "loopback in a netns that does not exist", plugin: "loopback", config: #"{"cniVersion":"1.0.0","name":"lo","type":"loopback"}"#, netns: "/run/netns/swiftcni-no-such-ns", code: .unknownContainer, msg: "network namespace \"/run/netns/swiftcni-no-such-ns\" does not exist"),
    BadInput(name: "host-local alone with ipam.etcd", plugin: "host-local", config: #"{"cniVersion":"1.0.0","name":"net","type":"host-local","ipam":{"type":"host-local","dataDir":"{{data}}","subnet":"10.130.0.0/24","etcd":{"endpoints":["http://127.0.0.1:1"]}}}"#, code: .unsupportedField, msg: "\"ipam.etcd\": addresses in etcd are allocated by the overlay plugin's agent (a network of \"type\": \"overlay\" has them); host-local alone keeps them in its data dir"),
    BadInput(name: "overlay whose ipam.etcd is another cluster", plugin: "overlay", config: #"{"cniVersion":"1.0.0","name":"net","type":"overlay","vni":77,"etcd":{"endpoints":["http://127.0.0.1:1"]},"ipam":{"type":"host-local","subnet":"10.130.0.0/24","etcd":{"endpoints":["http://127.0.0.1:2"]}}}"#, code: .invalidConfig, msg: "\"ipam.etcd\": an overlay network's addresses are kept in its own cluster (\"etcd\": http://127.0.0.1:1, prefix /swiftcni); ipam.etcd names another"),
    BadInput(name: "overlay with a block size out of range", plugin: "overlay", config: #"{"cniVersion":"1.0.0","name":"net","type":"overlay","vni":77,"etcd":{"endpoints":["http://127.0.0.1:1"]},"ipam":{"type":"host-local","subnet":"10.130.0.0/24","blockSize":33}}"#, code: .invalidConfig, msg: "\"ipam.blockSize\" 33: must be between 8 and 32"),
    BadInput(name: "host-local with a numeric ipam type", plugin: "host-local", config: #"{"cniVersion":"1.0.0","name":"net","type":"host-local","ipam":{"type":5,"dataDir":"{{data}}","subnet":"10.130.0.0/24"}}"#, code: .decodingFailure, msg: "\"ipam.type\": expected a string, got a number 5"),
] + textFaults

/// A string-valued key holding something that is not text: a NUL (`\u0000`) or a byte that
/// is not UTF-8. Go would cut at the NUL in the kernel call (attaching to `cni0` for
/// `cni0\u0000evil`) or rewrite the byte to U+FFFD (state in another directory); we refuse.
struct TextFaultKey {
    var plugin: String
    /// The key path as the message names it.
    var path: String
    /// The configuration with `@V@` where the string's content goes (`x` + fault + `y`).
    var config: String
    var code: CNIErrorCode = .decodingFailure
    /// What precedes `@V@` inside the string (shown in the message too).
    var prefix = ""
}

private let pmPrev = #""prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"interface":0,"address":"10.130.0.2/24"}]}"#
private func pmCfg(_ member: String) -> String { #"{"cniVersion":"1.0.0","name":"net","type":"portmap",\#(pmPrev),\#(member)}"# }
private func dnsCfg(_ member: String) -> String { #"{"cniVersion":"1.0.0","name":"net","type":"dns-alias",\#(pmPrev),\#(member)}"# }
private func ovCfg(_ member: String, etcd: String = #""etcd":{"endpoints":["http://127.0.0.1:1"]}"#) -> String {
    #"{"cniVersion":"1.0.0","name":"net","type":"overlay","vni":77,\#(etcd),"ipam":{"type":"host-local","dataDir":"{{data}}","subnet":"10.130.0.0/24"},\#(member)}"#
}
private let r0 = #"{"subnet":"10.130.0.0/24""#

let textFaultKeys: [TextFaultKey] = [
    TextFaultKey(plugin: "bridge", path: "name", config: #"{"cniVersion":"1.0.0","name":"@V@","type":"bridge"}"#),
    TextFaultKey(plugin: "bridge", path: "cniVersion", config: #"{"cniVersion":"@V@","name":"net","type":"bridge"}"#),
    TextFaultKey(plugin: "bridge", path: "type", config: #"{"cniVersion":"1.0.0","name":"net","type":"@V@"}"#),
    TextFaultKey(plugin: "bridge", path: "bridge", config: brCfg(#","bridge":"@V@""#)),
    TextFaultKey(plugin: "bridge", path: "mac", config: brCfg(#","mac":"@V@""#)),
    TextFaultKey(plugin: "bridge", path: "hostFirewall", config: brCfg(#","hostFirewall":"@V@""#)),
    TextFaultKey(plugin: "bridge", path: "gatewayModeIPv4", config: brCfg(#","gatewayModeIPv4":"@V@""#)),
    TextFaultKey(plugin: "bridge", path: "ipMasqBackend", config: brCfg(#","ipMasqBackend":"@V@""#)),
    TextFaultKey(plugin: "bridge", path: "dns.nameservers[0]", config: brCfg(#","dns":{"nameservers":["@V@"]}"#)),
    TextFaultKey(plugin: "bridge", path: "dns.domain", config: brCfg(#","dns":{"domain":"@V@"}"#)),
    TextFaultKey(plugin: "bridge", path: "args.cni.mac", config: brCfg(#","args":{"cni":{"mac":"@V@"}}"#)),
    TextFaultKey(plugin: "bridge", path: "runtimeConfig.mac", config: brCfg(#","runtimeConfig":{"mac":"@V@"}"#)),
    TextFaultKey(plugin: "bridge", path: "ipam.type", config: brCfg(ipam: #"{"type":"@V@"}"#)),
    TextFaultKey(plugin: "bridge", path: "ipam.dataDir", config: brCfg(ipam: #"{"type":"host-local","dataDir":"{{data}}/@V@","subnet":"10.130.0.0/24"}"#), prefix: "{{data}}/"),
    TextFaultKey(plugin: "bridge", path: "ipam.resolvConf", config: brCfg(ipam: ipamCfg(#"[[{"subnet":"10.130.0.0/24"}]]"#, extra: #","resolvConf":"@V@""#))),
    TextFaultKey(plugin: "bridge", path: "ipam.subnet", config: brCfg(ipam: #"{"type":"host-local","dataDir":"{{data}}","subnet":"@V@"}"#)),
    TextFaultKey(plugin: "bridge", path: "ipam.ranges[0][0].subnet", config: brCfg(ipam: ipamCfg(#"[[{"subnet":"@V@"}]]"#))),
    TextFaultKey(plugin: "bridge", path: "ipam.ranges[0][0].rangeStart", config: brCfg(ipam: ipamCfg(#"[[\#(r0),"rangeStart":"@V@"}]]"#))),
    TextFaultKey(plugin: "bridge", path: "ipam.ranges[0][0].rangeEnd", config: brCfg(ipam: ipamCfg(#"[[\#(r0),"rangeEnd":"@V@"}]]"#))),
    TextFaultKey(plugin: "bridge", path: "ipam.ranges[0][0].gateway", config: brCfg(ipam: ipamCfg(#"[[\#(r0),"gateway":"@V@"}]]"#))),
    TextFaultKey(plugin: "bridge", path: "ipam.ranges[0][0].ipRange", config: brCfg(ipam: ipamCfg(#"[[\#(r0),"ipRange":"@V@"}]]"#))),
    TextFaultKey(plugin: "bridge", path: "ipam.routes[0].dst", config: brCfg(ipam: ipamCfg(#"[[\#(r0)}]]"#, extra: #","routes":[{"dst":"@V@"}]"#))),
    TextFaultKey(plugin: "bridge", path: "ipam.routes[0].gw", config: brCfg(ipam: ipamCfg(#"[[\#(r0)}]]"#, extra: #","routes":[{"dst":"0.0.0.0/0","gw":"@V@"}]"#))),
    TextFaultKey(plugin: "bridge", path: "ipam.auxAddresses.router", config: brCfg(ipam: ipamCfg(#"[[\#(r0)}]]"#, extra: #","auxAddresses":{"router":"@V@"}"#))),
    TextFaultKey(plugin: "bridge", path: "args.cni.ips[0]", config: brCfg(#","args":{"cni":{"ips":["@V@"]}}"#)),
    TextFaultKey(plugin: "bridge", path: "runtimeConfig.ips[0]", config: brCfg(#","runtimeConfig":{"ips":["@V@"]}"#)),
    TextFaultKey(plugin: "bridge", path: "runtimeConfig.ipRanges[0][0].subnet", config: brCfg(#","runtimeConfig":{"ipRanges":[[{"subnet":"@V@"}]]}"#)),
    TextFaultKey(plugin: "host-local", path: "ipam.dataDir", config: #"{"cniVersion":"1.0.0","name":"net","type":"host-local","ipam":{"type":"host-local","dataDir":"{{data}}/@V@","subnet":"10.130.0.0/24"}}"#, prefix: "{{data}}/"),
    TextFaultKey(plugin: "host-local", path: "ipam.type", config: #"{"cniVersion":"1.0.0","name":"net","type":"host-local","ipam":{"type":"@V@","dataDir":"{{data}}","subnet":"10.130.0.0/24"}}"#),
    TextFaultKey(plugin: "portmap", path: "hostBindingIPv4", config: pmCfg(#""hostBindingIPv4":"@V@""#)),
    TextFaultKey(plugin: "portmap", path: "backend", config: pmCfg(#""backend":"@V@""#)),
    TextFaultKey(plugin: "portmap", path: "conditionsV4[0]", config: pmCfg(#""conditionsV4":["@V@"]"#)),
    TextFaultKey(plugin: "portmap", path: "runtimeConfig.portMappings[0].hostIP", config: pmCfg(#""runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"hostIP":"@V@"}]}"#)),
    TextFaultKey(plugin: "portmap", path: "runtimeConfig.portMappings[0].protocol", config: pmCfg(#""runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"@V@"}]}"#)),
    TextFaultKey(plugin: "portmap", path: "prevResult.ips[0].address", config: #"{"cniVersion":"1.0.0","name":"net","type":"portmap","runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80}]},"prevResult":{"cniVersion":"1.0.0","ips":[{"address":"@V@"}]}}"#),
    TextFaultKey(plugin: "dns-alias", path: "domainName", config: dnsCfg(#""domainName":"@V@""#)),
    TextFaultKey(plugin: "dns-alias", path: "upstream[0]", config: dnsCfg(#""upstream":["@V@"]"#)),
    TextFaultKey(plugin: "dns-alias", path: "runtimeConfig.dns.servers[0]", config: dnsCfg(#""runtimeConfig":{"dns":{"servers":["@V@"]}}"#)),
    TextFaultKey(plugin: "dns-alias", path: "runtimeConfig.name", config: dnsCfg(#""runtimeConfig":{"name":"@V@"}"#)),
    TextFaultKey(plugin: "dns-alias", path: "runtimeConfig.aliases[0]", config: dnsCfg(#""runtimeConfig":{"aliases":["@V@"]}"#)),
    TextFaultKey(plugin: "dns-alias", path: "runtimeConfig.links[0]", config: dnsCfg(#""runtimeConfig":{"links":["@V@"]}"#)),
    TextFaultKey(plugin: "overlay", path: "underlay", config: ovCfg(#""underlay":"@V@""#)),
    TextFaultKey(plugin: "overlay", path: "etcd.endpoints[0]", config: ovCfg("\"mtu\":1400", etcd: #""etcd":{"endpoints":["@V@"]}"#)),
    TextFaultKey(plugin: "overlay", path: "etcd.prefix", config: ovCfg("\"mtu\":1400", etcd: #""etcd":{"endpoints":["http://127.0.0.1:1"],"prefix":"@V@"}"#)),
    TextFaultKey(plugin: "loopback", path: "name", config: #"{"cniVersion":"1.0.0","name":"@V@","type":"loopback"}"#),
]

/// Each key twice: with a NUL and with a raw 0xFF byte.
let textFaults: [BadInput] = textFaultKeys.flatMap { k -> [BadInput] in
    [("\\u0000", "\\u0000", "a NUL character"), ("{{xff}}", "\u{FFFD}", "invalid UTF-8")].map { (inject, shown, fault) in
        BadInput(name: "\(k.plugin): \(k.path) with \(fault)", plugin: k.plugin, config: k.config.replacingOccurrences(of: "@V@", with: "x\(inject)y"),
                 code: k.code, msg: "\"\(k.path)\" \"\(k.prefix)x\(shown)y\": the string contains \(fault)")
    }
}

@Suite(.enabled(if: isRoot, "needs root (network namespaces)"))
struct BadInputs {
    @Test func enoughCases() {
        #expect(badInputs.count >= 150)
        #expect(Set(badInputs.map(\.name)).count == badInputs.count)
    }

    @Test(arguments: badInputs)
    func refused(_ c: BadInput) throws {
        try withLab { lab in
            let ctr = try lab.container("c")
            let br = lab.bridgeName()
            func fill(_ s: String) -> String {
                s.replacingOccurrences(of: "{{data}}", with: lab.dataDir).replacingOccurrences(of: "{{br}}", with: br)
                    .replacingOccurrences(of: "{{c}}", with: ctr)
            }
            if !c.setup.isEmpty {
                let r = lab.exec(lab.host, fill(c.setup))
                #expect(r.status == 0, "setup: \(r.err)")
            }
            var allocatedBefore: [String] = []
            if let pre = c.preAdd {
                let other = try lab.container("other")
                let r = lab.plugin(c.plugin, "ADD", config: fill(pre), containerID: "other", netns: other)
                #expect(r.status == 0, "pre-ADD: \(r.stdout)")
                allocatedBefore = lab.allocations("net")
            }
            let filesBefore = lab.files()
            let hostBefore = lab.links(lab.host)
            let ctrBefore = lab.links(ctr)
            let netns = c.netns ?? lab.path(ctr)
            let out = lab.plugin(c.plugin, c.command, config: fill(c.config), containerID: c.containerID, netns: netns,
                                 ifname: c.ifname, args: c.args)
            #expect(out.status == 1, "\(c.name): exit \(out.status), printed \(out.stdout)")
            let e = try #require(out.error, "\(c.name): not a CNI error: \(out.stdout)")
            #expect(e.code == c.code, "\(c.name): \(e)")
            #expect(e.msg.contains(fill(c.msg)), "\(c.name): \(e.msg)")
            // Nothing created: no link on either side, no allocation, no index entry.
            #expect(lab.links(lab.host) == hostBefore)
            #expect(lab.links(ctr) == ctrBefore)
            #expect(lab.allocations("net") == allocatedBefore)
            #expect(lab.files() == filesBefore, "\(c.name): files appeared")
        }
    }
}
