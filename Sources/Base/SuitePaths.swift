// Where the suite keeps its files on a host, and the phase trace used for performance work.

#if canImport(Glibc)
import Glibc
#endif

/// Where the suite keeps its files on a host. Each root can be moved (by environment or by
/// a plugin's configuration) so that several simulated hosts can share one machine.
public enum SuitePaths {
    /// Runtime state (locks, daemon pid files): `SWIFTCNI_RUN_DIR`, default /run/swiftcni.
    public static var runDirectory: String {
        Posix.getenv("SWIFTCNI_RUN_DIR").flatMap { $0.isEmpty ? nil : $0 } ?? "/run/swiftcni"
    }

    /// Persistent state: `SWIFTCNI_STATE_DIR`, default /var/lib/swiftcni.
    public static var stateDirectory: String {
        Posix.getenv("SWIFTCNI_STATE_DIR").flatMap { $0.isEmpty ? nil : $0 } ?? "/var/lib/swiftcni"
    }

    /// This host's identity in cluster-wide state: `SWIFTCNI_HOST_ID`, else a random ID kept
    /// in `<stateDirectory>/host-id` (made on first use), so simulated hosts with their own
    /// state roots are distinct hosts.
    public static var hostID: String {
        if let h = Posix.getenv("SWIFTCNI_HOST_ID"), !h.isEmpty { return h }
        let path = Posix.join(stateDirectory, "host-id")
        if let t = (try? Posix.readText(path)) ?? nil, !t.trimmingWhitespace().isEmpty { return t.trimmingWhitespace() }
        var g = SystemRandomNumberGenerator()
        let id = "h" + String(g.next() & 0xFFFF_FFFF_FFFF, radix: 16)
        try? Posix.makeDirectories(stateDirectory)
        // First writer wins; a concurrent one reads the winner's.
        if (try? Posix.createExclusive(path, Array((id + "\n").utf8))) == true { return id }
        return ((try? Posix.readText(path)) ?? nil)?.trimmingWhitespace() ?? id
    }

    /// Takes the named lock under `<runDirectory>/locks/`.
    public static func lock(_ name: String, runDirectory: String? = nil) throws -> FileLock {
        let dir = Posix.join(runDirectory ?? self.runDirectory, "locks")
        let path = Posix.join(dir, name + ".lock")
        do {
            return try FileLock(path: path)
        } catch {
            try Posix.makeDirectories(dir)
            return try FileLock(path: path)
        }
    }
}

/// Phase timing for performance work: with `SWIFTCNI_TRACE=1` in the environment, each
/// `mark` prints the milliseconds since the previous mark (and since start) to stderr.
public enum PhaseTrace {
    nonisolated(unsafe) static var enabled: Bool? = nil
    nonisolated(unsafe) static var start: UInt64 = 0
    nonisolated(unsafe) static var last: UInt64 = 0

    public static func mark(_ label: @autoclosure () -> String) {
        if enabled == nil {
            enabled = Posix.getenv("SWIFTCNI_TRACE") == "1"
            start = Posix.monotonicNanos()
            last = start
        }
        guard enabled == true else { return }
        let now = Posix.monotonicNanos()
        let d = Double(now - last) / 1e6
        let t = Double(now - start) / 1e6
        Posix.writeStderr("[trace] \(label()): +\(fmt(d)) ms (\(fmt(t)) ms)\n")
        last = now
    }

    static func fmt(_ x: Double) -> String {
        let v = Int((x * 1000).rounded())
        let frac = v % 1000
        return "\(v / 1000)." + (frac < 10 ? "00" : frac < 100 ? "0" : "") + "\(frac)"
    }
}
