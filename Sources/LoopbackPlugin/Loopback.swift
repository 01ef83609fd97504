// The loopback plugin's logic: brings the container's loopback interface up. It acts on `lo`
// whatever CNI_IFNAME says (libcni passes the chain's interface name to every plugin of a
// conflist, loopback included), as the reference plugin does, and touches no other link.
import Base
import CNI
import Netlink

public struct Loopback: CNIPlugin {
    public init() {}
    static let name = "lo"

    func link(_ req: CNIRequest) throws -> (NetlinkSocket, LinkInfo) {
        let sock = try NetlinkSocket.inNamespace(path: req.netns)
        guard let l = try sock.link(named: Loopback.name) else {
            throw CNIError(.unknownContainer, "\(req.netns) has no loopback interface \"lo\"")
        }
        return (sock, l)
    }

    public func add(_ req: CNIRequest) throws -> CNIResult {
        let (sock, l) = try link(req)
        try sock.setLink(index: l.index, LinkSettings(up: true))
        // Chained after another plugin: pass its result through.
        if let prev = try req.prevResult() { return prev }
        var r = CNIResult(cniVersion: req.cniVersion)
        r.interfaces = [CNIInterface(name: Loopback.name, mac: "00:00:00:00:00:00", sandbox: req.netns)]
        for a in try sock.addresses(index: l.index) {
            r.ips.append(CNIIPConfig(interface: 0, address: a.address))
        }
        return r
    }

    public func check(_ req: CNIRequest) throws {
        let (sock, l) = try link(req)
        if !l.isUp { throw CNIError(.checkFailed, "interface lo is down in the container") }
        let have = try sock.addresses(index: l.index)
        if !have.contains(where: { $0.address.address == IPAddress("127.0.0.1")! }) {
            throw CNIError(.checkFailed, "interface lo has no 127.0.0.1")
        }
    }

    public func del(_ req: CNIRequest) throws {
        guard !req.netns.isEmpty else { return }
        do {
            let (sock, l) = try link(req)
            try sock.setLink(index: l.index, LinkSettings(up: false))
        } catch is NetworkNamespace.OpenError {
            // The namespace is gone: nothing to do.
        } catch let e as CNIError where e.code == .unknownContainer {
            // No loopback (not a network namespace we can use): nothing to do.
        }
    }
}

