import Base
import CNI
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// Runs a conflist the way SPEC 1.1.0 says a runtime must (and as libcni does): plugins in
/// order for ADD, each given the previous result; in reverse for DEL, with the cached ADD
/// result; `name`, `cniVersion`, `prevResult` and the capability arguments the plugin
/// declares injected into each plugin's configuration. ADD results are cached in libcni's
/// format (`<cacheDir>/results/<network>-<containerID>-<ifname>`), so libcni-based runtimes
/// and cnictl can DEL each other's attachments.
public struct Runtime {
    public var pluginPath: [String]
    public var cacheDir: String

    public init(pluginPath: [String], cacheDir: String) { self.pluginPath = pluginPath; self.cacheDir = cacheDir }

    public struct Attachment {
        public var containerID: String
        public var netns: String
        public var ifname: String
        /// CNI_ARGS as key/value pairs.
        public var args: [(String, String)] = []
        /// Capability arguments (runtimeConfig), by capability name.
        public var capabilityArgs: JSONObject = JSONObject()

        public init(containerID: String, netns: String, ifname: String, args: [(String, String)] = [],
                    capabilityArgs: JSONObject = JSONObject()) {
            self.containerID = containerID; self.netns = netns; self.ifname = ifname
            self.args = args; self.capabilityArgs = capabilityArgs
        }
    }

    /// A plugin failed: which one, for which command, and its CNI error.
    public struct PluginFailure: Error, CustomStringConvertible {
        public var type: String
        public var command: CNICommand
        public var error: CNIError
        public var description: String {
            "plugin type=\"\(type)\" failed (\(command.rawValue.lowercased())): \(error.msg) [code \(error.code.rawValue)]\(error.details.isEmpty ? "" : " (\(error.details))")"
        }
    }

    /// One step of an operation, for timing breakdowns.
    public struct Step {
        public var type: String
        public var nanos: UInt64
    }

    public var steps: [Step] = []

    // MARK: configuration building

    public func pluginConfig(_ plugin: JSONObject, list: Conflist, prevResult: JSON?, rt: Attachment?) -> [UInt8] {
        var o = plugin
        o["name"] = .string(list.name)
        o["cniVersion"] = .string(list.cniVersion)
        o["cniVersions"] = nil
        if let prevResult { o["prevResult"] = prevResult }
        if let rt {
            var rc = JSONObject()
            if case .object(let caps)? = plugin["capabilities"] {
                for m in caps where m.value.boolValue == true {
                    if let v = rt.capabilityArgs[m.key] { rc[m.key] = v }
                }
            }
            if !rc.isEmpty { o["runtimeConfig"] = .object(rc) }
        }
        return JSON.object(o).serializedBytes()
    }

    public func environment(_ command: CNICommand, _ rt: Attachment?) -> [String] {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CNI_") }.map { "\($0.key)=\($0.value)" }
        env.append("CNI_COMMAND=\(command.rawValue)")
        if let rt {
            env.append("CNI_CONTAINERID=\(rt.containerID)")
            env.append("CNI_NETNS=\(rt.netns)")
            env.append("CNI_IFNAME=\(rt.ifname)")
            if !rt.args.isEmpty { env.append("CNI_ARGS=" + rt.args.map { "\($0.0)=\($0.1)" }.joined(separator: ";")) }
        }
        env.append("CNI_PATH=\(pluginPath.joined(separator: ":"))")
        return env
    }

    /// Runs one plugin; returns its parsed stdout for ADD (and VERSION).
    public mutating func exec(_ type: String, _ command: CNICommand, config: [UInt8], rt: Attachment?) throws -> JSON? {
        guard let path = Exec.find(type, in: pluginPath) else {
            throw PluginFailure(type: type, command: command,
                                error: CNIError(.invalidConfig, "failed to find plugin \"\(type)\" in path \(pluginPath.joined(separator: ":"))"))
        }
        let t0 = Posix.monotonicNanos()
        let out = try Exec.run(path, environment: environment(command, rt), stdin: config)
        steps.append(Step(type: type, nanos: Posix.monotonicNanos() - t0))
        let parsed = try? JSON.parse(out.stdout)
        if out.status != 0 {
            if let p = parsed, let e = CNIError.from(json: p) { throw PluginFailure(type: type, command: command, error: e) }
            let text = String(decoding: out.stdout.prefix(400), as: UTF8.self)
            throw PluginFailure(type: type, command: command,
                                error: CNIError(.internal, "exit status \(out.status)\(text.isEmpty ? "" : ": " + text)"))
        }
        if command == .add || command == .version {
            guard let p = parsed else {
                throw PluginFailure(type: type, command: command, error: CNIError(.decodingFailure, "printed no valid JSON result"))
            }
            return p
        }
        return nil
    }

    // MARK: operations

    public mutating func add(_ list: Conflist, _ rt: Attachment) throws -> JSON {
        try validate(list, rt)
        var result: JSON? = nil
        for (i, p) in list.plugins.enumerated() {
            let type = p["type"]!.stringValue!
            do {
                result = try exec(type, .add, config: pluginConfig(p, list: list, prevResult: result, rt: rt), rt: rt)
            } catch {
                // As runtimes do after a failed ADD: DEL what the earlier plugins did (in
                // reverse), so that a failed ADD leaves nothing behind. The ADD's error is
                // what is reported.
                for q in list.plugins[...i].reversed() {
                    _ = try? exec(q["type"]!.stringValue!, .del, config: pluginConfig(q, list: list, prevResult: result, rt: rt), rt: rt)
                }
                throw error
            }
        }
        guard let final = result else { throw CNIError(.internal, "no result") }
        try cacheAdd(final, list, rt)
        NetnsResolvConf.update(self, netns: rt.netns)
        return final
    }

    public mutating func check(_ list: Conflist, _ rt: Attachment) throws {
        guard CNIVersion.atLeast(list.cniVersion, "0.4.0") else {
            throw CNIError(.incompatibleVersion, "configuration version \"\(list.cniVersion)\" does not support the CHECK command")
        }
        if list.disableCheck { return }
        guard let cached = try cachedResult(list, rt) else {
            throw CNIError(.unknownContainer, "no cached result for network \"\(list.name)\", container \(rt.containerID), interface \(rt.ifname): it was never added (or was deleted)")
        }
        let rt2 = cachedRuntime(list, rt) ?? rt
        for p in list.plugins {
            _ = try exec(p["type"]!.stringValue!, .check, config: pluginConfig(p, list: list, prevResult: cached, rt: rt2), rt: rt2)
        }
    }

    public mutating func del(_ list: Conflist, _ rt: Attachment) throws {
        var cached: JSON? = nil
        if CNIVersion.atLeast(list.cniVersion, "0.4.0") {
            cached = try? cachedResult(list, rt)
        }
        // DEL gets the capability arguments and CNI_ARGS the ADD had, unless given anew.
        var rt2 = rt
        if let c = cachedRuntime(list, rt) {
            if rt2.args.isEmpty { rt2.args = c.args }
            if rt2.capabilityArgs.isEmpty { rt2.capabilityArgs = c.capabilityArgs }
        }
        for p in list.plugins.reversed() {
            _ = try exec(p["type"]!.stringValue!, .del, config: pluginConfig(p, list: list, prevResult: cached, rt: rt2), rt: rt2)
        }
        try? FileManager.default.removeItem(atPath: cachePath(list.name, rt))
        NetnsResolvConf.update(self, netns: rt.netns)
    }

    /// GC: DEL for cached attachments not in `valid`, then GC on every plugin (1.1.0+).
    public mutating func gc(_ list: Conflist, valid: [Base.Attachment]) throws {
        if list.disableGC { return }
        var errors: [String] = []
        let validSet = Set(valid)
        for a in cachedAttachments() where a.network == list.name {
            if validSet.contains(Base.Attachment(containerID: a.rt.containerID, ifname: a.rt.ifname)) { continue }
            do { try del(list, a.rt) } catch { errors.append("stale attachment \(a.rt.containerID)/\(a.rt.ifname): \(error)") }
        }
        if CNIVersion.atLeast(list.cniVersion, "1.1.0") {
            for p in list.plugins {
                var o = p
                o["name"] = .string(list.name)
                o["cniVersion"] = .string(list.cniVersion)
                o["cniVersions"] = nil
                o["cni.dev/valid-attachments"] = .array(valid.map {
                    .object(JSONObject([("containerID", .string($0.containerID)), ("ifname", .string($0.ifname))]))
                })
                do {
                    _ = try exec(p["type"]!.stringValue!, .gc, config: JSON.object(o).serializedBytes(), rt: nil)
                } catch {
                    errors.append("\(error)")
                }
            }
        }
        if !errors.isEmpty { throw CNIError(.internal, errors.joined(separator: "; ")) }
    }

    public mutating func status(_ list: Conflist) throws {
        guard CNIVersion.atLeast(list.cniVersion, "1.1.0") else { return }
        for p in list.plugins {
            var o = p
            o["name"] = .string(list.name)
            o["cniVersion"] = .string(list.cniVersion)
            o["cniVersions"] = nil
            _ = try exec(p["type"]!.stringValue!, .status, config: JSON.object(o).serializedBytes(), rt: nil)
        }
    }

    public mutating func versions(_ list: Conflist) throws -> [(String, JSON)] {
        var out: [(String, JSON)] = []
        for p in list.plugins {
            let t = p["type"]!.stringValue!
            let cfg = JSON.object(JSONObject([("cniVersion", .string(list.cniVersion))])).serializedBytes()
            out.append((t, try exec(t, .version, config: cfg, rt: nil) ?? .null))
        }
        return out
    }

    public func validate(_ list: Conflist, _ rt: Attachment) throws {
        guard CNIVersion.isSupported(list.cniVersion) else {
            throw CNIError(.incompatibleVersion, "network \"\(list.name)\" has cniVersion \"\(list.cniVersion)\"; supported: \(CNIVersion.supported.joined(separator: ", "))")
        }
        if !CNIEnvironment.isValidIdentifier(rt.containerID) {
            throw CNIError(.invalidEnvironment, "container ID \"\(rt.containerID)\" is invalid")
        }
        if let why = CNIEnvironment.interfaceNameProblem(rt.ifname) {
            throw CNIError(.invalidEnvironment, "interface name \"\(rt.ifname)\" is invalid: \(why)")
        }
    }

    // MARK: result cache (libcni cniCacheV1)

    public func cachePath(_ network: String, _ rt: Attachment) -> String {
        "\(cacheDir)/results/\(network)-\(rt.containerID)-\(rt.ifname)"
    }

    public func cacheAdd(_ result: JSON, _ list: Conflist, _ rt: Attachment) throws {
        var o = JSONObject()
        o["kind"] = "cniCacheV1"
        o["containerId"] = .string(rt.containerID)
        o["config"] = .string(Data(list.bytes).base64EncodedString())
        o["ifName"] = .string(rt.ifname)
        o["networkName"] = .string(list.name)
        o["netns"] = .string(rt.netns)
        if !rt.args.isEmpty {
            o["cniArgs"] = .array(rt.args.map { .array([.string($0.0), .string($0.1)]) })
        }
        if !rt.capabilityArgs.isEmpty { o["capabilityArgs"] = .object(rt.capabilityArgs) }
        o["result"] = result
        let path = cachePath(list.name, rt)
        try Posix.makeDirectories("\(cacheDir)/results", mode: 0o700)
        try Posix.writeFileAtomically(path, JSON.object(o).serializedBytes(), mode: 0o600, sync: false)
    }

    public func readCache(_ network: String, _ rt: Attachment) -> JSONObject? {
        guard let b = try? Posix.readFile(cachePath(network, rt)), let j = try? JSON.parse(b),
              case .object(let o) = j, o["kind"]?.stringValue == "cniCacheV1" else { return nil }
        return o
    }

    public func cachedResult(_ list: Conflist, _ rt: Attachment) throws -> JSON? {
        guard let o = readCache(list.name, rt), let r = o["result"] else { return nil }
        // Convert to the list's version so every plugin sees it as it expects.
        let parsed = try CNIResult(json: r, path: "cached result")
        return parsed.json(version: list.cniVersion)
    }

    public func cachedRuntime(_ list: Conflist, _ rt: Attachment) -> Attachment? {
        guard let o = readCache(list.name, rt) else { return nil }
        var out = rt
        Runtime.restore(&out, from: o)
        return out
    }

    /// CNI_ARGS and capability arguments of a cache entry.
    public static func restore(_ rt: inout Attachment, from o: JSONObject) {
        if let args = o["cniArgs"]?.arrayValue {
            rt.args = args.compactMap { p in
                guard let a = p.arrayValue, a.count == 2, let k = a[0].stringValue, let v = a[1].stringValue else { return nil }
                return (k, v)
            }
        }
        if case .object(let c)? = o["capabilityArgs"] { rt.capabilityArgs = c }
    }

    public struct CachedAttachment {
        public var network: String
        public var rt: Attachment
        public var result: JSON?
    }

    /// Every attachment in the result cache (or those of one namespace: cnictl derives the
    /// container ID from the namespace path, which narrows the files to read).
    public func cachedAttachments(netns: String? = nil) -> [CachedAttachment] {
        let dir = "\(cacheDir)/results"
        guard var names = (try? Posix.listDirectory(dir)) ?? nil else { return [] }
        names.sort()
        var out: [CachedAttachment] = []
        for n in names {
            guard let b = try? Posix.readFile("\(dir)/\(n)"), let j = try? JSON.parse(b), case .object(let o) = j,
                  o["kind"]?.stringValue == "cniCacheV1",
                  let net = o["networkName"]?.stringValue, let id = o["containerId"]?.stringValue,
                  let ifn = o["ifName"]?.stringValue else { continue }
            var rt = Attachment(containerID: id, netns: o["netns"]?.stringValue ?? "", ifname: ifn)
            if let netns, rt.netns != netns { continue }
            Runtime.restore(&rt, from: o)
            out.append(CachedAttachment(network: net, rt: rt, result: o["result"]))
        }
        return out
    }
}
