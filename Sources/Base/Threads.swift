// Threads and a mutex for the daemons (plain pthreads: a daemon's threads never change
// network namespace, and blocking calls are fine on them).

#if canImport(Glibc)
import Glibc
#endif

/// A mutual-exclusion lock for threads (the daemons' state).
public final class Mutex: @unchecked Sendable {
    private var m = pthread_mutex_t()
    public init() { pthread_mutex_init(&m, nil) }
    deinit { pthread_mutex_destroy(&m) }
    public func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        return try body()
    }
}

/// Plain threads for the daemons (no Swift concurrency: a daemon's threads never change
/// network namespace, and blocking calls are fine on them).
public enum Threads {
    /// Runs `body` on a new detached thread.
    public static func detach(_ body: @escaping () -> Void) {
        final class Box { let f: () -> Void; init(_ f: @escaping () -> Void) { self.f = f } }
        let ctx = Unmanaged.passRetained(Box(body)).toOpaque()
        var t = pthread_t()
        let rc = pthread_create(&t, nil, { arg in
            Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue().f()
            return nil
        }, ctx)
        // No thread to be had (EAGAIN): the work is done here rather than lost.
        if rc != 0 { Unmanaged<Box>.fromOpaque(ctx).takeRetainedValue().f(); return }
        pthread_detach(t)
    }
}

