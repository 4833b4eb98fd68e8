import Foundation
import GridTLS
import Logging
import NIOCore
import NIOPosix
import Identity
import XCTest

/// Counts echoed bytes and completes `done` when `expected` bytes arrived.
private final class CountingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var expected = 0
    var received = 0
    var done: EventLoopPromise<Void>?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytes
        if received >= expected, let done {
            self.done = nil
            done.succeed()
        }
    }
}

private final class EchoBackHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.write(data, promise: nil) }
    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
}

/// Goal (brief): 50k small RPCs/s through TLS. Measures pipelined 100-byte messages echoed over
/// loopback. Runs only with GRIDTLS_PERF=1, and is meaningful only in release builds
/// (`swift test -c release -Xswiftc -enable-testing --filter TLSThroughputTests`).
final class TLSThroughputTests: XCTestCase {
    func testPipelinedSmallMessagesThroughput() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["GRIDTLS_PERF"] != nil, "set GRIDTLS_PERF=1 to run")
        let fixture = try PKIFixture()
        defer { fixture.cleanUp() }
        let serverContext = try TLSContext(configuration: try fixture.issue("node-1", role: .node), mode: .server)
        let clientContext = try TLSContext(configuration: try fixture.issue("bench", role: .ops), mode: .client)
        let logger = Logger(label: "bench")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { try? group.syncShutdownGracefully() }
        let server = try ServerBootstrap(group: group)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TLSHandler.serverHandler(context: serverContext, logger: logger))
                    try channel.pipeline.syncOperations.addHandler(EchoBackHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? server.close().wait() }
        let client = try ClientBootstrap(group: group.next())
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        TLSHandler.clientHandler(context: clientContext, serverHostname: "localhost", logger: logger))
                }
            }
            .connect(host: "127.0.0.1", port: server.localAddress!.port!).wait()
        let loop = client.eventLoop
        // Only touched on the client's loop: NIOLoopBound checks that.
        let counter = try loop.submit {
            let handler = CountingHandler()
            try client.pipeline.syncOperations.addHandler(handler)
            return NIOLoopBound(handler, eventLoop: loop)
        }.wait()

        let messageSize = 100, batch = 64, batches = 3_000
        let message = ByteBuffer(repeating: 0x42, count: messageSize)
        for round in 0..<2 {  // round 0 warms up
            let start = DispatchTime.now().uptimeNanoseconds
            let done = loop.makePromise(of: Void.self)
            try loop.submit {
                counter.value.received = 0
                counter.value.expected = messageSize * batch * batches
                counter.value.done = done
            }.wait()
            // Keep a bounded number of batches in flight, like an RPC client with a window.
            for index in 0..<batches {
                try loop.submit {
                    for _ in 0..<batch { client.write(message, promise: nil) }
                    client.flush()
                }.wait()
                if index % 32 == 31 {
                    while try loop.submit({ counter.value.received }).wait() < (index - 64) * batch * messageSize {}
                }
            }
            try done.futureResult.wait()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if round == 1 {
                print("pipelined \(batch * batches) messages of \(messageSize) B echoed in \(seconds) s: \(Int(Double(batch * batches) / seconds)) msg/s")
            }
        }
        // Sequential round trips (latency).
        let trips = 2_000
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<trips {
            let done = loop.makePromise(of: Void.self)
            try loop.submit {
                counter.value.received = 0
                counter.value.expected = messageSize
                counter.value.done = done
                client.writeAndFlush(message, promise: nil)
            }.wait()
            try done.futureResult.wait()
        }
        let micros = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e3 / Double(trips)
        print("sequential round trip: \(micros) µs")
        try client.close().wait()
    }
}
