// The reference portmap's `conditionsV4` / `conditionsV6` (iptables match arguments), read
// into the firewall's nft match statements.

import Base
import CNI
import Firewall

/// Reference `conditionsV4`/`conditionsV6`: iptables-style tokens (`["!", "-d", "192.0.2.0/24"]`)
/// or nftables expressions (`["ip daddr != 192.0.2.0/24"]`). Supported: source/destination
/// prefixes and input interface, each possibly negated.
public enum PortmapConditions {
    public static func parse(_ items: [String], family: IPFamily, key: String) throws(CNIError) -> [Statement] {
        let tokens = items.flatMap { $0.split(separator: " ").map(String.init) }.filter { !$0.isEmpty }
        var out: [Statement] = []
        var i = 0
        func unsupported(_ what: String) -> CNIError {
            CNIError(.unsupportedField, "\"\(key)\": \"\(what)\" is not a supported condition (supported: [!] -s/-d CIDR, [!] -i IFNAME, or \(family == .v4 ? "ip" : "ip6") saddr|daddr [!=] CIDR, iifname [!=] NAME)")
        }
        func cidr(_ s: String) throws(CNIError) -> IPNetwork {
            if let n = IPNetwork(s), n.family == family { return n.network }
            if let a = IPAddress(s), a.family == family { return IPNetwork(address: a, prefixLength: family.bits)! }
            throw CNIError(.invalidConfig, "\"\(key)\": \"\(s)\" is not an \(family) address or prefix")
        }
        while i < tokens.count {
            var neg = false
            var t = tokens[i]
            if t == "!" { neg = true; i += 1; guard i < tokens.count else { throw unsupported("!") }; t = tokens[i] }
            func arg() throws(CNIError) -> String {
                i += 1
                guard i < tokens.count else { throw CNIError(.invalidConfig, "\"\(key)\": \"\(t)\" needs a value") }
                return tokens[i]
            }
            switch t {
            case "-s", "--source", "-d", "--destination":
                let n = try cidr(try arg())
                let op: CmpOp = neg ? .neq : .eq
                out.append(t.hasPrefix("-s") || t == "--source" ? .saddrPrefix(op, n) : .daddrPrefix(op, n))
            case "-i", "--in-interface":
                out.append(.iifname(neg ? .neq : .eq, try arg()))
            case "ip", "ip6":
                guard (t == "ip") == (family == .v4) else { throw unsupported(t) }
                let which = try arg()
                guard which == "saddr" || which == "daddr" else { throw unsupported("\(t) \(which)") }
                var v = try arg()
                var op = CmpOp.eq
                if v == "!=" { op = .neq; v = try arg() }
                let n = try cidr(v)
                out.append(which == "saddr" ? .saddrPrefix(op, n) : .daddrPrefix(op, n))
            case "iifname":
                var v = try arg()
                var op = CmpOp.eq
                if v == "!=" { op = .neq; v = try arg() }
                out.append(.iifname(op, v.trimmingCharacters(of: "\"")))
            default:
                throw unsupported(t)
            }
            i += 1
        }
        return out
    }
}

extension String {
    func trimmingCharacters(of c: Character) -> String {
        var s = Substring(self)
        while s.first == c { s = s.dropFirst() }
        while s.last == c { s = s.dropLast() }
        return String(s)
    }
}
