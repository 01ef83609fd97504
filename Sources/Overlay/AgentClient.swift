// The overlay plugin's only way to the cluster: its host's agent, over the agent's unix
// socket. The plugin links no etcd client; the agent holds the host's etcd session and does
// every read and write there (addresses, the network's definition, endpoints).
//
// A request is one line, "<verb> <JSON>"; the reply one line, "ok <JSON>" or
// "error <CNI error JSON>" (the code and message the plugin reports as they are).

#if canImport(Glibc)
import Glibc
#endif
import Base
import CNI

public enum AgentClient {
    static var agentPath: String {
        Posix.join(Posix.dirname(of: Posix.executablePath() ?? "/opt/cni/bin/overlay"), "swiftcni-overlay-agent")
    }

    public static var daemon: Daemon { Daemon(root: OverlayLocal.agentRoot, role: .overlayAgent) }

    /// How long a plugin waits for an answer: longer than the agent's own etcd timeouts (it
    /// answers code 11 itself when etcd does not answer), so a missing answer means a stuck agent.
    public static let timeoutMs = 15_000

    /// Writes the agent's settings (one etcd cluster per host) and makes sure it runs.
    public static func ensureAgent(_ settings: OverlayLocal.AgentSettings) throws {
        // Read once (an ADD's hot path); again only under the lock, to write.
        let existing = OverlayLocal.readAgentSettings()
        if let existing, existing != settings,
           existing.etcd.endpoints != settings.etcd.endpoints || existing.etcd.prefix != settings.etcd.prefix {
            throw CNIError(.invalidConfig, "\"etcd\": this host's overlay networks use \(existing.etcd.endpoints.map(\.description).joined(separator: ",")) (prefix \(existing.etcd.prefix)); all overlay networks of a host must share one etcd cluster")
        }
        if existing != settings {
            try Posix.makeDirectories(OverlayLocal.agentRoot)
            // Under a lock, and read again: of several first ADDs on a host, one writes the
            // settings; the others find them written (and must not stop the agent it started).
            let lock = try FileLock(path: Posix.join(OverlayLocal.agentRoot, "settings.lock"))
            defer { lock.unlock() }
            let now = OverlayLocal.readAgentSettings()
            if now != settings {
                try Posix.writeFileAtomically(OverlayLocal.agentConfig, settings.json.serializedBytes(), mode: 0o600)
                // A running agent with other settings (a new VTEP address) restarts with these:
                // it is stopped, and gone (its lock free) before a new one starts.
                if now != nil, let pid = daemon.pid() {
                    kill(pid, SIGTERM)
                    let deadline = Posix.monotonicNanos() + 3_000_000_000
                    while kill(pid, 0) == 0 && Posix.monotonicNanos() < deadline { usleep(2000) }
                }
            }
        }
        var env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "SWIFTCNI_RUN_DIR=\(SuitePaths.runDirectory)",
                   "SWIFTCNI_STATE_DIR=\(SuitePaths.stateDirectory)"]
        if let h = Posix.getenv("SWIFTCNI_HOST_ID") { env.append("SWIFTCNI_HOST_ID=\(h)") }
        try daemon.ensureRunning(executable: agentPath, arguments: [], environment: env)
    }

    /// Sends one request. An agent that is not there (killed, or exited as the last network
    /// left), or that died with the request, is started again and asked once more: every
    /// request may be carried out twice (an IPAM ADD carries a token of the plugin's run, so
    /// its retry gets back what the lost attempt claimed).
    public static func call(_ verb: String, _ body: JSON, settings: OverlayLocal.AgentSettings?) throws -> JSON {
        var reply = ""
        for attempt in 0..<2 {
            // The second attempt says it is one: what the first did may have taken effect.
            var b = body
            if attempt == 1, case .object(var o) = body { o["retried"] = true; b = .object(o) }
            do {
                reply = try daemon.request("\(verb) \(b.serialized())", timeoutMs: timeoutMs)
                break
            } catch let e as DaemonUnavailable {
                guard attempt == 0, let settings else {
                    throw CNIError(e.delivered ? .tryAgainLater : .overlayAgent, "overlay agent: \(e)")
                }
                try ensureAgent(settings)
            }
        }
        return try parse(reply, verb: verb)
    }

    static func parse(_ reply: String, verb: String) throws -> JSON {
        if reply.hasPrefix("ok") {
            let rest = reply.dropFirst(2).drop(while: { $0 == " " })
            if rest.isEmpty { return .object(JSONObject()) }
            guard let j = try? JSON.parse(Array(rest.utf8)) else {
                throw CNIError(.overlayAgent, "overlay agent: unreadable answer to \(verb): \(reply.prefix(200))")
            }
            return j
        }
        if reply.hasPrefix("error "), let j = try? JSON.parse(Array(reply.dropFirst(6).utf8)), let e = CNIError.from(json: j) {
            throw e
        }
        throw CNIError(.overlayAgent, "overlay agent: \(reply.hasPrefix("error ") ? String(reply.dropFirst(6)) : reply)")
    }
}

/// host-local's operations for an overlay network, carried out by the agent with its store in
/// etcd: the bridge logic delegates its IPAM here (`Delegate.routed`) as it would to host-local.
public struct AgentIPAM: CNIPlugin {
    public init() {}
    public static var knownArgs: Set<String> { ["IP"] }

    /// Names this plugin run's requests (see `ClusterIPAM.BlockClaim`).
    static let token: String = {
        var g = FastRandom()
        return String(g.next(), radix: 16) + String(g.next(), radix: 16)
    }()

    /// The container's endpoint (without addresses), registered by the ADD's transaction with
    /// the addresses it claims; and the revision that transaction made.
    nonisolated(unsafe) public static var record: EndpointRecord?
    nonisolated(unsafe) public static var revision: Int64?

    func forward(_ req: CNIRequest) throws -> JSON {
        let env = req.env.environmentBlock(command: req.command).filter { $0.hasPrefix("CNI_") }
        var body = JSONObject([("env", .array(env.map { .string($0) })), ("config", .object(req.config.object)), ("token", .string(AgentIPAM.token))])
        if req.command == .add, let r = AgentIPAM.record { body["record"] = r.json }
        return try AgentClient.call("ipam", .object(body), settings: OverlayLocal.readAgentSettings())
    }

    public func add(_ req: CNIRequest) throws -> CNIResult {
        let j = try forward(req)
        AgentIPAM.revision = j["revision"]?.intValue.map(Int64.init)
        do { return try CNIResult(json: j["result"] ?? j, path: "the overlay agent's IPAM result") } catch {
            throw CNIError(.overlayAgent, "overlay agent: unusable IPAM result: \(error)")
        }
    }
    public func del(_ req: CNIRequest) throws { _ = try forward(req) }
    public func check(_ req: CNIRequest) throws { _ = try forward(req) }
    public func gc(_ req: CNIRequest) throws { _ = try forward(req) }
    public func status(_ req: CNIRequest) throws { _ = try forward(req) }
}
