// Making a host's kernel and DNS records match the remote endpoints of an overlay network:
// per remote container, a forwarding entry (its MAC via its host's VTEP) on the VXLAN device
// and in the bridge, and a permanent neighbour entry per address (the VXLAN device answers
// ARP/ND for them, so no broadcast ever crosses hosts), made known at once when new to whoever
// asked before it existed (announced on the bridge to the containers, see Netlink/Announce.swift;
// set in the host's own waiting entries on the bridge), so none waits for its kernel's next
// try; and a DNS record per remote container so names resolve across hosts.

import Base
import CNI
import DNS
import Netlink

public enum OverlayProgramming {
    public struct Changes: Sendable, CustomStringConvertible {
        public var added = 0
        public var removed = 0
        /// Why the new neighbour entries could not be announced (they are programmed all the same).
        public var announceError: String?
        public var description: String { "+\(added) -\(removed)" + (announceError.map { " (announce: \($0))" } ?? "") }
    }

    /// Adds what is missing and removes what is no longer wanted on VXLAN device `vxlan`.
    /// Returns nil when the device does not exist (the network is not on this host).
    @discardableResult
    public static func reconcile(_ host: NetlinkSocket, vxlan: String, remote: [EndpointRecord]) throws -> Changes? {
        guard let link = try host.link(named: vxlan) else { return nil }
        var ch = Changes()
        let fdb = try host.fdb(index: link.index)
        var haveFDB: [MACAddress: IPAddress?] = [:]
        for e in fdb where e.permanent && e.mac.bytes.contains(where: { $0 != 0 }) { haveFDB[e.mac] = e.dst }
        let neigh = try host.neighbours(index: link.index)
        var haveNeigh: [IPAddress: MACAddress?] = [:]
        for n in neigh where n.permanent { haveNeigh[n.address] = n.mac }

        var wantFDB: [MACAddress: IPAddress] = [:]
        var wantNeigh: [IPAddress: MACAddress] = [:]
        for r in remote {
            wantFDB[r.mac] = r.vtep
            for ip in r.ips { wantNeigh[ip] = r.mac }
        }
        for (mac, dst) in wantFDB where haveFDB[mac] != .some(dst) {
            try host.setFDB(index: link.index, mac: mac, dst: dst)
            ch.added += 1
        }
        var fresh: [(ip: IPAddress, mac: MACAddress)] = []
        for (ip, mac) in wantNeigh.sorted(by: { $0.key < $1.key }) where haveNeigh[ip] != .some(mac) {
            try host.setNeighbour(index: link.index, address: ip, mac: mac)
            fresh.append((ip, mac))
            ch.added += 1
        }
        if let bridge = link.master, !fresh.isEmpty {
            // Out of the bridge (the VXLAN device would carry it to other hosts), to this
            // host's containers on the network.
            do { try Announcement.send(index: bridge, fresh) } catch { ch.announceError = error.description }
            // This host's own entries on the bridge (traffic it routes between the network's
            // subnets) do not see what the bridge sends: given their address directly.
            let byIP = Dictionary(fresh.map { ($0.ip, $0.mac) }, uniquingKeysWith: { a, _ in a })
            for n in try host.neighbours(index: bridge) where !n.permanent {
                if let mac = byIP[n.address], n.mac != mac { try host.updateNeighbour(index: bridge, address: n.address, mac: mac) }
            }
        }
        for (ip, _) in haveNeigh where wantNeigh[ip] == nil {
            try host.deleteNeighbour(index: link.index, address: ip)
            ch.removed += 1
        }
        for (mac, dst) in haveFDB where wantFDB[mac] == nil {
            try host.deleteFDB(index: link.index, mac: mac, dst: dst)
            ch.removed += 1
        }
        return ch
    }

    /// The DNS record file name of a remote endpoint (local ones are "<cid>:<ifname>").
    public static func dnsKey(_ r: EndpointRecord) -> String { "remote~\(r.host)~\(r.containerID):\(r.ifname)" }

    /// Writes the remote endpoints' DNS records for `network` (and removes stale ones);
    /// true if anything changed. The DNS server reads them with the network's local records.
    /// `stillHere` is asked under the directory's lock: when the network has left this host
    /// meanwhile (its last container's DEL), every remote record goes instead.
    @discardableResult
    public static func writeDNS(_ state: DNSState, network: String, remote: [EndpointRecord],
                                stillHere: () -> Bool = { true }) throws -> Bool {
        // The lock dns-alias takes for the same directory.
        let lock = try SuitePaths.lock("dns-" + network)
        defer { lock.unlock() }
        var changed = false
        let wanted = stillHere() ? remote : []
        if wanted.isEmpty && !Posix.exists(Posix.join(state.networksDirectory, network)) { return false }
        let want = Dictionary(wanted.map { (dnsKey($0), $0) }, uniquingKeysWith: { a, _ in a })
        let have = Set(try state.endpointKeys(network).filter { $0.hasPrefix("remote~") })
        for k in have where want[k] == nil {
            _ = try Posix.remove(Posix.join(Posix.join(state.networksDirectory, network), k))
            changed = true
        }
        for (k, r) in want {
            let e = DNSEndpoint(network: network, containerID: r.containerID, ifname: r.ifname, name: r.name,
                                aliases: r.aliases, addresses: r.ips, remoteHost: r.host)
            let path = Posix.join(Posix.join(state.networksDirectory, network), k)
            let bytes = e.json.serializedBytes()
            if have.contains(k), (try? Posix.readFile(path)) == .some(bytes) { continue }
            try Posix.makeDirectories(Posix.join(state.networksDirectory, network))
            try Posix.writeFileAtomically(path, bytes, sync: false)
            changed = true
        }
        return changed
    }
}
