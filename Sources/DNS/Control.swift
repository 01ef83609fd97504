// The plugin's side of the DNS server: its control socket (see `Daemon`) and starting the
// server on demand.
//
// Requests: "update <network> [<endpoint key>]" (re-read that network's records from disk,
// or just one endpoint and the network settings), "has <network> <endpoint key>" (is the
// endpoint served, with the addresses on disk), "status" (counts). Replies start with "ok"
// or "error".

#if canImport(Glibc)
import Glibc
#endif
import Base

/// The DNS server's daemon files and control socket (under `<run dir>/dns`).
public typealias DNSControlUnavailable = DaemonUnavailable

public struct DNSControl: Sendable {
    public let state: DNSState
    public var daemon: Daemon { Daemon(root: state.root, role: .dnsServer) }

    public init(state: DNSState) { self.state = state }

    public func request(_ line: String, timeoutMs: Int = 5000) throws -> String {
        try daemon.request(line, timeoutMs: timeoutMs)
    }

    public func isRunning() -> Bool { daemon.isRunning() }

    /// Makes sure the server runs (it loads every record on disk before it answers).
    public func ensureServer(executable: String, environment: [String], waitMs: Int = 5000) throws {
        try daemon.ensureRunning(executable: executable, arguments: ["--run-dir", state.runDirectory],
                                 environment: environment, waitMs: waitMs)
    }
}
