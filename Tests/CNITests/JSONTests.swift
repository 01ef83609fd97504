import Testing
@testable import Base
@testable import CNI

/// Members are found as Go's encoding/json finds struct fields: exactly, else ignoring case.
@Suite struct GoFieldMatching {
    @Test func exactThenCaseInsensitive() throws {
        let r = JSONReader(try JSON.parse(#"{"HostPort": 80, "hostIP": "1.2.3.4", "hostip": "5.6.7.8", "PROTOCOL": "udp"}"#).objectValue!)
        #expect(try r.int("hostPort") == 80)
        #expect(try r.string("hostIP") == "1.2.3.4")  // the exact key wins over a later folded one
        #expect(try r.string("protocol") == "udp")
        #expect(try r.string("containerPort") == nil)
        #expect(r.has("hostport"))
    }

    @Test func lastFoldedDuplicateWins() throws {
        let r = JSONReader(try JSON.parse(#"{"IPMasq": true, "IPMASQ": false}"#).objectValue!)
        #expect(try r.bool("ipMasq") == false)
    }

    @Test(arguments: [("ipMasq", "IPMasq", true), ("ipMasq", "ipmasq", true), ("a", "A", true), ("ab", "a", false),
                      ("a@", "a`", false), ("[", "{", false), ("Größe", "GRÖSSE", false), ("größe", "GRÖßE", true),
                      ("dataDir", "dataDIR", true), ("x_y", "X_Y", true), ("x-y", "x_y", false)])
    func folding(_ a: String, _ b: String, _ equal: Bool) {
        #expect(JSONObject.equalFold(a, b) == equal)
        #expect(JSONObject.equalFold(b, a) == equal)
    }

    @Test func mapsStayExact() throws {
        // capabilities and names-to-values maps are Go maps: no folding.
        let j = try JSON.parse(#"{"capabilities": {"PortMappings": true}, "aux": {"Router": "10.0.0.5"}}"#)
        let r = JSONReader(j.objectValue!)
        #expect(try r.object("capabilities")?.object["portMappings"] == nil)
        #expect(try r.stringMap("aux")?.map(\.0) == ["Router"])
    }

    @Test func readersRefuseStringsThatAreNotText() throws {
        let j = try JSON.parse(Array(#"{"bridge": "cni0\u0000evil", "dataDir": "/var/"#.utf8) + [0x80] + Array(#"x", "ips": ["10.0.0.2", "\udc00"]}"#.utf8))
        let r = JSONReader(j.objectValue!)
        for (key, fault) in [("bridge", "a NUL character"), ("dataDir", "invalid UTF-8")] {
            do {
                _ = try r.string(key)
                Issue.record("\(key) was read")
            } catch {
                #expect(error.code == .decodingFailure)
                #expect(error.msg.hasPrefix("\"\(key)\" \""), "\(error.msg)")
                #expect(error.msg.hasSuffix("the string contains \(fault)"), "\(error.msg)")
            }
        }
        #expect(throws: CNIError(.decodingFailure, "\"ips[1]\" \"\u{FFFD}\": the string contains an unpaired UTF-16 surrogate")) {
            try r.stringArray("ips")
        }
    }
}

@Suite struct JSONReading {
    let r = JSONReader(try! JSON.parse(#"{"s": "v", "n": 7, "f": 1.5, "b": true, "o": {"x": 1}, "a": ["p", 2], "nul": null}"#).objectValue!, path: "top")

    @Test func typedMembers() throws {
        #expect(try r.string("s") == "v")
        #expect(try r.int("n") == 7)
        #expect(try r.bool("b") == true)
        #expect(try r.object("o")?.int("x") == 1)
        #expect(try r.string("nul") == nil)
        #expect(try r.string("missing") == nil)
    }

    @Test func typeErrorsNameKeyAndValue() {
        #expect(throws: CNIError(.decodingFailure, "\"top.s\": expected an integer, got a string \"v\"")) { try r.int("s") }
        #expect(throws: CNIError(.decodingFailure, "\"top.n\": expected true or false, got a number 7")) { try r.bool("n") }
        #expect(throws: CNIError(.decodingFailure, "\"top.f\": expected an integer, got a number 1.5")) { try r.int("f") }
        #expect(throws: CNIError(.decodingFailure, "\"top.a[1]\": expected a string, got a number 2")) { try r.stringArray("a") }
    }

    @Test func rangeChecked() {
        #expect(throws: CNIError(.invalidConfig, "\"top.n\" 7: must be between 0 and 5")) { try r.int("n", in: 0...5) }
    }
}
