// Thin typed wrappers over the POSIX calls the suite needs (files, locks, directories),
// outlined in one place. Errors carry the errno and the path.

#if canImport(Glibc)
import Glibc
#endif
import CShim

/// A failed system call: the operation, the object it was applied to, and errno.
public struct SystemError: ClassifiedError, Equatable, Sendable {
    public var operation: String
    public var object: String
    public var errno: Int32

    public init(_ operation: String, _ object: String, errno e: Int32 = Glibc.errno) {
        self.operation = operation
        self.object = object
        self.errno = e
    }

    public var description: String {
        "\(operation) \(object): \(String(cString: strerror(errno))) (errno \(errno))"
    }

    public var kind: FailureKind { .io }
}

public enum Posix {
    /// Reads everything from a file descriptor until EOF.
    public static func readAll(fd: Int32) throws(SystemError) -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("read", "fd \(fd)")
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    /// Writes all bytes to a file descriptor.
    public static func writeAll(fd: Int32, _ bytes: [UInt8]) throws(SystemError) {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("write", "fd \(fd)")
            }
            off += n
        }
    }

    /// Writes all of `bytes` to a socket; a peer that went away is an error (EPIPE), never
    /// the SIGPIPE that would kill this process.
    public static func sendAll(fd: Int32, _ bytes: [UInt8]) throws(SystemError) {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("send", "fd \(fd)")
            }
            off += n
        }
    }

    public static func writeStdout(_ s: String) {
        try? writeAll(fd: 1, Array(s.utf8))
    }

    public static func writeStderr(_ s: String) {
        try? writeAll(fd: 2, Array(s.utf8))
    }

    /// The whole file, or nil if it does not exist.
    public static func readFile(_ path: String) throws(SystemError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw SystemError("open", path)
        }
        defer { close(fd) }
        do { return try readAll(fd: fd) } catch { throw SystemError("read", path, errno: error.errno) }
    }

    public static func readText(_ path: String) throws(SystemError) -> String? {
        guard let b = try readFile(path) else { return nil }
        return String(decoding: b, as: UTF8.self)
    }

    /// Writes a file atomically: a temp file next to it, fsync, rename over the target.
    public static func writeFileAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644, sync: Bool = true) throws(SystemError) {
        let tmp = path + ".tmp.\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        if fd < 0 { throw SystemError("create", tmp) }
        do {
            try writeAll(fd: fd, bytes)
        } catch {
            close(fd)
            unlink(tmp)
            throw SystemError("write", tmp, errno: error.errno)
        }
        if sync && fsync(fd) != 0 {
            let e = errno
            close(fd); unlink(tmp)
            throw SystemError("fsync", tmp, errno: e)
        }
        close(fd)
        if rename(tmp, path) != 0 {
            let e = errno
            unlink(tmp)
            throw SystemError("rename", "\(tmp) to \(path)", errno: e)
        }
    }

    /// Whether `name` is a temporary file of `writeFileAtomically` (`<file>.tmp.<pid>`),
    /// and for which file.
    public static func temporaryTarget(_ name: String) -> String? {
        let u = Array(name.utf8), marker = Array(".tmp.".utf8)
        var digits = 0
        while digits < u.count, u[u.count - 1 - digits] >= 0x30, u[u.count - 1 - digits] <= 0x39 { digits += 1 }
        let end = u.count - digits
        guard digits > 0, end >= marker.count, Array(u[(end - marker.count)..<end]) == marker else { return nil }
        return String(decoding: u[..<(end - marker.count)], as: UTF8.self)
    }

    /// Removes the temporary files a writer killed between writing and renaming left in
    /// `directory`: those for file `name`, or all when `name` is nil. Callers hold the lock
    /// every writer of these files takes, so none belongs to a live writer; where writers take
    /// no common lock, `deadWritersOnly` keeps the files of writers still running. Returns
    /// how many were removed.
    @discardableResult
    public static func removeTemporaries(in directory: String, of name: String? = nil,
                                         deadWritersOnly: Bool = false) throws(SystemError) -> Int {
        var n = 0
        for f in try listDirectory(directory) ?? [] {
            guard let target = temporaryTarget(f), name == nil || target == name! else { continue }
            if deadWritersOnly, let dot = f.utf8.lastIndex(of: UInt8(ascii: ".")),
               let pid = Int32(String(f[f.utf8.index(after: dot)...])), kill(pid, 0) == 0 || errno != ESRCH {
                continue
            }
            if try remove(join(directory, f)) { n += 1 }
        }
        return n
    }

    /// Writes (creating or truncating) a file in place, optionally fsync'ed.
    public static func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644, sync: Bool = false) throws(SystemError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        if fd < 0 { throw SystemError("create", path) }
        defer { close(fd) }
        do { try writeAll(fd: fd, bytes) } catch { throw SystemError("write", path, errno: error.errno) }
        if sync && fsync(fd) != 0 { throw SystemError("fsync", path) }
    }

    /// Rewrites a small file in place: write at offset 0, then cut it to the new length
    /// (never to zero first, so ext4's replace-by-truncate heuristic does not flush it).
    public static func overwrite(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(SystemError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, mode)
        if fd < 0 { throw SystemError("open", path) }
        defer { close(fd) }
        let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        if n != bytes.count { throw SystemError("write", path) }
        if ftruncate(fd, off_t(bytes.count)) != 0 { throw SystemError("truncate", path) }
    }

    /// link(2); false if `to` already exists.
    public static func link(_ from: String, _ to: String) throws(SystemError) -> Bool {
        if Glibc.link(from, to) != 0 {
            if errno == EEXIST { return false }
            throw SystemError("link", "\(from) to \(to)")
        }
        return true
    }

    public static var processID: Int32 { getpid() }

    /// Creates `path` only if it does not exist (O_EXCL), with the given content.
    /// Returns false if it already exists.
    public static func createExclusive(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(SystemError) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        if fd < 0 {
            if errno == EEXIST { return false }
            throw SystemError("create", path)
        }
        do {
            try writeAll(fd: fd, bytes)
        } catch {
            close(fd); unlink(path)
            throw SystemError("write", path, errno: error.errno)
        }
        close(fd)
        return true
    }

    /// Removes a file; a missing file is not an error. Returns whether it existed.
    @discardableResult
    public static func remove(_ path: String) throws(SystemError) -> Bool {
        if unlink(path) != 0 {
            if errno == ENOENT { return false }
            throw SystemError("remove", path)
        }
        return true
    }

    /// Removes an empty directory; false if it did not exist.
    @discardableResult
    public static func removeDirectory(_ path: String) throws(SystemError) -> Bool {
        if rmdir(path) != 0 {
            if errno == ENOENT { return false }
            throw SystemError("rmdir", path)
        }
        return true
    }

    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// mkdir -p.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(SystemError) {
        if path.isEmpty || isDirectory(path) { return }
        if mkdir(path, mode) == 0 { return }
        if errno == EEXIST && isDirectory(path) { return }
        if errno != ENOENT { throw SystemError("mkdir", path) }
        let parent = dirname(of: path)
        if parent != path { try makeDirectories(parent, mode: mode) }
        if mkdir(path, mode) != 0 && !(errno == EEXIST && isDirectory(path)) {
            throw SystemError("mkdir", path)
        }
    }

    /// Names in a directory (without "." and ".."), or nil if it does not exist.
    public static func listDirectory(_ path: String) throws(SystemError) -> [String]? {
        guard let d = opendir(path) else {
            if errno == ENOENT { return nil }
            throw SystemError("opendir", path)
        }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out
    }

    public static func dirname(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    public static func basename(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    public static func join(_ a: String, _ b: String) -> String {
        if a.isEmpty { return b }
        return a.hasSuffix("/") ? a + b : a + "/" + b
    }

    /// The path of the running executable (resolved).
    public static func executablePath() -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func realPath(_ p: String) -> String? {
        guard let r = realpath(p, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }

    public static func isWritable(_ path: String) -> Bool { access(path, W_OK) == 0 }
    public static func isReadable(_ path: String) -> Bool { access(path, R_OK) == 0 }

    public static func isExecutableFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && access(path, X_OK) == 0
    }

    /// The process environment, as "KEY=value" strings.
    public static func environment() -> [String] {
        var out: [String] = []
        if let envp = cshim_environ() {
            var i = 0
            while let p = envp[i] {
                out.append(String(cString: p))
                i += 1
            }
        }
        return out
    }

    public static func getenv(_ k: String) -> String? {
        guard let p = Glibc.getenv(k) else { return nil }
        return String(cString: p)
    }

    /// Monotonic clock in nanoseconds.
    /// The calling thread's network namespace as a number unique for the boot: the kernel's
    /// netns cookie (SO_NETNS_COOKIE, Linux 5.14+; never reused while the machine runs),
    /// else the namespace's inode. Daemons report it so that a plugin uses only the one that
    /// serves its own namespace.
    public static func netnsCookie() -> UInt64 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd >= 0 {
            defer { close(fd) }
            var v: UInt64 = 0
            var len = socklen_t(MemoryLayout<UInt64>.size)
            if getsockopt(fd, SOL_SOCKET, 71 /* SO_NETNS_COOKIE */, &v, &len) == 0, v != 0 { return v }
        }
        var st = stat()
        if stat("/proc/thread-self/ns/net", &st) == 0 { return UInt64(st.st_ino) }
        return 0
    }

    public static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// An exclusive flock(2) on a file, held until `unlock()` or deinit.
public final class FileLock {
    public let path: String
    private var fd: Int32

    /// Opens (creating) `path` and takes an exclusive lock, waiting for it.
    public init(path: String) throws(SystemError) {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd < 0 {
            // The reference creates "lock" read-only-openable; fall back to read-only.
            fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw SystemError("open lock", path) }
        }
        while flock(fd, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            let e = errno
            close(fd)
            fd = -1
            throw SystemError("flock", path, errno: e)
        }
    }

    public func unlock() {
        if fd >= 0 {
            flock(fd, LOCK_UN)
            close(fd)
            fd = -1
        }
    }

    deinit { unlock() }
}

extension String {
    /// The string without leading and trailing spaces, tabs, CR and LF.
    public func trimmingWhitespace() -> String {
        var u = Array(utf8)[...]
        while let f = u.first, f == 0x20 || f == 0x0A || f == 0x0D || f == 0x09 { u = u.dropFirst() }
        while let l = u.last, l == 0x20 || l == 0x0A || l == 0x0D || l == 0x09 { u = u.dropLast() }
        return String(decoding: u, as: UTF8.self)
    }
}

