@testable import GridTLS
import NIOCore
import NIOPosix
import Identity
import XCTest

/// Echoes every plaintext buffer back to the sender.
private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}

/// Collects plaintext until `expected` bytes arrived, then fulfils `done`; records the
/// authenticated server identity.
private final class CollectHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let expected: Int
    private let done: EventLoopPromise<ByteBuffer>
    private let authenticated: EventLoopPromise<PeerAuthenticatedEvent>
    private var received = ByteBuffer()

    init(expected: Int, done: EventLoopPromise<ByteBuffer>, authenticated: EventLoopPromise<PeerAuthenticatedEvent>) {
        self.expected = expected
        self.done = done
        self.authenticated = authenticated
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? PeerAuthenticatedEvent { authenticated.succeed(event) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        received.writeBuffer(&buffer)
        if received.readableBytes >= expected { done.succeed(received) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        done.fail(error)
        authenticated.fail(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.fail(ChannelError.eof)
        authenticated.fail(ChannelError.eof)
    }
}

/// Rule (STYLE 15): handlers are tested without sockets, then once more for real over
/// loopback: a TLS echo server and client via NIOPosix on 127.0.0.1.
final class TLSLoopbackTests: XCTestCase {
    func testEchoOverLoopback() throws {
        let fixture = try PKIFixture()
        defer { fixture.cleanUp() }
        let serverContext = try TLSContext(configuration: try fixture.issue("node-1", role: .node), mode: .server)
        let clientContext = try TLSContext(configuration: try fixture.issue("ops-1", role: .ops), mode: .client)
        let logger = TLSTestSupport.logger

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { try? group.syncShutdownGracefully() }

        let server = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TLSHandler.serverHandler(context: serverContext, logger: logger))
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .wait()
        defer { try? server.close().wait() }
        let port = try XCTUnwrap(server.localAddress?.port)

        var payload = ByteBuffer()
        payload.writeBytes((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let expected = payload

        let loop = group.next()
        let done = loop.makePromise(of: ByteBuffer.self)
        let authenticated = loop.makePromise(of: PeerAuthenticatedEvent.self)
        let client = try ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        TLSHandler.clientHandler(context: clientContext, serverHostname: "127.0.0.1", logger: logger)
                    )
                    try channel.pipeline.syncOperations.addHandler(
                        CollectHandler(expected: expected.readableBytes, done: done, authenticated: authenticated)
                    )
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .wait()

        // Written immediately: held by the handler until the handshake completes.
        try client.writeAndFlush(payload).wait()
        let event = try authenticated.futureResult.wait()
        XCTAssertEqual(event.peer.name, "node-1")
        XCTAssertEqual(event.peer.role, .node)
        XCTAssertEqual(event.applicationProtocol, "gridledger/1")
        let echoed = try done.futureResult.wait()
        XCTAssertEqual(echoed, expected)
        try client.close().wait()
    }
}
