// The per-host overlay agent: holds the host's etcd lease (its registration under hosts/
// disappears if the host dies), mirrors every endpoint and host key, and keeps the kernel's
// VXLAN forwarding and neighbour entries — and the DNS records of remote containers — equal
// to what etcd says, for each overlay network this host has. It watches etcd and re-syncs
// fully whenever the watch is lost or compacted, so a restarted agent (or one that was cut
// off from etcd) converges. While etcd is unreachable, entries already programmed stay.

#if canImport(Glibc)
import Glibc
#endif
import Base
import CNI
import ClusterIPAM
import DNS
import Etcd
import Netlink
import Overlay

/// The per-host overlay agent (swiftcni-overlay-agent): its etcd session, the plugins' requests,
/// the programming of the mirror.
public final class HostAgent: @unchecked Sendable {
    let settings: OverlayLocal.AgentSettings
    let keys: ClusterKeys
    let daemon = Daemon(root: OverlayLocal.agentRoot, role: .overlayAgent)
    let lock = Mutex()
    /// One reconcile at a time (the watch thread and control requests both run them).
    let reconciling = Mutex()
    /// Mirror of hosts/ and networks/*/endpoints/ keys.
    var mirror: [String: [UInt8]] = [:]
    var revision: Int64 = 0
    var synced = false
    var registered = false
    var lastError = ""
    var stats = (events: 0, resyncs: 0, programmed: 0, retries: 0)
    /// Networks whose last reconcile failed, retried by `retryLoop` (one at a time).
    var failing = Set<String>()
    var retrying = false
    var lease: Int64 = 0
    let leaseTTL = 10
    /// Network definitions (VNI, subnets) known to be in etcd, until the watch says otherwise.
    var definitions: [String: JSON] = [:]
    /// Every network's address blocks as the watch and this agent's own writes leave them.
    let blockCache = BlockCache()
    /// One address operation at a time per network on this host.
    var networkLocks: [String: Mutex] = [:]

    func networkLock(_ network: String) -> Mutex {
        lock.locked {
            if let m = networkLocks[network] { return m }
            let m = Mutex()
            networkLocks[network] = m
            return m
        }
    }

    public init(settings: OverlayLocal.AgentSettings) {
        self.settings = settings
        keys = ClusterKeys(settings.etcd.prefix)
    }

    func log(_ s: String) { Posix.writeStderr("swiftcni-overlay-agent[\(settings.host)]: \(s)\n") }

    // MARK: mirror → kernel

    /// Remote endpoints of `network` whose host is alive, from the mirror. Endpoints of a
    /// host whose registration has not been seen yet stay in the mirror and count as soon as
    /// it appears.
    func remote(_ network: String) -> [EndpointRecord] {
        lock.locked {
            let alive = Set(mirror.keys.compactMap { keys.parseHost($0) })
            let prefix = keys.endpoints(network)
            return mirror.compactMap { k, v -> EndpointRecord? in
                guard k.hasPrefix(prefix), let ep = keys.parseEndpoint(k), ep.host != settings.host, alive.contains(ep.host) else { return nil }
                return EndpointRecord(network: network, bytes: v)
            }
        }
    }

    /// Makes this host's networks (or one) match the mirror. A network whose programming
    /// failed (a netlink error, the DNS records) is tried again shortly, until it succeeds:
    /// otherwise it would stay wrong until the next change in etcd, which may never come.
    /// Returns the networks that failed this time, with why.
    @discardableResult
    func reconcile(only: String? = nil) -> [String: String] {
        let failed = reconciling.locked { reconcileLocked(only: only) }
        let retry: Bool = lock.locked {
            for n in failed.keys { failing.insert(n) }
            if only == nil { failing = failing.intersection(failed.keys) } else if failed[only!] == nil { failing.remove(only!) }
            guard !failing.isEmpty, !retrying else { return false }
            retrying = true
            return true
        }
        if retry { Threads.detach { self.retryLoop() } }
        return failed
    }

    /// Re-runs the failed networks' reconcile with a growing pause (50 ms to 1 s) until none fails.
    private func retryLoop() {
        var pause: UInt32 = 50_000
        while true {
            usleep(pause)
            pause = min(pause * 2, 1_000_000)
            let todo = lock.locked { () -> [String] in
                if failing.isEmpty { retrying = false }
                return failing.sorted()
            }
            if todo.isEmpty { return }
            for n in todo {
                let failed = reconcileLockedRetry(n)
                lock.locked { if failed { failing.insert(n) } else { failing.remove(n) } }
            }
        }
    }

    private func reconcileLockedRetry(_ n: String) -> Bool {
        let failed = reconciling.locked { reconcileLocked(only: n) }
        if let why = failed[n] { lock.locked { stats.retries += 1 }; log("reconcile \(n) again: \(why)") }
        return failed[n] != nil
    }

    private func reconcileLocked(only: String?) -> [String: String] {
        var failed: [String: String] = [:]
        let host: NetlinkSocket
        do { host = try NetlinkSocket() } catch {
            for n in OverlayLocal.networks() where only == nil || only == n.name { failed[n.name] = "\(error)" }
            return failed
        }
        let dns = DNSState()
        for n in OverlayLocal.networks() where only == nil || only == n.name {
            let r = remote(n.name)
            do {
                if let ch = try OverlayProgramming.reconcile(host, vxlan: n.vxlan, remote: r), ch.added + ch.removed > 0 {
                    lock.locked { stats.programmed += ch.added + ch.removed }
                    if let e = ch.announceError { log("reconcile \(n.name): \(e)") }
                }
                // Records only while the network is on this host: its last DEL removes the
                // device and the network's local state, then the records, under the same lock.
                let here = { (try? host.link(named: n.vxlan)) != nil && OverlayLocal.networks().contains(n) }
                if try OverlayProgramming.writeDNS(dns, network: n.name, remote: r, stillHere: here) {
                    // The DNS server (if it serves this network) re-reads it.
                    _ = try? DNSControl(state: dns).request("update \(n.name)", timeoutMs: 2000)
                }
            } catch {
                failed[n.name] = "\(error)"
                log("reconcile \(n.name): \(error)")
            }
        }
        return failed
    }

    // MARK: etcd

    var reclaiming = false

    /// Takes back the address blocks of hosts that are gone (see `BlockStore.reclaimGoneHosts`),
    /// for this host's networks, on a thread of its own (one at a time).
    func reclaimSoon() {
        guard lock.locked({ () -> Bool in
            if reclaiming { return false }
            reclaiming = true
            return true
        }) else { return }
        Threads.detach {
            defer { self.lock.locked { self.reclaiming = false } }
            for n in OverlayLocal.networks() {
                do {
                    try BlockStore(network: n.name, client: EtcdClient(self.settings.etcd), prefix: self.settings.etcd.prefix,
                                   host: self.settings.host).reclaimGoneHosts()
                } catch {
                    self.log("reclaiming address blocks of \(n.name): \(error)")
                }
            }
        }
    }

    /// Reads hosts and endpoints as of one revision (a consistent snapshot) and replaces the
    /// mirror; the watch then follows from exactly after that revision.
    func fullSync(_ etcd: EtcdClient) throws {
        let (lists, rev) = try etcd.snapshot([keys.hosts, keys.networks])
        var m: [String: [UInt8]] = [:]
        for kv in lists[0] where keys.parseHost(kv.key) != nil { m[kv.key] = kv.value }
        for kv in lists[1] where keys.parseEndpoint(kv.key) != nil { m[kv.key] = kv.value }
        blockCache.replace(lists[1].compactMap { kv in keys.parseBlock(kv.key).map { ($0.network, kv) } })
        lock.locked {
            mirror = m
            definitions = [:]
            revision = max(rev, 1)
            synced = true
            stats.resyncs += 1
        }
        reconcile()
        reclaimSoon()
    }

    /// Waits (at most `ms`) until the mirror has followed etcd up to `rev`; true when it has.
    func caughtUp(to rev: Int64, withinMs ms: Int) -> Bool {
        let deadline = Posix.monotonicNanos() + UInt64(ms) * 1_000_000
        while lock.locked({ !synced || revision < rev }) {
            if Posix.monotonicNanos() > deadline { return false }
            usleep(1000)
        }
        return true
    }

    func watchLoop() {
        let etcd = EtcdClient(settings.etcd)
        var backoff: UInt32 = 100_000
        while true {
            do {
                try fullSync(etcd)
                if backoff > 100_000 { log("re-synced at revision \(lock.locked { revision })") }
                backoff = 100_000
                let from = lock.locked { revision } + 1
                try etcd.watch(prefix: "\(keys.prefix)/", from: from) { events, rev in
                    var touched = Set<String>()
                    var hostsChanged = false
                    lock.locked {
                        for e in events {
                            if let ep = keys.parseEndpoint(e.kv.key) {
                                touched.insert(ep.network)
                            } else if keys.parseHost(e.kv.key) != nil {
                                hostsChanged = true
                            } else if let b = keys.parseBlock(e.kv.key) {
                                blockCache.apply(b.network, blockName: b.block, e)
                                continue
                            } else if let n = keys.parseNetconfig(e.kv.key) {
                                definitions[n] = nil
                                continue
                            } else {
                                continue
                            }
                            if e.kind == .put { mirror[e.kv.key] = e.kv.value } else { mirror[e.kv.key] = nil }
                            stats.events += 1
                        }
                        if rev > revision { revision = rev }
                    }
                    if hostsChanged { reconcile(); reclaimSoon() } else { for n in touched.sorted() { reconcile(only: n) } }
                    return true
                }
            } catch {
                blockCache.invalidate()
                lock.locked { lastError = "\(error)" }
                log("watch: \(error); re-syncing")
                usleep(backoff)
                backoff = min(backoff * 2, 2_000_000)
            }
        }
    }

    /// Keeps this host registered (hosts/<host> on a lease) as long as the agent lives.
    func leaseLoop() {
        let etcd = EtcdClient(settings.etcd)
        let value: JSON = ["vtep": .string(settings.vtep.description)]
        while true {
            do {
                let current = lock.locked { lease }
                if current == 0 {
                    let l = try etcd.grantLease(ttl: leaseTTL)
                    try etcd.put(keys.host(settings.host), value.serializedBytes(), lease: l)
                    lock.locked { lease = l; registered = true }
                    log("registered \(keys.host(settings.host)) (lease \(l))")
                } else if try etcd.keepAlive(current) <= 0 {
                    log("lease \(current) expired; registering again")
                    lock.locked { lease = 0 }
                    continue
                }
            } catch {
                lock.locked { lastError = "\(error)" }
                // The lease may have run out while etcd was away: make a new one when back.
                if case EtcdError.failed = error { lock.locked { lease = 0 } }
            }
            usleep(UInt32(leaseTTL) * 1_000_000 / 4)
        }
    }

    // MARK: control

    func control(_ line: String) -> String {
        let verb = line.prefix { $0 != " " }
        if HostAgent.pluginVerbs.contains(String(verb)) { return answer(String(verb), line.dropFirst(verb.count)) }
        let parts = line.split(separator: " ").map(String.init)
        switch parts.first {
        case "status":
            return lock.locked {
                "ok netns=\(netns) host=\(settings.host) vtep=\(settings.vtep) registered=\(registered) synced=\(synced) revision=\(revision) keys=\(mirror.count) events=\(stats.events) resyncs=\(stats.resyncs) programmed=\(stats.programmed) retries=\(stats.retries)\(lastError.isEmpty ? "" : " last-error=\(lastError.replacingSpaces())")"
            }
        case "sync" where parts.count == 2 || parts.count == 3:
            // "sync <network> [<revision>]": program the network from the mirror once it has
            // followed etcd up to the revision.
            do { try program(parts[1], after: parts.count == 3 ? Int64(parts[2]) ?? 0 : 0) } catch {
                return "error \(CNIError.wrap(error).msg)"
            }
            return "ok"
        case "resync":
            do { try fullSync(EtcdClient(settings.etcd)) } catch { return "error \(error)" }
            return "ok"
        default:
            return "error unknown request \"\(line)\""
        }
    }

    /// The network namespace this agent programs.
    let netns = Posix.netnsCookie()

    /// Registers, syncs, and serves until no overlay network is left on this host.
    public func run(idleExit: Int = 2) throws -> Never {
        guard try daemon.claim() else {
            log("another agent holds \(daemon.lockFile); exiting")
            exit(0)
        }
        let control = try daemon.bindControl()
        Threads.detach { self.leaseLoop() }
        Threads.detach { self.watchLoop() }
        // Requests are answered at once ("status" says whether it is registered and synced);
        // "sync" waits until the view of etcd is there.
        try daemon.serve(listener: control, idleExit: idleExit, concurrent: true, idle: { OverlayLocal.networks().isEmpty }, beforeExit: {
            // Leaving: drop the registration now rather than when the lease runs out.
            let l = lock.locked { lease }
            if l != 0 { try? EtcdClient(settings.etcd).revoke(l) }
        }, handle: self.control)
    }
}

extension String {
    func replacingSpaces() -> String { String(map { $0 == " " ? "_" : $0 }) }
}
