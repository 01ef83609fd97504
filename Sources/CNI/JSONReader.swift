/// Reads typed members out of a JSON object, naming the full key path in every error
/// (`ipam.ranges[0][1].subnet`), so a user sees which key and value are at fault.
///
/// Absent members and `null` read as nil. A member of the wrong JSON type is a decoding
/// error (code 6); a member of the right type with an unusable value is reported by the
/// caller with `invalid(...)` (code 7).
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
        guard let v = object[key], !v.isNull else { return nil }
        return v
    }

    public func has(_ key: String) -> Bool { self[key] != nil }

    public func typeError(_ key: String, expected: String, got v: JSON) -> CNIError {
        CNIError(.decodingFailure, "\"\(keyPath(key))\": expected \(expected), got \(v.kindName) \(v.excerpt())")
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
                throw CNIError(.decodingFailure, "\"\(keyPath(key))[\(i)]\": expected a string, got \(e.kindName) \(e.excerpt())")
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

    /// Keys present in the object that are not in `known` (for "unsupported field" checks).
    public func unknownKeys(_ known: Set<String>) -> [String] {
        object.keys.filter { !known.contains($0) }
    }
}
