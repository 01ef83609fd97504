import Testing
@testable import Base
@testable import DNS

/// A query as a client would send it.
func query(_ name: String, type: UInt16 = DNSType.a, id: UInt16 = 0x1234, edns: UInt16? = nil, rd: Bool = true) -> [UInt8] {
    var b: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), rd ? 0x01 : 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, edns == nil ? 0 : 1]
    b += DNSName(name)!.wire
    b += [UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
    if let e = edns { b += [0, 0, 41, UInt8(e >> 8), UInt8(e & 0xFF), 0, 0, 0, 0, 0, 0] }
    return b
}

func parsed(_ b: [UInt8]) -> DNSQuery? {
    if case .query(let q) = DNSQuery.parse(b) { return q }
    return nil
}

@Suite struct Wire {
    @Test func parsesAQuery() throws {
        let q = try #require(parsed(query("Web.Example.", type: DNSType.aaaa, edns: 1232)))
        #expect(q.id == 0x1234)
        #expect(q.question.name.key == "web.example")
        #expect(q.question.type == DNSType.aaaa)
        #expect(q.ednsSize == 1232)
        #expect(q.udpLimit == 1232)
        #expect(q.recursionDesired)
    }

    @Test func answerEchoesTheQuestionAndCompressesOwners() throws {
        let q = try #require(parsed(query("Web", id: 7)))
        let r = DNSResponse.answer(q, rcode: .noError, records: [.address(IPAddress("10.0.0.2")!), .address(IPAddress("10.0.0.3")!)], ttl: 5)
        #expect(Array(r[0..<2]) == [0, 7])
        #expect(r[2] & 0x80 != 0)      // QR
        #expect(r[2] & 0x04 != 0)      // AA
        #expect(r[2] & 0x01 != 0)      // RD echoed
        #expect(r[3] == 0x80)          // RA, NOERROR
        #expect(Array(r[6..<8]) == [0, 2])
        // The question as sent (letter case kept), then owner pointers to offset 12.
        #expect(Array(r[12..<17]) == [3, 87, 101, 98, 0])
        #expect(Array(r[21..<23]) == [0xC0, 0x0C])
        #expect(Array(r[r.count - 4..<r.count]) == [10, 0, 0, 3])
        #expect(DNSResponseHeader(r)?.rcode == 0)
    }

    @Test func truncatesToTheClientsLimit() throws {
        let q = try #require(parsed(query("many")))
        let recs = (1...40).map { DNSRecordData.address(IPAddress("10.0.0.\($0)")!) }
        let r = DNSResponse.answer(q, rcode: .noError, records: recs, ttl: 5, limit: q.udpLimit)
        #expect(r.count <= 512)
        #expect(DNSResponseHeader(r)?.truncated == true)
        #expect(Array(r[6..<8]) == [0, 0])
        let full = DNSResponse.answer(q, rcode: .noError, records: recs, ttl: 5, limit: 65535)
        #expect(full.count > 512 && DNSResponseHeader(full)?.truncated == false)
    }

    @Test func reverseNames() {
        let v4 = IPAddress("10.1.2.3")!
        #expect(v4.reverseName.key == "3.2.1.10.in-addr.arpa")
        #expect(IPAddress(reverseName: v4.reverseName) == v4)
        let v6 = IPAddress("fd00::1")!
        #expect(v6.reverseName.key.hasPrefix("1.0.0.0.0.0.0.0."))
        #expect(v6.reverseName.key.hasSuffix(".0.0.d.f.ip6.arpa"))
        #expect(IPAddress(reverseName: v6.reverseName) == v6)
        #expect(IPAddress(reverseName: DNSName("2.1.10.in-addr.arpa")!) == nil)
        #expect(IPAddress(reverseName: DNSName("300.2.1.10.in-addr.arpa")!) == nil)
    }

    @Test func followsBackwardPointers() throws {
        // Question name "a" + pointer to an earlier "example" is not possible in a query's
        // first name, but a record owner may point back to the question.
        var b = query("example")
        b[7] = 1  // one answer record follows
        b += [0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 1, 2, 3, 4]
        let q = try #require(parsed(b))
        #expect(q.question.name.key == "example")
    }

    /// Malformed messages: each is an error value (FORMERR or drop), never a crash or loop.
    @Test(arguments: [
        ("empty", [UInt8]()),
        ("short header", [0x12, 0x34, 0x01]),
        ("header only, qdcount 1", [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]),
        ("label past the end", [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 10, 97, 98]),
        ("pointer loop to itself", [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1]),
        ("pointer forward", [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 20, 0, 1, 0, 1, 1, 97, 0]),
        ("reserved label type", [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0x80, 1, 0, 0, 1, 0, 1]),
        ("no type", [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 1, 97, 0, 0]),
        ("two questions", [0x12, 0x34, 0x01, 0x00, 0, 2, 0, 0, 0, 0, 0, 0, 1, 97, 0, 0, 1, 0, 1, 1, 98, 0, 0, 1, 0, 1]),
        ("additional record cut", [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1, 1, 97, 0, 0, 1, 0, 1, 0, 0, 41]),
    ] as [(String, [UInt8])])
    func malformed(_ what: String, _ bytes: [UInt8]) {
        switch DNSQuery.parse(bytes) {
        case .query: Issue.record("\(what) parsed as a query")
        case .reject(_, _, let rc): #expect(rc == .formErr || rc == .notImp, "\(what)")
        case .drop: #expect(bytes.count < 12 || bytes[2] & 0x80 != 0, "\(what)")
        }
    }

    @Test func oversizedNamesAreRejected() {
        var b: [UInt8] = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for _ in 0..<5 { b += [63] + [UInt8](repeating: 97, count: 63) }
        b += [0, 0, 1, 0, 1]
        if case .reject(_, _, let rc) = DNSQuery.parse(b) { #expect(rc == .formErr) } else { Issue.record("accepted") }
        #expect(DNSName(String(repeating: "a", count: 64)) == nil)
        #expect(DNSName(String(repeating: "abcdefg.", count: 40)) == nil)
    }

    @Test func responsesAndOtherOpcodes() {
        var r = query("a")
        r[2] |= 0x80
        if case .drop = DNSQuery.parse(r) {} else { Issue.record("a response was not dropped") }
        var n = query("a")
        n[2] = 0x28  // opcode 5 (UPDATE)
        if case .reject(_, _, let rc) = DNSQuery.parse(n) { #expect(rc == .notImp) } else { Issue.record("UPDATE accepted") }
    }

    /// Random messages (seeded: a failure is reproducible) get exactly the outcome the parser
    /// promises: shorter than a header or a response → dropped; otherwise a query, or a
    /// rejection carrying the message's own ID — and a query's answer is a well-formed
    /// response to it.
    @Test(arguments: [1, 2, 3, 0x5eed] as [UInt64])
    func fuzz(seed: UInt64) {
        var g = FastRandom(seed: seed)
        var outcomes = [0, 0, 0]
        for i in 0..<20000 {
            var b: [UInt8]
            if i % 2 == 0 {
                // A real query for a random name, then up to three bytes changed anywhere.
                let labels = (0..<Int.random(in: 1...3, using: &g)).map { _ in
                    (0..<Int.random(in: 1...8, using: &g)).map { _ in UInt8.random(in: 97...122, using: &g) }
                }
                b = [UInt8.random(in: 0...255, using: &g), UInt8.random(in: 0...255, using: &g), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
                for l in labels { b += [UInt8(l.count)] + l }
                b += [0, 0, 1, 0, 1]
                for _ in 0..<Int.random(in: 0...3, using: &g) { b[Int.random(in: 0..<b.count, using: &g)] = UInt8.random(in: 0...255, using: &g) }
            } else {
                // Random bytes, mostly shaped like a query header (one question, QR clear).
                b = (0..<Int.random(in: 0...80, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) }
                if b.count > 5 && i % 3 != 0 { b[4] = 0; b[5] = 1; b[2] &= 0x7F }
            }
            switch DNSQuery.parse(b) {
            case .drop:
                outcomes[0] += 1
                #expect(b.count < 12 || b[2] & 0x80 != 0, "dropped a query-shaped message: \(b)")
            case .reject(let id, _, let rcode):
                outcomes[1] += 1
                #expect(b.count >= 12 && b[2] & 0x80 == 0)
                #expect(id == UInt16(b[0]) << 8 | UInt16(b[1]))
                #expect(rcode == .formErr || rcode == .notImp)
            case .query(let q):
                outcomes[2] += 1
                #expect(q.id == UInt16(b[0]) << 8 | UInt16(b[1]))
                let r = DNSResponse.answer(q, rcode: .noError, records: [.address(IPAddress("10.0.0.1")!)], ttl: 5, limit: q.udpLimit)
                let h = DNSResponseHeader(r)
                #expect(h != nil && r[0] == b[0] && r[1] == b[1] && r[2] & 0x80 != 0, "a bad answer to \(b)")
                #expect(r.count <= q.udpLimit)
            }
        }
        // The generator reached every outcome.
        #expect(outcomes.allSatisfy { $0 > 0 }, "\(outcomes)")
    }

    @Test func upstreams() {
        #expect(DNSUpstream("10.0.0.2")?.description == "10.0.0.2")
        #expect(DNSUpstream("10.0.0.2:5353")?.port == 5353)
        #expect(DNSUpstream("[fd00::2]:5353")?.address == IPAddress("fd00::2"))
        #expect(DNSUpstream("fd00::2")?.port == 53)
        #expect(DNSUpstream("example.com") == nil)
        #expect(DNSUpstream("10.0.0.2:0") == nil)
    }
}
