// What a host publishes in etcd about one of its containers.

import Base
import CNI
import EtcdSettings

/// What a host publishes about one of its containers.
public struct EndpointRecord: Equatable, Sendable {
    public var network: String
    public var host: String
    public var containerID: String
    public var ifname: String
    public var vtep: IPAddress
    public var mac: MACAddress
    public var ips: [IPAddress]
    public var name: String?
    public var aliases: [String]

    public init(network: String, host: String, containerID: String, ifname: String, vtep: IPAddress, mac: MACAddress,
                ips: [IPAddress], name: String?, aliases: [String]) {
        self.network = network; self.host = host; self.containerID = containerID; self.ifname = ifname
        self.vtep = vtep; self.mac = mac; self.ips = ips; self.name = name; self.aliases = aliases
    }

    public var json: JSON {
        var o: [(String, JSON)] = [("containerID", .string(containerID)), ("ifname", .string(ifname)), ("host", .string(host)),
                                   ("vtep", .string(vtep.description)), ("mac", .string(mac.description)),
                                   ("ips", .array(ips.map { .string($0.description) }))]
        if let n = name { o.append(("name", .string(n))) }
        o.append(("aliases", .array(aliases.map { .string($0) })))
        return .object(JSONObject(o))
    }

    public init?(network: String, bytes: [UInt8]) {
        guard let j = try? JSON.parse(bytes), let cid = j["containerID"]?.stringValue, let ifn = j["ifname"]?.stringValue,
              let host = j["host"]?.stringValue, let vtep = j["vtep"]?.stringValue.flatMap(IPAddress.init),
              let mac = j["mac"]?.stringValue.flatMap(MACAddress.init) else { return nil }
        self.init(network: network, host: host, containerID: cid, ifname: ifn, vtep: vtep, mac: mac,
                  ips: (j["ips"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap(IPAddress.init) },
                  name: j["name"]?.stringValue, aliases: (j["aliases"]?.arrayValue ?? []).compactMap(\.stringValue))
    }
}
