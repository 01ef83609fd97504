import Glibc
import Testing
@testable import Base

@Suite struct Files {
    @Test(arguments: [("a:eth0.tmp.123", "a:eth0"), ("net.tmp.1", "net"), ("x.tmp.", nil), ("x.tmp.1a", nil), ("plain", nil),
                      (".tmp.9", ""), ("a.tmp.1.tmp.22", "a.tmp.1")] as [(String, String?)])
    func temporaryNames(_ name: String, _ target: String?) {
        #expect(Posix.temporaryTarget(name) == target)
    }

    @Test func removesOnlyTemporariesOfTheNamedFile() throws {
        var t = Array("/tmp/swiftcni-basetest-XXXXXX".utf8CString)
        let dir = String(cString: try #require(mkdtemp(&t)))
        defer { _ = try? Exec.run("/bin/rm", arguments: ["-rf", dir], environment: [], stdin: []) }
        // A pid no process has: an exited child's.
        let dead = try Exec.run("/bin/sh", arguments: ["-c", "echo $$"], environment: [], stdin: [])
        let gone = String(decoding: dead.stdout, as: UTF8.self).trimmingWhitespace()
        for f in ["a", "a.tmp.1", "a.tmp.2", "b.tmp.\(gone)", "b"] { try Posix.writeFile(dir + "/" + f, []) }
        #expect(try Posix.removeTemporaries(in: dir, of: "a") == 2)
        #expect(try Posix.listDirectory(dir)?.sorted() == ["a", "b", "b.tmp.\(gone)"])
        // A live writer's file stays when only dead writers' go.
        try Posix.writeFile(dir + "/b.tmp.\(getpid())", [])
        #expect(try Posix.removeTemporaries(in: dir, deadWritersOnly: true) == 1)
        #expect(try Posix.listDirectory(dir)?.sorted() == ["a", "b", "b.tmp.\(getpid())"])
        try Posix.writeFileAtomically(dir + "/a", Array("x".utf8))
        #expect(try Posix.readText(dir + "/a") == "x")
    }
}

@Suite struct Small {
    @Test func stableHashIsStable() {
        #expect(stableHash("/run/netns/c1") == stableHash("/run/netns/c1"))
        #expect(stableHash("/run/netns/c1") != stableHash("/run/netns/c2"))
        #expect(stableHash("").count == 20)
    }

    @Test func seededRandomRepeats() {
        var a = FastRandom(seed: 42), b = FastRandom(seed: 42)
        let x = (0..<8).map { _ in a.next() }, y = (0..<8).map { _ in b.next() }
        #expect(x == y)
        #expect(Set(x).count == 8)
    }

    @Test func base64RoundTrips() {
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            #expect(Base64.decode(Base64.encode(s)) == Array(s.utf8))
        }
        #expect(Base64.encode("foobar") == "Zm9vYmFy")
        #expect(Base64.decode("Zm9v!") == nil)
    }

    @Test func namespaceCookie() {
        let c = Posix.netnsCookie()
        #expect(c != 0)
        #expect(Posix.netnsCookie() == c)
    }

    @Test func errorsSayTheirKind() {
        #expect(SystemError("open", "/x", errno: ENOENT).kind == .io)
        #expect(SystemError("open", "/x", errno: ENOENT).description == "open /x: No such file or directory (errno 2)")
        #expect(DaemonError(.overlayAgent, "gone").kind == .daemon(.overlayAgent))
        #expect(JSONSyntaxError(offset: 3, reason: "bad").kind == .malformed)
    }
}
