import Base
import CNI
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// `/etc/netns/<name>/resolv.conf` for a named network namespace: `ip netns exec <name> …`
/// binds it over /etc/resolv.conf, so programs run that way resolve through the DNS the
/// namespace's networks hand out (the `dns` of their CNI results, merged in network order).
/// Only files cnictl wrote (marked by their first line) are replaced or removed.
public enum NetnsResolvConf {
    public static let etcNetns = "/etc/netns"
    public static let marker = "# Written by cnictl (swiftcni)"

    /// The namespace's name when `path` is a named netns (/run/netns/<name>).
    public static func name(ofNetns path: String) -> String? {
        for dir in ["/run/netns/", "/var/run/netns/"] where path.hasPrefix(dir) {
            let n = String(path.dropFirst(dir.count))
            return n.isEmpty || n.contains("/") ? nil : n
        }
        return nil
    }

    public static func path(_ name: String) -> String { "\(etcNetns)/\(name)/resolv.conf" }

    /// Rewrites (or removes) the file from the cached results of every attachment of `netns`.
    /// `overrides` (a runtime's own `--dns`, `--dns-search`, `--dns-option`) replace the
    /// results' nameservers, search domains and options where given.
    public static func update(_ runtime: Runtime, netns: String, overrides: CNIDNS? = nil) {
        guard let name = name(ofNetns: netns) else { return }
        var dns = CNIDNS()
        var attached = false
        for a in runtime.cachedAttachments(netns: netns) {
            guard let r = a.result, let res = try? CNIResult(json: r, path: "cached result") else { continue }
            attached = true
            for n in res.dns.nameservers where !dns.nameservers.contains(n) { dns.nameservers.append(n) }
            for s in res.dns.search where !dns.search.contains(s) { dns.search.append(s) }
            if dns.domain == nil { dns.domain = res.dns.domain }
            for o in res.dns.options where !dns.options.contains(o) { dns.options.append(o) }
        }
        if let o = overrides, attached {
            if !o.nameservers.isEmpty { dns.nameservers = o.nameservers }
            if !o.search.isEmpty { dns.search = o.search }
            if !o.options.isEmpty { dns.options = o.options }
            // Search domains or options on networks that hand out no nameserver (the default
            // bridge): the host's nameservers with them, as Docker copies the host's file.
            if dns.nameservers.isEmpty && (!o.search.isEmpty || !o.options.isEmpty) {
                dns.nameservers = ResolvConf.host().nameservers
            }
        }
        let file = path(name)
        if dns.nameservers.isEmpty {
            remove(name)
            return
        }
        // Not ours: leave it alone.
        if let existing = (try? Posix.readText(file)) ?? nil, !existing.hasPrefix(marker) { return }
        var text = "\(marker) from the CNI results of netns \(name); removed when it leaves its networks\n"
        if !dns.search.isEmpty {
            text += "search \(dns.search.joined(separator: " "))\n"
        } else if let d = dns.domain {
            text += "domain \(d)\n"
        }
        for n in dns.nameservers.prefix(3) { text += "nameserver \(n)\n" }
        if !dns.options.isEmpty { text += "options \(dns.options.joined(separator: " "))\n" }
        try? Posix.makeDirectories("\(etcNetns)/\(name)")
        try? Posix.writeFileAtomically(file, Array(text.utf8), sync: false)
    }

    /// Removes the file (if cnictl wrote it) and the namespace's directory (if then empty).
    public static func remove(_ name: String) {
        let file = path(name)
        if let existing = (try? Posix.readText(file)) ?? nil, existing.hasPrefix(marker) {
            _ = try? Posix.remove(file)
        }
        _ = try? Posix.removeDirectory("\(etcNetns)/\(name)")
    }
}
