// The nftables batch encoder's bytes, against golden files recorded from it (Golden/*.txt,
// one netlink message per block: its sequence number, what it does, and its bytes in hex).
// The integration tests show the kernel accepts these batches; these tests show the bytes
// do not change unnoticed. After an intended change, rewrite them with
// SWIFTCNI_UPDATE_GOLDEN=1 swift test --filter EncoderGolden, and review the diff.
import Glibc
import Testing
@testable import Base
@testable import Firewall

struct GoldenCase: CustomTestStringConvertible, Sendable {
    var name: String
    var ops: [Operation]
    var testDescription: String { name }
}

let web = NetworkPolicy(network: "web", bridge: "br-web", ipMasq: true, icc: false)
let member = AttachmentID(network: "web", containerID: "c1", ifname: "eth0")
let ports = [
    PublishedPort(hostIP: nil, family: .v4, hostPort: 8080, proto: .tcp, container: IPAddress("10.1.0.2")!, containerPort: 80),
    PublishedPort(hostIP: IPAddress("192.0.2.1")!, family: .v4, hostPort: 5353, proto: .udp, container: IPAddress("10.1.0.2")!, containerPort: 53),
    PublishedPort(hostIP: nil, family: .v6, hostPort: 8080, proto: .tcp, container: IPAddress("fd00:1::2")!, containerPort: 80),
]

let goldenCases: [GoldenCase] = [
    GoldenCase(name: "base", ops: Plan.base() + Plan.baseRules()),
    GoldenCase(name: "network", ops: Plan.network(web, fresh: true)),
    GoldenCase(name: "attach", ops: Plan.attach(member, addresses: [IPAddress("10.1.0.2")!, IPAddress("fd00:1::2")!], iccOffPort: "veth1")),
    GoldenCase(name: "publish", ops: Plan.portmapNetwork(PortmapPolicy(network: "web", bridge: "br-web"), member,
                                                         addresses: [IPAddress("10.1.0.2")!], fresh: true)
                                    + Plan.publish(ports, member, mapNetwork: nil)),
    GoldenCase(name: "gateway-modes", ops: Plan.network(NetworkPolicy(network: "web", bridge: "br-web", ipMasq: true,
                                                                      gatewayModeV4: .routed, gatewayModeV6: .natUnprotected), fresh: true)),
    GoldenCase(name: "teardown", ops: Plan.teardownNetwork(network: "web", bridge: "br-web")
                                     + Plan.portmapTeardown(network: "web", bridge: "br-web", conditionalRules: [42])),
]

/// A batch as text: per message, "seq N <what>" and its bytes, 32 per line.
func render(_ bytes: [UInt8], _ names: [UInt32: String]) -> String {
    var out = ""
    var off = 0
    let hex = Array("0123456789abcdef")
    while off + 16 <= bytes.count {
        let len = Int(bytes[off]) | Int(bytes[off + 1]) << 8 | Int(bytes[off + 2]) << 16 | Int(bytes[off + 3]) << 24
        let seq = (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[off + 8 + $1]) << (8 * $1) }
        out += "seq \(seq) \(names[seq] ?? "(batch begin/end)")\n"
        let msg = bytes[off..<min(bytes.count, off + len)]
        var line = ""
        for (i, b) in msg.enumerated() {
            line.append(hex[Int(b >> 4)]); line.append(hex[Int(b & 15)])
            if i % 32 == 31 { out += line + "\n"; line = "" } else if i % 4 == 3 { line += " " }
        }
        if !line.isEmpty { out += line.trimmingWhitespace() + "\n" }
        off += (len + 3) & ~3
    }
    return out
}

@Suite struct EncoderGolden {
    static let dir = "/" + #filePath.split(separator: "/").dropLast().joined(separator: "/") + "/Golden"

    @Test(arguments: goldenCases)
    func bytesAsRecorded(_ c: GoldenCase) throws {
        var enc = BatchEncoder(seq: 1000)
        for op in c.ops { enc.encode(op) }
        let (bytes, names) = enc.finish()
        let text = render(bytes, names)
        let path = EncoderGolden.dir + "/\(c.name).txt"
        if Posix.getenv("SWIFTCNI_UPDATE_GOLDEN") == "1" {
            try Posix.writeFileAtomically(path, Array(text.utf8))
        }
        let golden = try #require(try Posix.readText(path), "no golden file \(path) (record it with SWIFTCNI_UPDATE_GOLDEN=1)")
        #expect(text == golden, "the \(c.name) batch differs from \(path)")
        // Every operation is a message of its own, named.
        #expect(names.count >= c.ops.count)
    }
}
