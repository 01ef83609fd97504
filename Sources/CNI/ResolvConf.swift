// resolv.conf as CNI DNS settings: what host-local's `resolvConf` returns, the host's
// resolvers dns-alias forwards to by default, the nameservers cnictl copies for a container
// whose search domains or options change.

import Base

/// resolv.conf → CNI DNS (nameserver, domain, search, options), as the reference reads it.
public enum ResolvConf {
    public static func parse(_ text: String) -> CNIDNS {
        var dns = CNIDNS()
        for raw in text.split(separator: "\n") {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            guard let k = f.first else { continue }
            let rest = Array(f.dropFirst())
            switch k {
            case "nameserver": dns.nameservers += rest.prefix(1)
            case "domain": dns.domain = rest.first
            case "search": dns.search += rest
            case "options": dns.options += rest
            default: break
            }
        }
        return dns
    }

    /// The host's own settings (/etc/resolv.conf); empty when unreadable.
    public static func host() -> CNIDNS {
        guard let text = (try? Posix.readText("/etc/resolv.conf")) ?? nil else { return CNIDNS() }
        return parse(text)
    }
}
