#if canImport(Glibc)
import Glibc
#endif
import Base

/// One invocation: environment plus the network configuration on stdin.
public struct CNIRequest: Sendable {
    public var env: CNIEnvironment
    /// The configuration exactly as received (passed unchanged to delegates).
    public var configBytes: [UInt8]
    /// The configuration, parsed.
    public var config: JSONReader
    public var cniVersion: String
    /// The network name (`name`).
    public var name: String
    public var type: String

    public var command: CNICommand { env.command }
    public var containerID: String { env.containerID }
    public var netns: String { env.netns }
    public var ifname: String { env.ifname }

    public init(env: CNIEnvironment, configBytes: [UInt8]) throws(CNIError) {
        try self.init(env: env, configBytes: configBytes, json: CNIRequest.parseConfig(configBytes))
    }

    static func parseConfig(_ bytes: [UInt8]) throws(CNIError) -> JSON {
        do {
            return try JSON.parse(bytes)
        } catch {
            throw CNIError(.decodingFailure, "network configuration is not valid JSON: \(error)")
        }
    }

    /// With the configuration already parsed from `configBytes`.
    public init(env: CNIEnvironment, configBytes: [UInt8], json: JSON) throws(CNIError) {
        self.env = env
        self.configBytes = configBytes
        guard case .object(let o) = json else {
            throw CNIError(.decodingFailure, "network configuration must be a JSON object, got \(json.kindName)")
        }
        config = JSONReader(o)
        guard let v = try config.string("cniVersion"), !v.isEmpty else {
            throw CNIError(.incompatibleVersion, "\"cniVersion\" is missing; supported versions: \(CNIVersion.supported.joined(separator: ", "))")
        }
        guard CNIVersion.isSupported(v) else {
            throw CNIError(.incompatibleVersion, "\"cniVersion\" \"\(v)\" is not supported; supported versions: \(CNIVersion.supported.joined(separator: ", "))")
        }
        cniVersion = v
        if env.command == .gc || env.command == .status, !CNIVersion.atLeast(v, "1.1.0") {
            throw CNIError(.incompatibleVersion, "\(env.command.rawValue) needs cniVersion 1.1.0 or later, the configuration has \"\(v)\"")
        }
        if env.command == .check, !CNIVersion.atLeast(v, "0.4.0") {
            throw CNIError(.incompatibleVersion, "CHECK needs cniVersion 0.4.0 or later, the configuration has \"\(v)\"")
        }
        name = try config.string("name") ?? ""
        if name.isEmpty { throw CNIError(.invalidConfig, "\"name\" (the network name) is required") }
        if !CNIEnvironment.isValidIdentifier(name) {
            throw CNIError(.invalidConfig, "\"name\" \"\(name)\" is invalid: it must start with a letter or digit, followed by letters, digits, '_', '.' or '-'")
        }
        type = try config.string("type") ?? ""
    }

    /// DEL and GC tear down what they can identify from (network, container ID, ifname), the
    /// keys that name the network's pieces and the plugin's own records. Configurations read
    /// only those keys then: a capability argument or key they cannot decode must not keep a
    /// runtime from cleaning up (SPEC: DEL should succeed even if resources are missing).
    public var isTeardown: Bool { command == .del || command == .gc }

    /// The chained plugin's previous result, if any.
    public func prevResult() throws(CNIError) -> CNIResult? {
        guard let p = config["prevResult"] else { return nil }
        return try CNIResult(json: p)
    }

    /// `runtimeConfig` (capability arguments).
    public var runtimeConfig: JSONReader? { try? config.object("runtimeConfig") }

    /// `args` (the `args.cni` convention lives inside).
    public var args: JSONReader? { try? config.object("args") }

    /// The capabilities the configuration enables (a map: names match exactly).
    public func capability(_ name: String) -> Bool {
        (try? config.object("capabilities"))??.object[name]?.boolValue == true
    }

    /// GC's valid attachments (`cni.dev/valid-attachments`, or the draft name `cni.dev/attachments`).
    public func validAttachments() throws(CNIError) -> Set<Attachment> {
        let key = config.has("cni.dev/valid-attachments") ? "cni.dev/valid-attachments" : "cni.dev/attachments"
        var out = Set<Attachment>()
        for a in try config.objects(key) ?? [] {
            let id = try a.string("containerID") ?? ""
            let ifn = try a.string("ifname") ?? ""
            if id.isEmpty { throw CNIError(.invalidConfig, "\"\(a.path).containerID\" is required") }
            out.insert(Attachment(containerID: id, ifname: ifn))
        }
        return out
    }
}

/// A CNI plugin: one per executable. Plugins are thin: they parse their configuration and
/// call the modules that do the work.
public protocol CNIPlugin {
    init()
    /// CNI_ARGS keys this plugin understands besides the common ones.
    static var knownArgs: Set<String> { get }
    func add(_ req: CNIRequest) throws -> CNIResult
    func del(_ req: CNIRequest) throws
    func check(_ req: CNIRequest) throws
    func gc(_ req: CNIRequest) throws
    func status(_ req: CNIRequest) throws
}

extension CNIPlugin {
    public static var knownArgs: Set<String> { [] }
    public func gc(_ req: CNIRequest) throws {}
    public func status(_ req: CNIRequest) throws {}
}

/// The executable entry point: dispatches on CNI_COMMAND, prints the result or the error.
public enum CNIMain {
    public static func run<P: CNIPlugin>(_ plugin: P.Type) -> Never {
        // VERSION is answered before any other start-up work.
        if let c = getenv("CNI_COMMAND"), strcmp(c, "VERSION") == 0 {
            var requested: String?
            if isatty(0) == 0, let bytes = try? Posix.readAll(fd: 0), !bytes.isEmpty,
               let j = try? JSON.parse(bytes), let v = j.objectValue?.field("cniVersion")?.stringValue {
                requested = v
                if !CNIVersion.isSupported(v) {
                    fail(CNIError(.incompatibleVersion, "\"cniVersion\" \"\(v)\" is not supported; supported versions: \(CNIVersion.supported.joined(separator: ", "))"), version: CNIVersion.current)
                }
            }
            Posix.writeStdout(CNIVersion.versionInfo(answering: requested).serialized() + "\n")
            exit(0)
        }
        var version = CNIVersion.current
        PhaseTrace.mark("start")
        do {
            let env = try CNIEnvironment.fromProcess()
            let bytes = try Posix.readAll(fd: 0)
            let json = try CNIRequest.parseConfig(bytes)
            // Answer errors in the configuration's version when it is one we speak.
            if let v = json.objectValue?.field("cniVersion")?.stringValue, CNIVersion.isSupported(v) { version = v }
            let req = try CNIRequest(env: env, configBytes: bytes, json: json)
            // Unknown CNI_ARGS keys refuse ADD and CHECK; DEL tears down whatever it is given.
            if env.command == .add || env.command == .check {
                try env.validateArgs(known: P.knownArgs)
            }
            PhaseTrace.mark("parsed")
            let out = try dispatch(P(), req)
            PhaseTrace.mark("done")
            if let out { Posix.writeStdout(out.serialized(indent: 4) + "\n") }
            exit(0)
        } catch {
            fail(CNIError.wrap(error), version: version)
        }
    }

    /// Runs one command; returns the JSON to print (ADD only).
    public static func dispatch<P: CNIPlugin>(_ p: P, _ req: CNIRequest) throws -> JSON? {
        switch req.command {
        case .add:
            var r = try p.add(req)
            r.cniVersion = req.cniVersion
            return r.json(version: req.cniVersion)
        case .del: try p.del(req)
        case .check: try p.check(req)
        case .gc: try p.gc(req)
        case .status: try p.status(req)
        case .version: return CNIVersion.versionInfo(answering: req.cniVersion)
        }
        return nil
    }

    public static func fail(_ e: CNIError, version: String) -> Never {
        Posix.writeStdout(e.json(cniVersion: version).serialized(indent: 4) + "\n")
        exit(1)
    }
}
