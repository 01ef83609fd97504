// Channel handlers: queries over TCP, and the forwarder that asks upstream servers (UDP
// first, TCP when the answer is truncated or the client asked over TCP). UDP queries are
// served by `UDPListener`.

import Base
import DNS
import NIOCore
import NIOPosix

/// DNS over TCP frames: a 2-byte length, then the message.
struct LengthPrefixDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let len = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) else { return .needMoreData }
        guard buffer.readableBytes >= 2 + Int(len) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2)
        let frame = buffer.readSlice(length: Int(len))!
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }
}

func framed(_ bytes: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
    var b = allocator.buffer(capacity: bytes.count + 2)
    b.writeInteger(UInt16(bytes.count))
    b.writeBytes(bytes)
    return b
}

/// Queries over a TCP connection (several per connection; closed when idle).
final class TCPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let server: ContainerDNSServer
    var rng = FastRandom()

    init(_ server: ContainerDNSServer) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var frame = unwrapInboundIn(data)
        guard let bytes = frame.readBytes(length: frame.readableBytes),
              let remote = context.channel.remoteAddress, let source = IPAddress(remote) else {
            context.close(promise: nil)
            return
        }
        switch server.answer(bytes, source: source, limit: 65535, rng: &rng) {
        case .reply(let r):
            context.writeAndFlush(wrapOutboundOut(framed(r, allocator: context.channel.allocator)), promise: nil)
        case .forward(let q, let raw, let ups):
            let channel = context.channel
            server.forwarder.forward(raw, q, ups, overTCP: true) { resp in
                channel.writeAndFlush(framed(resp, allocator: channel.allocator), promise: nil)
            }
        case .none:
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) } else { context.fireUserInboundEventTriggered(event) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Asks upstream servers on behalf of containers. All its state lives on one event loop.
final class Forwarder: @unchecked Sendable {
    let loop: EventLoop
    var udp: [IPFamily: Channel] = [:]
    var pending: [UInt16: Pending] = [:]
    var rng = FastRandom()
    static let timeout = TimeAmount.seconds(2)

    struct Pending {
        var query: DNSQuery
        var raw: [UInt8]
        var upstreams: [DNSUpstream]
        var index: Int
        var reply: ([UInt8]) -> Void
        var timer: Scheduled<Void>?
    }

    init(eventLoop: EventLoop) { loop = eventLoop }

    /// Forwards `raw` (the client's query) and calls `reply` once with the answer (the
    /// client's ID restored) or SERVFAIL when no upstream answers.
    func forward(_ raw: [UInt8], _ q: DNSQuery, _ ups: [DNSUpstream], overTCP: Bool, reply: @escaping ([UInt8]) -> Void) {
        loop.execute {
            if overTCP {
                self.tcp(raw, q, ups, 0, reply: reply)
            } else {
                self.sendUDP(Pending(query: q, raw: raw, upstreams: ups, index: 0, reply: reply, timer: nil))
            }
        }
    }

    func servfail(_ q: DNSQuery) -> [UInt8] {
        DNSResponse.answer(q, rcode: .servFail, authoritative: false, limit: q.udpLimit)
    }

    func sendUDP(_ p0: Pending) {
        var p = p0
        guard p.index < p.upstreams.count else { p.reply(servfail(p.query)); return }
        let up = p.upstreams[p.index]
        guard let channel = udpChannel(up.address.family), let addr = try? SocketAddress(ipAddress: up.address.description, port: Int(up.port)) else {
            p.index += 1
            sendUDP(p)
            return
        }
        var id = UInt16.random(in: 0...UInt16.max, using: &rng)
        while pending[id] != nil { id = UInt16.random(in: 0...UInt16.max, using: &rng) }
        p.timer = loop.scheduleTask(in: Self.timeout) { [weak self] in
            guard let self, var t = self.pending.removeValue(forKey: id) else { return }
            t.index += 1
            t.timer = nil
            self.sendUDP(t)
        }
        pending[id] = p
        let msg = DNSMessage.withID(p.raw, id)
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: addr, data: channel.allocator.buffer(bytes: msg)), promise: nil)
    }

    /// An upstream's answer over UDP.
    func received(_ bytes: [UInt8], from: SocketAddress) {
        guard let h = DNSResponseHeader(bytes), let p = pending[h.id] else { return }
        let up = p.upstreams[p.index]
        guard let src = IPAddress(from), src == up.address, from.port == Int(up.port) else { return }
        pending[h.id] = nil
        p.timer?.cancel()
        if h.truncated {
            // The whole answer over TCP; if it does not fit the client's UDP limit, the
            // client gets the truncated one and asks us over TCP.
            let truncated = DNSMessage.withID(bytes, p.query.id)
            tcp(p.raw, p.query, p.upstreams, p.index, reply: { full in
                p.reply(full.count <= p.query.udpLimit ? full : truncated)
            })
            return
        }
        p.reply(DNSMessage.withID(bytes, p.query.id))
    }

    func udpChannel(_ f: IPFamily) -> Channel? { udp[f] }

    /// Opens the client sockets (IPv4 and, where the host has it, IPv6). Call before
    /// serving, from outside the event loop.
    func start() {
        for (f, any) in [(IPFamily.v4, "0.0.0.0"), (.v6, "::")] {
            let b = DatagramBootstrap(group: loop).channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(UpstreamUDPHandler(self)) }
            }
            if let c = try? b.bind(host: any, port: 0).wait() {
                loop.execute { self.udp[f] = c }
            }
        }
    }

    /// One query over TCP to upstream `index` (then the next ones on failure).
    func tcp(_ raw: [UInt8], _ q: DNSQuery, _ ups: [DNSUpstream], _ index: Int, reply: @escaping ([UInt8]) -> Void) {
        guard index < ups.count else { reply(servfail(q)); return }
        let up = ups[index]
        let next = { [weak self] in self?.tcp(raw, q, ups, index + 1, reply: reply) ?? () }
        guard let addr = try? SocketAddress(ipAddress: up.address.description, port: Int(up.port)) else { next(); return }
        var done = false
        let finish: ([UInt8]?) -> Void = { resp in
            guard !done else { return }
            done = true
            if let resp { reply(DNSMessage.withID(resp, q.id)) } else { next() }
        }
        ClientBootstrap(group: loop)
            .connectTimeout(Self.timeout)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandlers([
                        IdleStateHandler(readTimeout: Self.timeout),
                        ByteToMessageHandler(LengthPrefixDecoder()),
                        UpstreamTCPHandler(finish),
                    ])
                }
            }
            .connect(to: addr)
            .whenComplete { result in
                switch result {
                case .success(let ch):
                    ch.writeAndFlush(framed(raw, allocator: ch.allocator), promise: nil)
                case .failure:
                    finish(nil)
                }
            }
    }
}

final class UpstreamUDPHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let forwarder: Forwarder
    init(_ f: Forwarder) { forwarder = f }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let env = unwrapInboundIn(data)
        var b = env.data
        if let bytes = b.readBytes(length: b.readableBytes) { forwarder.received(bytes, from: env.remoteAddress) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {}
}

final class UpstreamTCPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let finish: ([UInt8]?) -> Void
    init(_ f: @escaping ([UInt8]?) -> Void) { finish = f }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        finish(b.readBytes(length: b.readableBytes))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) { finish(nil) }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
}
