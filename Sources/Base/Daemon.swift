// The suite's daemons (the DNS server, the overlay agent): started on demand by the plugin
// that needs them (found next to its own executable), one per run directory (a lock held
// for life, a pid file), and told about changes over a unix control socket carrying one
// request line and one reply line ("ok…" or "error …").

#if canImport(Glibc)
import Glibc
#endif

public struct DaemonUnavailable: Error, CustomStringConvertible {
    public var reason: String
    /// The request reached the daemon (which may have acted on it) before the failure: not
    /// safe to send again blindly.
    public var delivered: Bool
    public init(_ r: String, delivered: Bool = false) { reason = r; self.delivered = delivered }
    public var description: String { "control socket: \(reason)" }
}

/// A daemon could not be started, stopped answering, or serves another network namespace.
public struct DaemonError: ClassifiedError, Sendable {
    public var role: DaemonRole
    public var message: String
    public init(_ role: DaemonRole, _ message: String) { self.role = role; self.message = message }
    public var kind: FailureKind { .daemon(role) }
    public var description: String { message }
}

/// Where a daemon keeps its files, and how to reach and start it.
public struct Daemon: Sendable {
    /// Its directory under the run directory (control.sock, server.pid, server.lock, server.log).
    public let root: String
    public let role: DaemonRole
    public var name: String { role.rawValue }

    public init(root: String, role: DaemonRole) { self.root = root; self.role = role }

    public var controlSocket: String { Posix.join(root, "control.sock") }
    public var pidFile: String { Posix.join(root, "server.pid") }
    public var lockFile: String { Posix.join(root, "server.lock") }
    public var logFile: String { Posix.join(root, "server.log") }

    static func unixAddress(_ path: String) -> sockaddr_un? {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let p = Array(path.utf8)
        guard p.count < MemoryLayout.size(ofValue: addr.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, c) in p.enumerated() { raw[i] = c }
            raw[p.count] = 0
        }
        return addr
    }

    // MARK: client side

    /// Sends one request and returns the reply line. Throws `DaemonUnavailable` when nothing
    /// listens (or answers in time).
    public func request(_ line: String, timeoutMs: Int = 5000) throws -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket", "AF_UNIX") }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeoutMs / 1000, tv_usec: (timeoutMs % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard var addr = Daemon.unixAddress(controlSocket) else { throw DaemonUnavailable("path \(controlSocket) is too long") }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 { throw DaemonUnavailable("\(controlSocket): \(String(cString: strerror(errno)))") }
        do { try Posix.sendAll(fd: fd, Array((line + "\n").utf8)) } catch {
            throw DaemonUnavailable("sending \"\(Daemon.head(line))\": \(error)")
        }
        var reply: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while !reply.contains(10) {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 { reply += buf[0..<n]; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                throw DaemonUnavailable("no reply to \"\(Daemon.head(line))\" within \(timeoutMs) ms", delivered: true)
            }
            break
        }
        guard let nl = reply.firstIndex(of: 10) else { throw DaemonUnavailable("\(name) closed the connection on \"\(Daemon.head(line))\"", delivered: true) }
        return String(decoding: reply[..<nl], as: UTF8.self)
    }

    /// A request as quoted in errors: its verb and the start of what follows.
    static func head(_ line: String) -> String { line.count > 80 ? String(line.prefix(80)) + "…" : line }

    /// The longest request line a daemon reads (a plugin's whole configuration fits).
    public static let maxRequest = 1 << 20

    /// True when the daemon answers "status" (within 5 s: a busy host is slow, not down).
    public func isRunning() -> Bool {
        (try? request("status", timeoutMs: 5000))?.hasPrefix("ok") ?? false
    }

    /// The daemon's pid if its pid file names a live process.
    public func pid() -> Int32? {
        guard let t = (try? Posix.readText(pidFile)) ?? nil, let p = Int32(t.trimmingWhitespace()), kill(p, 0) == 0 else { return nil }
        return p
    }

    /// The `netns=<cookie>` a daemon's status reply names: the network namespace it serves.
    public static func servedNamespace(_ status: String) -> UInt64? {
        for f in status.split(separator: " ") where f.hasPrefix("netns=") { return UInt64(f.dropFirst(6)) }
        return nil
    }

    /// Throws unless the running daemon serves the caller's network
    /// namespace: a daemon of another namespace (a nested runtime, another simulated host, a
    /// namespace deleted but still held) would take the work and serve none of it here.
    func checkNamespace(_ answered: String? = nil) throws(DaemonError) {
        guard let status = answered ?? (try? request("status", timeoutMs: 5000)), status.hasPrefix("ok") else {
            throw DaemonError(role, "\(name) stopped answering on \(controlSocket)")
        }
        let mine = Posix.netnsCookie()
        guard let theirs = Daemon.servedNamespace(status) else {
            throw DaemonError(role, "\(name) on \(controlSocket) does not say which network namespace it serves")
        }
        if theirs != mine {
            throw DaemonError(role, "\(name)\(pid().map { " (pid \($0))" } ?? "") on \(controlSocket) serves another network namespace (netns cookie \(theirs); this one is \(mine)): give each network namespace its own SWIFTCNI_RUN_DIR and SWIFTCNI_STATE_DIR")
        }
    }

    /// Makes sure the daemon runs and serves the caller's network namespace: if none
    /// answers, starts `executable` (detached, its stderr to the log) and waits until it
    /// answers.
    /// The daemon's status line, if it answers (within 5 s).
    func status() -> String? {
        guard let s = try? request("status", timeoutMs: 5000), s.hasPrefix("ok") else { return nil }
        return s
    }

    public func ensureRunning(executable: String, arguments: [String], environment: [String], waitMs: Int = 5000) throws {
        // One status request both says it runs and which namespace it serves.
        if let s = status() { return try checkNamespace(s) }
        guard Posix.isExecutableFile(executable) else {
            throw DaemonError(role, "\(name) \(executable) not found (it is installed next to the plugins)")
        }
        try Posix.makeDirectories(root)
        // Serialize starters: only one of several concurrent plugins spawns.
        let lock = try FileLock(path: Posix.join(root, "start.lock"))
        defer { lock.unlock() }
        if let s = status() { return try checkNamespace(s) }
        // Spawned from this (the main) thread, never one that entered another namespace: the
        // daemon serves the caller's.
        _ = try Exec.spawnDaemon(executable, arguments: arguments, environment: environment, logFile: logFile)
        let deadline = Posix.monotonicNanos() + UInt64(waitMs) * 1_000_000
        while Posix.monotonicNanos() < deadline {
            if let s = status() { return try checkNamespace(s) }
            usleep(5000)
        }
        let log = (try? Posix.readText(logFile)) ?? nil
        let tail = log.map { String($0.split(separator: "\n").suffix(3).joined(separator: " | ")) } ?? ""
        throw DaemonError(role, "\(name) \(executable) did not start within \(waitMs) ms\(tail.isEmpty ? "" : ": " + tail)")
    }

    // MARK: daemon side

    /// Takes the daemon's lock (waiting up to 2 s for a predecessor that is exiting) and
    /// writes the pid file. False when another instance holds the lock.
    public func claim() throws -> Bool {
        try Posix.makeDirectories(root)
        let fd = open(lockFile, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemError("open", lockFile) }
        for _ in 0..<100 {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 {
                try Posix.overwrite(pidFile, Array("\(getpid())\n".utf8))
                return true  // the descriptor stays open: the lock lives as long as the process
            }
            usleep(20000)
        }
        close(fd)
        return false
    }

    /// Binds and listens on the control socket, before the daemon reads its state: a writer
    /// that changes the state and then asks finds either no socket (so its change is in what
    /// the daemon reads) or a socket whose backlog keeps its request until the daemon serves
    /// it, after reading. No change is lost in between.
    public func bindControl() throws -> Int32 {
        let path = controlSocket
        _ = try? Posix.remove(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket", "AF_UNIX") }
        guard var addr = Daemon.unixAddress(path) else { throw SystemError("bind", path, errno: ENAMETOOLONG) }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw SystemError("bind", path) }
        chmod(path, 0o600)
        guard listen(fd, 256) == 0 else { throw SystemError("listen", path) }
        return fd
    }

    /// Serves the control socket (from `bindControl`): each request line goes to `handle`,
    /// its reply goes back. Requests are handled one after the other on the calling thread,
    /// or each on a thread of its own when `concurrent` (a request that waits must not hold
    /// up the others). `idle` is asked about once a second; when it has said true for
    /// `idleExit` seconds in a row (no request came or is running meanwhile), the daemon exits
    /// — never in its first 5 s: the plugin that started it is still on its way.
    public func serve(listener fd: Int32, idleExit: Int, concurrent: Bool = false, idle: () -> Bool,
                      beforeExit: () -> Void = {}, handle: @escaping (String) -> String) throws -> Never {
        let path = controlSocket
        let started = Posix.monotonicNanos()
        var idleSince: UInt64? = nil
        let running = Mutex()
        nonisolated(unsafe) var inFlight = 0
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let n = poll(&pfd, 1, 1000)
            if n <= 0 {
                if idle() && running.locked({ inFlight == 0 }) {
                    let now = Posix.monotonicNanos()
                    if let s = idleSince, now - s > UInt64(idleExit) * 1_000_000_000, now - started > 5_000_000_000 {
                        Posix.writeStderr("\(name): nothing left to serve; exiting\n")
                        beforeExit()
                        _ = try? Posix.remove(path)
                        _ = try? Posix.remove(pidFile)
                        exit(0)
                    }
                    if idleSince == nil { idleSince = now }
                } else {
                    idleSince = nil
                }
                continue
            }
            let c = accept(fd, nil, nil)
            if c < 0 { continue }
            idleSince = nil
            if concurrent {
                running.locked { inFlight += 1 }
                Threads.detach {
                    Daemon.answer(c, handle)
                    running.locked { inFlight -= 1 }
                }
            } else {
                Daemon.answer(c, handle)
            }
        }
    }

    /// Reads one request line from connection `c`, writes `handle`'s reply, closes it.
    static func answer(_ c: Int32, _ handle: (String) -> String) {
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var line: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 16384)
        while !line.contains(10), line.count < maxRequest {
            let r = buf.withUnsafeMutableBytes { read(c, $0.baseAddress, $0.count) }
            if r > 0 { line += buf[0..<r] } else if r < 0 && errno == EINTR { continue } else { break }
        }
        if let nl = line.firstIndex(of: 10) {
            let reply = handle(String(decoding: line[..<nl], as: UTF8.self))
            try? Posix.sendAll(fd: c, Array((reply + "\n").utf8))
        }
        close(c)
    }
}
