import Base

/// Where allocations live. The file store keeps the reference host-local's on-disk format;
/// a cluster-wide store (etcd) implements the same protocol with compare-and-swap.
public protocol AllocationStore: AnyObject {
    /// Runs `body` holding the network's lock.
    func withLock<T>(_ body: () throws -> T) throws -> T
    /// Claims `ip` for `owner`; false if someone holds it.
    func reserve(_ ip: IPAddress, owner: Attachment, rangeSet: Int) throws -> Bool
    /// The last address handed out in range set `rangeSet` (round-robin hint).
    func lastReserved(rangeSet: Int) throws -> IPAddress?
    /// The holder of `ip`, if any.
    func owner(of ip: IPAddress) throws -> Attachment?
    /// Addresses held by `owner`; `thorough: false` may answer from an index only (fast,
    /// for ADD's duplicate check), `thorough: true` must find every one.
    func addresses(of owner: Attachment, thorough: Bool) throws -> [IPAddress]
    /// Releases everything `owner` holds; returns what was released.
    @discardableResult func release(_ owner: Attachment) throws -> [IPAddress]
    /// Every allocation of the network.
    func allocations() throws -> [(IPAddress, Attachment)]
    /// Releases one address whoever holds it.
    func release(ip: IPAddress) throws
    /// Housekeeping after GC (leftover files, stale index entries).
    func maintenance() throws
}

extension AllocationStore {
    public func maintenance() throws {}
}
