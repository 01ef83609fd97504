// `cnictl run`'s fast path against ArgumentParser's definition of `run`: the same names, and the
// same parse wherever the fast path answers.

import ArgumentParser
import Base
import Foundation
import Testing
@testable import CnictlCommands

@Suite struct RunFastPathTests {
    /// What a parse produced, every field of RunCommand and its option group.
    static func fields(_ c: RunCommand) -> [String] {
        [c.cni.confDir ?? "<nil>", c.cni.cniPath ?? "<nil>", c.cni.cacheDir ?? "<nil>", c.name, c.network ?? "<nil>",
         c.ip ?? "<nil>", c.ip6 ?? "<nil>", c.aliases.joined(separator: "|"), c.links.joined(separator: "|"),
         c.publish.joined(separator: "|"), c.mac ?? "<nil>", c.env.joined(separator: "|"), c.expose.joined(separator: "|"), String(c.gwPriority), c.dnsServers.joined(separator: "|"), c.dnsSearch.joined(separator: "|"), c.dnsOptions.joined(separator: "|"), String(c.timing)]
    }

    @Test func tableIsTheDefinition() throws {
        let dump = try JSONSerialization.jsonObject(with: Data(RunCommand._dumpHelp().utf8)) as! [String: Any]
        let command = dump["command"] as! [String: Any]
        #expect(command["commandName"] as? String == "run")
        var defined: [String: String] = [:]
        for arg in command["arguments"] as! [[String: Any]] {
            let names = (arg["names"] as? [[String: Any]] ?? []).map { n -> String in
                let name = n["name"] as! String
                switch n["kind"] as! String {
                case "long": return "--" + name
                case "short", "longWithSingleDash": return "-" + name
                default: Issue.record("unknown name kind \(n)"); return name
                }
            }
            if names.contains("--help") { continue }
            let kind = (arg["kind"] as! String) + ((arg["isRepeating"] as? Bool ?? false) ? " repeating" : "")
            #expect(!names.isEmpty, "run has a positional argument the fast path does not know: \(arg)")
            for n in names { defined[n] = kind }
        }
        var table: [String: String] = [:]
        for (name, option) in RunCommand.fastOptions {
            switch option {
            case .flag: table[name] = "flag"
            case .value(let repeating, _): table[name] = repeating ? "option repeating" : "option"
            }
        }
        #expect(table == defined)
        #expect(defined.count == 20)
    }

    /// The command lines runtimes and the README use take the fast path and parse as
    /// ArgumentParser parses them.
    @Test(arguments: [
        ["--name", "container1"],
        ["--name", "container3", "--network", "isolated_nw", "--ip", "172.25.3.3"],
        ["--name", "container4", "--network", "isolated_nw", "--link", "container5:c5"],
        ["--name", "container6", "--network", "isolated_nw", "--network-alias", "app", "--network-alias", "db"],
        ["--name", "web", "--network", "simple-network3", "-p", "8081:80", "--publish", "127.0.0.1:8443:443/tcp"],
        ["--name=w1", "--network=web", "-p", "9001:80", "--timing", "--ip6=fd00::5"],
        ["--conf-dir", "/tmp/x/net.d", "--cni-path", "/a:/b", "--cache-dir", "/tmp/c", "--name", "n"],
        ["--name", "w", "--network", "web", "-p", "9000:80", "--timing"],
        ["--name", "m", "--network", "web", "--mac-address", "02:42:ac:11:00:09"],
        ["--name", "e", "-e", "A=1", "--env", "B=2", "--expose", "80", "--link", "db:database", "--gw-priority", "7", "--dns", "10.0.0.53", "--dns-search", "a.test", "--dns-option", "ndots:2"],
    ])
    func commonLinesTakeTheFastPath(args: [String]) throws {
        let fast = try #require(RunCommand.fastParse(args))
        #expect(Self.fields(fast) == Self.fields(try #require(RunCommand.parseAsRoot(args) as? RunCommand)))
    }

    /// What the fast path leaves to ArgumentParser (which answers with its own error or help).
    @Test(arguments: [
        [], ["--network", "web"], ["--name"], ["--name", "-x"], ["--name", "a", "--name", "b"],
        ["--name", "a", "--help"], ["--name", "a", "--bogus"], ["--name", "a", "x"], ["--name", "a", "--"],
        ["--name", "a", "-p80:80"], ["--name", "a", "--timing=yes"], ["--name", "a", "--timing", "--timing"], ["--name", "a", "--gw-priority", "high"],
        ["--name", "a", "--ip=-1"],
    ])
    func unusualLinesGoToArgumentParser(args: [String]) {
        #expect(RunCommand.fastParse(args) == nil)
    }

    /// A seeded corpus of command lines from the option names, their "=" forms and awkward
    /// values: wherever the fast path answers, ArgumentParser accepts the line and agrees.
    @Test func agreesWithArgumentParser() throws {
        var rng = FastRandom(seed: 0x5EED_12)
        let names = ["--name", "--network", "--ip", "--ip6", "--network-alias", "--link", "-p", "--publish",
                     "--conf-dir", "--cni-path", "--cache-dir", "--timing", "--help", "-h", "--nam", "-n", "--"]
        let values = ["a", "web", "172.25.3.3", "8080:80", "x=y", "", "-1", "--name", "c5:alias", "p q"]
        var answered = 0
        for _ in 0..<4000 {
            var args: [String] = []
            for _ in 0..<Int.random(in: 0...7, using: &rng) {
                let n = names.randomElement(using: &rng)!
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: args.append(n)
                case 1: args.append(n + "=" + values.randomElement(using: &rng)!)
                default: args += [n, values.randomElement(using: &rng)!]
                }
            }
            if Bool.random(using: &rng) { args += ["--name", values.randomElement(using: &rng)!] }
            guard let fast = RunCommand.fastParse(args) else { continue }
            answered += 1
            let slow: RunCommand
            do { slow = try RunCommand.parseAsRoot(args) as! RunCommand } catch {
                Issue.record("fast path accepted \(args) but ArgumentParser refuses it: \(error)")
                return
            }
            #expect(Self.fields(fast) == Self.fields(slow), "\(args)")
        }
        #expect(answered > 300, "the corpus must exercise the fast path (answered \(answered))")
    }
}
