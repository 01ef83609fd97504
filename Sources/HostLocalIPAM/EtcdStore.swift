import Base
import CNI
import Etcd
import IPAM

/// Cluster-wide allocations in etcd, behind the same allocator as the file store, under
/// `ClusterKeys`' `ipam/` keys of the network (address → owner, owner → addresses, the last
/// address handed out per range set).
///
/// An address is claimed with one transaction that creates its key only if absent (and its
/// owner key with it), so no two containers anywhere get the same address. The local lock
/// only keeps one host's ADDs from racing each other for the same next address.
public final class EtcdStore: AllocationStore {
    let client: EtcdClient
    let keys: ClusterKeys
    let network: String
    let host: String
    let localLock: String
    var lock: FileLock?

    public init(network: String, config: EtcdConfig, host: String) {
        client = EtcdClient(config)
        keys = ClusterKeys(config.prefix)
        self.network = network
        self.host = host
        localLock = "ipam-\(network)"
    }

    func ipKey(_ ip: IPAddress) -> String { keys.address(network, ip.description) }
    func ownerPrefix(_ o: Attachment) -> String { keys.owners(network, containerID: o.containerID, ifname: o.ifname) }

    public func withLock<T>(_ body: () throws -> T) throws -> T {
        if lock != nil { return try body() }
        lock = try SuitePaths.lock(localLock)
        defer { lock?.unlock(); lock = nil }
        return try body()
    }

    static func value(_ o: Attachment, host: String) -> [UInt8] { Array("\(o.containerID)\n\(o.ifname)\n\(host)".utf8) }

    static func owner(_ v: [UInt8]) -> Attachment {
        let parts = v.split(separator: 10, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        return Attachment(containerID: parts.first ?? "", ifname: parts.count > 1 ? parts[1] : "")
    }

    public func reserve(_ ip: IPAddress, owner: Attachment, rangeSet: Int) throws -> Bool {
        let ok = try client.createWith(ipKey(ip), EtcdStore.value(owner, host: host),
                                       also: [(ownerPrefix(owner) + ip.description, []), (keys.lastReserved(network, rangeSet: rangeSet), Array(ip.description.utf8))])
        return ok
    }

    public func lastReserved(rangeSet: Int) throws -> IPAddress? {
        try client.get(keys.lastReserved(network, rangeSet: rangeSet)).flatMap { IPAddress($0.text) }
    }

    public func owner(of ip: IPAddress) throws -> Attachment? {
        try client.get(ipKey(ip)).map { EtcdStore.owner($0.value) }
    }

    public func addresses(of o: Attachment, thorough: Bool) throws -> [IPAddress] {
        let (kvs, _) = try client.range(prefix: ownerPrefix(o))
        return kvs.compactMap { IPAddress(String($0.key.dropFirst(ownerPrefix(o).count))) }
    }

    public func release(_ o: Attachment) throws -> [IPAddress] {
        let mine = try addresses(of: o, thorough: true)
        var out: [IPAddress] = []
        for ip in mine {
            // Only if it is still ours (compare the value), then its owner key.
            if try client.delete(ipKey(ip), ifValue: EtcdStore.value(o, host: host)) || (try owner(of: ip)).map({ $0 == o }) == true {
                try client.delete(ipKey(ip))
                out.append(ip)
            }
        }
        try client.delete(prefix: ownerPrefix(o))
        return out
    }

    public func allocations() throws -> [(IPAddress, Attachment)] {
        let (kvs, _) = try client.range(prefix: keys.addresses(network))
        return kvs.compactMap { kv in keys.parseAddress(kv.key).flatMap { IPAddress($0.address) }.map { ($0, EtcdStore.owner(kv.value)) } }
    }

    public func release(ip: IPAddress) throws {
        if let o = try owner(of: ip) { try client.delete(ownerPrefix(o) + ip.description) }
        try client.delete(ipKey(ip))
    }
}
