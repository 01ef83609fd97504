// A small blocking HTTP/1.1 client over TCP, enough for etcd's v3 JSON gateway: POST with a
// body, responses with Content-Length or chunked encoding, keep-alive, and a streaming read
// for watches. Foundation-free, so the plugins can use it; the agent runs watches on threads.

#if canImport(Glibc)
import Glibc
#endif
import Base

public struct HTTPError: Error, CustomStringConvertible, Sendable {
    public var description: String
    /// The server could not be reached (connect failed or timed out): try another endpoint.
    public var unreachable: Bool
    init(_ d: String, unreachable: Bool = false) { description = d; self.unreachable = unreachable }
}

final class HTTPConnection {
    let host: String
    let port: UInt16
    private(set) var fd: Int32 = -1
    private var buffer: [UInt8] = []
    private var start = 0
    let timeoutMs: Int

    init(host: String, port: UInt16, timeoutMs: Int) {
        self.host = host; self.port = port; self.timeoutMs = timeoutMs
    }

    deinit { close() }

    func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
        buffer = []
        start = 0
    }

    var isOpen: Bool { fd >= 0 }

    /// Connects with a timeout (non-blocking connect, then poll).
    func connect() throws {
        close()
        guard let a = IPAddress(host) else { throw HTTPError("\(host): not an IP address", unreachable: true) }
        let s = socket(a.isV4 ? AF_INET : AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard s >= 0 else { throw HTTPError("socket: \(String(cString: strerror(errno)))", unreachable: true) }
        var rc: Int32
        if a.isV4 {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = in_port_t(port.bigEndian)
            sa.sin_addr.s_addr = UInt32(truncatingIfNeeded: a.value).bigEndian
            rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        } else {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = in_port_t(port.bigEndian)
            withUnsafeMutableBytes(of: &sa.sin6_addr) { raw in for (i, b) in a.bytes.enumerated() { raw[i] = b } }
            rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        }
        if rc != 0 && errno != EINPROGRESS {
            let e = errno
            Glibc.close(s)
            throw HTTPError("connect \(host):\(port): \(String(cString: strerror(e)))", unreachable: true)
        }
        if rc != 0 {
            var p = pollfd(fd: s, events: Int16(POLLOUT), revents: 0)
            let n = poll(&p, 1, Int32(min(timeoutMs, 1000)))
            var err: Int32 = 0
            var len = socklen_t(4)
            getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len)
            if n <= 0 || err != 0 {
                Glibc.close(s)
                throw HTTPError("connect \(host):\(port): \(n <= 0 ? "timed out" : String(cString: strerror(err)))", unreachable: true)
            }
        }
        var one: Int32 = 1
        setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4)
        fd = s
    }

    func send(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n > 0 { off += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if poll(&p, 1, Int32(timeoutMs)) <= 0 { throw HTTPError("send to \(host):\(port): timed out") }
                continue
            }
            throw HTTPError("send to \(host):\(port): \(String(cString: strerror(errno)))")
        }
    }

    /// Reads more bytes into the buffer; `wait` nil blocks forever (watches).
    private func fill(waitMs: Int?) throws {
        if start > 0 && start == buffer.count { buffer.removeAll(keepingCapacity: true); start = 0 }
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { buffer += chunk[0..<n]; return }
            if n == 0 { throw HTTPError("\(host):\(port) closed the connection") }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let r = poll(&p, 1, Int32(waitMs ?? -1))
                if r == 0 { throw HTTPError("no answer from \(host):\(port) within \(waitMs ?? 0) ms") }
                if r < 0 && errno != EINTR { throw HTTPError("poll: \(String(cString: strerror(errno)))") }
                continue
            }
            throw HTTPError("recv from \(host):\(port): \(String(cString: strerror(errno)))")
        }
    }

    func readLine(waitMs: Int?) throws -> String {
        while true {
            if let i = buffer[start...].firstIndex(of: 10) {
                var end = i
                if end > start && buffer[end - 1] == 13 { end -= 1 }
                let line = String(decoding: buffer[start..<end], as: UTF8.self)
                start = i + 1
                return line
            }
            try fill(waitMs: waitMs)
        }
    }

    func readBytes(_ n: Int, waitMs: Int?) throws -> [UInt8] {
        while buffer.count - start < n { try fill(waitMs: waitMs) }
        let out = Array(buffer[start..<start + n])
        start += n
        return out
    }

    /// Status and headers of a response.
    func readHead(waitMs: Int?) throws -> (Int, [String: String]) {
        let status = try readLine(waitMs: waitMs)
        let parts = status.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let code = Int(parts[1]) else {
            throw HTTPError("\(host):\(port): not an HTTP response: \(status.prefix(60))")
        }
        var headers: [String: String] = [:]
        while true {
            let l = try readLine(waitMs: waitMs)
            if l.isEmpty { break }
            if let c = l.firstIndex(of: ":") {
                headers[l[..<c].lowercased()] = String(l[l.index(after: c)...]).trimmingWhitespace()
            }
        }
        return (code, headers)
    }

    /// One chunk of a chunked body; nil at the end.
    func readChunk(waitMs: Int?) throws -> [UInt8]? {
        let sizeLine = try readLine(waitMs: waitMs)
        guard let size = Int(sizeLine.split(separator: ";")[0], radix: 16) else {
            throw HTTPError("\(host):\(port): bad chunk size \(sizeLine.prefix(20))")
        }
        if size == 0 {
            _ = try readLine(waitMs: waitMs)
            return nil
        }
        let data = try readBytes(size, waitMs: waitMs)
        _ = try readLine(waitMs: waitMs)
        return data
    }

    static func request(_ path: String, host: String, port: UInt16, body: [UInt8], headers: [String: String]) -> [UInt8] {
        var h = "POST \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n"
        for (k, v) in headers { h += "\(k): \(v)\r\n" }
        h += "\r\n"
        return Array(h.utf8) + body
    }

    /// POST `body` to `path`; returns status and body.
    func post(_ path: String, body: [UInt8], headers: [String: String] = [:]) throws -> (Int, [UInt8]) {
        var retried = false
        while true {
            if !isOpen { try connect() }
            do {
                try send(HTTPConnection.request(path, host: host, port: port, body: body, headers: headers))
                let (code, h) = try readHead(waitMs: timeoutMs)
                var out: [UInt8] = []
                if h["transfer-encoding"]?.lowercased() == "chunked" {
                    while let c = try readChunk(waitMs: timeoutMs) { out += c }
                } else if let l = h["content-length"].flatMap({ Int($0) }) {
                    out = try readBytes(l, waitMs: timeoutMs)
                }
                if h["connection"]?.lowercased() == "close" { close() }
                return (code, out)
            } catch let e as HTTPError {
                close()
                // A kept-alive connection the server closed meanwhile: once more on a new one.
                if !retried && !e.unreachable { retried = true; continue }
                throw e
            }
        }
    }
}
