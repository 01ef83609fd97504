// swiftcni-overlay-agent: the per-host agent of the overlay plugin (which starts it on demand;
// it can equally run under a service manager with --stay). Settings come from
// $SWIFTCNI_RUN_DIR/overlay/agent.json, written by the plugin.
#if canImport(Glibc)
import Glibc
#endif
import Base
import CNI
import Overlay
import OverlayAgent

// cnictl's etcd operations (see KVTool).
if CommandLine.arguments.count > 1 && CommandLine.arguments[1] == "kv" {
    KVTool.main(Array(CommandLine.arguments.dropFirst(2)))
}
var idleExit = 2
for a in CommandLine.arguments.dropFirst() {
    switch a {
    case "--stay": idleExit = Int.max / 2_000_000_000
    case "--version": print("swiftcni-overlay-agent 0.1.0"); exit(0)
    default:
        Posix.writeStderr("usage: swiftcni-overlay-agent [--stay]\n")
        exit(2)
    }
}
signal(SIGPIPE, SIG_IGN)
guard let settings = OverlayLocal.readAgentSettings() else {
    Posix.writeStderr("swiftcni-overlay-agent: no settings in \(OverlayLocal.agentConfig) (the overlay plugin writes them)\n")
    exit(1)
}
do {
    try HostAgent(settings: settings).run(idleExit: idleExit)
} catch {
    Posix.writeStderr("swiftcni-overlay-agent: \(error)\n")
    exit(1)
}
