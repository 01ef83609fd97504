// rtnetlink sockets on libmnl. A socket is bound to the network namespace it was created
// in and stays there: sockets for a container's netns are opened on a dedicated
// short-lived thread (see NetnsThread) and then used from anywhere.

#if canImport(Glibc)
import Glibc
#endif
import CMnl
import Base

/// A failed netlink request: the operation and the errno the kernel answered.
public struct NetlinkError: ClassifiedError, Sendable {
    public var operation: String
    public var errno: Int32

    public init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String {
        "\(operation): \(String(cString: strerror(errno))) (errno \(errno))"
    }

    public var kind: FailureKind { .kernel }
}

@inline(__always) func u16<T: BinaryInteger>(_ x: T) -> UInt16 { UInt16(truncatingIfNeeded: x) }
@inline(__always) func u32<T: BinaryInteger>(_ x: T) -> UInt32 { UInt32(truncatingIfNeeded: x) }
@inline(__always) func u8<T: BinaryInteger>(_ x: T) -> UInt8 { UInt8(truncatingIfNeeded: x) }

/// A netlink message under construction, in a buffer owned by this object (libmnl builds it).
public final class NetlinkRequest {
    static let capacity = 16384
    package let buf: UnsafeMutableRawPointer
    package let nlh: UnsafeMutablePointer<nlmsghdr>
    let operation: String

    /// - type: RTM_* message type; flags: NLM_F_* beyond NLM_F_REQUEST.
    package init(type: Int, flags: Int32, operation: String) {
        buf = UnsafeMutableRawPointer.allocate(byteCount: NetlinkRequest.capacity, alignment: 8)
        buf.initializeMemory(as: UInt8.self, repeating: 0, count: NetlinkRequest.capacity)
        nlh = mnl_nlmsg_put_header(buf)
        nlh.pointee.nlmsg_type = Netlink.u16(type)
        nlh.pointee.nlmsg_flags = Netlink.u16(Int32(NLM_F_REQUEST) | flags)
        self.operation = operation
    }

    deinit { buf.deallocate() }

    /// Appends the fixed family header (ifinfomsg, ifaddrmsg, rtmsg, ...).
    package func header<T>(_ value: T) {
        let p = mnl_nlmsg_put_extra_header(nlh, MemoryLayout<T>.stride)!
        p.storeBytes(of: value, as: T.self)
    }

    package func putU8(_ type: Int, _ v: UInt8) { mnl_attr_put_u8(nlh, Netlink.u16(type), v) }
    package func putU16(_ type: Int, _ v: UInt16) { mnl_attr_put_u16(nlh, Netlink.u16(type), v) }
    package func putU32(_ type: Int, _ v: UInt32) { mnl_attr_put_u32(nlh, Netlink.u16(type), v) }
    package func putI32(_ type: Int, _ v: Int32) { mnl_attr_put_u32(nlh, Netlink.u16(type), UInt32(bitPattern: v)) }
    package func putString(_ type: Int, _ s: String) { mnl_attr_put_strz(nlh, Netlink.u16(type), s) }
    package func putBytes(_ type: Int, _ b: [UInt8]) {
        b.withUnsafeBytes { mnl_attr_put(nlh, Netlink.u16(type), b.count, $0.baseAddress) }
    }
    package func nest(_ type: Int) -> UnsafeMutablePointer<nlattr> { mnl_attr_nest_start(nlh, Netlink.u16(type)) }
    package func end(_ n: UnsafeMutablePointer<nlattr>) { mnl_attr_nest_end(nlh, n) }

    /// Raw append of a struct inside the current message (used for VETH_INFO_PEER's ifinfomsg).
    package func rawHeader<T>(_ value: T) {
        let tail = mnl_nlmsg_get_payload_tail(nlh)!
        tail.storeBytes(of: value, as: T.self)
        nlh.pointee.nlmsg_len += Netlink.u32(MemoryLayout<T>.stride)
    }
}

/// A received netlink message: its type and payload (family header + attributes).
public struct NetlinkMessage {
    public var type: UInt16
    public var flags: UInt16
    public var payload: [UInt8]
    /// The whole message, header included (for libraries that parse it themselves).
    package var raw: [UInt8]

    /// The fixed header at the start of the payload.
    package func header<T>(_: T.Type) -> T? {
        guard payload.count >= MemoryLayout<T>.size else { return nil }
        return payload.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
    }

    /// Attributes after a fixed header of `T`.
    package func attributes<T>(after _: T.Type) -> Attributes {
        Attributes(payload, from: (MemoryLayout<T>.stride + 3) & ~3, to: payload.count)
    }
}

/// A sequence of netlink attributes (type → value slice) in a byte array.
public struct Attributes {
    package let bytes: [UInt8]
    /// (type without NLA_F_* flags, start, length) of each attribute.
    package var entries: [(UInt16, Int, Int)] = []

    package init(_ bytes: [UInt8], from: Int, to: Int) {
        self.bytes = bytes
        var off = from
        while off + 4 <= to {
            let len = Int(UInt16(bytes[off]) | UInt16(bytes[off + 1]) << 8)
            let type = (UInt16(bytes[off + 2]) | UInt16(bytes[off + 3]) << 8) & 0x3FFF
            if len < 4 || off + len > to { break }
            entries.append((type, off + 4, len - 4))
            off += (len + 3) & ~3
        }
    }

    package func range(_ type: Int) -> (Int, Int)? {
        for e in entries where e.0 == UInt16(type) { return (e.1, e.2) }
        return nil
    }

    package func has(_ type: Int) -> Bool { range(type) != nil }

    package func data(_ type: Int) -> [UInt8]? {
        guard let (s, l) = range(type) else { return nil }
        return Array(bytes[s..<s + l])
    }

    package func u8(_ type: Int) -> UInt8? {
        guard let (s, l) = range(type), l >= 1 else { return nil }
        return bytes[s]
    }

    package func u16(_ type: Int) -> UInt16? {
        guard let (s, l) = range(type), l >= 2 else { return nil }
        return UInt16(bytes[s]) | UInt16(bytes[s + 1]) << 8
    }

    package func u32(_ type: Int) -> UInt32? {
        guard let (s, l) = range(type), l >= 4 else { return nil }
        return UInt32(bytes[s]) | UInt32(bytes[s + 1]) << 8 | UInt32(bytes[s + 2]) << 16 | UInt32(bytes[s + 3]) << 24
    }

    package func i32(_ type: Int) -> Int32? { u32(type).map { Int32(bitPattern: $0) } }

    package func string(_ type: Int) -> String? {
        guard let (s, l) = range(type) else { return nil }
        var e = s
        while e < s + l && bytes[e] != 0 { e += 1 }
        return String(decoding: bytes[s..<e], as: UTF8.self)
    }

    package func nested(_ type: Int) -> Attributes? {
        guard let (s, l) = range(type) else { return nil }
        return Attributes(bytes, from: s, to: s + l)
    }
}

/// Where a socket's netlink messages go: the kernel (`KernelTransport`, a libmnl socket
/// bound to the network namespace it was opened in) or, in tests, a recorder that answers
/// like the kernel — so that what we send is tested byte for byte without root.
public protocol NetlinkTransport: AnyObject {
    /// The port the kernel's replies are addressed to (0: any).
    var portID: UInt32 { get }
    /// Sends one datagram (one message, or a batch of them).
    func send(_ bytes: UnsafeRawBufferPointer) throws(NetlinkError)
    /// Receives one datagram into `buffer`; its length, or 0 when `timeoutMs` passed first
    /// (nil: wait as long as it takes).
    func receive(into buffer: UnsafeMutableRawBufferPointer, timeoutMs: Int32?) throws(NetlinkError) -> Int
}

/// A libmnl socket: the kernel's side.
public final class KernelTransport: NetlinkTransport {
    let nl: OpaquePointer
    public let portID: UInt32

    /// A netlink socket (NETLINK_ROUTE unless said otherwise) in the calling thread's
    /// network namespace.
    public init(protocol proto: Int32 = NETLINK_ROUTE) throws(NetlinkError) {
        guard let s = mnl_socket_open2(proto, Int32(SOCK_CLOEXEC.rawValue)) else {
            throw NetlinkError("open netlink socket", errno: errno)
        }
        if mnl_socket_bind(s, 0, pid_t(MNL_SOCKET_AUTOPID)) < 0 {
            let e = errno
            mnl_socket_close(s)
            throw NetlinkError("bind netlink socket", errno: e)
        }
        // Extended acks give kernel error messages; harmless if unsupported.
        var one: Int32 = 1
        _ = mnl_socket_setsockopt(s, NETLINK_EXT_ACK, &one, socklen_t(MemoryLayout<Int32>.size))
        _ = mnl_socket_setsockopt(s, NETLINK_GET_STRICT_CHK, &one, socklen_t(MemoryLayout<Int32>.size))
        nl = s
        portID = mnl_socket_get_portid(s)
    }

    deinit { mnl_socket_close(nl) }

    public func send(_ bytes: UnsafeRawBufferPointer) throws(NetlinkError) {
        if mnl_socket_sendto(nl, bytes.baseAddress, bytes.count) < 0 { throw NetlinkError("send", errno: errno) }
    }

    public func receive(into buffer: UnsafeMutableRawBufferPointer, timeoutMs: Int32?) throws(NetlinkError) -> Int {
        while true {
            if let t = timeoutMs {
                var pfd = pollfd(fd: mnl_socket_get_fd(nl), events: Int16(POLLIN), revents: 0)
                let pr = poll(&pfd, 1, t)
                if pr == 0 { return 0 }
                if pr < 0 { if errno == EINTR { continue }; throw NetlinkError("poll", errno: errno) }
            }
            let n = mnl_socket_recvfrom(nl, buffer.baseAddress, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw NetlinkError("receive", errno: errno)
            }
            return n
        }
    }
}

public final class NetlinkSocket {
    package let transport: any NetlinkTransport
    var portID: UInt32 { transport.portID }
    package var seq: UInt32
    let recvBuffer: UnsafeMutableRawPointer
    static let recvSize = 65536

    /// A netlink socket (NETLINK_ROUTE unless said otherwise) in the calling thread's
    /// network namespace.
    public convenience init(protocol proto: Int32 = NETLINK_ROUTE) throws(NetlinkError) {
        self.init(transport: try KernelTransport(protocol: proto), firstSequence: UInt32(truncatingIfNeeded: time(nil)))
    }

    /// Messages through `transport`, numbered from `firstSequence` + 1.
    public init(transport: any NetlinkTransport, firstSequence: UInt32 = 0) {
        self.transport = transport
        seq = firstSequence
        recvBuffer = UnsafeMutableRawPointer.allocate(byteCount: NetlinkSocket.recvSize, alignment: 8)
    }

    deinit { recvBuffer.deallocate() }

    /// A socket inside the network namespace at `path` (e.g. CNI_NETNS).
    public static func inNamespace(path: String) throws -> NetlinkSocket {
        let ns = try NetworkNamespace.open(path)
        return try inNamespace(ns)
    }

    public static func inNamespace(_ ns: NetworkNamespace) throws -> NetlinkSocket {
        try NetnsThread.run(in: ns) { () throws -> NetlinkSocket in try NetlinkSocket() }
    }

    package func nextSeq() -> UInt32 {
        seq &+= 1
        return seq
    }

    func sendRaw(_ req: NetlinkRequest) throws(NetlinkError) -> UInt32 {
        let s = nextSeq()
        req.nlh.pointee.nlmsg_seq = s
        do {
            try transport.send(UnsafeRawBufferPointer(start: req.buf, count: Int(req.nlh.pointee.nlmsg_len)))
        } catch {
            throw NetlinkError(req.operation, errno: error.errno)
        }
        return s
    }

    /// Sends a request that expects only an acknowledgement.
    package func execute(_ req: NetlinkRequest) throws(NetlinkError) {
        req.nlh.pointee.nlmsg_flags |= u16(NLM_F_ACK)
        let s = try sendRaw(req)
        _ = try receive(seq: s, operation: req.operation)
    }

    /// Sends a request and collects every reply message (a GET or a DUMP).
    package func query(_ req: NetlinkRequest) throws(NetlinkError) -> [NetlinkMessage] {
        let s = try sendRaw(req)
        return try receive(seq: s, operation: req.operation)
    }

    /// Reads replies for `seq` until the ack, NLMSG_DONE, or a single non-multipart reply.
    func receive(seq: UInt32, operation: String) throws(NetlinkError) -> [NetlinkMessage] {
        var out: [NetlinkMessage] = []
        while true {
            let n: Int
            do { n = try transport.receive(into: UnsafeMutableRawBufferPointer(start: recvBuffer, count: NetlinkSocket.recvSize), timeoutMs: nil) } catch {
                throw NetlinkError(operation, errno: error.errno)
            }
            var off = 0
            var finished = false
            while off + 16 <= n {
                let hdr = recvBuffer.loadUnaligned(fromByteOffset: off, as: nlmsghdr.self)
                let len = Int(hdr.nlmsg_len)
                if len < 16 || off + len > n { break }
                defer { off += (len + 3) & ~3 }
                if hdr.nlmsg_seq != seq || hdr.nlmsg_pid != portID && hdr.nlmsg_pid != 0 { continue }
                let type = Int(hdr.nlmsg_type)
                if type == NLMSG_ERROR {
                    let err = recvBuffer.loadUnaligned(fromByteOffset: off + 16, as: Int32.self)
                    if err != 0 {
                        var op = operation
                        if let m = extAckMessage(at: off, length: len), !m.isEmpty { op += " (\(m))" }
                        throw NetlinkError(op, errno: -err)
                    }
                    finished = true
                    continue
                }
                if type == NLMSG_DONE {
                    finished = true
                    continue
                }
                let payload = Array(UnsafeRawBufferPointer(start: recvBuffer + off + 16, count: len - 16))
                let raw = Array(UnsafeRawBufferPointer(start: recvBuffer + off, count: len))
                out.append(NetlinkMessage(type: hdr.nlmsg_type, flags: hdr.nlmsg_flags, payload: payload, raw: raw))
                if Int32(hdr.nlmsg_flags) & Int32(NLM_F_MULTI) == 0 {
                    // A single reply to a GET (an ack may follow only if NLM_F_ACK was asked).
                    finished = true
                }
            }
            if finished { return out }
        }
    }

    /// The NLMSGERR_ATTR_MSG text of an extended ack, if any.
    func extAckMessage(at off: Int, length len: Int) -> String? {
        let hdr = recvBuffer.loadUnaligned(fromByteOffset: off, as: nlmsghdr.self)
        guard Int32(hdr.nlmsg_flags) & Int32(NLM_F_ACK_TLVS) != 0 else { return nil }
        // nlmsgerr: error (4) + the original header (16), plus its payload unless capped.
        var start = off + 16 + 4 + 16
        if Int32(hdr.nlmsg_flags) & Int32(NLM_F_CAPPED) == 0 {
            let orig = recvBuffer.loadUnaligned(fromByteOffset: off + 20, as: nlmsghdr.self)
            start = off + 16 + 4 + ((Int(orig.nlmsg_len) + 3) & ~3)
        }
        guard start < off + len else { return nil }
        let bytes = Array(UnsafeRawBufferPointer(start: recvBuffer + off, count: len))
        let attrs = Attributes(bytes, from: start - off, to: len)
        return attrs.string(Int(NLMSGERR_ATTR_MSG.rawValue))
    }

    /// Sends a batch (several messages in one datagram) and waits for the answer to each
    /// message of `expecting` (seq → what it does). The first error is thrown, naming the
    /// operation that failed; the kernel has then applied nothing (nftables batches are
    /// transactions).
    package func executeBatch(_ bytes: [UInt8], expecting: [UInt32: String]) throws(NetlinkError) {
        var sendError: NetlinkError?
        bytes.withUnsafeBytes { b in
            do throws(NetlinkError) { try transport.send(b) } catch { sendError = error }
        }
        if let e = sendError { throw NetlinkError("nftables: send batch", errno: e.errno) }
        var pending = Set(expecting.keys)
        var firstError: NetlinkError?
        while !pending.isEmpty {
            // After an error, the rest of the answers arrive at once; never wait long for them.
            let n: Int
            do {
                n = try transport.receive(into: UnsafeMutableRawBufferPointer(start: recvBuffer, count: NetlinkSocket.recvSize),
                                          timeoutMs: firstError == nil ? 10_000 : 100)
            } catch {
                throw NetlinkError("nftables: receive", errno: error.errno)
            }
            if n == 0 { break }
            var off = 0
            while off + 16 <= n {
                let hdr = recvBuffer.loadUnaligned(fromByteOffset: off, as: nlmsghdr.self)
                let len = Int(hdr.nlmsg_len)
                if len < 16 || off + len > n { break }
                defer { off += (len + 3) & ~3 }
                guard Int(hdr.nlmsg_type) == NLMSG_ERROR else { continue }
                let err = recvBuffer.loadUnaligned(fromByteOffset: off + 16, as: Int32.self)
                pending.remove(hdr.nlmsg_seq)
                if err != 0 && firstError == nil {
                    var op = "nftables: " + (expecting[hdr.nlmsg_seq] ?? "batch")
                    if let m = extAckMessage(at: off, length: len), !m.isEmpty { op += " (\(m))" }
                    firstError = NetlinkError(op, errno: -err)
                }
            }
        }
        if let e = firstError { throw e }
        if !pending.isEmpty { throw NetlinkError("nftables: no answer to \(pending.count) message(s) of the batch", errno: ETIMEDOUT) }
    }
}
