// `resolvConf`: the DNS settings host-local returns, read from a resolv.conf file.

import Base
import CNI

/// resolv.conf → CNI DNS (nameserver, domain, search, options), as the reference reads it.
public enum ResolvConf {
    public static func read(_ path: String) throws(CNIError) -> CNIDNS {
        let text: String?
        do { text = try Posix.readText(path) } catch { throw CNIError(.ioFailure, "resolvConf \"\(path)\": \(error)") }
        guard let text else { throw CNIError(.ioFailure, "resolvConf \"\(path)\": no such file") }
        return parse(text)
    }

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
}
