import Testing
@testable import Base

@Suite struct JSONParsing {
    @Test func parsesEveryKind() throws {
        let j = try JSON.parse(#"{"a": null, "b": true, "c": false, "d": -12.5e3, "e": "x", "f": [1, 2], "g": {}}"#)
        #expect(j["a"] == .null)
        #expect(j["b"] == .bool(true))
        #expect(j["c"] == .bool(false))
        #expect(j["d"] == .number("-12.5e3"))
        #expect(j["d"]?.doubleValue == -12500)
        #expect(j["e"] == .string("x"))
        #expect(j["f"] == .array([.number("1"), .number("2")]))
        #expect(j["g"] == .object(JSONObject()))
    }

    @Test func keepsMemberOrderAndNumberText() throws {
        let text = #"{"z":1,"a":18446744073709551616,"m":1.50}"#
        let j = try JSON.parse(text)
        #expect(j.serialized() == text)
        #expect(j.objectValue?.keys == ["z", "a", "m"])
    }

    @Test func lastDuplicateKeyWins() throws {
        let j = try JSON.parse(#"{"k": 1, "k": 2}"#)
        #expect(j["k"]?.intValue == 2)
    }

    @Test func decodesEscapes() throws {
        let j = try JSON.parse(#"["a\"b\\c\/d\b\f\n\r\t", "\u00e9\u4e2d", "\ud83d\ude00", "\ud800x"]"#)
        #expect(j.arrayValue?[0] == .string("a\"b\\c/d\u{8}\u{c}\n\r\t"))
        #expect(j.arrayValue?[1] == .string("é中"))
        #expect(j.arrayValue?[2] == .string("😀"))
        // Go rewrites a lone surrogate to U+FFFD silently; it is kept, repaired, but marked.
        #expect(j.arrayValue?[3] == .badString("\u{FFFD}x", .loneSurrogate))
    }

    static func bytes(_ parts: [Any]) -> [UInt8] {
        var out: [UInt8] = []
        for p in parts {
            if let s = p as? String { out += Array(s.utf8) } else if let b = p as? [UInt8] { out += b }
        }
        return out
    }

    static let notText: [([UInt8], JSON)] = [
        (bytes([#""cni0\u0000evil""#]), .badString("cni0\u{0}evil", .nul)),
        (bytes([#""\u0000""#]), .badString("\u{0}", .nul)),
        (bytes(["\"br", [UInt8(0xFF)], "1\""]), .badString("br\u{FFFD}1", .invalidUTF8)),
        (bytes(["\"/var/", [UInt8(0x80)], "x\""]), .badString("/var/\u{FFFD}x", .invalidUTF8)),
        (bytes(["\"a\\n", [UInt8(0xC3)], "\""]), .badString("a\n\u{FFFD}", .invalidUTF8)),
        (bytes([#""\udc00""#]), .badString("\u{FFFD}", .loneSurrogate)),
        (bytes(["\"\u{E9}\\u00e9\""]), .string("éé")),
        ([0x22, 0xF0, 0x9F, 0x98, 0x80, 0x22], .string("😀")),
        ([0x22, 0xED, 0xA0, 0x80, 0x22], .badString("\u{FFFD}\u{FFFD}\u{FFFD}", .invalidUTF8)),  // an encoded surrogate
    ]

    /// Strings that cannot be text are marked, whatever path they take through the parser.
    @Test(arguments: notText)
    func marksStringsThatAreNotText(_ bytes: [UInt8], _ want: JSON) throws {
        #expect(try JSON.parse(bytes) == want)
    }

    @Test func keyThatIsNotTextIsASyntaxError() throws {
        #expect(throws: JSONSyntaxError.self) { try JSON.parse(#"{"a\u0000b": 1}"#) }
        #expect(throws: JSONSyntaxError.self) { try JSON.parse(Array("{\"a".utf8) + [0xFF] + Array("\": 1}".utf8)) }
        do {
            _ = try JSON.parse(#"{"ok": 1, "x\u0000": 2}"#)
        } catch {
            #expect(error.description == #"malformed JSON at byte 10: object key "x\u0000" contains a NUL character"#)
        }
    }

    @Test func rawUTF8Passes() throws {
        let j = try JSON.parse("\"网络\"")
        #expect(j == .string("网络"))
    }

    @Test func toleratesBOMAndWhitespace() throws {
        let bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array(" \n\t{\"a\":1}\r\n ".utf8)
        #expect(try JSON.parse(bytes)["a"]?.intValue == 1)
    }

    @Test(arguments: [
        ("", "empty input"),
        ("   ", "empty input"),
        ("{", "unterminated object"),
        ("[1,", "unexpected end"),
        ("[1 2]", "expected ',' or ']'"),
        ("{\"a\" 1}", "expected ':'"),
        ("{\"a\":1,}", "expected a string key"),
        ("{a:1}", "expected a string key"),
        ("[1,]", "unexpected character"),
        ("tru", "invalid literal"),
        ("nul", "invalid literal"),
        ("falsey", "unexpected data"),
        ("01", "leading zero"),
        ("-", "invalid number"),
        ("1.", "invalid fraction"),
        ("1e", "invalid exponent"),
        (".5", "unexpected character"),
        ("+1", "unexpected character"),
        ("\"abc", "unterminated string"),
        ("\"a\u{1}b\"", "control character"),
        ("\"\\x\"", "invalid escape"),
        ("\"\\u12g4\"", "invalid hex digit"),
        ("\"\\u12\"", "truncated"),
        ("{} {}", "unexpected data"),
        ("'a'", "unexpected character"),
        ("\"\\ud83d\\u0041\"", "invalid surrogate pair"),
    ])
    func rejectsMalformed(_ input: String, _ reason: String) {
        do {
            _ = try JSON.parse(input)
            Issue.record("accepted malformed input \(input.debugDescription)")
        } catch {
            #expect(error.description.contains(reason), "\(input.debugDescription): \(error)")
        }
    }

    @Test func limitsNesting() {
        let deep = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        #expect(throws: JSONSyntaxError.self) { try JSON.parse(deep) }
        let ok = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect((try? JSON.parse(ok)) != nil)
    }

    @Test func reportsOffset() {
        do {
            _ = try JSON.parse("{\"a\": tx}")
            Issue.record("accepted")
        } catch {
            #expect(error.offset == 6)
        }
    }
}

@Suite struct JSONWriting {
    @Test func escapesStrings() {
        let j: JSON = .string("q\"b\\n\n\u{1}\u{7f}é")
        #expect(j.serialized() == #""q\"b\\n\n\u0001\u007fé""#)
    }

    @Test func roundTripsThroughParser() throws {
        let j: JSON = ["s": "x\ny", "n": 42, "b": false, "z": nil, "a": [1, "two", ["k": true]]]
        #expect(try JSON.parse(j.serialized()) == j)
        #expect(try JSON.parse(j.serialized(indent: 2)) == j)
    }

    @Test func indents() {
        let j: JSON = ["a": [1], "b": [:]]
        #expect(j.serialized(indent: 2) == "{\n  \"a\": [\n    1\n  ],\n  \"b\": {}\n}")
    }
}


