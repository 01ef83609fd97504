// A small Foundation-free JSON value, parser and writer.
//
// Plugins are exec'd once per CNI operation; Foundation's JSON costs milliseconds of
// start-up, so the contract's JSON lives here. Numbers keep their literal text so that
// configuration passed through to delegates and later plugins round-trips exactly; object
// members keep their order.

/// A JSON value.
public enum JSON: Equatable, Sendable {
    case null
    case bool(Bool)
    /// A number, kept as its (validated) literal text.
    case number(String)
    case string(String)
    /// A string that cannot be taken as text: it holds a NUL, invalid UTF-8 or an unpaired
    /// UTF-16 surrogate. Kept (repaired, for messages), never read as a string: every
    /// reader refuses it with the key that holds it, where Go would silently rewrite it.
    case badString(String, JSONStringFault)
    case array([JSON])
    case object(JSONObject)

    public static func int(_ v: Int) -> JSON { .number(String(v)) }

    /// A short description of the value's kind, for error messages.
    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string, .badString: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// The value rendered compactly, cut to `limit` characters, for error messages.
    public func excerpt(limit: Int = 60) -> String {
        let s = serialized()
        if s.count <= limit { return s }
        return String(s.prefix(limit)) + "…"
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var objectValue: JSONObject? { if case .object(let o) = self { return o }; return nil }
    public var arrayValue: [JSON]? { if case .array(let a) = self { return a }; return nil }
    public var isNull: Bool { if case .null = self { return true }; return false }

    /// The number as an Int when it is an integer literal that fits.
    public var intValue: Int? {
        guard case .number(let s) = self else { return nil }
        if let i = Int(s) { return i }
        // Accept integral values written with a fraction or exponent, e.g. 1500.0 or 1.5e3.
        if let d = Double(s), d.rounded() == d, abs(d) < 9.0e15 { return Int(d) }
        return nil
    }

    public var doubleValue: Double? {
        guard case .number(let s) = self else { return nil }
        return Double(s)
    }

    /// Member lookup for objects; nil for anything else.
    public subscript(key: String) -> JSON? {
        guard case .object(let o) = self else { return nil }
        return o[key]
    }
}

/// An ordered JSON object. Lookups are linear: CNI objects are small.
public struct JSONObject: Equatable, Sendable, Sequence {
    public struct Member: Equatable, Sendable {
        public var key: String
        public var value: JSON
        public init(key: String, value: JSON) { self.key = key; self.value = value }
    }

    public var members: [Member]

    public init() { members = [] }
    public init(_ pairs: [(String, JSON)]) {
        members = pairs.map { Member(key: $0.0, value: $0.1) }
    }

    public var count: Int { members.count }
    public var isEmpty: Bool { members.isEmpty }
    public var keys: [String] { members.map(\.key) }

    public subscript(key: String) -> JSON? {
        get {
            // Last one wins, as with Go's encoding/json.
            var i = members.count - 1
            while i >= 0 {
                if members[i].key == key { return members[i].value }
                i -= 1
            }
            return nil
        }
        set {
            if let v = newValue {
                if let i = members.lastIndex(where: { $0.key == key }) {
                    members[i].value = v
                } else {
                    members.append(Member(key: key, value: v))
                }
            } else {
                members.removeAll { $0.key == key }
            }
        }
    }

    public func makeIterator() -> IndexingIterator<[Member]> { members.makeIterator() }

    /// The member a Go struct field named `key` receives, as `encoding/json` decodes: the
    /// key matched exactly, else case-insensitively (the last such member wins). Struct-like
    /// objects (configurations, results, capability arguments) are read this way; map-like
    /// ones (names to values) use the exact `subscript`.
    public func field(_ key: String) -> JSON? {
        if let v = self[key] { return v }
        var i = members.count - 1
        while i >= 0 {
            if JSONObject.equalFold(members[i].key, key) { return members[i].value }
            i -= 1
        }
        return nil
    }

    /// Case-insensitive equality of keys: ASCII letters fold; keys with other text compare
    /// lowercased (Go folds by Unicode simple case folding).
    static func equalFold(_ a: String, _ b: String) -> Bool {
        let x = a.utf8, y = b.utf8
        if x.count == y.count {
            var ascii = true
            for (p, q) in zip(x, y) {
                if p >= 0x80 || q >= 0x80 { ascii = false; break }
                if p == q { continue }
                let l = p | 0x20
                if l != q | 0x20 || l < UInt8(ascii: "a") || l > UInt8(ascii: "z") { return false }
            }
            if ascii { return true }
        } else if x.allSatisfy({ $0 < 0x80 }) && y.allSatisfy({ $0 < 0x80 }) {
            return false
        }
        return a.lowercased() == b.lowercased()
    }
}

/// Why a JSON string cannot be taken as text.
public enum JSONStringFault: String, Equatable, Sendable, CustomStringConvertible {
    case nul = "a NUL character"
    case invalidUTF8 = "invalid UTF-8"
    case loneSurrogate = "an unpaired UTF-16 surrogate"
    public var description: String { rawValue }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(String(value)) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSON)...) { self = .object(JSONObject(elements)) }
    public init(nilLiteral: ()) { self = .null }
}

// MARK: - Parsing

/// A JSON syntax error with the byte offset where it was found.
public struct JSONSyntaxError: ClassifiedError, Equatable {
    public var offset: Int
    public var reason: String
    public var description: String { "malformed JSON at byte \(offset): \(reason)" }
    public var kind: FailureKind { .malformed }
}

extension JSON {
    /// Parses a complete JSON document (whitespace around it allowed, nothing else).
    public static func parse(_ bytes: [UInt8]) throws(JSONSyntaxError) -> JSON {
        do {
            return try bytes.withUnsafeBufferPointer { (buf) throws(JSONSyntaxError) -> JSON in
                var p = JSONParser(buf)
                return try p.parseDocument()
            }
        }
    }

    public static func parse(_ text: String) throws(JSONSyntaxError) -> JSON {
        try parse(Array(text.utf8))
    }
}

struct JSONParser {
    let buf: UnsafeBufferPointer<UInt8>
    var i = 0
    var depth = 0
    static let maxDepth = 200

    init(_ buf: UnsafeBufferPointer<UInt8>) { self.buf = buf }

    func fail(_ reason: String, at: Int? = nil) -> JSONSyntaxError {
        JSONSyntaxError(offset: at ?? i, reason: reason)
    }

    mutating func skipWS() {
        while i < buf.count {
            let c = buf[i]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i += 1 } else { return }
        }
    }

    mutating func parseDocument() throws(JSONSyntaxError) -> JSON {
        // A UTF-8 byte order mark is tolerated.
        if buf.count >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF { i = 3 }
        skipWS()
        if i >= buf.count { throw fail("empty input") }
        let v = try parseValue()
        skipWS()
        if i != buf.count { throw fail("unexpected data after the JSON value") }
        return v
    }

    mutating func parseValue() throws(JSONSyntaxError) -> JSON {
        guard i < buf.count else { throw fail("unexpected end of input") }
        switch buf[i] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""):
            let (text, fault) = try parseString()
            if let fault { return .badString(text, fault) }
            return .string(text)
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default:
            throw fail("unexpected character '\(printable(buf[i]))'")
        }
    }

    func printable(_ c: UInt8) -> String {
        if c >= 0x20 && c < 0x7F { return String(UnicodeScalar(c)) }
        return "\\x" + String(c, radix: 16)
    }

    mutating func expectLiteral(_ lit: StaticString) throws(JSONSyntaxError) {
        let n = lit.utf8CodeUnitCount
        let start = i
        guard i + n <= buf.count else { throw fail("invalid literal", at: start) }
        let p = lit.utf8Start
        for k in 0..<n where buf[i + k] != p[k] {
            throw fail("invalid literal", at: start)
        }
        i += n
    }

    mutating func enter() throws(JSONSyntaxError) {
        depth += 1
        if depth > Self.maxDepth { throw fail("nesting deeper than \(Self.maxDepth) levels") }
    }

    mutating func parseObject() throws(JSONSyntaxError) -> JSON {
        try enter()
        i += 1
        var obj = JSONObject()
        skipWS()
        if i < buf.count && buf[i] == UInt8(ascii: "}") {
            i += 1; depth -= 1
            return .object(obj)
        }
        while true {
            skipWS()
            guard i < buf.count else { throw fail("unterminated object") }
            guard buf[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let keyStart = i
            let (key, fault) = try parseString()
            if let fault { throw fail("object key \(JSON.string(key).serialized()) contains \(fault)", at: keyStart) }
            skipWS()
            guard i < buf.count, buf[i] == UInt8(ascii: ":") else { throw fail("expected ':' after key \"\(key)\"") }
            i += 1
            skipWS()
            let v = try parseValue()
            obj.members.append(.init(key: key, value: v))
            skipWS()
            guard i < buf.count else { throw fail("unterminated object") }
            if buf[i] == UInt8(ascii: ",") { i += 1; continue }
            if buf[i] == UInt8(ascii: "}") { i += 1; break }
            throw fail("expected ',' or '}' in object")
        }
        depth -= 1
        return .object(obj)
    }

    mutating func parseArray() throws(JSONSyntaxError) -> JSON {
        try enter()
        i += 1
        var arr: [JSON] = []
        skipWS()
        if i < buf.count && buf[i] == UInt8(ascii: "]") {
            i += 1; depth -= 1
            return .array(arr)
        }
        while true {
            skipWS()
            arr.append(try parseValue())
            skipWS()
            guard i < buf.count else { throw fail("unterminated array") }
            if buf[i] == UInt8(ascii: ",") { i += 1; continue }
            if buf[i] == UInt8(ascii: "]") { i += 1; break }
            throw fail("expected ',' or ']' in array")
        }
        depth -= 1
        return .array(arr)
    }

    /// A string's text, and what makes it unusable as text (nil: nothing). Bytes that are
    /// not UTF-8 and unpaired surrogates come out as U+FFFD, but with their fault.
    mutating func parseString() throws(JSONSyntaxError) -> (String, JSONStringFault?) {
        let start = i
        i += 1
        // Fast path: no escapes.
        var j = i
        var high = false
        while j < buf.count {
            let c = buf[j]
            if c == UInt8(ascii: "\"") {
                let bytes = UnsafeBufferPointer(rebasing: buf[i..<j])
                i = j + 1
                return JSONParser.text(bytes, mayBeInvalid: high, fault: nil)
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw fail("control character in string", at: j) }
            if c >= 0x80 { high = true }
            j += 1
        }
        if j >= buf.count { throw fail("unterminated string", at: start) }
        // Slow path with escapes.
        var out: [UInt8] = Array(UnsafeBufferPointer(rebasing: buf[i..<j]))
        var fault: JSONStringFault? = nil
        i = j
        while true {
            guard i < buf.count else { throw fail("unterminated string", at: start) }
            let c = buf[i]
            if c == UInt8(ascii: "\"") { i += 1; break }
            if c < 0x20 { throw fail("control character in string") }
            if c != UInt8(ascii: "\\") { out.append(c); high = high || c >= 0x80; i += 1; continue }
            i += 1
            guard i < buf.count else { throw fail("unterminated escape", at: start) }
            let e = buf[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try parseHex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    // A high surrogate must be followed by a low one.
                    if i + 1 < buf.count && buf[i] == UInt8(ascii: "\\") && buf[i + 1] == UInt8(ascii: "u") {
                        i += 2
                        let low = try parseHex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw fail("invalid surrogate pair") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        scalar = 0xFFFD
                        fault = fault ?? .loneSurrogate
                    }
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    scalar = 0xFFFD
                    fault = fault ?? .loneSurrogate
                } else if scalar == 0 {
                    fault = .nul
                }
                let u = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                throw fail("invalid escape '\\\(printable(e))'", at: i - 2)
            }
        }
        return out.withUnsafeBufferPointer { JSONParser.text($0, mayBeInvalid: high, fault: fault) }
    }

    /// The bytes as text; with `mayBeInvalid`, checked to be UTF-8 (a NUL found already wins).
    static func text(_ bytes: UnsafeBufferPointer<UInt8>, mayBeInvalid: Bool, fault: JSONStringFault?) -> (String, JSONStringFault?) {
        if mayBeInvalid {
            if let s = String(validating: bytes, as: UTF8.self) { return (s, fault) }
            return (String(decoding: bytes, as: UTF8.self), fault == .nul ? .nul : .invalidUTF8)
        }
        return (String(decoding: bytes, as: UTF8.self), fault)
    }

    mutating func parseHex4() throws(JSONSyntaxError) -> UInt32 {
        guard i + 4 <= buf.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = buf[i]
            var d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw fail("invalid hex digit in \\u escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    mutating func parseNumber() throws(JSONSyntaxError) -> JSON {
        let start = i
        func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
        if buf[i] == UInt8(ascii: "-") { i += 1 }
        guard i < buf.count, isDigit(buf[i]) else { throw fail("invalid number", at: start) }
        if buf[i] == UInt8(ascii: "0") {
            i += 1
            if i < buf.count && isDigit(buf[i]) { throw fail("leading zero in number", at: start) }
        } else {
            while i < buf.count && isDigit(buf[i]) { i += 1 }
        }
        if i < buf.count && buf[i] == UInt8(ascii: ".") {
            i += 1
            guard i < buf.count, isDigit(buf[i]) else { throw fail("invalid fraction in number", at: start) }
            while i < buf.count && isDigit(buf[i]) { i += 1 }
        }
        if i < buf.count && (buf[i] == UInt8(ascii: "e") || buf[i] == UInt8(ascii: "E")) {
            i += 1
            if i < buf.count && (buf[i] == UInt8(ascii: "+") || buf[i] == UInt8(ascii: "-")) { i += 1 }
            guard i < buf.count, isDigit(buf[i]) else { throw fail("invalid exponent in number", at: start) }
            while i < buf.count && isDigit(buf[i]) { i += 1 }
        }
        return .number(String(decoding: UnsafeBufferPointer(rebasing: buf[start..<i]), as: UTF8.self))
    }
}

// MARK: - Writing

extension JSON {
    /// The value as compact JSON text, or indented with `indent` spaces per level.
    public func serialized(indent: Int = 0) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out, indent: indent, level: 0)
        return String(decoding: out, as: UTF8.self)
    }

    public func serializedBytes(indent: Int = 0) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out, indent: indent, level: 0)
        return out
    }

    func write(into out: inout [UInt8], indent: Int, level: Int) {
        switch self {
        case .null: out.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])
        case .bool(let b): out.append(contentsOf: b ? Array("true".utf8) : Array("false".utf8))
        case .number(let s): out.append(contentsOf: s.utf8)
        case .string(let s), .badString(let s, _): JSON.writeString(s, into: &out)
        case .array(let a):
            if a.isEmpty { out.append(contentsOf: [0x5B, 0x5D]); return }
            out.append(0x5B)
            for (k, v) in a.enumerated() {
                if k > 0 { out.append(0x2C) }
                JSON.newline(&out, indent: indent, level: level + 1)
                v.write(into: &out, indent: indent, level: level + 1)
            }
            JSON.newline(&out, indent: indent, level: level)
            out.append(0x5D)
        case .object(let o):
            if o.isEmpty { out.append(contentsOf: [0x7B, 0x7D]); return }
            out.append(0x7B)
            for (k, m) in o.members.enumerated() {
                if k > 0 { out.append(0x2C) }
                JSON.newline(&out, indent: indent, level: level + 1)
                JSON.writeString(m.key, into: &out)
                out.append(0x3A)
                if indent > 0 { out.append(0x20) }
                m.value.write(into: &out, indent: indent, level: level + 1)
            }
            JSON.newline(&out, indent: indent, level: level)
            out.append(0x7D)
        }
    }

    static func newline(_ out: inout [UInt8], indent: Int, level: Int) {
        guard indent > 0 else { return }
        out.append(0x0A)
        out.append(contentsOf: repeatElement(0x20, count: indent * level))
    }

    static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(0x22)
        for c in s.utf8 {
            switch c {
            case 0x22: out.append(contentsOf: [0x5C, 0x22])
            case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, 0x6E])
            case 0x0D: out.append(contentsOf: [0x5C, 0x72])
            case 0x09: out.append(contentsOf: [0x5C, 0x74])
            case 0x00..<0x20, 0x7F:
                out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 0xF)]])
            default: out.append(c)
            }
        }
        out.append(0x22)
    }
}

extension JSON: CustomStringConvertible {
    public var description: String { serialized() }
}
