#if canImport(Glibc)
import Glibc
#endif
import Base

/// Network sysctls (`/proc/sys/net/...`). The files resolve to the network namespace of the
/// thread that opens them, so a namespace's sysctls are read and written on a NetnsThread.
public enum Sysctl {
    static func file(_ key: String) -> String {
        "/proc/sys/" + key.replacingDots()
    }

    /// Reads a sysctl in the calling thread's namespace (e.g. "net.ipv4.ip_forward").
    public static func get(_ key: String) throws(SystemError) -> String? {
        try Posix.readText(file(key)).map { $0.trimmingWhitespace() }
    }

    /// Writes a sysctl in the calling thread's namespace, only if it differs.
    public static func set(_ key: String, _ value: String) throws(SystemError) {
        let path = file(key)
        if let cur = try Posix.readText(path), cur.trimmingWhitespace() == value { return }
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw SystemError("open sysctl", path) }
        defer { close(fd) }
        do { try Posix.writeAll(fd: fd, Array(value.utf8)) } catch { throw SystemError("write sysctl", path, errno: error.errno) }
    }

    /// Writes a sysctl inside namespace `ns`.
    public static func set(_ key: String, _ value: String, in ns: NetworkNamespace) throws {
        try NetnsThread.run(in: ns) { () throws -> Void in try set(key, value) }
    }

    public static func get(_ key: String, in ns: NetworkNamespace) throws -> String? {
        try NetnsThread.run(in: ns) { () throws -> String? in try get(key) }
    }
}

extension String {
    /// "net.ipv4.conf.eth0.forwarding" → "net/ipv4/conf/eth0/forwarding". A key already in
    /// slash form is kept (interface names may contain dots).
    func replacingDots() -> String {
        if contains("/") { return self }
        return String(map { $0 == "." ? "/" : $0 })
    }
}
