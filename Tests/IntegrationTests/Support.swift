// Test support: a "lab" per test — a fresh host network namespace, fresh state roots, and
// container namespaces — and the built plugins exec'd the way a runtime execs them.
import Foundation
import Testing
@testable import Base
@testable import CNI
import Netlink

let isRoot = getuid() == 0

/// The directory holding the built executables (next to the test bundle).
let buildDir: String = {
    var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    // …/.build/<triple>/debug/swiftcniPackageTests.xctest
    while !url.path.isEmpty, url.path != "/" {
        if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("bridge").path) { return url.path }
        url.deleteLastPathComponent()
    }
    return FileManager.default.currentDirectoryPath + "/.build/debug"
}()

let nsenterCommand = ["/usr/bin/nsenter", "/bin/nsenter"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "nsenter"
let ipCommand = ["/usr/sbin/ip", "/sbin/ip", "/bin/ip", "/usr/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "ip"

nonisolated(unsafe) private var labCounter = 0
private let counterLock = NSLock()

/// Runs a process (with a clean signal state), returns (status, stdout, stderr).
@discardableResult
func run(_ argv: [String], env: [String: String]? = nil, stdin: String = "", stdinBytes: [UInt8]? = nil) -> (status: Int32, out: String, err: String) {
    let environment = (env ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
    do {
        let o = try Exec.run(argv[0], arguments: Array(argv.dropFirst()), environment: environment, stdin: stdinBytes ?? Array(stdin.utf8),
                             captureStderr: true)
        return (o.status, String(decoding: o.stdout, as: UTF8.self), String(decoding: o.stderr, as: UTF8.self))
    } catch {
        return (127, "", "\(error)")
    }
}

@discardableResult
func sh(_ cmd: String) -> (status: Int32, out: String, err: String) {
    run(["/bin/sh", "-c", cmd])
}

/// What one plugin invocation printed.
struct PluginOutput {
    var status: Int32
    var stdout: String
    var stderr: String
    var json: JSON? { try? JSON.parse(stdout) }
    var error: CNIError? { json.flatMap(CNIError.from(json:)) }
    var result: CNIResult? { status == 0 ? json.flatMap { try? CNIResult(json: $0) } : nil }
}

final class Lab: @unchecked Sendable {
    let id: String
    let host: String
    let root: String
    var runDir: String { root + "/run" }
    var dataDir: String { root + "/data" }
    var cacheDir: String { root + "/cache" }
    var confDir: String { root + "/net.d" }
    private(set) var namespaces: [String] = []

    init() throws {
        counterLock.lock()
        labCounter += 1
        let n = labCounter
        counterLock.unlock()
        id = "sct\(getpid() % 100000)x\(n)"
        host = id + "-host"
        root = NSTemporaryDirectory() + "swiftcni-" + id
        try FileManager.default.createDirectory(atPath: confDir, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        try addNamespace(host)
        // The host namespace needs its loopback for local traffic.
        sh("\(ipCommand) -n \(host) link set lo up")
    }

    func addNamespace(_ name: String) throws {
        let r = run([ipCommand, "netns", "add", name])
        if r.status != 0 { throw CLIFailure("ip netns add \(name): \(r.err)") }
        namespaces.append(name)
    }

    /// A new container namespace; returns its name (path: /run/netns/<name>).
    func container(_ name: String) throws -> String {
        let full = "\(id)-\(name)"
        try addNamespace(full)
        return full
    }

    func path(_ ns: String) -> String { "/run/netns/" + ns }

    /// A short unique interface-safe name (≤ 15 bytes) for bridges.
    func bridgeName(_ tag: String = "b") -> String {
        String((tag + id.replacingOccurrences(of: "sct", with: "")).prefix(15))
    }

    /// Runs a plugin inside the lab's host namespace (entering only its network namespace),
    /// as a runtime would.
    /// `{{xff}}` / `{{x80}}` in `config` become those raw bytes (invalid UTF-8).
    func plugin(_ name: String, _ command: String, config: String, containerID: String = "", netns: String = "",
                ifname: String = "eth0", args: String = "", env extra: [String: String] = [:], path: String? = nil) -> PluginOutput {
        var env = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": command, "CNI_PATH": path ?? buildDir,
                   "SWIFTCNI_RUN_DIR": runDir, "SWIFTCNI_STATE_DIR": root + "/state"]
        if !containerID.isEmpty { env["CNI_CONTAINERID"] = containerID }
        if !netns.isEmpty { env["CNI_NETNS"] = netns.hasPrefix("/") ? netns : self.path(netns) }
        if !ifname.isEmpty { env["CNI_IFNAME"] = ifname }
        if !args.isEmpty { env["CNI_ARGS"] = args }
        for (k, v) in extra { env[k] = v }
        let exe = name.hasPrefix("/") ? name : buildDir + "/" + name
        let r = run([nsenterCommand, "--net=" + self.path(host), exe], env: env, stdinBytes: rawBytes(config))
        return PluginOutput(status: r.status, stdout: r.out, stderr: r.err)
    }

    /// Starts a plugin in the lab's host namespace as `plugin` runs it, without waiting (for
    /// tests that kill it half-way); its stdin is written and closed.
    func startPlugin(_ name: String, _ command: String, config: String, containerID: String, netns: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: nsenterCommand)
        p.arguments = ["--net=" + path(host), buildDir + "/" + name]
        p.environment = ["CNI_COMMAND": command, "CNI_CONTAINERID": containerID, "CNI_NETNS": path(netns), "CNI_IFNAME": "eth0",
                         "CNI_PATH": buildDir, "SWIFTCNI_RUN_DIR": runDir, "SWIFTCNI_STATE_DIR": root + "/state",
                         "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        let input = Pipe()
        p.standardInput = input
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        input.fileHandleForWriting.write(Data(config.utf8))
        try input.fileHandleForWriting.close()
        return p
    }

    /// Every state file under the lab's root: regular files but locks and host-local's
    /// `last_reserved_ip.N` hints (what a refused operation may not leave).
    func files() -> [String] {
        let e = FileManager.default.enumerator(atPath: root)
        var out: [String] = []
        while let p = e?.nextObject() as? String {
            let name = (p as NSString).lastPathComponent
            guard e?.fileAttributes?[.type] as? FileAttributeType == .typeRegular else { continue }
            if name == "lock" || name.hasSuffix(".lock") || name.hasPrefix("last_reserved_ip.") { continue }
            out.append(p)
        }
        return out.sorted()
    }

    /// Runs cnictl inside the host namespace with the lab's directories.
    func cnictl(_ args: [String], env extra: [String: String] = [:]) -> (status: Int32, out: String, err: String) {
        var env = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SWIFTCNI_RUN_DIR": runDir, "SWIFTCNI_STATE_DIR": root + "/state"]
        for (k, v) in extra { env[k] = v }
        let common = ["--conf-dir", confDir, "--cni-path", buildDir, "--cache-dir", cacheDir]
        // The directory options go right after the subcommand.
        let full = args.first == "netns" || args.isEmpty ? args : [args[0]] + common + Array(args.dropFirst())
        // nsenter (not `ip netns exec`, whose private mount namespace would hide the
        // namespaces cnictl mounts under /run/netns).
        return run([nsenterCommand, "--net=" + path(host), buildDir + "/cnictl"] + full, env: env)
    }

    /// Runs cnictl as a user would, in the lab's host namespace, with the lab's directories
    /// in the environment (NETCONFPATH, CNI_PATH, CNI_CACHE_DIR, the state roots).
    func ctl(_ args: [String]) -> (status: Int32, out: String, err: String) {
        let env = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SWIFTCNI_RUN_DIR": runDir, "SWIFTCNI_STATE_DIR": root + "/state",
                   "NETCONFPATH": confDir, "CNI_PATH": buildDir, "CNI_CACHE_DIR": cacheDir]
        return run([nsenterCommand, "--net=" + path(host), buildDir + "/cnictl"] + args, env: env)
    }

    /// Runs a command inside a namespace.
    @discardableResult
    /// A real single-member etcd inside the lab's host namespace, on its loopback, healthy
    /// when this returns; the caller kills it (`stop(_:)`). With `tls` (a directory of
    /// Tests/Helpers/make-certs.sh), it serves TLS with server.crt, and with `clientCertAuth`
    /// takes only clients whose certificate ca.crt signed.
    func startEtcd(client: Int, peer: Int, tls: String? = nil, clientCertAuth: Bool = true) throws -> Process {
        let scheme = tls == nil ? "http" : "https"
        let etcd = Process()
        etcd.executableURL = URL(fileURLWithPath: nsenterCommand)
        var args = ["--net=" + path(host), "etcd", "--name", "e", "--data-dir", root + "/etcd-\(client)",
                    "--listen-client-urls", "\(scheme)://127.0.0.1:\(client)", "--advertise-client-urls", "\(scheme)://127.0.0.1:\(client)",
                    "--listen-peer-urls", "http://127.0.0.1:\(peer)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(peer)",
                    "--initial-cluster", "e=http://127.0.0.1:\(peer)"]
        if let d = tls {
            args += ["--cert-file", d + "/server.crt", "--key-file", d + "/server.key"]
            if clientCertAuth { args += ["--client-cert-auth", "--trusted-ca-file", d + "/ca.crt"] }
        }
        etcd.arguments = args
        etcd.standardOutput = FileHandle.nullDevice
        etcd.standardError = FileHandle.nullDevice
        try etcd.run()
        for _ in 0..<100 {
            if exec(host, etcdctl(client, tls: tls) + " endpoint health").status == 0 { return etcd }
            usleep(50_000)
        }
        stop(etcd)
        throw CLIFailure("etcd did not start on 127.0.0.1:\(client)")
    }

    /// etcdctl for the member on `client` (with the test CA and client certificate for TLS).
    func etcdctl(_ client: Int, tls: String? = nil) -> String {
        guard let d = tls else { return "etcdctl --endpoints=http://127.0.0.1:\(client)" }
        return "etcdctl --endpoints=https://127.0.0.1:\(client) --cacert=\(d)/ca.crt --cert=\(d)/client.crt --key=\(d)/client.key"
    }

    /// Kills a process this lab started and reaps it.
    func stop(_ p: Process) {
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    @discardableResult
    func exec(_ ns: String, _ cmd: String) -> (status: Int32, out: String, err: String) {
        run([ipCommand, "netns", "exec", ns, "/bin/sh", "-c", cmd])
    }

    func ping(_ from: String, _ to: String) -> Bool {
        let six = to.contains(":") ? "-6 " : ""
        return exec(from, "ping \(six)-c 1 -W 2 \(to)").status == 0
    }

    /// Interface names in a namespace.
    func links(_ ns: String) -> [String] {
        exec(ns, "\(ipCommand) -o link show").out.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: ":")
            guard parts.count > 1 else { return nil }
            return String(parts[1].trimmingCharacters(in: .whitespaces).split(separator: "@")[0])
        }
    }

    /// Allocation files of a network (reference format: one per IP).
    func allocations(_ network: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dataDir + "/" + network)) ?? []
        return names.filter { IPAddress($0) != nil }.sorted()
    }

    /// An "outside" host: its own namespace behind the lab host, 192.0.2.2/24 with the lab
    /// host at 192.0.2.1 (and 2001:db8:99::2 / ::1). Returns its name.
    func outside() throws -> String {
        let out = "\(id)-out"
        try addNamespace(out)
        let hostEnd = String(("o" + id.replacingOccurrences(of: "sct", with: "")).prefix(15))
        let cmds = [
            "\(ipCommand) link add \(hostEnd) netns \(host) type veth peer name eth0 netns \(out)",
            "\(ipCommand) -n \(host) addr add 192.0.2.1/24 dev \(hostEnd)",
            "\(ipCommand) -n \(host) addr add 2001:db8:99::1/64 dev \(hostEnd) nodad",
            "\(ipCommand) -n \(host) link set \(hostEnd) up",
            "\(ipCommand) -n \(out) addr add 192.0.2.2/24 dev eth0",
            "\(ipCommand) -n \(out) addr add 2001:db8:99::2/64 dev eth0 nodad",
            "\(ipCommand) -n \(out) link set eth0 up",
            "\(ipCommand) -n \(out) link set lo up",
        ]
        for c in cmds {
            let r = sh(c)
            if r.status != 0 { throw CLIFailure("\(c): \(r.err)") }
        }
        return out
    }

    /// Opens a TCP connection (or sends a UDP datagram) from namespace `from` to
    /// `to`:`port`, where a one-shot server in namespace `serverNS` listens on
    /// `serverPort` (default: `port`); returns the peer address the server saw, or nil if
    /// nothing arrived (within ~2 s). Python, never a name lookup.
    func peer(_ proto: String = "tcp", from: String, to: String, port: Int, serverNS: String, serverPort: Int? = nil,
              sourcePort: Int? = nil) -> String? {
        let ready = root + "/ready-\(port)-\(UInt32.random(in: 0...UInt32.max))"
        let six = to.contains(":")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ipCommand)
        p.arguments = ["netns", "exec", serverNS, "python3", helper("peer.py"), "server", six ? "::" : "0.0.0.0", "\(serverPort ?? port)",
                       ready, six ? "6" : "4", proto]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: ready) { usleep(20_000) }
        run([ipCommand, "netns", "exec", from, "python3", helper("peer.py"), "client", to, "\(port)", proto, "\(sourcePort ?? 0)"])
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let peer = out.trimmingCharacters(in: .whitespacesAndNewlines)
        return peer == "none" || peer.isEmpty ? nil : peer.replacingOccurrences(of: "::ffff:", with: "")
    }

    func tcpPeer(from: String, to: String, port: Int, serverNS: String) -> String? {
        peer("tcp", from: from, to: to, port: port, serverNS: serverNS)
    }

    /// The namespace's whole nftables ruleset as `nft` prints it (tests compare before/after
    /// with this independent tool; the suite itself never runs nft).
    func ruleset(_ ns: String) -> String {
        exec(ns, "nft list ruleset").out
    }

    func writeConflist(_ name: String, _ json: String) throws {
        try json.write(toFile: confDir + "/\(name).conflist", atomically: true, encoding: .utf8)
    }

    /// The kernel's cookie of the lab's host network namespace (SO_NETNS_COOKIE), read
    /// on a thread inside it.
    lazy var hostCookie: String = {
        guard let ns = try? NetworkNamespace.open(path(host)), let c = try? NetnsThread.run(in: ns, { Posix.netnsCookie() }) else {
            return "unknown"
        }
        return String(c)
    }()

    /// The DNS state of the lab's host namespace: `<run dir>/dns/netns-<cookie>`.
    var dnsRoot: String { runDir + "/dns/netns-" + hostCookie }

    /// The DNS server of the lab's host namespace (started by dns-alias), if running.
    var dnsServerPID: Int32? { Lab.daemonPID(dnsRoot + "/server.pid", "swiftcni-dns", runDir) }

    /// The pid in `pidFile` if it is a live `name` started for `runDir`.
    static func daemonPID(_ pidFile: String, _ name: String, _ runDir: String) -> Int32? {
        guard let s = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = Int32(s.trimmingCharacters(in: .whitespacesAndNewlines)),
              let cmd = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8),
              cmd.contains(name) else { return nil }
        // The lab's own daemon: its run directory on its command line or in its environment.
        let env = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))).map { String(decoding: $0, as: UTF8.self) } ?? ""
        guard cmd.contains(runDir) || env.contains("SWIFTCNI_RUN_DIR=" + runDir + "\0") else { return nil }
        return pid
    }

    /// Waits (at most `seconds`) for the lab's DNS server to exit, as it does once it serves
    /// no record; true when it has.
    @discardableResult
    func dnsServerExited(within seconds: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while dnsServerPID != nil {
            if Date() > deadline { return false }
            usleep(50_000)
        }
        return true
    }

    func cleanup() {
        if let pid = Lab.daemonPID(runDir + "/overlay/server.pid", "swiftcni-overlay-agent", runDir) { kill(pid, SIGKILL); _ = processGone(pid) }
        // Every DNS server of this run dir (one per namespace that used it).
        for d in (try? FileManager.default.contentsOfDirectory(atPath: runDir + "/dns")) ?? [] {
            if let pid = Lab.daemonPID(runDir + "/dns/\(d)/server.pid", "swiftcni-dns", runDir) { kill(pid, SIGKILL); _ = processGone(pid) }
        }
        // Containers made by `cnictl run` are named after the lab too.
        for ns in ((try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []) where ns.hasPrefix(id + "-") && !namespaces.contains(ns) {
            namespaces.insert(ns, at: 0)
        }
        for ns in namespaces { try? FileManager.default.removeItem(atPath: "/etc/netns/" + ns) }
        for ns in namespaces.reversed() { run([ipCommand, "netns", "del", ns]) }
        namespaces = []
        try? FileManager.default.removeItem(atPath: root)
    }

    deinit { cleanup() }
}

struct CLIFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Runs `body` with a fresh lab, cleaning it up however the body ends.
func withLab(_ body: (Lab) throws -> Void) throws {
    let lab = try Lab()
    defer { lab.cleanup() }
    try body(lab)
}

/// A bridge + host-local network configuration for the lab.
func bridgeConfig(_ lab: Lab, name: String = "net", version: String = "1.1.0", bridge: String? = nil, extra: String = "",
                  ipam: String? = nil, subnets: [String] = ["10.123.0.0/24"]) -> String {
    let ranges = subnets.map { "[{\"subnet\":\"\($0)\"}]" }.joined(separator: ",")
    let ipamJSON = ipam ?? #"{"type":"host-local","dataDir":"\#(lab.dataDir)","ranges":[\#(ranges)]}"#
    return #"{"cniVersion":"\#(version)","name":"\#(name)","type":"bridge","bridge":"\#(bridge ?? lab.bridgeName())","isGateway":true\#(extra),"ipam":\#(ipamJSON)}"#
}

/// Waits (at most 5 s) until process `pid` — killed, not our child — is gone.
func processGone(_ pid: Int32) -> Bool {
    for _ in 0..<250 {
        // A zombie still answers kill(0): look at its state.
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
        if let close = stat.lastIndex(of: ")"), stat[stat.index(close, offsetBy: 2)] == "Z" { return true }
        usleep(20_000)
    }
    return false
}

/// A helper program of the tests (Tests/Helpers).
func helper(_ name: String) -> String { repoRoot + "/Tests/Helpers/" + name }

/// The text's bytes, with `{{xff}}` and `{{x80}}` as those single (invalid UTF-8) bytes.
func rawBytes(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var rest = Substring(s)
    while let r = rest.range(of: "{{x") {
        let hex = rest[r.upperBound...].prefix(2)
        guard hex.count == 2, let b = UInt8(hex, radix: 16), rest[r.upperBound...].dropFirst(2).hasPrefix("}}") else { break }
        out += Array(rest[..<r.lowerBound].utf8)
        out.append(b)
        rest = rest[r.upperBound...].dropFirst(4)
    }
    return out + Array(rest.utf8)
}

/// The config with `prevResult` set (for CHECK and DEL).
func withPrevResult(_ config: String, _ result: String) -> String {
    var o = (try! JSON.parse(config)).objectValue!
    o["prevResult"] = try! JSON.parse(result)
    return JSON.object(o).serialized()
}
