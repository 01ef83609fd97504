// `resolvConf`: the DNS settings host-local returns, read from a resolv.conf file.

import Base
import CNI

extension ResolvConf {
    public static func read(_ path: String) throws(CNIError) -> CNIDNS {
        let text: String?
        do { text = try Posix.readText(path) } catch { throw CNIError(.ioFailure, "resolvConf \"\(path)\": \(error)") }
        guard let text else { throw CNIError(.ioFailure, "resolvConf \"\(path)\": no such file") }
        return parse(text)
    }
}
