// swift-tools-version:6.0
import PackageDescription

// The layers (DESIGN.md "Layers"), bottom up:
//   CShim, CMnl, CNftnl      C: what Swift cannot import; libmnl; libnftnl
//   Base                     system calls, files, locks, addresses, JSON, exec, daemon plumbing
//   Netlink, Firewall,       the kernel (rtnetlink, nftables), DNS wire and zone, the etcd
//   DNS, Etcd(Settings)      client: each on Base and its C library only, none knows CNI
//   CNI                      the contract, on Base only; maps every module's errors to codes
//   IPAM, HostLocalIPAM,     network logic: allocation (pure), its stores and host-local;
//   ClusterIPAM,             the stores in etcd (the overlay agent's);
//   BridgeNetwork, Portmap-  the bridge, portmap, dns-alias, loopback and overlay plugins;
//   Plugin, DNSAliasPlugin,  the chain runner and cnictl's commands
//   LoopbackPlugin, Overlay, the overlay plugin and its agent (OverlayAgent);
//   CNIRuntime, CnictlCommands
//   DNSServer                the DNS server daemon's logic (SwiftNIO)
//   <executables>            thin: a main.swift that hands over to one of the above
//
// Plugins must not link Foundation: they are exec'd once per CNI operation and Foundation
// costs milliseconds of start-up. Only cnictl (the harness) and the daemons may use it.
let package = Package(
    name: "swiftcni",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "bridge", targets: ["bridge"]),
        .executable(name: "host-local", targets: ["host-local"]),
        .executable(name: "loopback", targets: ["loopback"]),
        .executable(name: "portmap", targets: ["portmap"]),
        .executable(name: "dns-alias", targets: ["dns-alias"]),
        .executable(name: "swiftcni-dns", targets: ["swiftcni-dns"]),
        .executable(name: "overlay", targets: ["overlay"]),
        .executable(name: "swiftcni-overlay-agent", targets: ["swiftcni-overlay-agent"]),
        .executable(name: "cnictl", targets: ["cnictl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // C: system libraries (apt: libmnl-dev, libnftnl-dev) and what Swift cannot import
        // (setns/unshare with _GNU_SOURCE, function-like macros).
        .systemLibrary(name: "CMnl", pkgConfig: "libmnl", providers: [.apt(["libmnl-dev"])]),
        .systemLibrary(name: "CNftnl", pkgConfig: "libnftnl", providers: [.apt(["libnftnl-dev"])]),
        .target(name: "CShim"),

        // Base: system calls, files, locks, IP/MAC addresses, the JSON value, exec, daemon
        // plumbing, and the kinds of failure lower modules report. Knows nothing above it.
        .target(name: "Base", dependencies: ["CShim"]),

        // The kernel and the wire: each on Base and its C library only.
        .target(name: "Netlink", dependencies: ["Base", "CMnl", "CShim"]),
        .target(name: "Firewall", dependencies: ["Base", "Netlink", "CNftnl", "CMnl"]),
        .target(name: "DNS", dependencies: ["Base"]),
        // Where the cluster's etcd is (what plugins parse and hand to their agent) and its key
        // layout, apart from the client, so that plugins and cnictl link no etcd client.
        .target(name: "EtcdSettings", dependencies: ["Base"]),
        // The etcd client: its v3 JSON gateway over async-http-client (HTTP/1.1, TLS and
        // client certificates through swift-nio-ssl). Only the agent links it (cnictl runs
        // the agent's `kv` tool).
        .target(name: "Etcd", dependencies: [
            "Base", "EtcdSettings",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),

        // The CNI contract: env, config reader, results 0.3.0–1.1.0, codes and the one
        // mapping of every module's errors to them, the plugin entry point, delegation.
        .target(name: "CNI", dependencies: ["Base"]),

        // Network logic.
        .target(name: "IPAM", dependencies: ["Base", "CNI"]),
        .target(name: "HostLocalIPAM", dependencies: ["Base", "CNI", "IPAM"]),
        // Allocation stores in etcd, for the overlay agent.
        .target(name: "ClusterIPAM", dependencies: ["Base", "CNI", "IPAM", "Etcd"]),
        .target(name: "BridgeNetwork", dependencies: ["Base", "CNI", "Netlink", "IPAM", "HostLocalIPAM", "Firewall"]),
        .target(name: "PortmapPlugin", dependencies: ["Base", "CNI", "Netlink", "Firewall"]),
        .target(name: "DNSAliasPlugin", dependencies: ["Base", "CNI", "DNS", "Firewall"]),
        .target(name: "LoopbackPlugin", dependencies: ["Base", "CNI", "Netlink"]),
        // The overlay plugin (it asks its host's agent for everything cluster-wide) and what
        // it shares with the agent; the agent (etcd session, addresses, programming).
        .target(name: "Overlay", dependencies: ["Base", "CNI", "Netlink", "IPAM", "HostLocalIPAM", "EtcdSettings", "DNS", "BridgeNetwork"],
                swiftSettings: [.swiftLanguageMode(.v5)]),
        .target(name: "OverlayAgent", dependencies: ["Base", "CNI", "Netlink", "DNS", "Etcd", "IPAM", "HostLocalIPAM", "ClusterIPAM", "Overlay"],
                swiftSettings: [.swiftLanguageMode(.v5)]),
        // The chain runner (conflists run as a runtime runs them, libcni's result cache).
        .target(name: "CNIRuntime", dependencies: ["Base", "CNI"]),
        // cnictl's commands: the CNI harness and Docker's network commands.
        .target(name: "CnictlCommands", dependencies: [
            "Base", "CNI", "CNIRuntime", "Netlink", "Firewall", "EtcdSettings", "HostLocalIPAM", "Overlay",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // The DNS server daemon (SwiftNIO and swift-log are fine in a daemon).
        .target(name: "DNSServer", dependencies: [
            "Base", "DNS", "CShim",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: [.swiftLanguageMode(.v5)]),

        // Executables: thin.
        .executableTarget(name: "bridge", dependencies: ["CNI", "HostLocalIPAM", "BridgeNetwork"], path: "Sources/bridge"),
        .executableTarget(name: "host-local", dependencies: ["CNI", "HostLocalIPAM"], path: "Sources/host-local"),
        .executableTarget(name: "loopback", dependencies: ["CNI", "LoopbackPlugin"], path: "Sources/loopback"),
        .executableTarget(name: "portmap", dependencies: ["CNI", "PortmapPlugin"], path: "Sources/portmap"),
        .executableTarget(name: "dns-alias", dependencies: ["CNI", "DNSAliasPlugin"], path: "Sources/dns-alias"),
        .executableTarget(name: "overlay", dependencies: ["CNI", "Overlay"], path: "Sources/overlay"),
        .executableTarget(name: "swiftcni-overlay-agent", dependencies: ["Base", "Overlay", "OverlayAgent"], path: "Sources/swiftcni-overlay-agent"),
        .executableTarget(name: "swiftcni-dns", dependencies: [
            "Base", "DNS", "DNSServer", .product(name: "Logging", package: "swift-log"),
        ], path: "Sources/swiftcni-dns"),
        .executableTarget(name: "cnictl", dependencies: ["CnictlCommands"], path: "Sources/cnictl"),

        // A test helper: the DNS tests' own upstream server, on the suite's DNS codec.
        .executableTarget(name: "test-dns-stub", dependencies: ["Base", "DNS"], path: "Tests/Helpers/dns-stub"),

        .testTarget(name: "BaseTests", dependencies: ["Base"]),
        .testTarget(name: "CNITests", dependencies: ["CNI", "Base"]),
        .testTarget(name: "NetlinkTests", dependencies: ["Netlink", "Base", "CMnl"]),
        .testTarget(name: "IPAMTests", dependencies: ["IPAM", "HostLocalIPAM", "CNI", "Base"]),
        .testTarget(name: "FirewallTests", dependencies: ["Firewall", "Base", "Netlink"], exclude: ["Golden"]),
        .testTarget(name: "DNSTests", dependencies: ["DNS", "Base"]),
        .testTarget(name: "OverlayTests", dependencies: ["Overlay", "OverlayAgent", "Etcd", "EtcdSettings", "ClusterIPAM", "HostLocalIPAM", "CNI", "Base"]),
        .testTarget(name: "PluginConfigTests", dependencies: [
            "CNI", "Base", "BridgeNetwork", "HostLocalIPAM", "PortmapPlugin", "DNSAliasPlugin", "Overlay", "CNIRuntime", "Firewall",
        ]),
        .testTarget(name: "CnictlTests", dependencies: [
            "CnictlCommands", "Base", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "IntegrationTests", dependencies: ["CNI", "Base", "Netlink", "IPAM", "HostLocalIPAM", "ClusterIPAM", "Etcd"]),
    ]
)
