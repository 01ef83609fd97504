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
    }

    public static func run(_ path: String, arguments: [String] = [], environment: [String], stdin: [UInt8]) throws(SystemError) -> Output {
        var inPipe: [Int32] = [-1, -1]
        var outPipe: [Int32] = [-1, -1]
        guard cshim_pipe_cloexec(&inPipe) == 0 else { throw SystemError("pipe", path) }
        guard cshim_pipe_cloexec(&outPipe) == 0 else {
            close(inPipe[0]); close(inPipe[1])
            throw SystemError("pipe", path)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)

        let argv = [path] + arguments
        var pid: pid_t = 0
        let rc = withCStrings(argv) { cargv in
            withCStrings(environment) { cenv in
                posix_spawn(&pid, path, &actions, nil, cargv, cenv)
            }
        }
        close(inPipe[0])
        close(outPipe[1])
        if rc != 0 {
            close(inPipe[1]); close(outPipe[0])
            throw SystemError("exec", path, errno: rc)
        }

        // Feed stdin and drain stdout together so neither side can block the other.
        var out: [UInt8] = []
        var written = 0
        var inFD = inPipe[1]
        let outFD = outPipe[0]
        if stdin.isEmpty { close(inFD); inFD = -1 }
        var buf = [UInt8](repeating: 0, count: 65536)
        var outOpen = true
        // Ignore SIGPIPE for the write side (a plugin may exit without reading).
        signal(SIGPIPE, SIG_IGN)
        while outOpen {
            var fds: [pollfd] = [pollfd(fd: outFD, events: Int16(POLLIN), revents: 0)]
            if inFD >= 0 { fds.append(pollfd(fd: inFD, events: Int16(POLLOUT), revents: 0)) }
            let pr = poll(&fds, nfds_t(fds.count), -1)
            if pr < 0 {
                if errno == EINTR { continue }
                break
            }
            if fds[0].revents != 0 {
                let n = buf.withUnsafeMutableBytes { read(outFD, $0.baseAddress, $0.count) }
                if n > 0 {
                    out.append(contentsOf: buf[0..<n])
                } else if n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN) {
                    outOpen = false
                }
            }
            if inFD >= 0 && fds.count > 1 && fds[1].revents != 0 {
                let n = stdin.withUnsafeBytes { write(inFD, $0.baseAddress! + written, $0.count - written) }
                if n > 0 { written += n }
                if n < 0 && errno != EINTR && errno != EAGAIN { written = stdin.count }
                if written >= stdin.count { close(inFD); inFD = -1 }
            }
        }
        if inFD >= 0 { close(inFD) }
        close(outFD)
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
        return Output(status: code, stdout: out)
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
