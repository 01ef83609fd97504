// The bridge's gateway modes (Docker's gateway_mode_ipv4 / _ipv6) as configuration: what
// each value decodes to, and the refusals (code 7, naming the key and the value).
import Testing
@testable import BridgeNetwork
@testable import Base
@testable import CNI
@testable import Firewall

@Suite struct BridgeGatewayModes {
    func config(_ members: String) throws(CNIError) -> BridgeConfig {
        let text = #"{"cniVersion":"1.0.0","name":"net","type":"bridge",\#(members)"ipam":{"type":"host-local","subnet":"10.1.0.0/24"}}"#
        let env = try CNIEnvironment(command: .add, containerID: "ctr", netns: "/run/netns/x", ifname: "eth0")
        return try BridgeConfig(try CNIRequest(env: env, configBytes: Array(text.utf8)))
    }

    @Test func everyModeDecodes() throws {
        for m in GatewayMode.allCases {
            let internalKey = m == .isolated ? #""internal":true,"# : ""
            let c = try config(#""gatewayModeIPv4":"\#(m.rawValue)","gatewayModeIPv6":"\#(m.rawValue)",\#(internalKey)"#)
            #expect(c.gatewayModeV4 == m && c.gatewayModeV6 == m)
            #expect(c.policy(network: "net").gatewayModeV4 == m && c.policy(network: "net").gatewayModeV6 == m)
        }
        // Absent or empty: ipMasq decides, as before.
        let none = try config(#""ipMasq":true,"gatewayModeIPv6":"","#)
        #expect(none.gatewayModeV4 == nil && none.gatewayModeV6 == nil)
        #expect(none.policy(network: "net").masquerades(.v4) && none.policy(network: "net").masquerades(.v6))
        // A mode decides its family whatever ipMasq says.
        let routed = try config(#""ipMasq":true,"gatewayModeIPv4":"routed","#).policy(network: "net")
        #expect(!routed.masquerades(.v4) && routed.masquerades(.v6))
        let nat = try config(#""ipMasq":false,"gatewayModeIPv6":"nat","#).policy(network: "net")
        #expect(!nat.masquerades(.v4) && nat.masquerades(.v6))
    }

    @Test func refusals() {
        func error(_ members: String) -> String {
            do { _ = try config(members); return "accepted" } catch { return "\(error.code.rawValue) \(error.msg)" }
        }
        #expect(error(#""gatewayModeIPv4":"bogus","#)
                == #"7 "gatewayModeIPv4" "bogus": unknown gateway mode (nat, nat-unprotected, routed or isolated)"#)
        #expect(error(#""gatewayModeIPv6":"isolated","#)
                == #"7 "gatewayModeIPv6" "isolated": gateway mode 'isolated' can only be used for an internal network ("internal": true)"#)
        #expect(error(#""gatewayModeIPv4":7,"#).hasPrefix("6 "))
    }
}
