// The plugin's side of the DNS server: its control socket (a unix stream socket in the run
// directory, one request line, one reply line) and starting the server on demand.
//
// Requests: "update <network> [<endpoint key>]" (re-read that network's records from disk,
// or just one endpoint and the network settings), "has <network> <endpoint key>" (is the
// endpoint served, with the addresses on disk), "status" (counts). Replies start with "ok"
// or "error".

#if canImport(Glibc)
import Glibc
#endif
import CNI

public struct DNSControlUnavailable: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { "DNS server control socket: \(reason)" }
}

public struct DNSControl: Sendable {
    public let state: DNSState

    public init(state: DNSState) { self.state = state }

    /// Sends one request and returns the reply line (without "\n"). Throws
    /// `DNSControlUnavailable` when no server listens.
    public func request(_ line: String, timeoutMs: Int = 5000) throws -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket", "AF_UNIX") }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeoutMs / 1000, tv_usec: (timeoutMs % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let path = Array(state.controlSocket.utf8)
        guard path.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw DNSControlUnavailable(reason: "path \(state.controlSocket) is too long")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, c) in path.enumerated() { raw[i] = c }
            raw[path.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 {
            throw DNSControlUnavailable(reason: "\(state.controlSocket): \(String(cString: strerror(errno)))")
        }
        do {
            try Posix.writeAll(fd: fd, Array((line + "\n").utf8))
        } catch {
            throw DNSControlUnavailable(reason: "sending \"\(line)\": \(error)")
        }
        var reply: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while !reply.contains(10) {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 { reply += buf[0..<n]; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                throw DNSControlUnavailable(reason: "no reply to \"\(line)\" within \(timeoutMs) ms")
            }
            break
        }
        guard let nl = reply.firstIndex(of: 10) else {
            throw DNSControlUnavailable(reason: "the server closed the connection on \"\(line)\"")
        }
        return String(decoding: reply[..<nl], as: UTF8.self)
    }

    /// True when a server answers on the control socket.
    public func isRunning() -> Bool {
        (try? request("status", timeoutMs: 2000))?.hasPrefix("ok") ?? false
    }

    /// Makes sure the server runs: if none answers, starts `executable` (detached) and waits
    /// until it answers (it loads every record on disk before it does).
    public func ensureServer(executable: String, environment: [String], waitMs: Int = 5000) throws {
        if isRunning() { return }
        guard Posix.isExecutableFile(executable) else {
            throw CNIError(.dnsServer, "DNS server \(executable) not found (it is installed next to the dns-alias plugin)")
        }
        try Posix.makeDirectories(state.root)
        // Serialize starters: only one of several concurrent plugins spawns.
        let lock = try FileLock(path: Posix.join(state.root, "start.lock"))
        defer { lock.unlock() }
        if isRunning() { return }
        _ = try Exec.spawnDaemon(executable, arguments: ["--run-dir", Posix.dirname(of: state.root)],
                                 environment: environment, logFile: state.logFile)
        let deadline = Posix.monotonicNanos() + UInt64(waitMs) * 1_000_000
        while Posix.monotonicNanos() < deadline {
            if isRunning() { return }
            usleep(5000)
        }
        let log = (try? Posix.readText(state.logFile)) ?? nil
        let tail = log.map { String($0.split(separator: "\n").suffix(3).joined(separator: " | ")) } ?? ""
        throw CNIError(.dnsServer, "DNS server \(executable) did not start within \(waitMs) ms\(tail.isEmpty ? "" : ": " + tail)")
    }
}

extension CNIErrorCode {
    /// The DNS server could not be started or refused a change.
    public static let dnsServer = CNIErrorCode(rawValue: 109)
}
