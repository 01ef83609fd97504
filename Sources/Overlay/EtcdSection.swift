// The `etcd` section of an overlay configuration (the cluster-wide store its agent talks to).

import Base
import CNI
import EtcdSettings

extension EtcdConfig {
    /// The `etcd` section of a plugin configuration. `checkFiles: false` (DEL, GC, the
    /// agent's own settings) takes the certificate and password file names as they are: a DEL
    /// must not fail because a certificate was removed, and the agent names an unusable one.
    public init(_ r: JSONReader, checkFiles: Bool = true) throws(CNIError) {
        guard let eps = try r.stringArray("endpoints"), !eps.isEmpty else {
            throw CNIError(.invalidConfig, "\"\(r.keyPath("endpoints"))\" is required (e.g. [\"https://10.0.0.10:2379\"])")
        }
        var out: [Endpoint] = []
        for (i, e) in eps.enumerated() {
            guard let ep = EtcdConfig.endpoint(e) else {
                throw CNIError(.invalidConfig, "\"\(r.keyPath("endpoints"))[\(i)]\" \"\(e)\": expected http://IP:PORT or https://IP:PORT")
            }
            if let first = out.first, first.secure != ep.secure {
                throw CNIError(.invalidConfig, "\"\(r.keyPath("endpoints"))[\(i)]\" \"\(e)\": every member is reached the same way (\(first.secure ? "https" : "http")://, as the first)")
            }
            out.append(ep)
        }
        for (k, use) in [("cert", "certFile"), ("key", "keyFile"), ("cacert", "caFile"), ("trustedCAFile", "caFile")] where r.has(k) {
            throw CNIError(.unsupportedField, "\"\(r.keyPath(k))\": not a key of this section; the CA certificates are \"caFile\", the client's certificate and key \"certFile\" and \"keyFile\" (use \"\(use)\")")
        }
        var prefix = try r.string("prefix") ?? "/swiftcni"
        if !prefix.hasPrefix("/") { throw r.invalid("prefix", "must start with \"/\"") }
        while prefix.count > 1 && prefix.hasSuffix("/") { prefix.removeLast() }
        /// A file the agent will read: it must be there and readable now.
        func file(_ k: String) throws(CNIError) -> String? {
            guard let f = try r.string(k) else { return nil }
            guard f.hasPrefix("/") else { throw r.invalid(k, "must be an absolute path") }
            guard !checkFiles || Posix.isReadable(f) else { throw r.invalid(k, "no such file, or not readable") }
            return f
        }
        let tls = out.first?.secure ?? false
        let ca = try file("caFile"), cert = try file("certFile"), key = try file("keyFile")
        if !tls, let k = ca != nil ? "caFile" : cert != nil ? "certFile" : key != nil ? "keyFile" : nil {
            throw r.invalid(k, "needs https:// endpoints (TLS)")
        }
        if (cert == nil) != (key == nil) { throw r.invalid(cert == nil ? "keyFile" : "certFile", "needs \"\(cert == nil ? "certFile" : "keyFile")\" too (mutual TLS: the client's certificate and its key)") }
        let pwFile = try file("passwordFile")
        self.init(endpoints: out, prefix: prefix, username: try r.string("username"), password: try r.string("password"),
                  passwordFile: pwFile, timeoutMs: (try r.int("timeoutMs", in: 100...60000)) ?? 3000, caFile: ca, certFile: cert, keyFile: key)
        if password != nil && passwordFile != nil { throw r.invalid("passwordFile", "and \"password\" both set; one of them") }
        if username != nil && password == nil && passwordFile == nil { throw r.invalid("username", "needs \"password\" or \"passwordFile\" too") }
        if username == nil, let k = password != nil ? "password" : passwordFile != nil ? "passwordFile" : nil { throw r.invalid(k, "needs \"username\" too") }
    }
}
