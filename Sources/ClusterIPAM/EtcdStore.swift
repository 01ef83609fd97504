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
///
/// The client asks another member when one fails mid-request, so a claim can be committed
/// by a member that died before answering and then be refused by the next one as taken. The
/// address key's value therefore ends with a token of the request (the plugin's, the same
/// when it asks again after losing the agent's answer): a refused claim whose key holds
/// exactly our value was ours, and counts as made.
public final class EtcdStore: AllocationStore {
    let client: EtcdClient
    let keys: ClusterKeys
    let network: String
    let host: String
    let localLock: String
    var lock: FileLock?
    /// Tells this store's claims from any other's (see above).
    let token: String

    /// `token` names the request (the same in its retries); nil: one of this store's own.
    public init(network: String, client: EtcdClient, prefix: String, host: String, token: String? = nil) {
        self.client = client
        keys = ClusterKeys(prefix)
        self.network = network
        self.host = host
        localLock = "ipam-\(network)"
        var g = FastRandom()
        self.token = token ?? String(g.next(), radix: 16)
    }

    func ipKey(_ ip: IPAddress) -> String { keys.address(network, ip.description) }
    func ownerPrefix(_ o: Attachment) -> String { keys.owners(network, containerID: o.containerID, ifname: o.ifname) }

    public func withLock<T>(_ body: () throws -> T) throws -> T {
        if lock != nil { return try body() }
        lock = try SuitePaths.lock(localLock)
        defer { lock?.unlock(); lock = nil }
        return try body()
    }

    /// "<containerID>\n<ifname>\n<host>\n<token>" (values without the token, from before it, read the same).
    static func value(_ o: Attachment, host: String, token: String) -> [UInt8] {
        Array("\(o.containerID)\n\(o.ifname)\n\(host)\n\(token)".utf8)
    }

    /// The host a value names ("" in values from before hosts were recorded).
    static func host(_ v: [UInt8]) -> String {
        let parts = v.split(separator: 10, omittingEmptySubsequences: false)
        return parts.count > 2 ? String(decoding: parts[2], as: UTF8.self) : ""
    }

    static func owner(_ v: [UInt8]) -> Attachment {
        let parts = v.split(separator: 10, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        return Attachment(containerID: parts.first ?? "", ifname: parts.count > 1 ? parts[1] : "")
    }

    public func reserve(_ ip: IPAddress, owner: Attachment, rangeSet: Int) throws -> Bool {
        let mine = EtcdStore.value(owner, host: host, token: token)
        if try client.createWith(ipKey(ip), mine,
                                 also: [(ownerPrefix(owner) + ip.description, []), (keys.lastReserved(network, rangeSet: rangeSet), Array(ip.description.utf8))]) {
            return true
        }
        // Refused: taken by another, or claimed by our own earlier attempt of this request.
        return try client.get(ipKey(ip))?.value == mine
    }

    public func claimedByThisRequest(_ ip: IPAddress) throws -> Bool {
        guard let v = try client.get(ipKey(ip))?.value else { return false }
        return v.split(separator: 10, omittingEmptySubsequences: false).last.map { String(decoding: $0, as: UTF8.self) } == token
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
            // Only if it is still ours: deleted on condition that it still holds what we read.
            if let kv = try client.get(ipKey(ip)), EtcdStore.owner(kv.value) == o, try client.delete(ipKey(ip), ifValue: kv.value) {
                out.append(ip)
            }
        }
        try client.delete(prefix: ownerPrefix(o))
        return out
    }

    /// This host's allocations: GC, given this host's valid attachments, must leave every
    /// other host's alone.
    public func allocations() throws -> [(IPAddress, Attachment)] {
        let (kvs, _) = try client.range(prefix: keys.addresses(network))
        return kvs.filter { EtcdStore.host($0.value) == host }.compactMap { kv in keys.parseAddress(kv.key).flatMap { IPAddress($0.address) }.map { ($0, EtcdStore.owner(kv.value)) } }
    }

    public func release(ip: IPAddress) throws {
        if let o = try owner(of: ip) { try client.delete(ownerPrefix(o) + ip.description) }
        try client.delete(ipKey(ip))
    }
}
