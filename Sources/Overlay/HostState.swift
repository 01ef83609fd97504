// A host's local overlay state: which overlay networks it has, and its agent's settings.

import Base
import CNI
import EtcdSettings

/// Local state of a host: which overlay networks it has (for the agent), and the agent's
/// own settings. Under the state and run directories, so simulated hosts keep their own.
public enum OverlayLocal {
    public static var networksDirectory: String { Posix.join(Posix.join(SuitePaths.stateDirectory, "overlay"), "networks") }
    public static var agentRoot: String { Posix.join(SuitePaths.runDirectory, "overlay") }
    public static var agentConfig: String { Posix.join(agentRoot, "agent.json") }

    public struct Network: Equatable, Sendable {
        public var name: String
        public var vni: UInt32
        public var vxlan: String
        public var bridge: String
    }

    public static func write(_ cfg: OverlayConfig) throws {
        try Posix.makeDirectories(networksDirectory)
        let j: JSON = ["vni": .int(Int(cfg.vni)), "vxlan": .string(cfg.vxlanName), "bridge": .string(cfg.bridgeName)]
        let path = Posix.join(networksDirectory, cfg.network)
        // Most ADDs find it written already (a write is an fsync).
        if let have = (try? Posix.readFile(path)) ?? nil, have == j.serializedBytes() { return }
        try Posix.writeFileAtomically(path, j.serializedBytes())
    }

    public static func remove(_ network: String) {
        _ = try? Posix.remove(Posix.join(networksDirectory, network))
        // Plugins write this file under no common lock: only dead writers' leftovers go.
        _ = try? Posix.removeTemporaries(in: networksDirectory, of: network, deadWritersOnly: true)
    }

    public static func networks() -> [Network] {
        var out: [Network] = []
        for n in ((try? Posix.listDirectory(networksDirectory)) ?? nil) ?? [] where !n.hasPrefix(".") && Posix.temporaryTarget(n) == nil {
            guard let b = (try? Posix.readFile(Posix.join(networksDirectory, n))) ?? nil, let j = try? JSON.parse(b),
                  let vni = j["vni"]?.intValue, let vx = j["vxlan"]?.stringValue, let br = j["bridge"]?.stringValue else { continue }
            out.append(Network(name: n, vni: UInt32(vni), vxlan: vx, bridge: br))
        }
        return out.sorted { $0.name < $1.name }
    }

    /// The agent's settings: one etcd cluster per host, the host's identity and VTEP.
    public struct AgentSettings: Equatable, Sendable {
        public var etcd: EtcdConfig
        public var host: String
        public var vtep: IPAddress

        public var json: JSON { ["etcd": etcd.json, "host": .string(host), "vtep": .string(vtep.description)] }

        public init(etcd: EtcdConfig, host: String, vtep: IPAddress) { self.etcd = etcd; self.host = host; self.vtep = vtep }

        public init?(bytes: [UInt8]) {
            guard let j = try? JSON.parse(bytes), let e = j["etcd"], let r = try? JSONReader(e, path: "etcd"),
                  let cfg = try? EtcdConfig(r, checkFiles: false), let h = j["host"]?.stringValue,
                  let v = j["vtep"]?.stringValue.flatMap(IPAddress.init) else { return nil }
            self.init(etcd: cfg, host: h, vtep: v)
        }
    }

    public static func readAgentSettings() -> AgentSettings? {
        ((try? Posix.readFile(agentConfig)) ?? nil).flatMap { AgentSettings(bytes: $0) }
    }
}
