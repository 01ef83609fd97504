import Foundation
import Testing
@testable import Base
@testable import CNI

/// `cnictl network …`, `run`, `exec`, `ps`, `rm`, `gc`, exec'd as a user runs them.
@Suite(.enabled(if: isRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/dig"), "needs root and dig"))
struct DockerStyleCommands {
    func ok(_ lab: Lab, _ args: [String], file: String = #filePath, line: Int = #line) -> String {
        let r = lab.ctl(args)
        #expect(r.status == 0, "cnictl \(args.joined(separator: " ")): \(r.err)", sourceLocation: SourceLocation(fileID: "IntegrationTests/CnictlNetworkTests.swift", filePath: file, line: line, column: 1))
        return r.out
    }

    func refused(_ lab: Lab, _ args: [String], _ message: String, file: String = #filePath, line: Int = #line) {
        let r = lab.ctl(args)
        let loc = SourceLocation(fileID: "IntegrationTests/CnictlNetworkTests.swift", filePath: file, line: line, column: 1)
        #expect(r.status != 0, "cnictl \(args.joined(separator: " ")) succeeded", sourceLocation: loc)
        #expect(r.err == "cnictl: \(message)\n", "cnictl \(args.joined(separator: " ")): \(r.err)", sourceLocation: loc)
    }

    func dig(_ lab: Lab, _ c: String, _ name: String) -> [String] {
        lab.ctl(["exec", c, "--", "dig", "+short", "+time=1", "+tries=1", name]).out.split(separator: "\n").map(String.init).filter { !$0.hasPrefix(";") }
    }

    func address(_ lab: Lab, _ c: String, _ network: String) throws -> String {
        let j = try JSON.parse(ok(lab, ["network", "inspect", network]))
        let cs = try #require(j.arrayValue?.first?["Containers"]?.objectValue)
        let e = try #require(cs.first { $0.value["Name"]?.stringValue == c })
        return String(e.value["IPv4Address"]!.stringValue!.split(separator: "/")[0])
    }

    func allocations(_ lab: Lab, _ network: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: lab.root + "/state/ipam/" + network)) ?? []).filter { IPAddress($0) != nil }.sorted()
    }

    @Test func createListInspectRemoveAndRefusals() throws {
        try withLab { lab in
            let id = ok(lab, ["network", "create", "simple-network"]).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(id.count == 64 && id.allSatisfy(\.isHexDigit))
            _ = ok(lab, ["network", "create", "-d", "bridge", "--subnet", "172.25.0.0/16", "isolated_nw"])
            let ls = ok(lab, ["network", "ls"])
            #expect(ls.hasPrefix("NETWORK ID     NAME             DRIVER   SCOPE\n"), "\(ls)")
            #expect(ls.contains("\(id.prefix(12))   simple-network   bridge   local\n"), "\(ls)")
            // One JSON object per line, as Docker's `--format json`.
            let lsj = try ok(lab, ["network", "ls", "--format", "json"]).split(separator: "\n").map { try JSON.parse(Array($0.utf8)) }
            // The default bridge network exists as soon as any network does, as Docker's; so
            // do Docker's host and none. The list is sorted by name, as Docker's.
            #expect(lsj.compactMap { $0["Name"]?.stringValue } == ["bridge", "host", "isolated_nw", "none", "simple-network"])
            let insp = try JSON.parse(ok(lab, ["network", "inspect", "simple-network"])).arrayValue![0]
            #expect(insp["Id"]?.stringValue == id)
            #expect(insp["Driver"]?.stringValue == "bridge" && insp["Scope"]?.stringValue == "local")
            // No --subnet: Docker's first default pool that nothing uses (172.17 is the default bridge's).
            #expect(insp["IPAM"]?["Config"]?.arrayValue?.first?["Subnet"]?.stringValue == "172.18.0.0/16")
            #expect(insp["IPAM"]?["Config"]?.arrayValue?.first?["Gateway"]?.stringValue == "172.18.0.1")
            // The conflist: bridge + host-local + portmap + dns-alias.
            let list = try JSON.parse(String(contentsOfFile: lab.confDir + "/isolated_nw.conflist", encoding: .utf8))
            #expect(list["plugins"]?.arrayValue?.compactMap { $0["type"]?.stringValue } == ["bridge", "portmap", "dns-alias"])
            #expect(list["plugins"]?.arrayValue?[0]["bridge"]?.stringValue?.hasPrefix("br-") == true)

            refused(lab, ["network", "create", "isolated_nw"], "network with name isolated_nw already exists")
            refused(lab, ["network", "create", "--subnet", "172.25.1.0/24", "overlap"],
                    "subnet 172.25.1.0/24 overlaps 172.25.0.0/16 of network isolated_nw (use --force to create it anyway)")
            refused(lab, ["network", "create", "--subnet", "172.30.0.0/16", "--gateway", "172.31.0.1", "gw"],
                    "gateway 172.31.0.1 is not in any subnet (172.30.0.0/16)")
            refused(lab, ["network", "create", "--subnet", "172.30.0.0/16", "--ip-range", "172.31.0.0/24", "rng"],
                    "ip-range 172.31.0.0/24 is not inside any subnet (172.30.0.0/16)")
            refused(lab, ["network", "create", "--subnet", "172.30.0.0/16", "--aux-address", "r=10.0.0.1", "aux"],
                    "aux-address r=10.0.0.1 is not in any subnet")
            refused(lab, ["network", "create", "-o", "com.docker.network.bridge.host_binding_ipv4=nope", "hb"],
                    "option com.docker.network.bridge.host_binding_ipv4=nope: not an IPv4 address")
            refused(lab, ["network", "create", "-o", "com.example.x=1", "opt"],
                    "option com.example.x is not supported by the bridge driver (supported: com.docker.network.bridge.enable_icc, com.docker.network.bridge.enable_ip_masquerade, com.docker.network.bridge.gateway_mode_ipv4, com.docker.network.bridge.gateway_mode_ipv6, com.docker.network.bridge.host_binding_ipv4, com.docker.network.bridge.name, com.docker.network.driver.mtu)")
            refused(lab, ["network", "create", "--subnet", "10.1.0.0/16", "--subnet", "10.2.0.0/16", "two"],
                    "the bridge driver takes one IPv4 subnet (and one IPv6 subnet with --ipv6); several subnets need -d overlay")
            refused(lab, ["network", "create", "-d", "overlay", "ov"],
                    "an overlay network needs a key-value store: --kv etcd://HOST:PORT[,…] (or \"kv\" in \(lab.root)/state/cnictl/config.json)")
            refused(lab, ["network", "create", "bad name"], "invalid network name \"bad name\": use letters, digits, '_', '.', '-' (starting with a letter or digit)")
            _ = ok(lab, ["network", "create", "--force", "--subnet", "172.25.1.0/24", "forced"])
            #expect(ok(lab, ["network", "rm", "forced"]) == "forced\n")
            refused(lab, ["network", "rm", "forced"], "network forced not found")
            // Without -f, prune asks (and an answer other than y does nothing).
            #expect(ok(lab, ["network", "prune"]) == "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ")
            #expect(ok(lab, ["network", "prune", "-f", "--filter", "until=1h"]) == "")  // created just now: kept
            #expect(ok(lab, ["network", "prune", "-f", "--filter", "label=nope"]) == "")
            refused(lab, ["network", "prune", "-f", "--filter", "until=soon"], "invalid filter 'until=soon'")
            refused(lab, ["network", "prune", "-f", "--filter", "driver=bridge"], "invalid filter 'driver'")
            #expect(ok(lab, ["network", "prune", "-f", "--filter", "until=0s"]) == "Deleted Networks:\nisolated_nw\nsimple-network\n")
            #expect(!FileManager.default.fileExists(atPath: lab.confDir + "/isolated_nw.conflist"))
            #expect(ok(lab, ["network", "create", "--help"]).contains("cnictl network create -d bridge --subnet 172.25.0.0/16 isolated_nw"))
        }
    }

    @Test func containersOnOneOrTwoNetworksAndNames() throws {
        try withLab { lab in
            let c1 = lab.id + "-container1", c2 = lab.id + "-container2", c3 = lab.id + "-container3"
            _ = ok(lab, ["run", "--name", c1])
            _ = ok(lab, ["run", "--name", c2])
            _ = ok(lab, ["network", "create", "-d", "bridge", "--subnet", "172.25.0.0/16", "isolated_nw"])
            _ = ok(lab, ["network", "connect", "isolated_nw", c2])
            let cid3 = ok(lab, ["run", "--network", "isolated_nw", "--ip", "172.25.3.3", "--name", c3]).trimmingCharacters(in: .whitespacesAndNewlines)
            let rows = ok(lab, ["ps"]).split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            #expect(rows.first == ["CONTAINER", "ID", "NAME", "NETWORKS", "IP", "ADDRESSES", "PORTS"])
            #expect(rows.contains([String(cid3.prefix(12)), c3, "isolated_nw", "172.25.3.3"]), "\(rows)")
            #expect(rows.contains { $0.count == 4 && $0[1] == c2 && $0[2] == "bridge,isolated_nw" && $0[3] == "172.17.0.3,172.25.0.2" }, "\(rows)")
            // Names resolve on the user-defined network (container2 ↔ container3), by the
            // embedded DNS; the default bridge has none.
            #expect(dig(lab, c2, c3) == ["172.25.3.3"])
            #expect(lab.ctl(["exec", c2, "--", "ping", "-c", "1", "-W", "1", c3]).status == 0)
            #expect(lab.ctl(["exec", c1, "--", "ping", "-c", "1", "-W", "1", c2]).status != 0)
            // Different networks: no traffic even by address.
            #expect(lab.ctl(["exec", c1, "--", "ping", "-c", "1", "-W", "1", "172.25.3.3"]).status != 0)
            #expect(lab.ctl(["exec", c1, "--", "ping", "-c", "1", "-W", "1", "172.17.0.3"]).status == 0)
            let insp = try JSON.parse(ok(lab, ["network", "inspect", "isolated_nw"])).arrayValue![0]
            #expect(Set(insp["Containers"]!.objectValue!.compactMap { $0.value["Name"]?.stringValue }) == [c2, c3])
            let id2 = try #require(try JSON.parse(ok(lab, ["inspect", c2])).arrayValue?.first?["Id"]?.stringValue)
            refused(lab, ["network", "rm", "isolated_nw"],
                    "error while removing network: network isolated_nw has active endpoints (name:\"\(c2)\" id:\"\(id2.prefix(12))\", name:\"\(c3)\" id:\"\(cid3.prefix(12))\")")
            // Several names: each removed or refused on its own, as Docker's.
            _ = ok(lab, ["network", "create", "spare"])
            let several = lab.ctl(["network", "rm", "nosuch", "spare", "host"])
            #expect(several.status == 1 && several.out == "spare\n")
            #expect(several.err == "cnictl: network nosuch not found\ncnictl: host is a pre-defined network and cannot be removed\n", "\(several.err)")
            refused(lab, ["run", "--name", c3], "container name \"\(c3)\" is already in use")
            refused(lab, ["network", "connect", "isolated_nw", c3], "container \(c3) is already connected to network isolated_nw")
            refused(lab, ["run", "--name", lab.id + "-x", "--network", "nowhere"], "network nowhere not found")
            #expect(!FileManager.default.fileExists(atPath: "/run/netns/\(lab.id)-x"))
            _ = ok(lab, ["network", "disconnect", "isolated_nw", c2])
            #expect(dig(lab, c2, c3) == [])
            refused(lab, ["network", "disconnect", "isolated_nw", c2], "container \(c2) is not connected to network isolated_nw")
            #expect(ok(lab, ["rm", c1, c2, c3]) == "\(c1)\n\(c2)\n\(c3)\n")
            #expect(!FileManager.default.fileExists(atPath: "/run/netns/\(c3)"))
            #expect(!FileManager.default.fileExists(atPath: "/etc/netns/\(c3)"))
            _ = ok(lab, ["network", "rm", "isolated_nw"])
            #expect(allocations(lab, "isolated_nw").isEmpty)
            #expect(ok(lab, ["ps"]) == "CONTAINER ID   NAME   NETWORKS   IP ADDRESSES   PORTS\n")
        }
    }

    /// Docker's predefined `host` and `none` networks: listed and inspected as Docker shows
    /// them; a container on `host` is in the host's namespace (cnictl's), one on `none` has a
    /// namespace with lo only; neither network can be removed, created, or combined with another.
    @Test func hostAndNoneNetworks() throws {
        try withLab { lab in
            let h = lab.id + "-onhost", n = lab.id + "-onnone", b = lab.id + "-onbr"
            let ls = ok(lab, ["network", "ls"]).split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            #expect(ls.contains { $0.count == 4 && $0[1] == "host" && $0[2] == "host" && $0[3] == "local" }, "\(ls)")
            #expect(ls.contains { $0.count == 4 && $0[1] == "none" && $0[2] == "null" && $0[3] == "local" }, "\(ls)")
            let hid = ok(lab, ["run", "--name", h, "--network", "host"]).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(hid.count == 64)
            // No namespace, no CNI call: the host's links, its address.
            #expect(!FileManager.default.fileExists(atPath: "/run/netns/\(h)"))
            _ = ok(lab, ["network", "create", "--subnet", "172.29.0.0/16", "hn"])
            _ = ok(lab, ["run", "--name", b, "--network", "hn"])
            let hostLinks = lab.exec(lab.host, "\(ipCommand) -o link show").out
            #expect(lab.ctl(["exec", h, "--", ipCommand, "-o", "link", "show"]).out == hostLinks)
            // ... which reaches the bridge network's containers through the host's bridge.
            #expect(lab.ctl(["exec", h, "--", "ping", "-c", "1", "-W", "2", "172.29.0.2"]).status == 0)
            _ = ok(lab, ["run", "--name", n, "--network", "none"])
            let links = lab.ctl(["exec", n, "--", ipCommand, "-o", "link", "show"]).out.split(separator: "\n")
            #expect(links.count == 1 && links[0].contains(": lo: ") && links[0].contains("UP"), "\(links)")
            #expect(lab.ctl(["exec", n, "--", "ping", "-c", "1", "-W", "1", "172.29.0.2"]).status != 0)
            #expect(lab.ctl(["exec", n, "--", "ping", "-c", "1", "-W", "1", "127.0.0.1"]).status == 0)
            let insp = try JSON.parse(ok(lab, ["network", "inspect", "host", "none"])).arrayValue!
            #expect(insp.map { $0["Driver"]?.stringValue } == ["host", "null"])
            #expect(insp[0]["Scope"]?.stringValue == "local" && insp[0]["IPAM"]?["Config"]?.arrayValue?.isEmpty == true)
            #expect(insp[0]["Containers"]?[hid]?["Name"]?.stringValue == h)
            #expect(insp[1]["Containers"]?.objectValue?.map(\.value["Name"]) == [.string(n)])
            #expect(insp[0]["Id"]?.stringValue?.count == 64 && insp[0]["Id"] != insp[1]["Id"])
            let ps = ok(lab, ["ps"]).split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            #expect(ps.contains { $0.count >= 3 && $0[1] == h && $0[2] == "host" } && ps.contains { $0.count >= 3 && $0[1] == n && $0[2] == "none" }, "\(ps)")
            // Docker's refusals.
            refused(lab, ["network", "rm", "host"], "host is a pre-defined network and cannot be removed")
            refused(lab, ["network", "rm", "none"], "none is a pre-defined network and cannot be removed")
            refused(lab, ["network", "create", "host"], "network with name host already exists")
            refused(lab, ["network", "connect", "hn", h], "container sharing network namespace with another container or host cannot be connected to any other network")
            refused(lab, ["network", "connect", "host", b], "container cannot be disconnected from host network or connected to host network")
            refused(lab, ["network", "disconnect", "host", h], "container cannot be disconnected from host network or connected to host network")
            refused(lab, ["network", "connect", "hn", n], "container cannot be connected to multiple networks with one of the networks in private (none) mode")
            refused(lab, ["network", "connect", "none", b], "container cannot be connected to multiple networks with one of the networks in private (none) mode")
            refused(lab, ["run", "--name", lab.id + "-x", "--network", "host", "--link", "\(b):x"],
                    "conflicting options: host type networking can't be used with links. This would result in undefined behavior")
            refused(lab, ["run", "--name", lab.id + "-x", "--network", "none", "--ip", "10.0.0.9"],
                    "user specified IP address is supported on user defined networks only")
            refused(lab, ["run", "--name", lab.id + "-x", "--network", "host", "--network-alias", "a"],
                    "network-scoped alias is supported only for containers in user defined networks")
            #expect(!FileManager.default.fileExists(atPath: "/run/netns/\(lab.id)-x"))
            // Ports are discarded, with Docker's warning.
            let p = lab.ctl(["run", "--name", lab.id + "-p", "--network", "host", "-p", "8080:80"])
            #expect(p.status == 0 && p.err == "WARNING: Published ports are discarded when using host network mode\n", "\(p.err)")
            // Off none, the container may join a network.
            _ = ok(lab, ["network", "disconnect", "none", n])
            _ = ok(lab, ["network", "connect", "hn", n])
            #expect(lab.ctl(["exec", n, "--", "ping", "-c", "1", "-W", "2", "172.29.0.2"]).status == 0)
            #expect(ok(lab, ["rm", h, n, b, lab.id + "-p"]) == "\(h)\n\(n)\n\(b)\n\(lab.id)-p\n")
            #expect(!FileManager.default.fileExists(atPath: "/run/netns/\(n)"))
            _ = ok(lab, ["network", "rm", "hn"])
            #expect(ok(lab, ["ps"]) == "CONTAINER ID   NAME   NETWORKS   IP ADDRESSES   PORTS\n")
        }
    }

    /// `network ls -q / --no-trunc / --filter / --format`, `network inspect -f`, and
    /// `cnictl inspect` of containers, compared with Docker's shapes field by field.
    @Test func listFiltersFormatsAndInspect() throws {
        try withLab { lab in
            let c1 = lab.id + "-i1", c2 = lab.id + "-i2"
            let id = ok(lab, ["network", "create", "--subnet", "172.26.0.0/16", "--label", "env=prod", "--label", "tier=", "lf_a"])
                .trimmingCharacters(in: .whitespacesAndNewlines)
            _ = ok(lab, ["network", "create", "--subnet", "172.27.0.0/16", "--ipv6", "--subnet", "fd27::/64", "--label", "env=dev", "lf_b"])
            let cid = ok(lab, ["run", "--name", c1, "--network", "lf_a", "--ip", "172.26.0.9", "--network-alias", "web", "-p", "8089:80",
                                "--mac-address", "02:42:ac:1a:00:09"])
                .trimmingCharacters(in: .whitespacesAndNewlines)
            _ = ok(lab, ["run", "--name", c2])
            func names(_ args: [String]) -> [String] {
                ok(lab, ["network", "ls", "--format", "{{.Name}}"] + args).split(separator: "\n").map(String.init)
            }
            #expect(names([]) == ["bridge", "host", "lf_a", "lf_b", "none"])
            #expect(names(["-f", "driver=bridge"]) == ["bridge", "lf_a", "lf_b"])
            #expect(names(["-f", "driver=host", "-f", "driver=null"]) == ["host", "none"])  // one key: alternatives
            #expect(names(["-f", "name=lf_"]) == ["lf_a", "lf_b"])
            #expect(names(["-f", "name=lf_", "-f", "label=env=prod"]) == ["lf_a"])  // keys: all must hold
            #expect(names(["-f", "label=tier"]) == ["lf_a"])
            #expect(names(["-f", "label=env"]) == ["lf_a", "lf_b"])
            #expect(names(["-f", "type=builtin"]) == ["bridge", "host", "none"])
            #expect(names(["-f", "type=custom"]) == ["lf_a", "lf_b"])
            #expect(names(["-f", "scope=local", "-f", "type=custom"]) == ["lf_a", "lf_b"])
            #expect(names(["-f", "scope=global"]) == [])
            #expect(names(["-f", "dangling=true"]) == ["lf_b"])  // unused, and never a predefined one
            #expect(names(["-f", "dangling=false"]) == ["bridge", "host", "lf_a", "none"])
            #expect(names(["-f", "id=" + String(id.prefix(6))]) == ["lf_a"])
            #expect(ok(lab, ["network", "ls", "-q", "-f", "name=lf_a"]) == String(id.prefix(12)) + "\n")
            #expect(ok(lab, ["network", "ls", "-q", "--no-trunc", "-f", "name=lf_a"]) == id + "\n")
            refused(lab, ["network", "ls", "-f", "colour=red"], "invalid filter 'colour'")
            refused(lab, ["network", "ls", "-f", "type=odd"], "invalid filter: 'type'='odd'")
            refused(lab, ["network", "ls", "-f", "nonsense"], "bad format of filter (expected name=value)")
            // Go templates, with \t as a tab; "table" adds Docker's column names.
            #expect(ok(lab, ["network", "ls", "-f", "name=lf_", "--format", #"{{.Name}}\t{{.Driver}}\t{{.IPv6}}"#]) == "lf_a\tbridge\tfalse\nlf_b\tbridge\ttrue\n")
            #expect(ok(lab, ["network", "ls", "-f", "name=lf_", "--format", #"table {{.Name}}\t{{.Labels}}"#])
                    == "NAME   LABELS\nlf_a   env=prod,tier=\nlf_b   env=dev\n")
            refused(lab, ["network", "ls", "--format", "{{.Name"], "template: unclosed action")
            // Docker's ls JSON: every field a string, the ID truncated unless --no-trunc.
            let row = try JSON.parse(Array(ok(lab, ["network", "ls", "-f", "name=lf_a", "--format", "json"]).utf8))
            #expect(row.objectValue?.map(\.key) == ["CreatedAt", "Driver", "ID", "IPv4", "IPv6", "Internal", "Labels", "Name", "Scope"])
            #expect(row["ID"]?.stringValue == String(id.prefix(12)) && row["Driver"]?.stringValue == "bridge" && row["Scope"]?.stringValue == "local")
            #expect(row["IPv4"]?.stringValue == "true" && row["IPv6"]?.stringValue == "false" && row["Internal"]?.stringValue == "false")
            // network inspect -f.
            #expect(ok(lab, ["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", "lf_b"]) == "172.27.0.0/16 fd27::/64 \n")
            #expect(ok(lab, ["network", "inspect", "-f", #"{{.Name}} {{.Driver}} {{index .Labels "env"}}"#, "lf_a", "lf_b"]) == "lf_a bridge prod\nlf_b bridge dev\n")
            #expect(ok(lab, ["network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}", "lf_a"]) == "\(c1) 172.26.0.9/16\n")
            // cnictl inspect of containers: Docker's NetworkSettings.Networks.<net>.
            let insp = try JSON.parse(ok(lab, ["inspect", c1, c2])).arrayValue!
            #expect(insp.count == 2 && insp[0]["Id"]?.stringValue == cid && insp[0]["Name"]?.stringValue == "/" + c1)
            let ep = try #require(insp[0]["NetworkSettings"]?["Networks"]?["lf_a"])
            #expect(ep.objectValue?.map(\.key) == ["IPAMConfig", "Links", "Aliases", "MacAddress", "DriverOpts", "GwPriority", "NetworkID",
                                                  "EndpointID", "Gateway", "IPAddress", "IPPrefixLen", "IPv6Gateway", "GlobalIPv6Address",
                                                  "GlobalIPv6PrefixLen", "DNSNames"])
            #expect(ep["IPAddress"]?.stringValue == "172.26.0.9" && ep["IPPrefixLen"]?.intValue == 16 && ep["Gateway"]?.stringValue == "172.26.0.1")
            #expect(ep["IPAMConfig"]?["IPv4Address"]?.stringValue == "172.26.0.9")
            #expect(ep["NetworkID"]?.stringValue == id && ep["Aliases"] == .array(["web"]) && ep["GwPriority"]?.intValue == 0)
            #expect(ep["DNSNames"] == .array([.string(c1), "web", .string(String(cid.prefix(12)))]))
            let mac = lab.ctl(["exec", c1, "--", "cat", "/sys/class/net/eth0/address"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(ep["MacAddress"]?.stringValue == mac && mac == "02:42:ac:1a:00:09")
            refused(lab, ["run", "--name", lab.id + "-m", "--network", "lf_a", "--mac-address", "zz"], "zz is not a valid mac address")
            #expect(!FileManager.default.fileExists(atPath: "/run/netns/\(lab.id)-m"))
            #expect(insp[0]["NetworkSettings"]?["Ports"]?["80/tcp"] == .array([["HostIp": "0.0.0.0", "HostPort": "8089"]]))
            #expect(insp[0]["NetworkSettings"]?["SandboxKey"]?.stringValue == "/run/netns/\(c1)")
            // On the default bridge: no DNS names, no IPAMConfig, as Docker's.
            let def = try #require(insp[1]["NetworkSettings"]?["Networks"]?["bridge"])
            #expect(def["DNSNames"] == .null && def["IPAMConfig"] == .null && def["IPAddress"]?.stringValue?.hasPrefix("172.17.0.") == true)
            #expect(ok(lab, ["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", c1]) == "172.26.0.9\n")
            refused(lab, ["inspect", lab.id + "-nothere"], "no such container: \(lab.id)-nothere")
            _ = ok(lab, ["rm", c1, c2])
            _ = ok(lab, ["network", "rm", "lf_a", "lf_b"])
        }
    }

    /// stop / start / restart: the processes end, the networks are detached (names gone),
    /// and come back with the pinned address, the names and aliases.
    @Test func stopStartRestart() throws {
        try withLab { lab in
            let c1 = lab.id + "-s1", c2 = lab.id + "-s2"
            _ = ok(lab, ["network", "create", "--subnet", "172.28.0.0/16", "ss"])
            _ = ok(lab, ["run", "--name", c1, "--network", "ss", "--ip", "172.28.0.50", "--network-alias", "app"])
            _ = ok(lab, ["run", "--name", c2, "--network", "ss"])
            #expect(dig(lab, c2, c1) == ["172.28.0.50"] && dig(lab, c2, "app") == ["172.28.0.50"])
            // A process in c1, which stop must end.
            let p = Process()
            p.executableURL = URL(fileURLWithPath: nsenterCommand)
            p.arguments = ["--net=" + lab.path(lab.host), buildDir + "/cnictl", "exec", c1, "--", "sleep", "300"]
            p.environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SWIFTCNI_STATE_DIR": lab.root + "/state", "SWIFTCNI_RUN_DIR": lab.runDir]
            try p.run()
            defer { if p.isRunning { p.terminate() } }
            var seen = false
            for _ in 0..<100 where !seen { seen = lab.exec(lab.host, "ip netns pids \(c1)").out.contains(where: \.isNumber); if !seen { usleep(20_000) } }
            #expect(seen, "the sleep never ran in \(c1)")
            #expect(ok(lab, ["stop", "-t", "1", c1]) == c1 + "\n")
            p.waitUntilExit()
            #expect(lab.exec(lab.host, "ip netns pids \(c1)").out == "")
            #expect(dig(lab, c2, c1) == [] && dig(lab, c2, "app") == [])
            #expect(lab.exec(c1, "\(ipCommand) -o link show").out.split(separator: "\n").count == 1)  // lo only
            refused(lab, ["exec", c1, "--", "true"], "container \(c1) is not running")
            #expect(!ok(lab, ["ps"]).contains(c1) && ok(lab, ["ps", "-a"]).contains(c1))
            let st = try JSON.parse(ok(lab, ["inspect", c1])).arrayValue?.first?["State"]
            #expect(st == ["Status": "exited", "Running": false])
            #expect(ok(lab, ["start", c1]) == c1 + "\n")
            #expect(dig(lab, c2, c1) == ["172.28.0.50"] && dig(lab, c2, "app") == ["172.28.0.50"])
            #expect(lab.ctl(["exec", c2, "--", "ping", "-c", "1", "-W", "2", c1]).status == 0)
            #expect(try JSON.parse(ok(lab, ["inspect", c1])).arrayValue?.first?["State"]?["Running"] == true)
            // Restart of a container with a dynamic address: still found by name.
            let mac2 = lab.exec(c2, "cat /sys/class/net/eth0/address").out
            #expect(ok(lab, ["restart", "-t", "0", c2]) == c2 + "\n")
            #expect(lab.exec(c2, "cat /sys/class/net/eth0/address").out == mac2)  // the same MAC, as Docker keeps it
            #expect(lab.ctl(["exec", c1, "--", "ping", "-c", "1", "-W", "2", c2]).status == 0)
            // A stopped container can be connected (attached at start) and removed.
            _ = ok(lab, ["stop", c2])
            _ = ok(lab, ["network", "connect", "bridge", c2])
            #expect(lab.exec(c2, "\(ipCommand) -o link show").out.split(separator: "\n").count == 1)
            _ = ok(lab, ["start", c2])
            #expect(lab.exec(c2, "\(ipCommand) -o addr show dev eth1").out.contains("172.17."))
            _ = ok(lab, ["stop", c2])
            #expect(ok(lab, ["rm", c1, c2]) == "\(c1)\n\(c2)\n")
            _ = ok(lab, ["network", "rm", "ss"])
            #expect(allocations(lab, "ss").isEmpty)
            #expect(!FileManager.default.fileExists(atPath: "/run/netns/\(c2)"))
        }
    }

    /// An IPv6-only network (--ipv6 --ipv4=false): no IPv4 anywhere, names answer AAAA only,
    /// ports publish on IPv6, inspect says EnableIPv4 false.
    @Test func ipv6OnlyNetwork() throws {
        try withLab { lab in
            let out = try lab.outside()
            let c1 = lab.id + "-v1", c2 = lab.id + "-v2"
            refused(lab, ["network", "create", "--ipv4=false", "v6x"], "IPv4 or IPv6 must be enabled")
            refused(lab, ["network", "create", "--ipv6", "--ipv4=false", "--subnet", "10.9.0.0/16", "v6x"],
                    "IPv4 subnet 10.9.0.0/16 given, but IPv4 is disabled (--ipv4=false)")
            _ = ok(lab, ["network", "create", "--ipv6", "--ipv4=false", "--subnet", "fd33::/64", "v6o"])
            let insp = try JSON.parse(ok(lab, ["network", "inspect", "v6o"])).arrayValue![0]
            #expect(insp["EnableIPv4"] == false && insp["EnableIPv6"] == true)
            #expect(insp["IPAM"]?["Config"] == .array([["Subnet": "fd33::/64", "Gateway": "fd33::1"]]))
            #expect(try JSON.parse(Array(ok(lab, ["network", "ls", "-f", "name=v6o", "--format", "json"]).utf8))["IPv4"] == "false")
            _ = ok(lab, ["run", "--name", c1, "--network", "v6o"])
            _ = ok(lab, ["run", "--name", c2, "--network", "v6o", "-p", "8095:80"])
            // No IPv4 address in the containers, one global IPv6 address each.
            #expect(!lab.exec(c1, "\(ipCommand) -o -4 addr show dev eth0").out.contains("inet "))
            let a2 = lab.exec(c2, "\(ipCommand) -o -6 addr show dev eth0 scope global").out
            #expect(a2.contains("inet6 fd33::"), "\(a2)")
            // Names: AAAA only.
            let aaaa = lab.ctl(["exec", c1, "--", "dig", "+short", "+time=1", "+tries=1", "AAAA", c2]).out.split(separator: "\n").map(String.init)
            #expect(aaaa.count == 1 && aaaa[0].hasPrefix("fd33::") && a2.contains(aaaa[0] + "/64"), "\(aaaa)")
            #expect(dig(lab, c1, c2) == [])  // an A query: no address
            var reached = false
            for _ in 0..<30 where !reached {
                reached = lab.ctl(["exec", c1, "--", "ping", "-6", "-c", "1", "-W", "1", c2]).status == 0
                if !reached { usleep(100_000) }
            }
            #expect(reached, "\(c1) cannot ping \(c2) over IPv6")
            // The published port answers on the host's IPv6 address; nothing on IPv4.
            // (IPv6 neighbours settle in the first second: DAD of the link-local addresses.)
            for _ in 0..<30 where !lab.ping(c2, "2001:db8:99::2") { usleep(100_000) }
            #expect(lab.peer("tcp", from: out, to: "2001:db8:99::1", port: 8095, serverNS: c2, serverPort: 80) == "2001:db8:99::2")
            #expect(lab.peer("tcp", from: out, to: "192.0.2.1", port: 8095, serverNS: c2, serverPort: 80) == nil)
            _ = ok(lab, ["rm", c1, c2])
            _ = ok(lab, ["network", "rm", "v6o"])
            #expect(allocations(lab, "v6o").isEmpty)
        }
    }

    /// Docker's legacy links on the default bridge: the target must exist; inside the linking
    /// container only, the target's name and alias resolve (its hosts file), kept right when
    /// the target's address changes; exec gets Docker's link variables and the -e environment.
    @Test func legacyLinksOnTheDefaultBridge() throws {
        try withLab { lab in
            let c1 = lab.id + "-db", c2 = lab.id + "-web", c3 = lab.id + "-other"
            _ = ok(lab, ["run", "--name", c1, "-e", "PASSWORD=s3cret", "-e", "HOME=/root", "--expose", "6379", "-p", "8091:80"])
            refused(lab, ["run", "--name", c2, "--link", "nothere:db"], "could not get container for nothere")
            #expect(!FileManager.default.fileExists(atPath: "/run/netns/\(c2)") && !FileManager.default.fileExists(atPath: lab.root + "/state/cnictl/containers/\(c2).json"))
            _ = ok(lab, ["run", "--name", c2, "--link", "\(c1):db", "-e", "MODE=prod"])
            _ = ok(lab, ["run", "--name", c3])
            func ip(_ c: String) throws -> String {
                try #require(try JSON.parse(ok(lab, ["inspect", c])).arrayValue?.first?["NetworkSettings"]?["Networks"]?["bridge"]?["IPAddress"]?.stringValue)
            }
            let ip1 = try ip(c1)
            func getent(_ c: String, _ n: String) -> [String] {
                lab.ctl(["exec", c, "--", "getent", "hosts", n]).out.split(separator: " ", omittingEmptySubsequences: true).prefix(1).map(String.init)
            }
            #expect(getent(c2, "db") == [ip1] && getent(c2, c1) == [ip1])
            // Only inside c2: c3 has no hosts file of its own, so the names are not there. (Not
            // asked with getent: a name the hosts file lacks would go to DNS.)
            func hosts(_ c: String) -> String { (try? String(contentsOfFile: "/etc/netns/\(c)/hosts", encoding: .utf8)) ?? "" }
            #expect(hosts(c3) == "" && hosts(c2).contains("\(ip1)\tdb \(c1) "))
            #expect(lab.ctl(["exec", c2, "--", "ping", "-c", "1", "-W", "2", "db"]).status == 0)
            // Docker's link variables, and c2's own -e.
            let env = Set(lab.ctl(["exec", c2, "--", "env"]).out.split(separator: "\n").map(String.init))
            for want in ["DB_NAME=/\(c2)/db", "DB_PORT=tcp://\(ip1):80", "DB_PORT_80_TCP=tcp://\(ip1):80", "DB_PORT_80_TCP_ADDR=\(ip1)",
                         "DB_PORT_80_TCP_PORT=80", "DB_PORT_80_TCP_PROTO=tcp", "DB_PORT_6379_TCP=tcp://\(ip1):6379",
                         "DB_PORT_6379_TCP_PORT=6379", "DB_ENV_PASSWORD=s3cret", "MODE=prod"] {
                #expect(env.contains(want), "\(want) missing from \(env.sorted())")
            }
            #expect(!env.contains { $0.hasPrefix("DB_ENV_HOME=") })
            #expect(!lab.ctl(["exec", c3, "--", "env"]).out.contains("DB_"))
            let insp = try JSON.parse(ok(lab, ["inspect", c2])).arrayValue![0]
            #expect(insp["HostConfig"]?["Links"] == .array([.string("/\(c1):/\(c2)/db")]))
            #expect(try JSON.parse(ok(lab, ["inspect", c1])).arrayValue![0]["Config"]?["ExposedPorts"] == ["80/tcp": [:], "6379/tcp": [:]])
            // The target comes back at another address (its old one taken meanwhile): c2's hosts file follows.
            _ = ok(lab, ["stop", "-t", "0", c1])
            let c4 = lab.id + "-taker"
            _ = ok(lab, ["run", "--name", c4])
            _ = ok(lab, ["start", c1])
            let ip1b = try ip(c1)
            #expect(ip1b != ip1 && getent(c2, "db") == [ip1b])
            // Gone with the target.
            _ = ok(lab, ["rm", c1])
            // (Not a bare "db": a hexadecimal container ID may contain it.)
            #expect(!hosts(c2).contains("\tdb ") && !hosts(c2).contains(c1) && hosts(c2).hasPrefix("# Written by cnictl"))
            _ = ok(lab, ["rm", c2, c3, c4])
            #expect(!FileManager.default.fileExists(atPath: "/etc/netns/\(c2)"))
        }
    }

    /// --gw-priority: the default route goes through the attached network with the highest
    /// priority, and moves when that network is disconnected.
    @Test func defaultGatewayPriority() throws {
        try withLab { lab in
            let c = lab.id + "-gw"
            _ = ok(lab, ["network", "create", "--subnet", "172.31.1.0/24", "gwa"])
            _ = ok(lab, ["network", "create", "--subnet", "172.31.2.0/24", "gwb"])
            _ = ok(lab, ["network", "create", "--subnet", "172.31.3.0/24", "--internal", "gwi"])
            func route() -> String {
                lab.exec(c, "\(ipCommand) -4 route show default").out.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            // A packet to an address no network holds goes out of the chosen interface.
            func via() -> String {
                let r = lab.exec(c, "\(ipCommand) -4 route get 203.0.113.9").out
                return r.contains(" dev ") ? String(r.split(separator: " ").drop { $0 != "dev" }.dropFirst().first ?? "") : ""
            }
            _ = ok(lab, ["run", "--name", c, "--network", "gwa"])
            #expect(route().hasPrefix("default via 172.31.1.1 dev eth0"), "\(route())")
            _ = ok(lab, ["network", "connect", "--gw-priority", "10", "gwb", c])
            #expect(route().hasPrefix("default via 172.31.2.1 dev eth1") && via() == "eth1", "\(route())")
            #expect(lab.exec(c, "\(ipCommand) -4 route show default").out.split(separator: "\n").count == 1)
            // The priority shows in inspect; an internal network never carries the default route.
            let gp = try JSON.parse(ok(lab, ["inspect", c])).arrayValue?.first?["NetworkSettings"]?["Networks"]?["gwb"]?["GwPriority"]
            #expect(gp == 10)
            _ = ok(lab, ["network", "connect", "--gw-priority", "99", "gwi", c])
            #expect(route().hasPrefix("default via 172.31.2.1 dev eth1"), "\(route())")
            // Packets take it: the reply to a ping of the gateway of gwb comes through eth1.
            #expect(lab.ctl(["exec", c, "--", "ping", "-c", "1", "-W", "2", "172.31.2.1"]).status == 0)
            // Disconnected: the default route moves back.
            _ = ok(lab, ["network", "disconnect", "gwb", c])
            #expect(route().hasPrefix("default via 172.31.1.1 dev eth0") && via() == "eth0", "\(route())")
            // A lower priority than the current one's changes nothing; ties go by network name.
            _ = ok(lab, ["network", "connect", "--gw-priority=-5", "gwb", c])
            #expect(route().hasPrefix("default via 172.31.1.1 dev eth0"), "\(route())")
            _ = ok(lab, ["network", "disconnect", "gwb", c])
            _ = ok(lab, ["network", "connect", "gwb", c])
            #expect(route().hasPrefix("default via 172.31.1.1 dev eth0"), "\(route())")  // gwa < gwb
            // It holds across a restart.
            _ = ok(lab, ["network", "disconnect", "gwb", c])
            _ = ok(lab, ["network", "connect", "--gw-priority", "3", "gwb", c])
            _ = ok(lab, ["restart", "-t", "0", c])
            #expect(route().hasPrefix("default via 172.31.2.1 dev"), "\(route())")
            _ = ok(lab, ["rm", c])
            _ = ok(lab, ["network", "rm", "gwa", "gwb", "gwi"])
        }
    }

    /// On a Docker host (iptables FORWARD policy DROP) a network made by cnictl works at once:
    /// network create says so and writes the cooperating setting; nothing is left after rm.
    @Test func dockerHostForwardDrop() throws {
        try withLab { lab in
            let out = try lab.outside()
            #expect(lab.exec(lab.host, "iptables -P FORWARD DROP && ip6tables -P FORWARD DROP").status == 0)
            let before = lab.ruleset(lab.host)
            let r = lab.ctl(["network", "create", "--subnet", "172.29.5.0/24", "dh"])
            #expect(r.status == 0, "\(r.err)")
            #expect(r.err.split(separator: "\n").contains(
                "cnictl: this host's ip filter FORWARD, ip6 filter FORWARD chain drops forwarded traffic (as on a Docker host): network dh accepts its own in iptables' FORWARD chains (\"hostFirewall\": \"iptables\")"), "\(r.err)")
            let list = try JSON.parse(String(contentsOfFile: lab.confDir + "/dh.conflist", encoding: .utf8))
            #expect(list["plugins"]?.arrayValue?.first?["hostFirewall"] == "iptables")
            let c1 = lab.id + "-d1", c2 = lab.id + "-d2"
            _ = ok(lab, ["run", "--name", c1, "--network", "dh"])
            _ = ok(lab, ["run", "--name", c2, "--network", "dh"])
            #expect(lab.ctl(["exec", c1, "--", "ping", "-c", "1", "-W", "2", c2]).status == 0)
            // Out through the host (masqueraded), past the DROP policy.
            #expect(lab.tcpPeer(from: c1, to: "192.0.2.2", port: 8021, serverNS: out) == "192.0.2.1")
            _ = ok(lab, ["rm", c1, c2])
            _ = ok(lab, ["network", "rm", "dh"])
            // iptables' tables as they were: the accept rules went with the last container.
            #expect(lab.ruleset(lab.host) == before)
        }
    }

    /// With icc off on the default bridge (cnictl's config "icc": false, Docker's --icc=false),
    /// a legacy link lets the linking container reach the target's exposed ports and nothing
    /// else: one firewall element per pair and port, gone with either container.
    @Test func legacyLinksWithIccOff() throws {
        try withLab { lab in
            try FileManager.default.createDirectory(atPath: lab.root + "/state/cnictl", withIntermediateDirectories: true)
            try #"{"icc": false}"#.write(toFile: lab.root + "/state/cnictl/config.json", atomically: true, encoding: .utf8)
            let db = lab.id + "-idb", web = lab.id + "-iweb", other = lab.id + "-iother"
            _ = ok(lab, ["run", "--name", db, "--expose", "6379"])
            _ = ok(lab, ["run", "--name", web, "--link", "\(db):db"])
            _ = ok(lab, ["run", "--name", other])
            func ip(_ c: String) throws -> String {
                try #require(try JSON.parse(ok(lab, ["inspect", c])).arrayValue?.first?["NetworkSettings"]?["Networks"]?["bridge"]?["IPAddress"]?.stringValue)
            }
            let dbIP = try ip(db), webIP = try ip(web)
            #expect(lab.ruleset(lab.host).contains("\(webIP) . \(dbIP) . tcp . 6379 comment \"cnictl legacy link \(web) -> \(db)\""))
            // The exposed port, from the linking container: yes, and its answers come back.
            #expect(lab.tcpPeer(from: web, to: dbIP, port: 6379, serverNS: db) == webIP)
            // Another port, another container, or ICMP: no.
            #expect(lab.tcpPeer(from: web, to: dbIP, port: 7000, serverNS: db) == nil)
            #expect(lab.tcpPeer(from: other, to: dbIP, port: 6379, serverNS: db) == nil)
            #expect(!lab.ping(web, dbIP))
            // Gone with the target, back with it, gone with the linking container.
            _ = ok(lab, ["stop", "-t", "0", db])
            #expect(!lab.ruleset(lab.host).contains("cnictl legacy link"))
            _ = ok(lab, ["start", db])
            #expect(lab.ruleset(lab.host).contains("cnictl legacy link \(web) -> \(db)"))
            #expect(lab.tcpPeer(from: web, to: try ip(db), port: 6379, serverNS: db) == webIP)
            _ = ok(lab, ["rm", web])
            #expect(!lab.ruleset(lab.host).contains("cnictl legacy link"))
            _ = ok(lab, ["rm", db, other])
        }
    }

    /// --dns, --dns-search, --dns-option: the container's resolv.conf (bound by exec) has them
    /// over what its networks hand out, across a restart; on a network with the embedded DNS
    /// the --dns servers are where it forwards that container's other queries (Docker's), the
    /// resolv.conf keeps the embedded DNS.
    @Test func dnsOptions() throws {
        try withLab { lab in
            let out = try lab.outside()
            let stub = try StubUpstream(lab, outside: out)
            defer { _ = stub }
            let c1 = lab.id + "-r1", c2 = lab.id + "-r2", c3 = lab.id + "-r3"
            func conf(_ c: String) -> [String] {
                lab.ctl(["exec", c, "--", "cat", "/etc/resolv.conf"]).out.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") }
            }
            _ = ok(lab, ["run", "--name", c1, "--dns", "10.0.0.53", "--dns", "10.0.0.54", "--dns-search", "example.test", "--dns-option", "ndots:2"])
            #expect(conf(c1) == ["search example.test", "nameserver 10.0.0.53", "nameserver 10.0.0.54", "options ndots:2"])
            _ = ok(lab, ["network", "create", "--subnet", "172.30.9.0/24", "rn"])
            _ = ok(lab, ["run", "--name", c3, "--network", "rn"])
            _ = ok(lab, ["run", "--name", c2, "--network", "rn", "--dns-search", "corp.test", "--dns-option", "ndots:3", "--dns-option", "timeout:2"])
            let c2conf = conf(c2)
            #expect(c2conf.first == "search corp.test" && c2conf.last == "options ndots:3 timeout:2", "\(c2conf)")
            #expect(c2conf.filter { $0.hasPrefix("nameserver ") }.count == 1)  // the embedded DNS, kept
            #expect(dig(lab, c2, c3) == ["172.30.9.2"])
            // --dns on the embedded DNS: c4 asks the stub (192.0.2.2) for names not of the
            // network; c5's own server (192.0.2.99: nobody there) answers nothing, so c4's
            // servers are c4's alone; names of the network still answer to both.
            let c4 = lab.id + "-r4", c5 = lab.id + "-r5"
            _ = ok(lab, ["run", "--name", c4, "--network", "rn", "--dns", "192.0.2.2"])
            _ = ok(lab, ["run", "--name", c5, "--network", "rn", "--dns", "192.0.2.99"])
            #expect(conf(c4) == ["nameserver 172.30.9.1"])
            #expect(dig(lab, c4, "example.test") == ["198.51.100.7"])
            #expect(dig(lab, c5, "example.test") == [])
            let a4 = try address(lab, c4, "rn")
            #expect(dig(lab, c4, c3) == ["172.30.9.2"] && dig(lab, c5, c4) == [a4])
            let hc4 = try JSON.parse(ok(lab, ["inspect", c4])).arrayValue?.first?["HostConfig"]
            #expect(hc4?["Dns"] == ["192.0.2.2"])
            // Kept across a restart (the record is written again from the container's settings).
            _ = ok(lab, ["restart", "-t", "0", c4])
            #expect(dig(lab, c4, "example.test") == ["198.51.100.7"])
            _ = ok(lab, ["rm", c4, c5])
            // Search domains alone on the default bridge (no nameserver of its own): the host's
            // nameservers with them, as Docker copies the host's file.
            var hostNS: [String] = []
            for line in ((try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? "").split(separator: "\n") {
                let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                if f.count >= 2 && f[0] == "nameserver" && hostNS.count < 3 { hostNS.append("nameserver " + f[1]) }
            }
            let c6 = lab.id + "-r6"
            _ = ok(lab, ["run", "--name", c6, "--dns-search", "only.test"])
            #expect(conf(c6) == (hostNS.isEmpty ? [] : ["search only.test"] + hostNS), "\(conf(c6))")
            _ = ok(lab, ["rm", c6])
            refused(lab, ["run", "--name", lab.id + "-x", "--dns", "nonsense"], "nonsense is not an ip address")
            #expect(!FileManager.default.fileExists(atPath: "/run/netns/\(lab.id)-x"))
            let hc = try JSON.parse(ok(lab, ["inspect", c1])).arrayValue?.first?["HostConfig"]
            #expect(hc?["Dns"] == ["10.0.0.53", "10.0.0.54"] && hc?["DnsSearch"] == ["example.test"] && hc?["DnsOptions"] == ["ndots:2"])
            _ = ok(lab, ["restart", "-t", "0", c1])
            #expect(conf(c1) == ["search example.test", "nameserver 10.0.0.53", "nameserver 10.0.0.54", "options ndots:2"])
            _ = ok(lab, ["rm", c1, c2, c3])
            #expect(!FileManager.default.fileExists(atPath: "/etc/netns/\(c1)") && !FileManager.default.fileExists(atPath: "/etc/netns/\(c2)"))
            _ = ok(lab, ["network", "rm", "rn"])
        }
    }

    @Test func linksAndAliasesScopedLikeDocker() throws {
        try withLab { lab in
            let c4 = lab.id + "-container4", c5 = lab.id + "-container5", c6 = lab.id + "-container6", c7 = lab.id + "-container7"
            _ = ok(lab, ["network", "create", "--subnet", "172.25.0.0/16", "isolated_nw"])
            _ = ok(lab, ["network", "create", "--subnet", "172.26.0.0/24", "local_alias"])
            // A link may name a container that does not exist yet.
            _ = ok(lab, ["run", "--network", "isolated_nw", "--name", c4, "--link", "\(c5):c5"])
            #expect(dig(lab, c4, "c5") == [])
            _ = ok(lab, ["run", "--network", "isolated_nw", "--name", c5, "--link", "\(c4):c4"])
            let a5 = try address(lab, c5, "isolated_nw")
            #expect(dig(lab, c4, "c5") == [a5])
            #expect(dig(lab, c5, "c4") == [try address(lab, c4, "isolated_nw")])
            // A second network, with links of its own.
            _ = ok(lab, ["network", "connect", "--link", "\(c5):foo", "local_alias", c4])
            _ = ok(lab, ["network", "connect", "--link", "\(c4):bar", "local_alias", c5])
            let l5 = try address(lab, c5, "local_alias")
            #expect(dig(lab, c4, "foo") == [l5])
            #expect(dig(lab, c5, "bar") == [try address(lab, c4, "local_alias")])
            // Disconnecting container5 from isolated_nw ends c5 there; foo (local_alias) stays.
            _ = ok(lab, ["network", "disconnect", "isolated_nw", c5])
            #expect(dig(lab, c4, "c5") == [])
            #expect(dig(lab, c4, "foo") == [l5])
            // --network-alias shared by two containers: both answers.
            _ = ok(lab, ["run", "--network", "isolated_nw", "--name", c6, "--network-alias", "app"])
            _ = ok(lab, ["run", "--network", "isolated_nw", "--name", c7, "--network-alias", "app"])
            #expect(Set(dig(lab, c4, "app")) == [try address(lab, c6, "isolated_nw"), try address(lab, c7, "isolated_nw")])
            _ = ok(lab, ["network", "connect", "--alias", "scoped-app", "local_alias", c6])
            #expect(dig(lab, c4, "scoped-app") == [try address(lab, c6, "local_alias")])
            #expect(dig(lab, c7, "scoped-app") == [])  // container7 is not on local_alias
            _ = ok(lab, ["rm", c4, c5, c6, c7])
        }
    }

    @Test func hostBindingAbsentThenPresent() throws {
        try withLab { lab in
            let out = try lab.outside()
            // Docker: creating the network succeeds, running a container with -p fails.
            _ = ok(lab, ["network", "create", "-o", "com.docker.network.bridge.host_binding_ipv4=172.233.0.1", "simple-network2"])
            let r = lab.ctl(["run", "--network", "simple-network2", "--name", lab.id + "-nginx", "-p", "8081:80"])
            #expect(r.status == 1)
            #expect(r.err.contains("cannot assign requested address 172.233.0.1 (hostBindingIPv4): no host interface has it [code 106]"), "\(r.err)")
            #expect(!FileManager.default.fileExists(atPath: "/run/netns/\(lab.id)-nginx"))
            #expect(ok(lab, ["ps"]).split(separator: "\n").count == 1)
            // With the host's own address (192.0.2.1, on the link to "outside"), it answers there only.
            _ = ok(lab, ["network", "create", "-o", "com.docker.network.bridge.host_binding_ipv4=192.0.2.1", "simple-network3"])
            let web = lab.id + "-web"
            _ = ok(lab, ["run", "--network", "simple-network3", "--name", web, "-p", "8081:80"])
            #expect(lab.peer("tcp", from: out, to: "192.0.2.1", port: 8081, serverNS: web, serverPort: 80) != nil)
            #expect(lab.peer("tcp", from: lab.host, to: "127.0.0.1", port: 8081, serverNS: web, serverPort: 80) == nil)
            #expect(ok(lab, ["ps"]).contains("192.0.2.1:8081:80/tcp") == false)
            #expect(ok(lab, ["ps"]).contains("8081:80/tcp"))
            _ = ok(lab, ["rm", web])
            #expect(!lab.ruleset(lab.host).contains("8081"))
        }
    }

    @Test func ipv6InternalOptionsAndLabels() throws {
        try withLab { lab in
            _ = ok(lab, ["network", "create", "--ipv6", "--subnet", "172.23.0.0/16", "--subnet", "fd23::/64", "--internal",
                         "-o", "com.docker.network.driver.mtu=1400", "-o", "com.docker.network.bridge.enable_icc=false",
                         "--label", "team=blue", "v6net"])
            let insp = try JSON.parse(ok(lab, ["network", "inspect", "v6net"])).arrayValue![0]
            #expect(insp["EnableIPv6"]?.boolValue == true && insp["Internal"]?.boolValue == true)
            #expect(insp["IPAM"]?["Config"]?.arrayValue?.compactMap { $0["Subnet"]?.stringValue } == ["172.23.0.0/16", "fd23::/64"])
            #expect(insp["Labels"]?["team"]?.stringValue == "blue")
            #expect(insp["Options"]?["com.docker.network.driver.mtu"]?.stringValue == "1400")
            let a = lab.id + "-a", b = lab.id + "-b"
            _ = ok(lab, ["run", "--network", "v6net", "--name", a, "--ip6", "fd23::a"])
            _ = ok(lab, ["run", "--network", "v6net", "--name", b])
            #expect(lab.ctl(["exec", a, "--", "ip", "-6", "addr", "show", "eth0"]).out.contains("fd23::a/64"))
            #expect(lab.ctl(["exec", a, "--", "ip", "link", "show", "eth0"]).out.contains("mtu 1400"))
            // enable_icc=false: containers of the network do not reach each other; internal: no default route.
            #expect(lab.ctl(["exec", a, "--", "ping", "-c", "1", "-W", "1", try address(lab, b, "v6net")]).status != 0)
            #expect(!lab.ctl(["exec", a, "--", "ip", "route"]).out.contains("default"))
            refused(lab, ["network", "create", "--subnet", "fd24::/64", "nov6"], "IPv6 subnet fd24::/64 needs --ipv6")
            _ = ok(lab, ["rm", a, b])
        }
    }

    @Test func disconnectForceClearsAStaleEndpoint() throws {
        try withLab { lab in
            _ = ok(lab, ["network", "create", "--subnet", "172.27.0.0/16", "multihost"])
            let db = lab.id + "-redis_db"
            _ = ok(lab, ["run", "--network", "multihost", "--name", db, "--ip", "172.27.0.9"])
            // An ungraceful end: the namespace and cnictl's record vanish, the endpoint
            // (address, cache, firewall elements, DNS record) stays.
            #expect(run([ipCommand, "netns", "del", db]).status == 0)
            try FileManager.default.removeItem(atPath: lab.root + "/state/cnictl/containers/\(db).json")
            let again = lab.ctl(["run", "--network", "multihost", "--name", db, "--ip", "172.27.0.9"])
            #expect(again.status == 1)
            #expect(again.err.contains("requested IP 172.27.0.9 is already allocated"), "\(again.err)")
            _ = ok(lab, ["network", "disconnect", "-f", "multihost", db])
            #expect(allocations(lab, "multihost").isEmpty)
            _ = ok(lab, ["run", "--network", "multihost", "--name", db, "--ip", "172.27.0.9"])
            #expect(try address(lab, db, "multihost") == "172.27.0.9")
            _ = ok(lab, ["rm", db])
        }
    }

    @Test func gcAcrossNetworks() throws {
        try withLab { lab in
            _ = ok(lab, ["network", "create", "--subnet", "172.24.0.0/16", "gcnet"])
            let keep = lab.id + "-keep", lost = lab.id + "-lost"
            _ = ok(lab, ["run", "--network", "gcnet", "--name", keep])
            _ = ok(lab, ["run", "--network", "gcnet", "--name", lost])
            #expect(allocations(lab, "gcnet").count == 2)
            try FileManager.default.removeItem(atPath: lab.root + "/state/cnictl/containers/\(lost).json")
            let out = ok(lab, ["gc"])
            #expect(out.contains("gcnet: collected"), "\(out)")
            #expect(allocations(lab, "gcnet") == [try address(lab, keep, "gcnet")])
            _ = ok(lab, ["rm", keep])
            #expect(run([ipCommand, "netns", "del", lost]).status == 0)
        }
    }
}
