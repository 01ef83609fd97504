// cnictl: runs CNI network configurations like a runtime does (a cnitool-style harness),
// and manages named network namespaces to use as containers.
import ArgumentParser
import Base
import CNI
import CNIRuntime
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Netlink

/// Options every plugin-running command shares.
struct CNIOptions: ParsableArguments {
    /// No option given (each property set: ArgumentParser's wrappers trap on reading an
    /// unparsed value), for commands that take none and for `run`'s fast path.
    static var defaults: CNIOptions {
        var o = CNIOptions()
        o.confDir = nil
        o.cniPath = nil
        o.cacheDir = nil
        return o
    }

    @Option(name: .customLong("conf-dir"), help: "Directory of network configurations (default: $NETCONFPATH or /etc/cni/net.d).")
    var confDir: String?

    @Option(name: .customLong("cni-path"), help: "Plugin directories, ':'-separated (default: $CNI_PATH or /opt/cni/bin).")
    var cniPath: String?

    @Option(name: .customLong("cache-dir"), help: "Result cache root, libcni's layout (default: $CNI_CACHE_DIR or /var/lib/cni).")
    var cacheDir: String?

    var resolvedCacheDir: String {
        cacheDir ?? ProcessInfo.processInfo.environment["CNI_CACHE_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/var/lib/cni"
    }

    var resolvedConfDir: String {
        confDir ?? ProcessInfo.processInfo.environment["NETCONFPATH"].flatMap { $0.isEmpty ? nil : $0 } ?? "/etc/cni/net.d"
    }

    var resolvedPath: [String] {
        let p = cniPath ?? ProcessInfo.processInfo.environment["CNI_PATH"].flatMap { $0.isEmpty ? nil : $0 } ?? "/opt/cni/bin"
        return p.split(separator: ":").map(String.init)
    }

    func runtime() -> Runtime { Runtime(pluginPath: resolvedPath, cacheDir: resolvedCacheDir) }

    func load(_ network: String) throws -> Conflist {
        do { return try Conflist.load(name: network, dir: resolvedConfDir) } catch {
            throw CLIError("\(error)")
        }
    }
}

/// Options naming one attachment.
struct AttachmentOptions: ParsableArguments {
    @Argument(help: "The network's name (its conflist's \"name\").")
    var network: String

    @Argument(help: "The container's network namespace: a path, or a name under /run/netns.")
    var netns: String

    @Option(name: .customLong("ifname"), help: "Interface name in the container (default: $CNI_IFNAME or eth0).")
    var ifname: String?

    @Option(name: .customLong("container-id"), help: "Container ID (default: derived from the namespace path).")
    var containerID: String?

    @Option(name: .customLong("args"), help: "CNI_ARGS, e.g. \"IP=10.1.0.5;IgnoreUnknown=1\" (default: $CNI_ARGS).")
    var args: String?

    @Option(name: .customLong("cap"), help: "Capability arguments as a JSON object, e.g. '{\"portMappings\":[...]}' (default: $CAP_ARGS).")
    var cap: String?

    var netnsPath: String { netns.contains("/") ? netns : NamedNamespaces.path(netns) }

    func attachment() throws -> Runtime.Attachment {
        let env = ProcessInfo.processInfo.environment
        let path = netnsPath
        let id = containerID ?? "cnictl-" + stableHash(path)
        var rt = Runtime.Attachment(containerID: id, netns: path,
                                    ifname: ifname ?? env["CNI_IFNAME"].flatMap { $0.isEmpty ? nil : $0 } ?? "eth0")
        do { rt.args = try CNIEnvironment.parseArgs(args ?? env["CNI_ARGS"] ?? "") } catch { throw CLIError(error.msg) }
        if let c = cap ?? env["CAP_ARGS"], !c.isEmpty {
            guard let j = try? JSON.parse(c), case .object(let o) = j else {
                throw CLIError("--cap / CAP_ARGS must be a JSON object, got: \(c)")
            }
            rt.capabilityArgs = o
        }
        return rt
    }
}

struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Runs a command body, turning errors into one line on stderr and exit status 1.
func reporting<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let e as ExitCode {
        throw e
    } catch let e as CNIError {
        Posix.writeStderr("cnictl: \(e.msg) [code \(e.code.rawValue)]\n")
        throw ExitCode(1)
    } catch let e as any ClassifiedError {
        let c = CNIError(e)
        Posix.writeStderr("cnictl: \(c.msg) [code \(c.code.rawValue)]\n")
        throw ExitCode(1)
    } catch {
        Posix.writeStderr("cnictl: \(error)\n")
        throw ExitCode(1)
    }
}

func printJSON(_ j: JSON) {
    print(j.serialized(indent: 4))
}

/// A command on one attachment (network + namespace): loads both, runs the operation.
protocol AttachmentCommand: ParsableCommand {
    var cni: CNIOptions { get }
    var target: AttachmentOptions { get }
    func operate(_ runtime: inout Runtime, _ list: Conflist, _ rt: Runtime.Attachment) throws
}

extension AttachmentCommand {
    func run() throws {
        try reporting {
            var r = cni.runtime()
            try operate(&r, try cni.load(target.network), try target.attachment())
        }
    }
}

struct Add: AttachmentCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add a container (network namespace) to a network.",
        discussion: """
            Runs the network's plugins in order with CNI_COMMAND=ADD, each given the previous one's \
            result, prints the final result and caches it for CHECK and DEL.

            Examples:
              cnictl netns add c1
              cnictl add mynet c1
              cnictl add mynet /run/netns/c1 --ifname eth1 --args IP=10.1.0.5
              cnictl add mynet c1 --cap '{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}'
            """)
    @OptionGroup var cni: CNIOptions
    @OptionGroup var target: AttachmentOptions

    func operate(_ r: inout Runtime, _ list: Conflist, _ rt: Runtime.Attachment) throws {
        printJSON(try r.add(list, rt))
    }
}

struct Check: AttachmentCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a container's attachment to a network (CNI CHECK with the cached result).",
        discussion: "Example:\n  cnictl check mynet c1")
    @OptionGroup var cni: CNIOptions
    @OptionGroup var target: AttachmentOptions

    func operate(_ r: inout Runtime, _ list: Conflist, _ rt: Runtime.Attachment) throws { try r.check(list, rt) }
}

struct Del: AttachmentCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove a container from a network (plugins in reverse order, with the cached result).",
        discussion: "Example:\n  cnictl del mynet c1")
    @OptionGroup var cni: CNIOptions
    @OptionGroup var target: AttachmentOptions

    func operate(_ r: inout Runtime, _ list: Conflist, _ rt: Runtime.Attachment) throws { try r.del(list, rt) }
}

struct GC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Garbage-collect a network: DEL stale cached attachments, then CNI GC on every plugin.",
        discussion: """
            Valid attachments are the ones given with --valid; without any, every cached attachment \
            whose network namespace still exists.

            Examples:
              cnictl gc mynet
              cnictl gc mynet --valid cnictl-0123456789abcdef0123/eth0
            """)
    @OptionGroup var cni: CNIOptions
    @Argument(help: "The network's name (default: every network cnictl's containers know, with their attachments as the valid ones).")
    var network: String?
    @Option(name: .customLong("valid"), help: "A valid attachment, CONTAINERID/IFNAME (repeatable).")
    var valid: [String] = []

    func run() throws {
        try reporting {
            var r = cni.runtime()
            guard let network else {
                // Every network: the attachments of cnictl's containers are the valid ones.
                let store = Store()
                let known = store.containers()
                var failures: [String] = []
                for n in Networks(cni: cni, store: store).all() {
                    guard let list = try? cni.load(n.name) else { continue }
                    let valid = known.flatMap { c in c.endpoints.filter { $0.network == n.name }.map { Base.Attachment(containerID: c.id, ifname: $0.ifname) } }
                    do { try r.gc(list, valid: valid); print("\(n.name): collected") } catch { failures.append("\(n.name): \(error)") }
                }
                if !failures.isEmpty { throw CLIError(failures.joined(separator: "; ")) }
                return
            }
            let list = try cni.load(network)
            var attachments: [Base.Attachment] = []
            if valid.isEmpty {
                for a in r.cachedAttachments() where a.network == list.name && FileManager.default.fileExists(atPath: a.rt.netns) {
                    attachments.append(Base.Attachment(containerID: a.rt.containerID, ifname: a.rt.ifname))
                }
            } else {
                for v in valid {
                    let p = v.split(separator: "/", maxSplits: 1).map(String.init)
                    guard p.count == 2 else { throw CLIError("--valid \"\(v)\": expected CONTAINERID/IFNAME") }
                    attachments.append(Base.Attachment(containerID: p[0], ifname: p[1]))
                }
            }
            try r.gc(list, valid: attachments)
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask every plugin of a network whether it is ready for ADD (CNI STATUS, 1.1.0).",
        discussion: "Example:\n  cnictl status mynet")
    @OptionGroup var cni: CNIOptions
    @Argument(help: "The network's name.") var network: String

    func run() throws {
        try reporting {
            var r = cni.runtime()
            try r.status(try cni.load(network))
            print("\(network): ready")
        }
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the CNI versions each plugin of a network supports.",
        discussion: "Example:\n  cnictl version mynet")
    @OptionGroup var cni: CNIOptions
    @Argument(help: "The network's name.") var network: String

    func run() throws {
        try reporting {
            var r = cni.runtime()
            for (type, info) in try r.versions(try cni.load(network)) {
                print("\(type): \(info.serialized())")
            }
        }
    }
}

struct Netns: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage named network namespaces (/run/netns), to use as containers.",
        subcommands: [NetnsAdd.self, NetnsDel.self, NetnsLs.self])

    struct NetnsAdd: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add", abstract: "Create a named network namespace.",
                                                        discussion: "Example:\n  cnictl netns add c1")
        @Argument var name: String
        func run() throws { try reporting { try NamedNamespaces.create(name) } }
    }

    struct NetnsDel: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "del", abstract: "Delete a named network namespace.",
                                                        discussion: "Example:\n  cnictl netns del c1")
        @Argument var name: String
        func run() throws {
            try reporting {
                NetnsResolvConf.remove(name)
                if !(try NamedNamespaces.delete(name)) { throw CLIError("network namespace \"\(name)\" does not exist") }
            }
        }
    }

    struct NetnsLs: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List named network namespaces.")
        func run() throws { try reporting { for n in try NamedNamespaces.list() { print(n) } } }
    }
}

struct CNICtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cnictl",
        abstract: "Run CNI networks by hand, the way a container runtime does.",
        discussion: """
            Network configurations are read from --conf-dir (or $NETCONFPATH, default /etc/cni/net.d); \
            plugins from --cni-path (or $CNI_PATH, default /opt/cni/bin).
            """,
        subcommands: [Add.self, Check.self, Del.self, GC.self, Status.self, Version.self, Netns.self,
                      NetworkGroup.self, RunCommand.self, ExecCommand.self, PsCommand.self, RmCommand.self, InspectCommand.self,
                      StopCommand.self, StartCommand.self, RestartCommand.self])
}

/// The entry point. `cnictl run` is on the hot path of every container start: its plain
/// command lines are parsed by `RunCommand.fastParse` (RunFastPath.swift, checked against the
/// ArgumentParser definition), the rest with `run`'s own definition alone (ArgumentParser
/// builds the whole command tree by reflection otherwise); help goes through the whole tree,
/// for `cnictl run --help`'s usual text.
public enum Cnictl {
    public static func main() {
        let argv = Array(CommandLine.arguments.dropFirst())
        if argv.first == "run", !argv.contains(where: { $0 == "-h" || $0 == "--help" || $0 == "help" }) {
            do {
                let args = Array(argv.dropFirst())
                var cmd: any ParsableCommand
                if var fast = RunCommand.fastParse(args) { try fast.validate(); cmd = fast } else { cmd = try RunCommand.parseAsRoot(args) }
                try cmd.run()
                exit(0)
            } catch {
                CNICtl.exit(withError: error)
            }
        }
        CNICtl.main()
    }
}
