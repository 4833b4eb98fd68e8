import Foundation
@testable import GridTLS
import Logging
import NIOCore
import NIOEmbedded
import Identity
import XCTest

/// Records what a `TLSHandler` passes up the pipeline.
final class InboundRecorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    var authenticated: [PeerAuthenticatedEvent] = []
    var received = ByteBuffer()
    var readCount = 0
    var errors: [any Error] = []
    var inactive = false

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? PeerAuthenticatedEvent {
            authenticated.append(event)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        readCount += 1
        received.writeBuffer(&buffer)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.append(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        inactive = true
        context.fireChannelInactive()
    }

    var tlsErrors: [TLSError] { errors.compactMap { $0 as? TLSError } }
}

/// One end of an in-memory TLS connection: an `EmbeddedChannel` with a `TLSHandler` and an
/// `InboundRecorder` above it.
struct EmbeddedEnd {
    let channel: EmbeddedChannel
    let recorder: InboundRecorder

    init(handler: TLSHandler, loop: EmbeddedEventLoop) throws {
        channel = EmbeddedChannel(loop: loop)
        recorder = InboundRecorder()
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.pipeline.syncOperations.addHandler(recorder)
    }

    func activate(port: Int) throws {
        channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: port), promise: nil)
    }
}

enum TLSTestSupport {
    static var logger: Logger {
        var logger = Logger(label: "gridtls.test")
        // GRIDTLS_TEST_LOG=1 shows the handlers' log lines (one warning per refused connection).
        logger.logLevel = ProcessInfo.processInfo.environment["GRIDTLS_TEST_LOG"] == nil ? .critical : .debug
        return logger
    }

    /// Moves ciphertext between the two ends until neither has anything left to send. Bytes
    /// for a closed end are dropped (as the kernel would after close).
    static func pump(_ a: EmbeddedEnd, _ b: EmbeddedEnd, maxRounds: Int = 10_000) throws {
        for _ in 0..<maxRounds {
            let movedAB = try move(from: a, to: b)
            let movedBA = try move(from: b, to: a)
            if !movedAB, !movedBA { return }
        }
        XCTFail("pump did not settle")
    }

    private static func move(from source: EmbeddedEnd, to destination: EmbeddedEnd) throws -> Bool {
        var moved = false
        while let buffer = try source.channel.readOutbound(as: ByteBuffer.self) {
            moved = true
            if destination.channel.isActive {
                try destination.channel.writeInbound(buffer)
            }
        }
        return moved
    }

    /// A connected client/server pair on one embedded loop, both handshaking.
    static func connect(
        client clientContext: TLSContext,
        server serverContext: TLSContext,
        serverHostname: String? = nil
    ) throws -> (client: EmbeddedEnd, server: EmbeddedEnd, loop: EmbeddedEventLoop) {
        let loop = EmbeddedEventLoop()
        let server = try EmbeddedEnd(handler: TLSHandler.serverHandler(context: serverContext, logger: logger), loop: loop)
        let client = try EmbeddedEnd(
            handler: TLSHandler.clientHandler(context: clientContext, serverHostname: serverHostname, logger: logger), loop: loop
        )
        try server.activate(port: 40_000)
        try client.activate(port: 7_443)
        try pump(client, server)
        return (client, server, loop)
    }
}
