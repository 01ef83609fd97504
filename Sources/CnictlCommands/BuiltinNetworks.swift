import Base
import CNI

/// Docker's predefined `host` and `none` networks. They are no CNI networks: a container on
/// `host` runs in the namespace cnictl runs in (no CNI call, no namespace of its own); one on
/// `none` gets a namespace of its own with only `lo`. Neither can be removed, and a container
/// on one cannot join another network (Docker's messages).
enum BuiltinNetwork: String, CaseIterable {
    case host
    case none

    init?(name: String) { self.init(rawValue: name) }

    /// Docker's driver names: "host" and "null".
    var driver: String { self == .host ? "host" : "null" }

    /// A stable 64-hex-digit ID, the same on every run.
    var id: String { (0..<4).map { stableHash("swiftcni builtin network \(rawValue) \($0)").prefix(16) }.joined() }

    static func refuseRemove(_ name: String) throws {
        if BuiltinNetwork(name: name) != nil { throw CLIError("\(name) is a pre-defined network and cannot be removed") }
    }

    /// Why `network connect NETWORK CONTAINER` cannot be, if a built-in network is involved.
    static func connectRefusal(network: String, container c: ContainerRecord) -> String? {
        if network == "host" || c.mode == .host {
            return c.mode == .host && network != "host"
                ? "container sharing network namespace with another container or host cannot be connected to any other network"
                : "container cannot be disconnected from host network or connected to host network"
        }
        // (BuiltinNetwork.none spelled out: a bare `.none` would be Optional's nil.)
        if network == "none" || c.mode == BuiltinNetwork.none {
            if network == "none" && c.mode == BuiltinNetwork.none { return "container \(c.name) is already connected to network none" }
            if network == "none" && c.endpoints.isEmpty { return nil }
            return "container cannot be connected to multiple networks with one of the networks in private (none) mode"
        }
        return nil
    }

    /// Docker's `network inspect` of a built-in network.
    func inspect(_ store: Store) -> JSON {
        let members = store.containers().filter { $0.mode == self }.map { c -> (String, JSON) in
            (c.id, ["Name": .string(c.name), "EndpointID": .string(String(stableHash(c.id + rawValue))), "MacAddress": "",
                    "IPv4Address": "", "IPv6Address": ""])
        }
        return .object(JSONObject([
            ("Name", .string(rawValue)), ("Id", .string(id)), ("Created", ""), ("Scope", "local"), ("Driver", .string(driver)),
            ("EnableIPv4", true), ("EnableIPv6", false),
            ("IPAM", ["Driver": "default", "Options": .null, "Config": .array([])]),
            ("Internal", false), ("Attachable", false), ("Ingress", false), ("ConfigFrom", ["Network": ""]), ("ConfigOnly", false),
            ("Containers", .object(JSONObject(members))), ("Options", .object(JSONObject())), ("Labels", .object(JSONObject())),
        ]))
    }
}
