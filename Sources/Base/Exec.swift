#if canImport(Glibc)
import Glibc
#endif
import CShim

/// Runs an executable the way a CNI runtime runs a plugin: given environment, bytes on
/// stdin, stdout captured, stderr inherited.
public enum Exec {
    public struct Output: Sendable {
        /// Exit status (0...255), or 128+signal if killed by a signal.
        public var status: Int32
        public var stdout: [UInt8]
        /// Captured only when asked for; otherwise stderr is inherited.
        public var stderr: [UInt8] = []
    }

    /// Runs `path` with a clean signal state (default dispositions, nothing blocked, whatever
    /// the caller had), feeding `stdin` and collecting stdout (and stderr if `captureStderr`).
    public static func run(_ path: String, arguments: [String] = [], environment: [String], stdin: [UInt8],
                           captureStderr: Bool = false) throws(SystemError) -> Output {
        var inPipe: [Int32] = [-1, -1]
        var outPipe: [Int32] = [-1, -1]
        var errPipe: [Int32] = [-1, -1]
        guard cshim_pipe_cloexec(&inPipe) == 0 else { throw SystemError("pipe", path) }
        guard cshim_pipe_cloexec(&outPipe) == 0 else {
            close(inPipe[0]); close(inPipe[1])
            throw SystemError("pipe", path)
        }
        if captureStderr && cshim_pipe_cloexec(&errPipe) != 0 {
            close(inPipe[0]); close(inPipe[1]); close(outPipe[0]); close(outPipe[1])
            throw SystemError("pipe", path)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        if captureStderr { posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2) }

        var pid: pid_t = 0
        let rc = spawn(&pid, path, arguments, environment, &actions, newSession: false)
        close(inPipe[0])
        close(outPipe[1])
        if captureStderr { close(errPipe[1]) }
        if rc != 0 {
            close(inPipe[1]); close(outPipe[0])
            if captureStderr { close(errPipe[0]) }
            throw SystemError("exec", path, errno: rc)
        }

        // Feed stdin and drain stdout (and stderr) together so no side can block another.
        var out: [UInt8] = []
        var err: [UInt8] = []
        var written = 0
        var inFD = inPipe[1]
        var outFD = outPipe[0]
        var errFD = captureStderr ? errPipe[0] : -1
        if stdin.isEmpty { close(inFD); inFD = -1 }
        var buf = [UInt8](repeating: 0, count: 65536)
        // A plugin may exit without reading its stdin: writing must not kill us.
        signal(SIGPIPE, SIG_IGN)
        while outFD >= 0 || errFD >= 0 {
            var fds: [pollfd] = []
            if outFD >= 0 { fds.append(pollfd(fd: outFD, events: Int16(POLLIN), revents: 0)) }
            if errFD >= 0 { fds.append(pollfd(fd: errFD, events: Int16(POLLIN), revents: 0)) }
            if inFD >= 0 { fds.append(pollfd(fd: inFD, events: Int16(POLLOUT), revents: 0)) }
            let pr = poll(&fds, nfds_t(fds.count), -1)
            if pr < 0 {
                if errno == EINTR { continue }
                break
            }
            for f in fds where f.revents != 0 {
                if f.fd == inFD {
                    let n = stdin.withUnsafeBytes { write(inFD, $0.baseAddress! + written, $0.count - written) }
                    if n > 0 { written += n }
                    if n < 0 && errno != EINTR && errno != EAGAIN { written = stdin.count }
                    if written >= stdin.count { close(inFD); inFD = -1 }
                    continue
                }
                let n = buf.withUnsafeMutableBytes { read(f.fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    if f.fd == outFD { out.append(contentsOf: buf[0..<n]) } else { err.append(contentsOf: buf[0..<n]) }
                } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                    close(f.fd)
                    if f.fd == outFD { outFD = -1 } else { errFD = -1 }
                }
            }
        }
        if inFD >= 0 { close(inFD) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { throw SystemError("wait", path) }
        }
        let code: Int32
        if status & 0x7F == 0 {
            code = (status >> 8) & 0xFF
        } else {
            code = 128 + (status & 0x7F)
        }
        return Output(status: code, stdout: out, stderr: err)
    }

    /// Starts a long-running process detached from the caller: its own session, stdin and
    /// stdout on /dev/null, stderr appended to `logFile`, default signal state. Not waited
    /// for: when the caller exits, init adopts it.
    public static func spawnDaemon(_ path: String, arguments: [String] = [], environment: [String],
                                   logFile: String) throws(SystemError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, logFile, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        var pid: pid_t = 0
        let rc = spawn(&pid, path, arguments, environment, &actions, newSession: true)
        if rc != 0 { throw SystemError("exec", path, errno: rc) }
        return pid
    }

    /// posix_spawn with a clean signal state: children start with default dispositions and
    /// an empty mask (a plugin, or podman, conmon…, must not inherit an ignored SIGCHLD or
    /// SIGPIPE from us); with `newSession`, in a session of their own. Returns the error.
    static func spawn(_ pid: inout pid_t, _ path: String, _ arguments: [String], _ environment: [String],
                      _ actions: inout posix_spawn_file_actions_t, newSession: Bool) -> Int32 {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var all = sigset_t()
        sigfillset(&all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setsigmask(&attr, &none)
        let setsid: Int32 = newSession ? 0x80 : 0  // POSIX_SPAWN_SETSID (GNU; not imported)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | setsid))
        var p: pid_t = 0
        let rc = withCStrings([path] + arguments) { cargv in
            withCStrings(environment) { cenv in posix_spawn(&p, path, &actions, &attr, cargv, cenv) }
        }
        pid = p
        return rc
    }

    /// Finds an executable named `name` in the directories of `path`.
    public static func find(_ name: String, in path: [String]) -> String? {
        if name.contains("/") { return nil }
        for dir in path {
            let p = Posix.join(dir, name)
            if Posix.isExecutableFile(p) { return p }
        }
        return nil
    }
}

/// Calls `body` with a NULL-terminated C array of the strings.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var ptrs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    ptrs.append(nil)
    defer { for p in ptrs { free(p) } }
    return ptrs.withUnsafeBufferPointer { body($0.baseAddress!) }
}
