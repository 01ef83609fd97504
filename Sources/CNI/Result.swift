// The CNI result, held as the 1.1.0 superset and written in any supported version.
//
// 0.3.0 / 0.3.1 / 0.4.0: each IP config has "version" ("4"/"6"); interfaces carry name, mac,
// sandbox; routes dst and gw. 1.0.0 drops "version". 1.1.0 adds interface mtu, socketPath,
// pciID and route mtu, advmss, priority, table, scope (libcni writes these for 1.0.0 as
// well; we do the same, as its types are shared between the two).

import Base

public struct CNIInterface: Equatable, Sendable {
    public var name: String
    public var mac: String?
    public var mtu: Int?
    public var sandbox: String?
    public var socketPath: String?
    public var pciID: String?

    public init(name: String, mac: String? = nil, mtu: Int? = nil, sandbox: String? = nil,
                socketPath: String? = nil, pciID: String? = nil) {
        self.name = name; self.mac = mac; self.mtu = mtu; self.sandbox = sandbox
        self.socketPath = socketPath; self.pciID = pciID
    }
}

public struct CNIIPConfig: Equatable, Sendable {
    /// Index into `interfaces`.
    public var interface: Int?
    public var address: IPNetwork
    public var gateway: IPAddress?

    public init(interface: Int? = nil, address: IPNetwork, gateway: IPAddress? = nil) {
        self.interface = interface; self.address = address; self.gateway = gateway
    }
}

public struct CNIRoute: Equatable, Sendable {
    public var dst: IPNetwork
    public var gw: IPAddress?
    public var mtu: Int?
    public var advmss: Int?
    public var priority: Int?
    public var table: Int?
    public var scope: Int?

    public init(dst: IPNetwork, gw: IPAddress? = nil, mtu: Int? = nil, advmss: Int? = nil,
                priority: Int? = nil, table: Int? = nil, scope: Int? = nil) {
        self.dst = dst; self.gw = gw; self.mtu = mtu; self.advmss = advmss
        self.priority = priority; self.table = table; self.scope = scope
    }

    /// Reads a route object (`{"dst": "...", "gw": "..."}` plus the 1.1.0 fields).
    public init(reading r: JSONReader) throws(CNIError) {
        guard let dst = try r.ipNetwork("dst") else { throw CNIError(.invalidConfig, "\"\(r.keyPath("dst"))\" is required") }
        self.dst = dst.network
        gw = try r.ipAddress("gw")
        if let gw, gw.family != dst.family {
            throw r.invalid("gw", "is \(gw.family) but dst \(dst) is \(dst.family)")
        }
        mtu = try r.int("mtu", in: 0...65535)
        advmss = try r.int("advmss", in: 0...65535)
        priority = try r.int("priority", in: 0...Int(UInt32.max))
        table = try r.int("table", in: 0...Int(UInt32.max))
        scope = try r.int("scope", in: 0...255)
    }

    public func json(version: String) -> JSON {
        var o = JSONObject()
        o["dst"] = .string(dst.description)
        if let gw { o["gw"] = .string(gw.description) }
        if CNIVersion.atLeast(version, "1.0.0") {
            if let mtu { o["mtu"] = .int(mtu) }
            if let advmss { o["advmss"] = .int(advmss) }
            if let priority { o["priority"] = .int(priority) }
            if let table { o["table"] = .int(table) }
            if let scope { o["scope"] = .int(scope) }
        }
        return .object(o)
    }
}

public struct CNIDNS: Equatable, Sendable {
    public var nameservers: [String] = []
    public var domain: String?
    public var search: [String] = []
    public var options: [String] = []

    public init(nameservers: [String] = [], domain: String? = nil, search: [String] = [], options: [String] = []) {
        self.nameservers = nameservers; self.domain = domain; self.search = search; self.options = options
    }

    public var isEmpty: Bool { nameservers.isEmpty && domain == nil && search.isEmpty && options.isEmpty }

    /// Adds what `other` has that this lacks, after what this has.
    public mutating func merge(_ other: CNIDNS) {
        for n in other.nameservers where !nameservers.contains(n) { nameservers.append(n) }
        if domain == nil { domain = other.domain }
        for s in other.search where !search.contains(s) { search.append(s) }
        for o in other.options where !options.contains(o) { options.append(o) }
    }

    public init(reading r: JSONReader) throws(CNIError) {
        nameservers = try r.stringArray("nameservers") ?? []
        domain = try r.string("domain")
        search = try r.stringArray("search") ?? []
        options = try r.stringArray("options") ?? []
    }

    public var json: JSON {
        var o = JSONObject()
        if !nameservers.isEmpty { o["nameservers"] = .array(nameservers.map { .string($0) }) }
        if let domain { o["domain"] = .string(domain) }
        if !search.isEmpty { o["search"] = .array(search.map { .string($0) }) }
        if !options.isEmpty { o["options"] = .array(options.map { .string($0) }) }
        return .object(o)
    }
}

public struct CNIResult: Equatable, Sendable {
    public var cniVersion: String
    public var interfaces: [CNIInterface] = []
    public var ips: [CNIIPConfig] = []
    public var routes: [CNIRoute] = []
    public var dns = CNIDNS()

    public init(cniVersion: String = CNIVersion.current, interfaces: [CNIInterface] = [], ips: [CNIIPConfig] = [],
                routes: [CNIRoute] = [], dns: CNIDNS = CNIDNS()) {
        self.cniVersion = cniVersion; self.interfaces = interfaces; self.ips = ips
        self.routes = routes; self.dns = dns
    }

    /// Reads a result of any supported version (a plugin's output or a `prevResult`).
    public init(json: JSON, path: String = "prevResult") throws(CNIError) {
        let r = try JSONReader(json, path: path)
        cniVersion = try r.string("cniVersion") ?? CNIVersion.current
        for ir in try r.objects("interfaces") ?? [] {
            interfaces.append(CNIInterface(
                name: try ir.string("name") ?? "", mac: try ir.string("mac"), mtu: try ir.int("mtu"),
                sandbox: try ir.string("sandbox"), socketPath: try ir.string("socketPath"),
                pciID: try ir.string("pciID")))
        }
        for (k, ipr) in (try r.objects("ips") ?? []).enumerated() {
            guard let addr = try ipr.ipNetwork("address") else {
                throw CNIError(.decodingFailure, "\"\(path).ips[\(k)].address\" is required")
            }
            let idx = try ipr.int("interface")
            if let idx, idx < 0 || idx >= max(interfaces.count, 1) && !interfaces.isEmpty {
                throw CNIError(.decodingFailure, "\"\(path).ips[\(k)].interface\" \(idx): no such interface index")
            }
            if let v = try ipr.string("version"), v != addr.family.versionString {
                throw CNIError(.decodingFailure, "\"\(path).ips[\(k)].version\" \"\(v)\" does not match address \(addr)")
            }
            ips.append(CNIIPConfig(interface: idx, address: addr, gateway: try ipr.ipAddress("gateway")))
        }
        for rr in try r.objects("routes") ?? [] {
            routes.append(try CNIRoute(reading: rr))
        }
        if let d = try r.object("dns") { dns = try CNIDNS(reading: d) }
    }

    /// The result written in `version` (which must be supported).
    public func json(version: String) -> JSON {
        let old = CNIVersion.hasIPVersionField(version)
        let v11 = !old
        var o = JSONObject()
        o["cniVersion"] = .string(version)
        if !interfaces.isEmpty {
            o["interfaces"] = .array(interfaces.map { i in
                var io = JSONObject()
                io["name"] = .string(i.name)
                if let m = i.mac, !m.isEmpty { io["mac"] = .string(m) }
                if v11, let mtu = i.mtu, mtu > 0 { io["mtu"] = .int(mtu) }
                if let s = i.sandbox, !s.isEmpty { io["sandbox"] = .string(s) }
                if v11, let s = i.socketPath, !s.isEmpty { io["socketPath"] = .string(s) }
                if v11, let s = i.pciID, !s.isEmpty { io["pciID"] = .string(s) }
                return .object(io)
            })
        }
        if !ips.isEmpty {
            o["ips"] = .array(ips.map { ip in
                var io = JSONObject()
                if old { io["version"] = .string(ip.address.family.versionString) }
                if let i = ip.interface { io["interface"] = .int(i) }
                io["address"] = .string(ip.address.description)
                if let g = ip.gateway { io["gateway"] = .string(g.description) }
                return .object(io)
            })
        }
        if !routes.isEmpty { o["routes"] = .array(routes.map { $0.json(version: version) }) }
        if !dns.isEmpty || old { o["dns"] = dns.json }
        return .object(o)
    }

    /// Index of the interface named `name` with the given sandbox (nil sandbox: a host interface).
    public func interfaceIndex(name: String, sandbox: String?) -> Int? {
        interfaces.firstIndex { $0.name == name && ($0.sandbox ?? "") == (sandbox ?? "") }
    }
}

extension CNIResult {
    /// The IP configurations of the container's side: those on interfaces inside a sandbox,
    /// else (a result that names no sandbox) all of them.
    public var containerIPs: [CNIIPConfig] {
        let inSandbox = Set(interfaces.indices.filter { !(interfaces[$0].sandbox ?? "").isEmpty })
        let mine = ips.filter { ip in ip.interface.map { inSandbox.contains($0) } ?? true }
        return mine.isEmpty ? ips : mine
    }

    /// The container's addresses (see `containerIPs`).
    public var containerAddresses: [IPAddress] { containerIPs.map(\.address.address) }
}
