// Network namespaces: open a netns file, create and delete named namespaces (iproute2's
// /run/netns layout), and run work inside one on a dedicated, short-lived thread.
//
// setns(2) is per thread, and Swift concurrency and Dispatch move work between threads,
// so setns is only ever called on a fresh pthread that ends right after the work. What
// that work usually does is open a socket, which stays bound to the namespace afterwards.

#if canImport(Glibc)
import Glibc
#endif
import CShim
import Base

/// An open network namespace file.
public final class NetworkNamespace: @unchecked Sendable {
    public let fd: Int32
    public let path: String

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    public enum OpenError: ClassifiedError {
        case missing(String)
        case notANetns(String, String)
        case system(SystemError)

        public var description: String {
            switch self {
            case .missing(let p): return "network namespace \"\(p)\" does not exist"
            case .notANetns(let p, let why): return "\"\(p)\" is not a network namespace (\(why))"
            case .system(let e): return e.description
            }
        }

        public var kind: FailureKind {
            switch self {
            case .missing: return .namespaceMissing
            case .notANetns: return .notANamespace
            case .system: return .io
            }
        }
    }

    /// Opens `path` and verifies it is a network namespace.
    public static func open(_ path: String) throws(OpenError) -> NetworkNamespace {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT || errno == ENOTDIR { throw .missing(path) }
            throw .system(SystemError("open", path))
        }
        let magic = cshim_fstatfs_type(fd)
        if magic == 0 {
            let e = errno
            close(fd)
            throw .system(SystemError("statfs", path, errno: e))
        }
        guard magic == cshim_nsfs_magic() || magic == cshim_proc_magic() else {
            close(fd)
            throw .notANetns(path, "not a namespace file")
        }
        let t = cshim_ns_get_nstype(fd)
        if t >= 0 && t != cshim_clone_newnet() {
            close(fd)
            throw .notANetns(path, "another kind of namespace")
        }
        return NetworkNamespace(fd: fd, path: path)
    }

    /// The calling thread's network namespace.
    public static func current() throws(OpenError) -> NetworkNamespace {
        try open("/proc/thread-self/ns/net")
    }

    /// Inode of the namespace (identity).
    public var inode: UInt64 {
        var st = stat()
        fstat(fd, &st)
        return UInt64(st.st_ino)
    }
}

/// A name for a named namespace that cannot be used (taken, or not a file name).
public struct NamespaceNameError: ClassifiedError {
    public var description: String
    public var kind: FailureKind
    public init(_ d: String, kind: FailureKind = .invalidArgument) { description = d; self.kind = kind }
}

/// Named namespaces under a directory (default /run/netns, as `ip netns` keeps them).
public enum NamedNamespaces {
    public static let defaultDirectory = "/run/netns"

    public static func path(_ name: String, directory: String = defaultDirectory) -> String {
        Posix.join(directory, name)
    }

    /// Creates a named network namespace (like `ip netns add NAME`).
    public static func create(_ name: String, directory: String = defaultDirectory) throws {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != "..", !name.utf8.contains(0) else {
            throw NamespaceNameError("invalid namespace name \"\(name)\"")
        }
        try Posix.makeDirectories(directory)
        if cshim_make_shared_mount(directory) != 0 {
            throw SystemError("make shared mount", directory)
        }
        let p = path(name, directory: directory)
        let fd = Glibc.open(p, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0)
        if fd < 0 {
            if errno == EEXIST { throw NamespaceNameError("network namespace \"\(name)\" already exists") }
            throw SystemError("create", p)
        }
        close(fd)
        let rc = NetnsThread.runDetachedFromNetns { cshim_unshare_netns_and_mount(p) == 0 ? 0 : errno }
        if rc != 0 {
            unlink(p)
            throw SystemError("create network namespace", p, errno: rc)
        }
    }

    /// Deletes a named namespace (like `ip netns del NAME`); missing is not an error.
    /// Returns whether it existed.
    @discardableResult
    public static func delete(_ name: String, directory: String = defaultDirectory) throws -> Bool {
        let p = path(name, directory: directory)
        if !Posix.exists(p) { return false }
        if cshim_umount_detach(p) != 0 && errno != EINVAL && errno != ENOENT {
            throw SystemError("unmount", p)
        }
        try Posix.remove(p)
        return true
    }

    public static func list(directory: String = defaultDirectory) throws -> [String] {
        (try Posix.listDirectory(directory) ?? []).sorted()
    }

    /// The processes (not this one) whose network namespace is the one at `path`, as
    /// `ip netns pids` finds them.
    public static func pids(inNamespaceAt path: String) -> [pid_t] {
        var target = stat()
        guard stat(path, &target) == 0 else { return [] }
        let me = getpid()
        return (((try? Posix.listDirectory("/proc")) ?? nil) ?? []).compactMap { Int32($0) }.filter { pid in
            var st = stat()
            return pid != me && stat("/proc/\(pid)/ns/net", &st) == 0 && st.st_ino == target.st_ino && st.st_dev == target.st_dev
        }
    }
}

/// Runs a closure on a new pthread that has entered a network namespace; the thread ends
/// when the closure returns, so its namespace never leaks to other work.
public enum NetnsThread {
    final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    static func spawnAndJoin(_ body: @escaping () -> Void) {
        let box = Box(body)
        let ctx = Unmanaged.passRetained(box).toOpaque()
        var tid = pthread_t()
        // A small stack: the work done on these threads is a few system calls.
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        pthread_attr_setstacksize(&attr, 256 * 1024)
        defer { pthread_attr_destroy(&attr) }
        let rc = pthread_create(&tid, &attr, { ctx in
            let b = Unmanaged<Box>.fromOpaque(ctx!).takeRetainedValue()
            b.body()
            return nil
        }, ctx)
        if rc != 0 {
            // Could not start a thread: run nothing, report through the body's result holder.
            Unmanaged<Box>.fromOpaque(ctx).release()
            return
        }
        pthread_join(tid, nil)
    }

    public struct ThreadError: ClassifiedError {
        public var description: String
        public var kind: FailureKind { .kernel }
    }

    /// Runs `body` inside the namespace `ns` on a dedicated thread.
    public static func run<T>(in ns: NetworkNamespace, _ body: () throws -> T) throws -> T {
        var result: Result<T, any Error>? = nil
        withoutActuallyEscaping(body) { body in
            let fd = ns.fd
            let path = ns.path
            nonisolated(unsafe) let b = body
            nonisolated(unsafe) var r: Result<T, any Error>? = nil
            spawnAndJoin {
                if cshim_setns(fd, cshim_clone_newnet()) != 0 {
                    r = .failure(SystemError("setns", path))
                    return
                }
                do { r = .success(try b()) } catch { r = .failure(error) }
            }
            result = r
        }
        guard let result else { throw ThreadError(description: "could not start a thread to enter \(ns.path)") }
        return try result.get()
    }

    /// Runs `body` on a dedicated thread (for unshare); returns its value.
    static func runDetachedFromNetns(_ body: @escaping () -> Int32) -> Int32 {
        nonisolated(unsafe) var r: Int32 = EAGAIN
        spawnAndJoin { r = body() }
        return r
    }
}
