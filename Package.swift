// swift-tools-version:6.0
import PackageDescription

// Plugins (bridge, host-local, loopback, ...) must not link Foundation: they are
// exec'd once per CNI operation and Foundation costs milliseconds of start-up.
// Only cnictl (the harness) and the daemons may use it.
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
    ],
    targets: [
        // System libraries (apt: libmnl-dev, libnftnl-dev).
        .systemLibrary(name: "CMnl", pkgConfig: "libmnl", providers: [.apt(["libmnl-dev"])]),
        .systemLibrary(name: "CNftnl", pkgConfig: "libnftnl", providers: [.apt(["libnftnl-dev"])]),
        // What Swift cannot import: setns/unshare (_GNU_SOURCE), function-like macros.
        .target(name: "CShim"),

        // The CNI contract: env, config and result types, errors, plugin entry, delegation, JSON.
        .target(name: "CNI", dependencies: ["CShim"]),
        // Netlink on libmnl: netns-bound sockets, links, addresses, routes, sysctl, netns.
        .target(name: "Netlink", dependencies: ["CNI", "CMnl", "CShim"]),
        // nftables on libnftnl: ruleset model, planning, one atomic batch per operation.
        .target(name: "Firewall", dependencies: ["CNI", "Netlink", "CNftnl", "CMnl"]),
        // Address ranges, allocator, stores, the host-local IPAM logic.
        .target(name: "IPAM", dependencies: ["CNI", "Etcd"]),
        // etcd v3 client (JSON gateway over a small HTTP/1.1 client; Foundation-free).
        .target(name: "Etcd", dependencies: ["CNI"]),
        // A container on a Linux bridge: the bridge plugin's logic (overlay builds on it).
        .target(name: "BridgeNetwork", dependencies: ["CNI", "Netlink", "IPAM", "Firewall"]),
        // Overlay networks: the plugin's logic, the agent, FDB/neighbour/DNS programming.
        .target(name: "Overlay", dependencies: ["CNI", "Netlink", "IPAM", "Etcd", "DNS", "BridgeNetwork"],
                swiftSettings: [.swiftLanguageMode(.v5)]),
        // DNS: wire codec, record store and lookup (pure), state files, control client.
        .target(name: "DNS", dependencies: ["CNI"]),
        // The portmap plugin's logic (configuration, resolution of published ports).
        .target(name: "PortmapPlugin", dependencies: ["CNI", "Netlink", "Firewall"]),
        // The dns-alias plugin's logic (configuration, registration with the DNS server).
        .target(name: "DNSAliasPlugin", dependencies: ["CNI", "DNS", "Firewall"]),
        // The DNS server (a daemon, so SwiftNIO and swift-log are fine here).
        .target(name: "DNSServer", dependencies: [
            "CNI", "DNS", "CShim",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: [.swiftLanguageMode(.v5)]),

        // Plugins: thin executables.
        .executableTarget(name: "bridge", dependencies: ["CNI", "IPAM", "BridgeNetwork"], path: "Sources/bridge"),
        .executableTarget(name: "host-local", dependencies: ["CNI", "IPAM"], path: "Sources/host-local"),
        .executableTarget(name: "loopback", dependencies: ["CNI", "Netlink"], path: "Sources/loopback"),
        .executableTarget(name: "portmap", dependencies: ["CNI", "PortmapPlugin"], path: "Sources/portmap"),
        .executableTarget(name: "overlay", dependencies: ["CNI", "IPAM", "Overlay"], path: "Sources/overlay"),
        .executableTarget(name: "swiftcni-overlay-agent", dependencies: ["CNI", "Overlay"], path: "Sources/swiftcni-overlay-agent"),
        .executableTarget(name: "dns-alias", dependencies: ["CNI", "DNSAliasPlugin"], path: "Sources/dns-alias"),
        .executableTarget(name: "swiftcni-dns", dependencies: [
            "CNI", "DNS", "DNSServer", .product(name: "Logging", package: "swift-log"),
        ], path: "Sources/swiftcni-dns"),

        // The harness (may use Foundation).
        .executableTarget(name: "cnictl", dependencies: [
            "CNI", "Netlink", "Etcd",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Sources/cnictl"),

        .testTarget(name: "CNITests", dependencies: ["CNI"]),
        .testTarget(name: "IPAMTests", dependencies: ["IPAM", "CNI"]),
        .testTarget(name: "FirewallTests", dependencies: ["Firewall", "CNI"]),
        .testTarget(name: "DNSTests", dependencies: ["DNS", "CNI"]),
        .testTarget(name: "OverlayTests", dependencies: ["Overlay", "Etcd", "CNI"]),
        .testTarget(name: "PluginConfigTests", dependencies: ["CNI", "BridgeNetwork", "IPAM", "PortmapPlugin", "DNSAliasPlugin", "Overlay"]),
        .testTarget(name: "IntegrationTests", dependencies: ["CNI", "Netlink", "IPAM"]),
    ]
)
