// Where a cluster's etcd is and how to reach it: what the plugins parse from their `etcd`
// section and hand to their host's agent, without linking the etcd client.

import Base

public struct EtcdConfig: Equatable, Sendable {
    public struct Endpoint: Equatable, Sendable, CustomStringConvertible {
        public var host: String
        public var port: UInt16
        public var description: String { host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)" }
    }

    public var endpoints: [Endpoint]
    public var prefix: String
    public var username: String?
    public var password: String?
    public var timeoutMs: Int

    public init(endpoints: [Endpoint], prefix: String = "/swiftcni", username: String? = nil, password: String? = nil,
                timeoutMs: Int = 3000) {
        self.endpoints = endpoints; self.prefix = prefix; self.username = username; self.password = password
        self.timeoutMs = timeoutMs
    }

    /// "http://10.0.0.10:2379", "10.0.0.10:2379", "http://[fd00::1]:2379".
    public static func endpoint(_ s: String) -> Endpoint? {
        var t = Substring(s)
        if t.hasPrefix("http://") { t = t.dropFirst(7) } else if t.hasPrefix("etcd://") { t = t.dropFirst(7) }
        while t.hasSuffix("/") { t = t.dropLast() }
        var host: Substring, port: UInt16 = 2379
        if t.hasPrefix("[") {
            guard let close = t.firstIndex(of: "]") else { return nil }
            host = t[t.index(after: t.startIndex)..<close]
            let rest = t[t.index(after: close)...]
            if rest.hasPrefix(":") { guard let p = UInt16(rest.dropFirst()), p > 0 else { return nil }; port = p } else if !rest.isEmpty { return nil }
        } else {
            let parts = t.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { return nil }
            host = parts[0]
            if parts.count == 2 { guard let p = UInt16(parts[1]), p > 0 else { return nil }; port = p }
        }
        guard IPAddress(String(host)) != nil else { return nil }
        return Endpoint(host: String(host), port: port)
    }

    public var json: JSON {
        var o: [(String, JSON)] = [("endpoints", .array(endpoints.map { .string($0.description) })), ("prefix", .string(prefix))]
        if let u = username, let p = password { o += [("username", .string(u)), ("password", .string(p))] }
        o.append(("timeoutMs", .int(timeoutMs)))
        return .object(JSONObject(o))
    }
}
