// portmap's `conditionsV4`/`conditionsV6` read into nft match statements.
import Testing
@testable import Base
@testable import CNI
@testable import PortmapPlugin

@Suite struct PortmapConditionsReading {
    @Test(arguments: [
        (["!", "-s", "192.0.2.2"], "ip saddr != 192.0.2.2/32"),
        (["-d 10.0.0.0/8"], "ip daddr 10.0.0.0/8"),
        (["-i", "eth0"], "iifname \"eth0\""),
        (["ip daddr != 192.0.2.0/24"], "ip daddr != 192.0.2.0/24"),
        (["iifname", "!=", "\"lo\""], "iifname != \"lo\""),
    ])
    func conditions(_ tokens: [String], _ rendered: String) throws {
        let st = try PortmapConditions.parse(tokens, family: .v4, key: "conditionsV4")
        #expect(st.map(\.description).joined(separator: " ") == rendered)
    }

    @Test func badConditions() {
        #expect(throws: CNIError.self) { try PortmapConditions.parse(["-m", "comment"], family: .v4, key: "k") }
        #expect(throws: CNIError.self) { try PortmapConditions.parse(["-s", "fd00::1"], family: .v4, key: "k") }
        #expect(throws: CNIError.self) { try PortmapConditions.parse(["-s"], family: .v4, key: "k") }
    }
}
