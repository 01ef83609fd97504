// swiftcni-dns: the per-host DNS server of the dns-alias plugin (which starts it on demand;
// it can equally run under a service manager).
//
//   swiftcni-dns [--run-dir DIR] [--port N] [--threads N] [--stay]
//
// DIR defaults to $SWIFTCNI_RUN_DIR or /run/swiftcni; records are read from
// DIR/dns/netns-<cookie>, those of the network namespace it runs in. It
// exits two seconds after the last record is gone, unless --stay. UDP threads default to
// $SWIFTCNI_DNS_THREADS, else half the cores (at least one).

#if canImport(Glibc)
import Glibc
#endif
import Base
import CNI
import DNS
import DNSServer
import Logging

LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
var runDir = SuitePaths.runDirectory
var port = 53
var threads = Int(Posix.getenv("SWIFTCNI_DNS_THREADS") ?? "") ?? 0
var idleExit = 2
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--run-dir": runDir = args.popFirst() ?? runDir
    case "--port": port = Int(args.popFirst() ?? "") ?? port
    case "--threads": threads = Int(args.popFirst() ?? "") ?? 0
    case "--stay": idleExit = Int.max / 2_000_000_000
    case "--version":
        print("swiftcni-dns 0.1.0")
        exit(0)
    default:
        Posix.writeStderr("swiftcni-dns: unknown argument \(a)\nusage: swiftcni-dns [--run-dir DIR] [--port N] [--threads N] [--stay]\n")
        exit(2)
    }
}
signal(SIGPIPE, SIG_IGN)
let server = threads > 0 ? ContainerDNSServer(state: DNSState(runDirectory: runDir), port: port, threads: threads)
                         : ContainerDNSServer(state: DNSState(runDirectory: runDir), port: port)
do {
    try server.run(idleExit: idleExit)
} catch {
    Posix.writeStderr("swiftcni-dns: \(error)\n")
    exit(1)
}
