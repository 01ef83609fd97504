import Foundation
import Testing
@testable import Base
@testable import CNI

/// Docker 28's gateway modes (`-o com.docker.network.bridge.gateway_mode_ipv4=` / `_ipv6=`),
/// seen from the lab's "outside" namespace (192.0.2.2, 2001:db8:99::2; routes to the
/// container subnets through the lab host, 192.0.2.1 / 2001:db8:99::1): what answers at the
/// container's address, what at the host's, and which source address the outside sees.
extension DockerStyleCommands {
    @Test func gatewayModes() throws {
        try withLab { lab in
            let out = try lab.outside()
            for r in ["172.30.1.0/24", "172.30.2.0/24", "172.30.3.0/24", "172.30.4.0/24", "172.30.5.0/24"] {
                sh("\(ipCommand) -n \(out) route add \(r) via 192.0.2.1")
            }
            sh("\(ipCommand) -n \(out) route add fd30:5::/64 via 2001:db8:99::1")
            let gw4 = "com.docker.network.bridge.gateway_mode_ipv4", gw6 = "com.docker.network.bridge.gateway_mode_ipv6"

            // Refusals, in Docker's words, creating nothing.
            refused(lab, ["network", "create", "-o", "\(gw4)=bogus", "gwx"],
                    "failed to parse \(gw4) value: bogus (unknown gateway mode bogus)")
            refused(lab, ["network", "create", "-o", "\(gw4)=isolated", "gwx"],
                    "gateway mode 'isolated' can only be used for an internal network")
            refused(lab, ["network", "create", "--internal", "--subnet", "172.30.9.0/24", "--gateway", "172.30.9.1", "-o", "\(gw4)=isolated", "gwx"],
                    "gateway 172.30.9.1: subnet 172.30.9.0/24 has gateway mode 'isolated', which has no gateway")
            #expect(!ok(lab, ["network", "ls"]).contains("gwx"))

            let n1 = lab.id + "-n1", u1 = lab.id + "-u1", r1 = lab.id + "-r1", i1 = lab.id + "-i1", i2 = lab.id + "-i2", d1 = lab.id + "-d1"
            _ = ok(lab, ["network", "create", "--subnet", "172.30.1.0/24", "-o", "\(gw4)=nat", "gnat"])
            _ = ok(lab, ["network", "create", "--subnet", "172.30.2.0/24", "-o", "\(gw4)=nat-unprotected", "gunprot"])
            _ = ok(lab, ["network", "create", "--subnet", "172.30.3.0/24", "-o", "\(gw4)=routed", "grouted"])
            _ = ok(lab, ["network", "create", "--internal", "--subnet", "172.30.4.0/24", "-o", "\(gw4)=isolated", "giso"])
            _ = ok(lab, ["network", "create", "--ipv6", "--subnet", "172.30.5.0/24", "--subnet", "fd30:5::/64", "-o", "\(gw6)=routed", "gdual"])
            let insp = try JSON.parse(ok(lab, ["network", "inspect", "grouted"])).arrayValue![0]
            #expect(insp["Options"]?[gw4]?.stringValue == "routed")
            _ = ok(lab, ["run", "--name", n1, "--network", "gnat", "-p", "8090:80"])
            _ = ok(lab, ["run", "--name", u1, "--network", "gunprot", "-p", "8091:80"])
            _ = ok(lab, ["run", "--name", r1, "--network", "grouted", "-p", "8092:80"])
            _ = ok(lab, ["run", "--name", d1, "--network", "gdual", "-p", "8093:80"])
            let a1 = try address(lab, n1, "gnat"), au = try address(lab, u1, "gunprot"), ar = try address(lab, r1, "grouted")
            let ad = try address(lab, d1, "gdual")

            // nat: the published port at the host's address (the outside's own address arrives),
            // nothing at the container's address; leaving, the host's address is seen.
            #expect(lab.peer("tcp", from: out, to: "192.0.2.1", port: 8090, serverNS: n1, serverPort: 80) == "192.0.2.2")
            #expect(lab.peer("tcp", from: out, to: a1, port: 80, serverNS: n1) == nil)
            #expect(lab.peer("tcp", from: out, to: a1, port: 81, serverNS: n1) == nil)
            #expect(!lab.ping(out, a1))
            #expect(lab.tcpPeer(from: n1, to: "192.0.2.2", port: 8100, serverNS: out) == "192.0.2.1")

            // nat-unprotected: masqueraded as nat, and every container port answers at the
            // container's address.
            #expect(lab.peer("tcp", from: out, to: "192.0.2.1", port: 8091, serverNS: u1, serverPort: 80) == "192.0.2.2")
            #expect(lab.peer("tcp", from: out, to: au, port: 80, serverNS: u1) == "192.0.2.2")
            #expect(lab.peer("tcp", from: out, to: au, port: 81, serverNS: u1) == "192.0.2.2")
            #expect(lab.ping(out, au))
            #expect(lab.tcpPeer(from: u1, to: "192.0.2.2", port: 8101, serverNS: out) == "192.0.2.1")

            // routed: the published container port at the container's own address, nothing
            // else; the host port is not used; leaving, the container's own address is seen.
            #expect(lab.peer("tcp", from: out, to: ar, port: 80, serverNS: r1) == "192.0.2.2")
            #expect(lab.peer("tcp", from: out, to: ar, port: 81, serverNS: r1) == nil)
            #expect(lab.peer("udp", from: out, to: ar, port: 80, serverNS: r1) == nil)  // published tcp only
            #expect(lab.peer("tcp", from: out, to: "192.0.2.1", port: 8092, serverNS: r1, serverPort: 80) == nil)
            #expect(lab.tcpPeer(from: r1, to: "192.0.2.2", port: 8102, serverNS: out) == ar)
            // Containers of other networks reach a routed network's published ports directly,
            // and nothing else there; a nat network's container ports stay closed to them.
            #expect(lab.peer("tcp", from: n1, to: ar, port: 80, serverNS: r1) != nil)
            #expect(lab.peer("tcp", from: n1, to: ar, port: 81, serverNS: r1) == nil)
            #expect(lab.peer("tcp", from: r1, to: a1, port: 80, serverNS: n1) == nil)

            // Docker's example: IPv6 routed, IPv4 nat on one network, one -p.
            for _ in 0..<30 where !lab.ping(d1, "2001:db8:99::2") { usleep(100_000) }
            let ad6 = try #require(lab.exec(d1, "\(ipCommand) -o -6 addr show dev eth0 scope global").out
                .split(separator: " ").first { $0.hasPrefix("fd30:5::") }.map { String($0.split(separator: "/")[0]) })
            #expect(lab.peer("tcp", from: out, to: ad6, port: 80, serverNS: d1) == "2001:db8:99::2")
            #expect(lab.peer("tcp", from: out, to: ad6, port: 81, serverNS: d1) == nil)
            #expect(lab.peer("tcp", from: out, to: "2001:db8:99::1", port: 8093, serverNS: d1, serverPort: 80) == nil)
            #expect(lab.peer("tcp", from: out, to: "192.0.2.1", port: 8093, serverNS: d1, serverPort: 80) == "192.0.2.2")
            #expect(lab.peer("tcp", from: out, to: ad, port: 80, serverNS: d1) == nil)
            #expect(lab.tcpPeer(from: d1, to: "2001:db8:99::2", port: 8103, serverNS: out) == ad6)
            #expect(lab.tcpPeer(from: d1, to: "192.0.2.2", port: 8104, serverNS: out) == "192.0.2.1")
            // inspect as Docker documents it: no host port in the routed family.
            func ports(_ c: String) throws -> JSON? { try JSON.parse(ok(lab, ["inspect", c])).arrayValue?.first?["NetworkSettings"]?["Ports"] }
            #expect(try ports(d1) == ["80/tcp": [["HostIp": "0.0.0.0", "HostPort": "8093"], ["HostIp": "::", "HostPort": ""]]])
            #expect(try ports(r1) == ["80/tcp": [["HostIp": "0.0.0.0", "HostPort": ""]]])
            #expect(try ports(n1) == ["80/tcp": [["HostIp": "0.0.0.0", "HostPort": "8090"]]])

            // isolated (internal): no gateway address on the bridge, none in inspect; the
            // containers reach each other and nothing else, the host does not reach them.
            _ = ok(lab, ["run", "--name", i1, "--network", "giso"])
            _ = ok(lab, ["run", "--name", i2, "--network", "giso"])
            let iso = try JSON.parse(ok(lab, ["network", "inspect", "giso"])).arrayValue![0]
            #expect(iso["IPAM"]?["Config"] == .array([["Subnet": "172.30.4.0/24"]]))
            let c1 = try JSON.parse(ok(lab, ["inspect", i1])).arrayValue![0]["NetworkSettings"]?["Networks"]?["giso"]
            #expect(c1?["Gateway"]?.stringValue == "")
            let br = try #require(iso["Options"]?["com.docker.network.bridge.name"]?.stringValue ?? iso["Id"]?.stringValue.map { "br-" + $0.prefix(12) })
            #expect(!lab.exec(lab.host, "\(ipCommand) -o -4 addr show dev \(br)").out.contains("inet "))
            let ai1 = try address(lab, i1, "giso"), ai2 = try address(lab, i2, "giso")
            #expect(lab.ping(i1, ai2))
            #expect(lab.peer("tcp", from: i2, to: ai1, port: 80, serverNS: i1) == ai2)
            // Even with routes made by hand, nothing between the host and the network.
            sh("\(ipCommand) -n \(lab.host) route add 172.30.4.0/24 dev \(br)")
            sh("\(ipCommand) -n \(i1) route add default dev eth0")
            #expect(!lab.ping(lab.host, ai1))
            #expect(!lab.ping(i1, "192.0.2.1"))
            #expect(lab.peer("tcp", from: i1, to: "192.0.2.1", port: 8105, serverNS: lab.host) == nil)
            #expect(lab.peer("udp", from: i1, to: "192.0.2.1", port: 8106, serverNS: lab.host) == nil)
            #expect(lab.peer("tcp", from: lab.host, to: ai1, port: 80, serverNS: i1) == nil)
            #expect(!lab.ping(out, ai1))
            #expect(!lab.ping(i1, "192.0.2.2"))
            // No embedded DNS without a gateway (the network's conflist has no dns-alias): the
            // names are in each container's hosts file, kept as containers come and go.
            #expect(!(try String(contentsOfFile: lab.confDir + "/giso.conflist", encoding: .utf8)).contains("dns-alias"))
            #expect(lab.ctl(["exec", i1, "--", "getent", "hosts", i2]).out.hasPrefix(ai2 + " "))
            #expect(lab.ctl(["exec", i2, "--", "ping", "-c", "1", "-W", "2", i1]).status == 0)
            func hosts(_ c: String) -> String { (try? String(contentsOfFile: "/etc/netns/\(c)/hosts", encoding: .utf8)) ?? "" }
            #expect(hosts(i1).contains("\(ai2)\t\(i2) ") && !hosts(i1).contains("\t\(i1) "))
            _ = ok(lab, ["rm", i2])
            #expect(!FileManager.default.fileExists(atPath: "/etc/netns/\(i1)/hosts"))
            #expect(!FileManager.default.fileExists(atPath: "/etc/netns/\(i2)"))

            // Removal leaves no open port, no isolated bridge, no rule.
            _ = ok(lab, ["rm", n1, u1, r1, i1, d1])
            for n in ["gnat", "gunprot", "grouted", "giso", "gdual"] { _ = ok(lab, ["network", "rm", n]) }
            #expect(lab.ruleset(lab.host) == "")
        }
    }
}
