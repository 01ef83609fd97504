import ArgumentParser
import Base
import CNI

/// `cnictl inspect CONTAINER…`: Docker's `docker inspect` of containers, the network part of
/// it (`NetworkSettings.Networks.<network>` as Docker fills it), from cnictl's records and the
/// cached CNI results.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Show containers in detail (JSON, Docker's shape of `docker inspect`).",
        discussion: """
            Examples:
              cnictl inspect container3
              cnictl inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' container3
              cnictl inspect -f '{{json .NetworkSettings.Networks}}' container3 container4
            """)
    @OptionGroup var cni: CNIOptions
    @Option(name: [.short, .customLong("format")], help: "A Go template, applied to each container.") var format: String?
    @Argument(help: "Containers (names or ID prefixes).") var containers: [String]

    func run() throws {
        try reporting {
            let store = Store()
            let ctrs = Containers(cni: cni, store: store)
            let items = try containers.map { try ContainerInspect(ctrs: ctrs, store: store).json(try ctrs.find($0)) }
            try printInspected(items, format: format)
        }
    }
}

struct ContainerInspect {
    let ctrs: Containers
    let store: Store

    func json(_ c: ContainerRecord) -> JSON {
        var networks: [(String, JSON)] = []
        if let m = c.mode {
            networks.append((m.rawValue, endpoint(c, networkID: m.id, ifname: m.rawValue, result: nil, ep: nil)))
        }
        var ports = JSONObject()
        for ep in c.endpoints {
            let net = (try? store.network(ep.network)) ?? nil
            let result = ctrs.result(c, ep)
            networks.append((ep.network, endpoint(c, networkID: net?.id ?? String(stableHash(ep.network)), ifname: ep.ifname,
                                                  result: result, ep: ep)))
            // One binding per address family the container has on the network (Docker's 0.0.0.0
            // and ::); in a routed family the host port is not used: "".
            let fams = Set((result?.ips ?? []).map(\.address.family))
            func hostPort(_ p: PortSpec, _ f: IPFamily) -> JSON {
                net?.gatewayMode(f) == .routed ? "" : .string(String(p.hostPort))
            }
            for p in ep.ports {
                let key = "\(p.containerPort)/\(p.proto)"
                var bindings: [JSON] = []
                if let h = p.hostIP {
                    bindings.append(["HostIp": .string(h), "HostPort": hostPort(p, IPAddress(h)?.family ?? .v4)])
                } else {
                    for f in [IPFamily.v4, .v6] where fams.contains(f) || (fams.isEmpty && f == .v4) {
                        bindings.append(["HostIp": f == .v4 ? "0.0.0.0" : "::", "HostPort": hostPort(p, f)])
                    }
                }
                ports[key] = .array((ports[key]?.arrayValue ?? []) + bindings)
            }
        }
        let mode = c.mode?.rawValue ?? c.endpoints.first?.network ?? "none"
        return .object(JSONObject([
            ("Id", .string(c.id)), ("Created", .string(c.created)), ("Name", .string("/" + c.name)),
            ("State", ["Status": .string(c.running ? "running" : "exited"), "Running": .bool(c.running)]),
            ("Config", ["Env": c.env.isEmpty ? .null : .array(c.env.map { .string("\($0.0)=\($0.1)") }),
                        "ExposedPorts": LegacyLinks.exposed(c).isEmpty ? .null
                            : .object(JSONObject(LegacyLinks.exposed(c).map { ("\($0.port)/\($0.proto)", .object(JSONObject())) }))]),
            ("HostConfig", ["NetworkMode": .string(mode),
                            "Dns": .array(c.dns.nameservers.map { .string($0) }), "DnsSearch": .array(c.dns.search.map { .string($0) }),
                            "DnsOptions": .array(c.dns.options.map { .string($0) }),
                            "Links": c.legacyLinks.isEmpty ? .null : .array(c.legacyLinks.map { .string("/\($0.target):/\(c.name)/\($0.alias)") })]),
            ("NetworkSettings", .object(JSONObject([
                ("SandboxID", .string(c.hasNamespace ? String(stableHash(c.netns)) : "")),
                ("SandboxKey", .string(c.hasNamespace ? c.netns : "")),
                ("Ports", .object(ports)),
                ("Networks", .object(JSONObject(networks))),
            ]))),
        ]))
    }

    /// One `NetworkSettings.Networks` entry, with Docker's field names and empty values.
    func endpoint(_ c: ContainerRecord, networkID: String, ifname: String, result: CNIResult?, ep: ContainerRecord.Endpoint?) -> JSON {
        let iface = result?.interfaces.first { $0.name == ifname && $0.sandbox == c.netns }
        let v4 = result?.ips.first { $0.address.family == .v4 }
        let v6 = result?.ips.first { $0.address.family == .v6 }
        var ipam: JSON = .null
        if ep?.ip != nil || ep?.ip6 != nil {
            var o = JSONObject()
            if let a = ep?.ip { o["IPv4Address"] = .string(a) }
            if let a = ep?.ip6 { o["IPv6Address"] = .string(a) }
            ipam = .object(o)
        }
        // Names the embedded DNS answers for it: on user-defined networks only, as Docker's.
        let userDefined = ep != nil && ep?.network != "bridge"
        let aliases = ep?.aliases ?? []
        let dnsNames: JSON = userDefined ? .array(([c.name] + aliases + [String(c.id.prefix(12))]).map { .string($0) }) : .null
        return .object(JSONObject([
            ("IPAMConfig", ipam),
            ("Links", (ep?.links ?? []).isEmpty ? .null : .array(ep!.links.map { .string($0) })),
            ("Aliases", aliases.isEmpty ? .null : .array(aliases.map { .string($0) })),
            ("MacAddress", .string(iface?.mac ?? "")),
            ("DriverOpts", .null),
            ("GwPriority", .int(ep?.gwPriority ?? 0)),
            ("NetworkID", .string(networkID)),
            ("EndpointID", .string(ep == nil ? "" : String(stableHash(c.id + ifname)))),
            ("Gateway", .string(v4?.gateway?.description ?? "")),
            ("IPAddress", .string(v4?.address.address.description ?? "")),
            ("IPPrefixLen", .int(v4?.address.prefixLength ?? 0)),
            ("IPv6Gateway", .string(v6?.gateway?.description ?? "")),
            ("GlobalIPv6Address", .string(v6?.address.address.description ?? "")),
            ("GlobalIPv6PrefixLen", .int(v6?.address.prefixLength ?? 0)),
            ("DNSNames", dnsNames),
        ]))
    }
}
