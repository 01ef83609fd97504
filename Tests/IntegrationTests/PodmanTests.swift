import Foundation
import Testing

let hasPodman = FileManager.default.isExecutableFile(atPath: "/usr/bin/podman")
let repoRoot: String = {
    // Tests/IntegrationTests/PodmanTests.swift → repository root.
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
}()

@Suite(.enabled(if: isRoot && hasPodman, "needs root and podman (scripts/deps.sh test installs it)"))
struct PodmanRuntime {
    /// A real runtime: Podman 4.3 with its CNI backend runs two containers on a network of our
    /// bridge + host-local, and they ping each other (scripts/podman-test.sh).
    @Test func twoContainersPing() throws {
        let r = run(["/bin/bash", repoRoot + "/scripts/podman-test.sh", buildDir])
        #expect(r.status == 0, "\(r.out)\n\(r.err)")
        #expect(r.out.contains("podman-test: ok"), "\(r.out)\n\(r.err)")
        #expect(r.out.contains("2 packets received"))
    }
}
