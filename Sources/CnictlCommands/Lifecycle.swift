import ArgumentParser
import Base
import CNI
import CNIRuntime
import FoundationEssentials
import Netlink
#if canImport(Glibc)
import Glibc
#endif

/// `cnictl stop|start|restart`: Docker's container lifecycle for cnictl's containers. Stop
/// ends the processes in the container's namespace (SIGTERM, SIGKILL after the timeout) and
/// detaches every network (CNI DEL), keeping what each endpoint asked for; start attaches them
/// again in order: an address pinned with --ip/--ip6 is the same, names, aliases, links and
/// published ports come back. The namespace itself stays, with lo.
struct Lifecycle {
    let ctrs: Containers
    let store: Store

    func stop(_ c: inout ContainerRecord, timeout: Int) throws {
        guard c.running else { return }
        if c.hasNamespace { Lifecycle.endProcesses(netns: c.netns, timeout: timeout) }
        var firstError: Error?
        for (i, ep) in c.endpoints.enumerated().reversed() {
            // The MAC it had comes back with it, as Docker keeps a container's: neighbours that
            // still hold the address's entry need no new one.
            if ep.mac == nil, let r = ctrs.result(c, ep), let m = r.interfaces.first(where: { $0.name == ep.ifname && $0.sandbox == c.netns })?.mac {
                c.endpoints[i].lastMAC = m
            }
            do { try ctrs.remove(c, ep, force: false) } catch { firstError = firstError ?? error }
        }
        if let firstError { throw firstError }
        c.running = false
        try store.save(c)
        if c.hasNamespace { NetnsResolvConf.update(ctrs.cni.runtime(), netns: c.netns) }
        LegacyLinks(ctrs: ctrs, store: store).refresh()
    }

    func start(_ c: inout ContainerRecord) throws {
        guard !c.running else { return }
        if c.hasNamespace && !Posix.exists(c.netns) { throw CLIError("the namespace of \(c.name) (\(c.netns)) is gone") }
        var done: [ContainerRecord.Endpoint] = []
        do {
            for ep in c.endpoints {
                _ = try ctrs.add(c, ep)
                done.append(ep)
            }
        } catch {
            // All or nothing: what was attached goes again.
            for ep in done.reversed() { try? ctrs.remove(c, ep, force: true) }
            throw error
        }
        c.running = true
        try store.save(c)
        if let o = ctrs.resolvOverrides(c) { NetnsResolvConf.update(ctrs.cni.runtime(), netns: c.netns, overrides: o) }
        try GatewayPriority(ctrs: ctrs, store: store).apply(c)
        LegacyLinks(ctrs: ctrs, store: store).refresh()
    }

    /// SIGTERM to every process of the namespace, SIGKILL to those left after `timeout` s.
    static func endProcesses(netns: String, timeout: Int) {
        let pids = NamedNamespaces.pids(inNamespaceAt: netns)
        guard !pids.isEmpty else { return }
        for p in pids { kill(p, SIGTERM) }
        let deadline = Posix.monotonicNanos() + UInt64(max(0, timeout)) * 1_000_000_000
        while !NamedNamespaces.pids(inNamespaceAt: netns).isEmpty && Posix.monotonicNanos() < deadline { usleep(20_000) }
        for p in NamedNamespaces.pids(inNamespaceAt: netns) { kill(p, SIGKILL) }
        let end = Posix.monotonicNanos() + 2_000_000_000
        while !NamedNamespaces.pids(inNamespaceAt: netns).isEmpty && Posix.monotonicNanos() < end { usleep(10_000) }
    }
}

struct StopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop", abstract: "Stop containers: end their processes, detach their networks (kept for start).",
        discussion: "Examples:\n  cnictl stop container3\n  cnictl stop -t 2 web db")
    @OptionGroup var cni: CNIOptions
    @Option(name: [.short, .customLong("time")], help: "Seconds to wait for the processes before killing them.") var time = 10
    @Argument(help: "Containers.") var containers: [String]

    func run() throws {
        try Containers.each(containers, cni: cni) { l, c in try l.stop(&c, timeout: time) }
    }
}

struct StartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start", abstract: "Start stopped containers: attach their networks again.",
        discussion: "Pinned addresses (--ip, --ip6), names, aliases, links and ports come back.\nExample:\n  cnictl start container3")
    @OptionGroup var cni: CNIOptions
    @Argument(help: "Containers.") var containers: [String]

    func run() throws {
        try Containers.each(containers, cni: cni) { l, c in try l.start(&c) }
    }
}

struct RestartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restart", abstract: "Stop, then start containers.",
        discussion: "Example:\n  cnictl restart -t 1 container3")
    @OptionGroup var cni: CNIOptions
    @Option(name: [.short, .customLong("time")], help: "Seconds to wait for the processes before killing them.") var time = 10
    @Argument(help: "Containers.") var containers: [String]

    func run() throws {
        try Containers.each(containers, cni: cni) { l, c in
            try l.stop(&c, timeout: time)
            try l.start(&c)
        }
    }
}
