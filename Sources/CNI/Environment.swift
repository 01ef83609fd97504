#if canImport(Glibc)
import Glibc
#endif
import Base

public enum CNICommand: String, Sendable, CaseIterable {
    case add = "ADD", del = "DEL", check = "CHECK", version = "VERSION", gc = "GC", status = "STATUS"
}

/// The `CNI_*` environment of one invocation, validated as SPEC 1.1.0 requires.
public struct CNIEnvironment: Sendable, Equatable {
    public var command: CNICommand
    public var containerID: String
    public var netns: String
    public var ifname: String
    /// CNI_ARGS as ordered key/value pairs.
    public var args: [(String, String)]
    public var rawArgs: String
    public var path: [String]

    public static func == (a: CNIEnvironment, b: CNIEnvironment) -> Bool {
        a.command == b.command && a.containerID == b.containerID && a.netns == b.netns && a.ifname == b.ifname
            && a.rawArgs == b.rawArgs && a.path == b.path
    }

    public init(command: CNICommand, containerID: String = "", netns: String = "", ifname: String = "",
                args: String = "", path: [String] = []) throws(CNIError) {
        self.command = command
        self.containerID = containerID
        self.netns = netns
        self.ifname = ifname
        self.rawArgs = args
        self.args = try CNIEnvironment.parseArgs(args)
        self.path = path
    }

    /// Reads and validates the process environment.
    /// A variable whose value is not UTF-8 is refused (code 4), never repaired: a netns
    /// path or an interface name rewritten to U+FFFD would name something else.
    public static func fromProcess() throws(CNIError) -> CNIEnvironment {
        var bad: String? = nil
        func env(_ k: String) -> String? {
            guard let p = getenv(k) else { return nil }
            if let s = String(validatingCString: p) { return s }
            bad = bad ?? k
            return String(cString: p)
        }
        let e = try from(env)
        if let bad { throw CNIError(.invalidEnvironment, "\(bad): the value is not valid UTF-8") }
        return e
    }

    /// Reads and validates an environment given as a lookup function.
    public static func from(_ env: (String) -> String?) throws(CNIError) -> CNIEnvironment {
        guard let c = env("CNI_COMMAND"), !c.isEmpty else {
            throw CNIError(.invalidEnvironment, "CNI_COMMAND is not set")
        }
        guard let cmd = CNICommand(rawValue: c) else {
            throw CNIError(.invalidEnvironment, "CNI_COMMAND \"\(c)\" is not one of ADD, DEL, CHECK, GC, STATUS, VERSION")
        }
        let id = env("CNI_CONTAINERID") ?? ""
        let netns = env("CNI_NETNS") ?? ""
        let ifname = env("CNI_IFNAME") ?? ""
        let path = (env("CNI_PATH") ?? "").split(separator: ":").map(String.init).filter { !$0.isEmpty }
        switch cmd {
        case .add, .check:
            try requireContainerID(id)
            if netns.isEmpty { throw CNIError(.invalidEnvironment, "CNI_NETNS is required for \(cmd.rawValue)") }
            try requireIfname(ifname)
        case .del:
            try requireContainerID(id)
            try requireIfname(ifname)
        case .gc, .status, .version:
            break
        }
        var e = try CNIEnvironment(command: cmd, containerID: id, netns: netns, ifname: ifname, args: "", path: path)
        e.rawArgs = env("CNI_ARGS") ?? ""
        // DEL must not be stopped by arguments it does not need: malformed pairs are skipped.
        e.args = try parseArgs(e.rawArgs, lenient: cmd == .del)
        return e
    }

    static func requireContainerID(_ id: String) throws(CNIError) {
        if id.isEmpty { throw CNIError(.invalidEnvironment, "CNI_CONTAINERID is required") }
        if !isValidIdentifier(id) {
            throw CNIError(.invalidEnvironment,
                           "CNI_CONTAINERID \"\(id)\" is invalid: it must start with a letter or digit, followed by letters, digits, '_', '.' or '-'")
        }
    }

    static func requireIfname(_ n: String) throws(CNIError) {
        if n.isEmpty { throw CNIError(.invalidEnvironment, "CNI_IFNAME is required") }
        if let why = interfaceNameProblem(n) {
            throw CNIError(.invalidEnvironment, "CNI_IFNAME \"\(n)\" is invalid: \(why)")
        }
    }

    /// Container IDs and network names: `[A-Za-z0-9][A-Za-z0-9_.-]*`.
    public static func isValidIdentifier(_ s: String) -> Bool {
        var first = true
        for c in s.utf8 {
            let alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
            if first {
                if !alnum { return false }
                first = false
            } else if !(alnum || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") || c == UInt8(ascii: "-")) {
                return false
            }
        }
        return !first
    }

    /// Why `n` cannot be a Linux interface name, or nil if it can.
    public static func interfaceNameProblem(_ n: String) -> String? {
        if n.isEmpty { return "it is empty" }
        if n.utf8.count > 15 { return "it is longer than 15 bytes" }
        if n == "." || n == ".." { return "it may not be \".\" or \"..\"" }
        for c in n.utf8 where c == UInt8(ascii: "/") || c == UInt8(ascii: ":") || c == 0x20 || (c >= 0x09 && c <= 0x0D) {
            return "it may not contain '/', ':' or whitespace"
        }
        return nil
    }

    /// Parses `K1=V1;K2=V2`. Empty segments are ignored.
    /// With `lenient`, malformed pairs are skipped instead of refused.
    public static func parseArgs(_ s: String, lenient: Bool = false) throws(CNIError) -> [(String, String)] {
        var out: [(String, String)] = []
        for pair in s.split(separator: ";", omittingEmptySubsequences: true) {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2, !kv[0].isEmpty else {
                if lenient { continue }
                throw CNIError(.invalidEnvironment, "CNI_ARGS: invalid pair \"\(pair)\" (expected KEY=VALUE)")
            }
            out.append((String(kv[0]), String(kv[1])))
        }
        return out
    }

    /// The value of a CNI_ARGS key (last one wins).
    public func arg(_ key: String) -> String? {
        args.last { $0.0 == key }?.1
    }

    /// Keys every plugin understands (set by runtimes such as Podman and the kubelet).
    public static let commonArgKeys: Set<String> = [
        "IgnoreUnknown", "K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID",
    ]

    /// Fails on keys outside `known` (plus the common ones) unless `IgnoreUnknown` is true.
    public func validateArgs(known: Set<String>) throws(CNIError) {
        let ignore = arg("IgnoreUnknown").map { ["1", "true", "True", "TRUE"].contains($0) } ?? false
        if let v = arg("IgnoreUnknown"), !["1", "0", "true", "false", "True", "False", "TRUE", "FALSE"].contains(v) {
            throw CNIError(.invalidEnvironment, "CNI_ARGS: IgnoreUnknown \"\(v)\" is not a boolean")
        }
        if ignore { return }
        let unknown = args.map(\.0).filter { !known.contains($0) && !CNIEnvironment.commonArgKeys.contains($0) }
        if !unknown.isEmpty {
            throw CNIError(.invalidEnvironment, "CNI_ARGS: unknown key(s) \(unknown.map { "\"\($0)\"" }.joined(separator: ", ")) (set IgnoreUnknown=1 to ignore)")
        }
    }

    /// The environment block to exec a delegate with: the current process environment with
    /// the CNI_* variables replaced by ours (and CNI_COMMAND set to `command`).
    public func environmentBlock(command: CNICommand) -> [String] {
        var out = Posix.environment().filter { !$0.hasPrefix("CNI_") }
        out.append("CNI_COMMAND=\(command.rawValue)")
        if !containerID.isEmpty { out.append("CNI_CONTAINERID=\(containerID)") }
        if !netns.isEmpty { out.append("CNI_NETNS=\(netns)") }
        if !ifname.isEmpty { out.append("CNI_IFNAME=\(ifname)") }
        if !rawArgs.isEmpty { out.append("CNI_ARGS=\(rawArgs)") }
        out.append("CNI_PATH=\(path.joined(separator: ":"))")
        return out
    }
}
