// The `etcd` section of an overlay configuration (the cluster-wide store its agent talks to).

import Base
import CNI
import EtcdSettings

extension EtcdConfig {
    /// The `etcd` section of a plugin configuration.
    public init(_ r: JSONReader) throws(CNIError) {
        guard let eps = try r.stringArray("endpoints"), !eps.isEmpty else {
            throw CNIError(.invalidConfig, "\"\(r.keyPath("endpoints"))\" is required (e.g. [\"http://10.0.0.10:2379\"])")
        }
        var out: [Endpoint] = []
        for (i, e) in eps.enumerated() {
            if e.hasPrefix("https://") {
                throw CNIError(.unsupportedField, "\"\(r.keyPath("endpoints"))[\(i)]\" \"\(e)\": TLS to etcd is not supported by this build (use http:// on a trusted network)")
            }
            guard let ep = EtcdConfig.endpoint(e) else {
                throw CNIError(.invalidConfig, "\"\(r.keyPath("endpoints"))[\(i)]\" \"\(e)\": expected http://IP:PORT")
            }
            out.append(ep)
        }
        for k in ["cert", "key", "cacert", "trustedCAFile", "certFile", "keyFile"] where r.has(k) {
            throw CNIError(.unsupportedField, "\"\(r.keyPath(k))\": TLS to etcd is not supported by this build")
        }
        var prefix = try r.string("prefix") ?? "/swiftcni"
        if !prefix.hasPrefix("/") { throw r.invalid("prefix", "must start with \"/\"") }
        while prefix.count > 1 && prefix.hasSuffix("/") { prefix.removeLast() }
        self.init(endpoints: out, prefix: prefix, username: try r.string("username"), password: try r.string("password"),
                  timeoutMs: (try r.int("timeoutMs", in: 100...60000)) ?? 3000)
        if (username == nil) != (password == nil) { throw r.invalid("username", "needs \"password\" too") }
    }
}
