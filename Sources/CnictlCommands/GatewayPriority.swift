import Base
import CNI
import Netlink

/// Docker 28's default-gateway choice (`run --gw-priority`, `network connect --gw-priority`):
/// of a container's networks that give it a gateway (not internal ones), the one with the
/// highest priority carries its default route, for IPv4 and IPv6 each; ties go by network name.
/// Re-applied whenever the container's networks change, so the route moves when that network
/// is disconnected.
struct GatewayPriority {
    let ctrs: Containers
    let store: Store

    /// (network, interface, gateway) per family, the chosen first.
    func candidates(_ c: ContainerRecord, _ family: IPFamily) -> [(ep: ContainerRecord.Endpoint, gateway: IPAddress)] {
        var out: [(ContainerRecord.Endpoint, IPAddress)] = []
        for ep in c.endpoints {
            if (try? store.network(ep.network))??.isInternal == true { continue }
            guard let r = ctrs.result(c, ep), let g = r.ips.first(where: { $0.address.family == family })?.gateway else { continue }
            out.append((ep, g))
        }
        return out.sorted { a, b in a.0.gwPriority != b.0.gwPriority ? a.0.gwPriority > b.0.gwPriority : a.0.network < b.0.network }
    }

    /// Makes the container's default routes go through the chosen network's gateway.
    func apply(_ c: ContainerRecord) throws {
        guard c.running, c.hasNamespace, c.endpoints.count > 0 else { return }
        let ns = try NetlinkSocket.inNamespace(path: c.netns)
        for family in [IPFamily.v4, .v6] {
            guard let best = candidates(c, family).first, let link = try ns.link(named: best.ep.ifname) else { continue }
            let defaults = try ns.routes(family: family).filter(\.isMainDefault)
            if defaults.count == 1, defaults[0].gateway == best.gateway, defaults[0].outputIndex == link.index { continue }
            for d in defaults { _ = try ns.deleteRoute(d) }
            try ns.addRoute(RouteInfo(dst: .everything(family), gateway: best.gateway, outputIndex: link.index))
        }
    }
}
