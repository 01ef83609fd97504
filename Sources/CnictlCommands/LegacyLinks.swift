import Base
import CNI
import CNIRuntime
import Firewall
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// Docker's legacy links (`--link TARGET[:ALIAS]` on the default `bridge` network, which has
/// no name resolution): the target must exist; inside the linking container only, the target's
/// name and the alias resolve to its address through the container's own hosts file
/// (`/etc/netns/<name>/hosts`, which `ip netns exec` and `cnictl exec` bind over /etc/hosts),
/// rewritten whenever an address changes; `cnictl exec` gives the container its `-e`
/// environment plus Docker's link variables (ALIAS_NAME, ALIAS_PORT, ALIAS_PORT_<p>_<proto>…,
/// ALIAS_ENV_<KEY>).
struct LegacyLinks {
    let ctrs: Containers
    let store: Store

    static let marker = "# Written by cnictl (swiftcni): this container's hosts file"

    static func hostsPath(_ name: String) -> String { "\(NetnsResolvConf.etcNetns)/\(name)/hosts" }

    /// Whether the container's hosts file is one cnictl wrote (others are left alone).
    static func hostsFileIsOurs(_ name: String) -> Bool {
        ((try? Posix.readText(hostsPath(name))) ?? nil)?.hasPrefix(marker) ?? false
    }

    static func removeHostsFile(_ name: String) {
        if hostsFileIsOurs(name) { _ = try? Posix.remove(hostsPath(name)) }
    }

    /// `TARGET[:ALIAS]` → (target, alias).
    static func parse(_ l: String) throws -> (target: String, alias: String) {
        let parts = l.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count), !parts[0].isEmpty, parts.last?.isEmpty == false else {
            throw CLIError("--link \(l): expected CONTAINER[:ALIAS]")
        }
        return (parts[0], parts.count == 2 ? parts[1] : parts[0])
    }

    /// The container's IPv4 address on the default bridge (where legacy links live), if attached.
    func address(_ c: ContainerRecord) -> String? {
        guard c.running, let ep = c.endpoint("bridge"), let r = ctrs.result(c, ep) else { return nil }
        return r.ips.first { $0.address.family == .v4 }?.address.address.description
    }

    /// Names on isolated networks (gateway mode isolated: no gateway, so no embedded DNS):
    /// the hosts-file lines of the other running containers sharing one with `c` — their
    /// addresses there, with their names, network aliases and short IDs.
    func isolatedPeers(_ c: ContainerRecord, _ all: [ContainerRecord], _ isolated: Set<String>) -> [String] {
        var lines: [String] = []
        for ep in c.endpoints where isolated.contains(ep.network) {
            for p in all where p.running && p.name != c.name {
                guard let pe = p.endpoint(ep.network), let r = ctrs.result(p, pe) else { continue }
                let names = ([p.name] + pe.aliases + [String(p.id.prefix(12))]).joined(separator: " ")
                for ip in r.ips { lines.append("\(ip.address.address)\t\(names)") }
            }
        }
        return lines
    }

    /// Rewrites the hosts file of every container with legacy links or on an isolated network
    /// (and removes those of containers that have none left): the targets and peers at their
    /// current addresses.
    func refresh() {
        syncFirewall()
        let all = store.containers()
        let byName = LegacyLinks.byName(all)
        let isolated = Set(store.networks().filter(\.isIsolated).map(\.name))
        for c in all where c.hasNamespace {
            let path = LegacyLinks.hostsPath(c.name)
            let peers = c.running ? isolatedPeers(c, all, isolated) : []
            guard (!c.legacyLinks.isEmpty || !peers.isEmpty), c.running else {
                LegacyLinks.removeHostsFile(c.name)
                continue
            }
            if Posix.exists(path), !LegacyLinks.hostsFileIsOurs(c.name) { continue }  // not ours: left alone
            var text = LegacyLinks.marker + "\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                + "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
            if let me = address(c) { text += "\(me)\t\(c.id.prefix(12)) \(c.name)\n" }
            for l in c.legacyLinks {
                guard let t = byName[l.target], let ip = address(t) else { continue }
                text += "\(ip)\t\(l.alias == t.name ? t.name : "\(l.alias) \(t.name)") \(t.id.prefix(12))\n"
            }
            for line in peers { text += line + "\n" }
            try? Posix.makeDirectories("\(NetnsResolvConf.etcNetns)/\(c.name)")
            try? Posix.writeFileAtomically(path, Array(text.utf8), sync: false)
        }
    }

    /// With icc off on the default bridge (cnictl's config `"icc": false`, Docker's
    /// `--icc=false`), a legacy link lets the linking container reach the target's exposed
    /// ports, and nothing else: one firewall element per (container, target, port), gone with
    /// either container.
    func syncFirewall() {
        // With icc on (the default) no element is ever made: nothing to keep or remove.
        guard (try? store.network("bridge"))??.option(DockerOption.icc) == "false" else { return }
        var pairs: [Element] = []
        let all = store.containers()
        let byName = LegacyLinks.byName(all)
        for c in all where c.running {
            guard let src = address(c).flatMap(IPAddress.init) else { continue }
            for l in c.legacyLinks {
                guard let t = byName[l.target], let dst = address(t).flatMap(IPAddress.init) else { continue }
                for p in LegacyLinks.exposed(t) {
                    let proto: UInt8 = p.proto == "udp" ? 17 : p.proto == "sctp" ? 132 : 6
                    pairs.append(.pair(src, dst, proto: proto, port: UInt16(p.port), comment: "\(LegacyLinks.owner)\(c.name) -> \(t.name)"))
                }
            }
        }
        do { try FirewallDriver().setLinks(pairs, owner: LegacyLinks.owner) } catch {
            if !pairs.isEmpty { Posix.writeStderr("cnictl: legacy links with icc off: \(error)\n") }
        }
    }

    static let owner = "cnictl legacy link "

    static func byName(_ all: [ContainerRecord]) -> [String: ContainerRecord] {
        Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// The ports a container exposes (`--expose` and the container side of `-p`), sorted.
    static func exposed(_ c: ContainerRecord) -> [(port: Int, proto: String)] {
        var seen = Set<String>()
        var out: [(Int, String)] = []
        for p in c.exposed + c.endpoints.flatMap(\.ports).map({ ($0.containerPort, $0.proto) }) where seen.insert("\(p.0)/\(p.1)").inserted {
            out.append(p)
        }
        return out.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
    }

    /// Docker's link variables of `c`'s legacy links, then its own `-e` environment.
    func environment(_ c: ContainerRecord) -> [(String, String)] {
        if c.legacyLinks.isEmpty { return c.env }
        var env: [(String, String)] = []
        let byName = LegacyLinks.byName(store.containers())
        for l in c.legacyLinks {
            guard let t = byName[l.target], let ip = address(t) else { continue }
            let a = String(l.alias.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
            env.append(("\(a)_NAME", "/\(c.name)/\(l.alias)"))
            let ports = LegacyLinks.exposed(t)
            if let first = ports.first { env.append(("\(a)_PORT", "\(first.proto)://\(ip):\(first.port)")) }
            for p in ports {
                let k = "\(a)_PORT_\(p.port)_\(p.proto.uppercased())"
                env += [(k, "\(p.proto)://\(ip):\(p.port)"), (k + "_ADDR", ip), (k + "_PORT", String(p.port)), (k + "_PROTO", p.proto)]
            }
            for (k, v) in t.env where k != "HOME" && k != "PATH" { env.append(("\(a)_ENV_\(k)", v)) }
        }
        return env + c.env
    }

    /// `KEY=VALUE` (or `KEY`, taking this process's value, as Docker's `-e KEY`).
    static func parseEnv(_ s: String) throws -> (String, String) {
        if let eq = s.firstIndex(of: "=") {
            let k = String(s[..<eq])
            guard !k.isEmpty else { throw CLIError("invalid environment variable: \(s)") }
            return (k, String(s[s.index(after: eq)...]))
        }
        guard !s.isEmpty else { throw CLIError("invalid environment variable: \(s)") }
        return (s, Posix.getenv(s) ?? "")
    }

    /// `PORT[/PROTO]` or `START-END[/PROTO]`.
    static func parseExpose(_ s: String) throws -> [(Int, String)] {
        var spec = Substring(s), proto = "tcp"
        if let slash = spec.lastIndex(of: "/") {
            proto = spec[spec.index(after: slash)...].lowercased()
            spec = spec[..<slash]
        }
        guard ["tcp", "udp", "sctp"].contains(proto) else { throw CLIError("invalid proto: \(proto)") }
        let bounds = spec.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
        guard (1...2).contains(bounds.count), let lo = bounds.first ?? nil, let hi = bounds.last ?? nil, 1 <= lo, lo <= hi, hi <= 65535 else {
            throw CLIError("invalid range format for --expose: \(s)")
        }
        return (lo...hi).map { ($0, proto) }
    }
}
