// Where a cluster's etcd is and how to reach it: what the plugins parse from their `etcd`
// section and hand to their host's agent, without linking the etcd client.

import Base

public struct EtcdConfig: Equatable, Sendable {
    public struct Endpoint: Equatable, Sendable, CustomStringConvertible {
        public var host: String
        public var port: UInt16
        /// https: TLS to this member.
        public var secure = false
        public init(host: String, port: UInt16, secure: Bool = false) { self.host = host; self.port = port; self.secure = secure }
        public var description: String {
            let s = secure ? "https" : "http"
            return host.contains(":") ? "\(s)://[\(host)]:\(port)" : "\(s)://\(host):\(port)"
        }
    }

    public var endpoints: [Endpoint]
    public var prefix: String
    public var username: String?
    public var password: String?
    /// A file holding the password (read when the client starts), instead of `password`.
    public var passwordFile: String?
    public var timeoutMs: Int
    /// TLS: the CA certificates that sign the members' certificates (nil: the system's), and
    /// this client's certificate and key (mutual TLS), all PEM files.
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?

    public init(endpoints: [Endpoint], prefix: String = "/swiftcni", username: String? = nil, password: String? = nil,
                passwordFile: String? = nil, timeoutMs: Int = 3000, caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil) {
        self.endpoints = endpoints; self.prefix = prefix; self.username = username; self.password = password
        self.passwordFile = passwordFile; self.timeoutMs = timeoutMs
        self.caFile = caFile; self.certFile = certFile; self.keyFile = keyFile
    }

    public var usesTLS: Bool { endpoints.contains { $0.secure } }

    /// "http://10.0.0.10:2379", "https://10.0.0.10:2379", "10.0.0.10:2379", "http://[fd00::1]:2379".
    public static func endpoint(_ s: String) -> Endpoint? {
        var t = Substring(s)
        var secure = false
        if t.hasPrefix("http://") { t = t.dropFirst(7) } else if t.hasPrefix("etcd://") { t = t.dropFirst(7) }
        else if t.hasPrefix("https://") { t = t.dropFirst(8); secure = true }
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
        return Endpoint(host: String(host), port: port, secure: secure)
    }

    public var json: JSON {
        var o: [(String, JSON)] = [("endpoints", .array(endpoints.map { .string($0.description) })), ("prefix", .string(prefix))]
        if let u = username { o.append(("username", .string(u))) }
        if let p = password { o.append(("password", .string(p))) }
        if let p = passwordFile { o.append(("passwordFile", .string(p))) }
        o.append(("timeoutMs", .int(timeoutMs)))
        if let f = caFile { o.append(("caFile", .string(f))) }
        if let f = certFile { o.append(("certFile", .string(f))) }
        if let f = keyFile { o.append(("keyFile", .string(f))) }
        return .object(JSONObject(o))
    }
}
