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
        .executable(name: "cnictl", targets: ["cnictl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
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
        .target(name: "IPAM", dependencies: ["CNI"]),

        // Plugins: thin executables.
        .executableTarget(name: "bridge", dependencies: ["CNI", "Netlink", "IPAM", "Firewall"], path: "Sources/bridge"),
        .executableTarget(name: "host-local", dependencies: ["CNI", "IPAM"], path: "Sources/host-local"),
        .executableTarget(name: "loopback", dependencies: ["CNI", "Netlink"], path: "Sources/loopback"),
        .executableTarget(name: "portmap", dependencies: ["CNI", "Netlink", "Firewall"], path: "Sources/portmap"),

        // The harness (may use Foundation).
        .executableTarget(name: "cnictl", dependencies: [
            "CNI", "Netlink",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Sources/cnictl"),

        .testTarget(name: "CNITests", dependencies: ["CNI"]),
        .testTarget(name: "IPAMTests", dependencies: ["IPAM", "CNI"]),
        .testTarget(name: "FirewallTests", dependencies: ["Firewall", "CNI"]),
        .testTarget(name: "IntegrationTests", dependencies: ["CNI", "Netlink", "IPAM"]),
    ]
)
