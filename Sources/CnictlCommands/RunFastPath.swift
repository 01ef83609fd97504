// `cnictl run`'s start-up path: the common command lines parsed without ArgumentParser's
// reflection, everything else handed to ArgumentParser.

/// ArgumentParser builds a command's definition by reflection (Mirror, dynamic casts): in a
/// binary this size each first conformance lookup scans every conformance record, ~1.2 ms of
/// every `cnictl run` (perf: swift_conformsToProtocol; scripts/bench/cnictlbench.py). `run` is
/// on the hot path of every container start, so the plain command lines — options from the
/// table below, each once unless repeatable, values not starting with "-" — are parsed here.
/// Anything else (help, unknown or misspelt options, a missing --name, "--", odd values)
/// returns nil and goes to ArgumentParser, which owns the error messages.
///
/// The table is checked against `RunCommand`'s ArgumentParser definition (every name, kind and
/// repeatability, from `_dumpHelp()`), and what it parses is checked against `parseAsRoot` on
/// a seeded corpus (Tests/CnictlTests/RunFastPathTests.swift): adding an option to RunCommand
/// without adding it here fails those tests.
extension RunCommand {
    enum FastOption: Sendable {
        /// An option taking one value; `repeating` if ArgumentParser collects it into an array.
        case value(repeating: Bool, @Sendable (inout RunCommand, String) -> Void)
        case flag(@Sendable (inout RunCommand) -> Void)
    }

    /// Every option of `run` (and its CNIOptions group) by each name ArgumentParser accepts.
    static let fastOptions: [String: FastOption] = {
        let publish = FastOption.value(repeating: true) { $0.publish.append($1) }
        return [
            "--conf-dir": .value(repeating: false) { $0.cni.confDir = $1 },
            "--cni-path": .value(repeating: false) { $0.cni.cniPath = $1 },
            "--cache-dir": .value(repeating: false) { $0.cni.cacheDir = $1 },
            "--name": .value(repeating: false) { $0.name = $1 },
            "--network": .value(repeating: false) { $0.network = $1 },
            "--ip": .value(repeating: false) { $0.ip = $1 },
            "--ip6": .value(repeating: false) { $0.ip6 = $1 },
            "--network-alias": .value(repeating: true) { $0.aliases.append($1) },
            "--link": .value(repeating: true) { $0.links.append($1) },
            "--mac-address": .value(repeating: false) { $0.mac = $1 },
            "-e": .value(repeating: true) { $0.env.append($1) },
            "--env": .value(repeating: true) { $0.env.append($1) },
            "--expose": .value(repeating: true) { $0.expose.append($1) },
            "--dns": .value(repeating: true) { $0.dnsServers.append($1) },
            "--dns-search": .value(repeating: true) { $0.dnsSearch.append($1) },
            "--dns-option": .value(repeating: true) { $0.dnsOptions.append($1) },
            "--gw-priority": .value(repeating: false) { c, v in if let p = Int(v) { c.gwPriority = p } else { c.gwPriority = Int.min } },
            "-p": publish,
            "--publish": publish,
            "--timing": .flag { $0.timing = true },
        ]
    }()

    /// The command line parsed as ArgumentParser would, or nil to let ArgumentParser do it.
    static func fastParse(_ args: [String]) -> RunCommand? {
        var c = RunCommand()
        // Every property is set before use: ArgumentParser's wrappers trap on reading an
        // unparsed value.
        c.cni = .defaults
        c.network = nil
        c.ip = nil
        c.ip6 = nil
        c.aliases = []
        c.links = []
        c.mac = nil
        c.env = []
        c.expose = []
        c.dnsServers = []
        c.dnsSearch = []
        c.dnsOptions = []
        c.gwPriority = 0
        c.publish = []
        c.timing = false
        var seen = Set<String>()
        var hasName = false
        var i = 0
        while i < args.count {
            let arg = args[i]
            i += 1
            var key = arg
            var inline: String?
            if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
                key = String(arg[..<eq])
                inline = String(arg[arg.index(after: eq)...])
            }
            guard let option = fastOptions[key] else { return nil }
            switch option {
            case .flag(let set):
                guard inline == nil, seen.insert(key).inserted else { return nil }
                set(&c)
            case .value(let repeating, let set):
                let value: String
                if let inline {
                    guard !inline.isEmpty else { return nil }  // ArgumentParser: a missing value
                    value = inline
                } else {
                    guard i < args.count else { return nil }
                    value = args[i]
                    i += 1
                }
                guard !value.hasPrefix("-") else { return nil }
                // One canonical name per option: "-p" and "--publish" share an entry.
                if !repeating { guard seen.insert(key).inserted else { return nil } }
                set(&c, value)
                if key == "--name" { hasName = true }
            }
        }
        // A --gw-priority that is not a number: ArgumentParser says so.
        return hasName && c.gwPriority != Int.min ? c : nil
    }
}
