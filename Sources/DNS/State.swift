// The DNS records on disk: per network namespace (the host whose containers they are), one
// directory per network under `<run dir>/dns/netns-<cookie>/networks/`, holding `_network`
// (the network's settings) and one file per attachment (`<containerID>:<ifname>`). Written
// atomically by the plugin under the network's lock; the server of that namespace (its pid
// file, lock and control socket live next to them) reads them at start — so a restarted
// server has every record — and when told a network changed. Keyed by namespace, two hosts
// that share a run directory (a nested runtime, simulated hosts) each get their own records
// and server; neither serves the other's.

import Base

public struct DNSState: Sendable {
    public let runDirectory: String
    public let root: String

    /// The state of the network namespace `netns` (default: the calling thread's).
    public init(runDirectory: String = SuitePaths.runDirectory, netns: UInt64 = Posix.netnsCookie()) {
        self.runDirectory = runDirectory
        root = Posix.join(Posix.join(runDirectory, "dns"), "netns-\(netns)")
    }

    public var networksDirectory: String { Posix.join(root, "networks") }
    public var controlSocket: String { Posix.join(root, "control.sock") }
    public var pidFile: String { Posix.join(root, "server.pid") }

    func networkDirectory(_ n: String) -> String { Posix.join(networksDirectory, n) }
    static let networkFile = "_network"

    // MARK: networks

    public func writeNetwork(_ n: DNSNetwork) throws {
        let dir = networkDirectory(n.name)
        try Posix.makeDirectories(dir)
        try Posix.writeFileAtomically(Posix.join(dir, Self.networkFile), n.json.serializedBytes())
    }

    public func readNetwork(_ name: String) throws -> DNSNetwork? {
        guard let b = try Posix.readFile(Posix.join(networkDirectory(name), Self.networkFile)) else { return nil }
        return try DNSNetwork(json: JSON.parse(b), name: name)
    }

    /// Removes the network's directory (its endpoints must be gone).
    public func removeNetwork(_ name: String) throws {
        let dir = networkDirectory(name)
        for f in (try Posix.listDirectory(dir)) ?? [] { _ = try Posix.remove(Posix.join(dir, f)) }
        _ = try? Posix.removeDirectory(dir)
    }

    public func networkNames() throws -> [String] {
        ((try Posix.listDirectory(networksDirectory)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    // MARK: endpoints

    public func writeEndpoint(_ e: DNSEndpoint) throws {
        let dir = networkDirectory(e.network)
        try Posix.makeDirectories(dir)
        try Posix.writeFileAtomically(Posix.join(dir, e.key), e.json.serializedBytes())
    }

    public func readEndpoint(network: String, key: String) throws -> DNSEndpoint? {
        guard let b = try Posix.readFile(Posix.join(networkDirectory(network), key)) else { return nil }
        return try DNSEndpoint(json: JSON.parse(b), network: network)
    }

    /// True if the file was there. A temporary file a writer killed half-way left for it
    /// goes too (callers hold the network's lock, which every writer takes).
    public func removeEndpoint(network: String, key: String) throws -> Bool {
        _ = try? Posix.removeTemporaries(in: networkDirectory(network), of: key)
        return try Posix.remove(Posix.join(networkDirectory(network), key))
    }

    /// Every temporary file of the network's directory (GC, under the network's lock).
    public func removeTemporaries(network: String) throws {
        try Posix.removeTemporaries(in: networkDirectory(network))
    }

    public func endpointKeys(_ network: String) throws -> [String] {
        ((try Posix.listDirectory(networkDirectory(network))) ?? []).filter {
            $0 != Self.networkFile && !$0.hasPrefix(".") && Posix.temporaryTarget($0) == nil
        }.sorted()
    }

    // MARK: loading

    /// One network as on disk (nil when it has no `_network`).
    public func load(network name: String) throws -> (DNSNetwork, [DNSEndpoint])? {
        guard let n = try readNetwork(name) else { return nil }
        var eps: [DNSEndpoint] = []
        for k in try endpointKeys(name) {
            if let e = try? readEndpoint(network: name, key: k) { eps.append(e) }
        }
        return (n, eps)
    }

    /// Every network's records.
    public func loadZone() throws -> DNSZone {
        var z = DNSZone()
        for name in try networkNames() {
            guard let (n, eps) = try load(network: name) else { continue }
            z.setNetwork(n)
            for e in eps { z.upsert(e) }
        }
        return z
    }
}

// MARK: JSON forms

extension DNSNetwork {
    public var json: JSON {
        var o: [(String, JSON)] = [("name", .string(name))]
        if let d = domain { o.append(("domain", .string(d))) }
        o.append(("gateways", .array(gateways.map { .string($0.description) })))
        o.append(("internal", .bool(isInternal)))
        o.append(("upstream", .array(upstream.map { .string($0.description) })))
        o.append(("ttl", .int(Int(ttl))))
        return .object(JSONObject(o))
    }

    public init(json: JSON, name: String) throws(DNSRecordError) {
        let o = try DNSRecordError.object(json, name)
        self.init(name: name, domain: o["domain"]?.stringValue,
                  gateways: DNSRecordError.strings(o["gateways"]).compactMap { IPAddress($0) },
                  isInternal: o["internal"]?.boolValue ?? false,
                  upstream: DNSRecordError.strings(o["upstream"]).compactMap { DNSUpstream($0) },
                  ttl: UInt32(max(0, min(86400, o["ttl"]?.intValue ?? 5))))
    }
}

extension DNSEndpoint {
    public var json: JSON {
        var o: [(String, JSON)] = [("containerID", .string(containerID)), ("ifname", .string(ifname))]
        if let n = name { o.append(("name", .string(n))) }
        o.append(("aliases", .array(aliases.map { .string($0) })))
        o.append(("links", .array(links.map { .string($0.description) })))
        o.append(("addresses", .array(addresses.map { .string($0.description) })))
        if !gateways.isEmpty { o.append(("gateways", .array(gateways.map { .string($0.description) }))) }
        if let h = remoteHost { o.append(("remoteHost", .string(h))) }
        if !upstream.isEmpty { o.append(("upstream", .array(upstream.map { .string($0.description) }))) }
        return .object(JSONObject(o))
    }

    public init(json: JSON, network: String) throws(DNSRecordError) {
        let o = try DNSRecordError.object(json, network)
        guard let cid = o["containerID"]?.stringValue, !cid.isEmpty, let ifn = o["ifname"]?.stringValue, !ifn.isEmpty else {
            throw DNSRecordError("a record of network \(network) names no containerID and ifname")
        }
        self.init(network: network, containerID: cid, ifname: ifn, name: o["name"]?.stringValue,
                  aliases: DNSRecordError.strings(o["aliases"]), links: DNSRecordError.strings(o["links"]).compactMap { DNSLink($0) },
                  addresses: DNSRecordError.strings(o["addresses"]).compactMap { IPAddress($0) },
                  gateways: DNSRecordError.strings(o["gateways"]).compactMap { IPAddress($0) },
                  remoteHost: o["remoteHost"]?.stringValue,
                  upstream: DNSRecordError.strings(o["upstream"]).compactMap { DNSUpstream($0) })
    }
}

/// A record file that is not one (written by us, so only damage makes one).
public struct DNSRecordError: ClassifiedError {
    public var description: String
    public init(_ d: String) { description = d }
    public var kind: FailureKind { .io }

    static func object(_ j: JSON, _ what: String) throws(DNSRecordError) -> JSONObject {
        guard let o = j.objectValue else { throw DNSRecordError("the record of \(what) is not a JSON object") }
        return o
    }

    static func strings(_ j: JSON?) -> [String] { j?.arrayValue?.compactMap(\.stringValue) ?? [] }
}
