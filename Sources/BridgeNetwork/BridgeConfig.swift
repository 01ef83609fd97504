import Base
import CNI
import Firewall

/// The `bridge` plugin's configuration: the reference plugin's keys, plus Docker's `icc`
/// and `internal`.
public struct BridgeConfig {
    var bridge = "cni0"
    var isGateway = false
    var isDefaultGateway = false
    var forceAddress = false
    /// Keep a gateway address per IPv4 subnet on the bridge (an overlay network with several
    /// subnets); without it an IPv4 bridge holds one address, as the reference's.
    var allSubnetGateways = false
    var ipMasq = false
    var mtu: Int?
    var hairpinMode = false
    var promiscMode = false
    var vlan = 0
    var vlanTrunk: [Int] = []
    var preserveDefaultVlan = true
    var macspoofchk = false
    var enabledad = false
    var disableContainerInterface = false
    var portIsolation = false
    var icc = true
    var `internal` = false
    /// Container interface MAC (config `mac`, CNI_ARGS MAC, args.cni.mac, runtimeConfig.mac).
    var mac: MACAddress?
    /// `ipam.type`, empty for a layer-2 only network.
    var ipamType = ""
    /// Top-level `dns` (overrides what IPAM returns).
    var dns: CNIDNS?
    /// `runtimeConfig.dns` (capability `dns`), merged into the result's DNS.
    var runtimeDNS: CNIDNS?
    /// What to do about another table whose forward policy is drop.
    var hostFirewall = HostFirewallMode.check
    /// Docker's gateway modes (`gatewayModeIPv4`, `gatewayModeIPv6`); nil: `ipMasq` decides.
    var gatewayModeV4: GatewayMode?
    var gatewayModeV6: GatewayMode?

    func gatewayMode(_ f: IPFamily) -> GatewayMode? { f == .v4 ? gatewayModeV4 : gatewayModeV6 }

    static let knownKeys: Set<String> = [
        "cniVersion", "cniVersions", "name", "type", "args", "runtimeConfig", "capabilities", "prevResult", "ipam", "dns",
        "bridge", "isGateway", "isDefaultGateway", "forceAddress", "allSubnetGateways", "ipMasq", "ipMasqBackend", "mtu", "hairpinMode",
        "promiscMode", "vlan", "vlanTrunk", "preserveDefaultVlan", "macspoofchk", "enabledad", "disableContainerInterface",
        "portIsolation", "icc", "internal", "mac", "hostFirewall", "gatewayModeIPv4", "gatewayModeIPv6",
    ]

    public init(_ req: CNIRequest) throws(CNIError) {
        let c = req.config
        // What names the network's pieces: all that DEL and GC read.
        if let b = try c.string("bridge") {
            if let why = CNIEnvironment.interfaceNameProblem(b) { throw c.invalid("bridge", "not a valid interface name: \(why)") }
            bridge = b
        }
        if let ipam = try c.object("ipam") {
            ipamType = try ipam.string("type") ?? ""
        }
        if req.isTeardown { return }
        isDefaultGateway = try c.bool("isDefaultGateway") ?? false
        isGateway = (try c.bool("isGateway") ?? false) || isDefaultGateway
        forceAddress = try c.bool("forceAddress") ?? false
        allSubnetGateways = try c.bool("allSubnetGateways") ?? false
        ipMasq = try c.bool("ipMasq") ?? false
        if let b = try c.string("ipMasqBackend"), !["", "nftables", "iptables"].contains(b) {
            throw c.invalid("ipMasqBackend", "must be \"nftables\" or \"iptables\" (swiftcni always uses nftables)")
        }
        if let m = try c.int("mtu", in: 0...65535), m > 0 {
            if m < 68 { throw c.invalid("mtu", "must be at least 68") }
            mtu = m
        }
        hairpinMode = try c.bool("hairpinMode") ?? false
        promiscMode = try c.bool("promiscMode") ?? false
        if hairpinMode && promiscMode {
            throw CNIError(.invalidConfig, "\"hairpinMode\" and \"promiscMode\" cannot both be true")
        }
        vlan = try c.int("vlan") ?? 0
        if vlan < 0 || vlan > 4094 { throw c.invalid("vlan", "invalid VLAN ID (must be between 0 and 4094)") }
        vlanTrunk = try BridgeConfig.parseTrunk(c)
        if vlan > 0 && !vlanTrunk.isEmpty {
            throw CNIError(.invalidConfig, "\"vlan\" and \"vlanTrunk\" cannot be set at the same time")
        }
        preserveDefaultVlan = try c.bool("preserveDefaultVlan") ?? true
        macspoofchk = try c.bool("macspoofchk") ?? false
        enabledad = try c.bool("enabledad") ?? false
        disableContainerInterface = try c.bool("disableContainerInterface") ?? false
        portIsolation = try c.bool("portIsolation") ?? false
        icc = try c.bool("icc") ?? true
        `internal` = try c.bool("internal") ?? false
        if isGateway && ipamType.isEmpty {
            throw CNIError(.invalidConfig, "\"isGateway\" needs an \"ipam\" section (a layer-2 network has no gateway)")
        }
        if let h = try c.string("hostFirewall") {
            guard let m = HostFirewallMode(rawValue: h) else {
                throw c.invalid("hostFirewall", "must be \"check\", \"iptables\" or \"ignore\"")
            }
            hostFirewall = m
        }
        for key in ["gatewayModeIPv4", "gatewayModeIPv6"] {
            guard let text = try c.string(key), !text.isEmpty else { continue }
            guard let m = GatewayMode(rawValue: text) else {
                throw c.invalid(key, "unknown gateway mode (nat, nat-unprotected, routed or isolated)")
            }
            if m == .isolated && !`internal` {
                throw c.invalid(key, "gateway mode 'isolated' can only be used for an internal network (\"internal\": true)")
            }
            if key == "gatewayModeIPv4" { gatewayModeV4 = m } else { gatewayModeV6 = m }
        }
        if `internal` && isDefaultGateway {
            // An internal network has no way out: no default route, whatever else is asked.
            isDefaultGateway = false
        }
        if let d = try c.object("dns") {
            let parsed = try CNIDNS(reading: d)
            if !parsed.isEmpty { dns = parsed }
        }
        // Capability "dns" (CNI conventions; go-cni sends {"Servers","Searches","Options"}):
        // what the runtime wants the container to use, reported in the result after the rest.
        if let rc = try c.object("runtimeConfig"), let d = try rc.object("dns") {
            runtimeDNS = CNIDNS(nameservers: try d.stringArray("servers") ?? [], search: try d.stringArray("searches") ?? [],
                                options: try d.stringArray("options") ?? [])
        }

        // Container MAC, lowest to highest precedence: config, CNI_ARGS, args, runtimeConfig.
        var macText: (String, String)? = nil
        if let m = try c.string("mac"), !m.isEmpty { macText = ("\"mac\"", m) }
        if let m = req.env.arg("MAC"), !m.isEmpty { macText = ("CNI_ARGS MAC", m) }
        if let a = try c.object("args"), let cni = try a.object("cni"), let m = try cni.string("mac"), !m.isEmpty {
            macText = ("\"args.cni.mac\"", m)
        }
        if let rc = try c.object("runtimeConfig"), let m = try rc.string("mac"), !m.isEmpty {
            macText = ("\"runtimeConfig.mac\"", m)
        }
        if let (src, text) = macText {
            guard let m = MACAddress(text) else {
                throw CNIError(src.hasPrefix("CNI_ARGS") ? .invalidEnvironment : .invalidConfig, "\(src) \"\(text)\": not a MAC address")
            }
            if m.isMulticast { throw CNIError(.invalidConfig, "\(src) \"\(text)\": a multicast MAC cannot be an interface address") }
            mac = m
        }
    }

    /// Keys this build cannot honour: code 2 if enabled.
    func unsupported() -> CNIError? {
        if macspoofchk { return CNIError(.unsupportedField, "\"macspoofchk\": not supported by swiftcni's bridge yet") }
        return nil
    }

    /// What the network needs from the firewall.
    func policy(network: String) -> NetworkPolicy {
        NetworkPolicy(network: network, bridge: bridge, ipMasq: ipMasq, icc: icc, isInternal: `internal`,
                      acceptInIptables: hostFirewall == .iptables, gatewayModeV4: gatewayModeV4, gatewayModeV6: gatewayModeV6)
    }

    static func parseTrunk(_ c: JSONReader) throws(CNIError) -> [Int] {
        guard let items = try c.objects("vlanTrunk") else { return [] }
        var set = Set<Int>()
        for it in items {
            let minID = try it.int("minID")
            let maxID = try it.int("maxID")
            switch (minID, maxID) {
            case let (lo?, hi?):
                guard (1...4094).contains(lo) else { throw it.invalid("minID", "incorrect trunk minID (1-4094)") }
                guard (1...4094).contains(hi) else { throw it.invalid("maxID", "incorrect trunk maxID (1-4094)") }
                guard lo <= hi else { throw it.invalid("minID", "is greater than maxID \(hi)") }
                for v in lo...hi { set.insert(v) }
            case (nil, _?): throw CNIError(.invalidConfig, "\"\(it.path)\": minID and maxID must be set together, minID is missing")
            case (_?, nil): throw CNIError(.invalidConfig, "\"\(it.path)\": minID and maxID must be set together, maxID is missing")
            default: break
            }
            if let id = try it.int("id") {
                guard (1...4094).contains(id) else { throw it.invalid("id", "incorrect trunk id (1-4094)") }
                set.insert(id)
            }
        }
        return set.sorted()
    }
}
