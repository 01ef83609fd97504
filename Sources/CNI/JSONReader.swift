/// Reads typed members out of a JSON object, naming the full key path in every error
/// (`ipam.ranges[0][1].subnet`), so a user sees which key and value are at fault.
///
/// Members are found as Go's `encoding/json` finds a struct field (the reference plugins
/// decode with it, and runtimes depend on it): the key exactly, else case-insensitively
/// (`IPMasq`, `HostPort`); unknown keys are ignored. Absent members and `null` read as nil.
/// A member of the wrong JSON type is a decoding error (code 6), and so is a string holding
/// a NUL, invalid UTF-8 or an unpaired surrogate (Go would rewrite it silently); a member of
/// the right type with an unusable value is reported by the caller with `invalid(...)`
/// (code 7).
import Base

public struct JSONReader: Sendable {
    public let object: JSONObject
    public let path: String

    public init(_ object: JSONObject, path: String = "") {
        self.object = object
        self.path = path
    }

    /// Requires `json` to be an object.
    public init(_ json: JSON, path: String) throws(CNIError) {
        guard case .object(let o) = json else {
            throw CNIError(.decodingFailure, "\(path.isEmpty ? "configuration" : "\"" + path + "\""): expected an object, got \(json.kindName) \(json.excerpt())")
        }
        self.init(o, path: path)
    }

    public func keyPath(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    public subscript(key: String) -> JSON? {
        guard let v = object.field(key), !v.isNull else { return nil }
        return v
    }

    public func has(_ key: String) -> Bool { self[key] != nil }

    public func typeError(_ key: String, expected: String, got v: JSON) -> CNIError {
        JSONReader.typeError(keyPath(key), expected: expected, got: v)
    }

    /// The error for value `v` at `path` that is not what was `expected` (a string that
    /// cannot be text says why).
    public static func typeError(_ path: String, expected: String, got v: JSON) -> CNIError {
        if case .badString(_, let fault) = v {
            return CNIError(.decodingFailure, "\"\(path)\" \(v.excerpt()): the string contains \(fault)")
        }
        return CNIError(.decodingFailure, "\"\(path)\": expected \(expected), got \(v.kindName) \(v.excerpt())")
    }

    /// An invalid-config error about `key` with its value.
    public func invalid(_ key: String, _ why: String) -> CNIError {
        if let v = self[key] {
            return CNIError(.invalidConfig, "\"\(keyPath(key))\" \(v.excerpt()): \(why)")
        }
        return CNIError(.invalidConfig, "\"\(keyPath(key))\": \(why)")
    }

    public func string(_ key: String) throws(CNIError) -> String? {
        guard let v = self[key] else { return nil }
        guard case .string(let s) = v else { throw typeError(key, expected: "a string", got: v) }
        return s
    }

    public func requiredString(_ key: String) throws(CNIError) -> String {
        guard let s = try string(key) else {
            throw CNIError(.invalidConfig, "\"\(keyPath(key))\" is required")
        }
        return s
    }

    public func bool(_ key: String) throws(CNIError) -> Bool? {
        guard let v = self[key] else { return nil }
        guard case .bool(let b) = v else { throw typeError(key, expected: "true or false", got: v) }
        return b
    }

    public func int(_ key: String, in range: ClosedRange<Int>? = nil) throws(CNIError) -> Int? {
        guard let v = self[key] else { return nil }
        guard case .number = v else { throw typeError(key, expected: "an integer", got: v) }
        guard let i = v.intValue else { throw typeError(key, expected: "an integer", got: v) }
        if let range, !range.contains(i) {
            throw invalid(key, "must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return i
    }

    public func object(_ key: String) throws(CNIError) -> JSONReader? {
        guard let v = self[key] else { return nil }
        guard case .object(let o) = v else { throw typeError(key, expected: "an object", got: v) }
        return JSONReader(o, path: keyPath(key))
    }

    public func array(_ key: String) throws(CNIError) -> [JSON]? {
        guard let v = self[key] else { return nil }
        guard case .array(let a) = v else { throw typeError(key, expected: "an array", got: v) }
        return a
    }

    /// An array of objects, each wrapped in a reader whose path names its index.
    public func objects(_ key: String) throws(CNIError) -> [JSONReader]? {
        guard let a = try array(key) else { return nil }
        var out: [JSONReader] = []
        out.reserveCapacity(a.count)
        for (i, e) in a.enumerated() {
            out.append(try JSONReader(e, path: "\(keyPath(key))[\(i)]"))
        }
        return out
    }

    public func stringArray(_ key: String) throws(CNIError) -> [String]? {
        guard let a = try array(key) else { return nil }
        var out: [String] = []
        for (i, e) in a.enumerated() {
            guard case .string(let s) = e else {
                throw JSONReader.typeError("\(keyPath(key))[\(i)]", expected: "a string", got: e)
            }
            out.append(s)
        }
        return out
    }

    public func ipAddress(_ key: String) throws(CNIError) -> IPAddress? {
        guard let s = try string(key) else { return nil }
        guard let a = IPAddress(s) else { throw invalid(key, "not an IP address") }
        return a
    }

    /// A CIDR; the host bits may be set (the address keeps them), as Go's types.IPNet allows.
    public func ipNetwork(_ key: String) throws(CNIError) -> IPNetwork? {
        guard let s = try string(key) else { return nil }
        guard let n = IPNetwork(s) else { throw invalid(key, "not a CIDR (address/prefix)") }
        return n
    }

    /// The member `key` as a map (names to values, read exactly, not as fields): each
    /// value must be a string.
    public func stringMap(_ key: String) throws(CNIError) -> [(String, String)]? {
        guard let m = try object(key) else { return nil }
        var out: [(String, String)] = []
        for member in m.object {
            guard case .string(let s) = member.value else {
                throw JSONReader.typeError(m.keyPath(member.key), expected: "a string", got: member.value)
            }
            out.append((member.key, s))
        }
        return out
    }
}
