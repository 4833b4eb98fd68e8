import GridProto
import Identity
import Logging
import NIOCore
import NIOEmbedded
@testable import Wire

/// A client and a server RPC pipeline joined in memory: bytes written by one side are
/// delivered to the other by two pump tasks. No sockets, no TLS: the peer identities are
/// injected as the security layer would.
final class InMemoryRPC: @unchecked Sendable {
    let serverChannel: NIOAsyncTestingChannel
    let clientChannel: NIOAsyncTestingChannel
    let serverHandler: NIOLoopBound<RPCServerHandler>
    let client: RPCClient
    let stats = RPCServerStats()
    private var pumps: [Task<Void, Never>] = []

    init(
        router: RPCRouter, configuration: RPCServerConfiguration = RPCServerConfiguration(),
        clientRole: Role = .ops, clientLimits: FrameLimits = FrameLimits(), budget: MemoryBudget? = nil
    ) async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let handler = RPCServerHandler(router: router, configuration: configuration, stats: stats, logger: logger, budget: budget)
        serverChannel = await NIOAsyncTestingChannel(handlers: [
            ByteToMessageHandler(FrameDecoder(limits: configuration.limits, budget: budget)), handler,
        ])
        let serverLoop = serverChannel.eventLoop
        serverHandler = try await serverLoop.submit { NIOLoopBound(handler, eventLoop: serverLoop) }.get()
        clientChannel = NIOAsyncTestingChannel()
        try await serverChannel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9))
        try await clientChannel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9))
        let channel = clientChannel
        let clientHandler = try await clientChannel.eventLoop.submit {
            try RPCClient.addHandlers(to: channel.pipeline, limits: clientLimits)
        }.get()
        serverChannel.pipeline.fireUserInboundEventTriggered(PeerAuthenticatedEvent(
            peer: PeerIdentity(name: "client-1", role: clientRole, district: "d1", serial: "01"), applicationProtocol: "gridledger/1"))
        clientChannel.pipeline.fireUserInboundEventTriggered(PeerAuthenticatedEvent(
            peer: PeerIdentity(name: "node-1", role: .node, serial: "02"), applicationProtocol: "gridledger/1"))
        client = try await RPCClient.connect(channel: clientChannel, handler: clientHandler)
        let client = clientChannel
        // Like TCP, bytes written before the close arrive before the close: give the pump
        // time to deliver them.
        serverChannel.closeFuture.whenComplete { _ in
            Task {
                try? await Task.sleep(for: .milliseconds(50))
                try? await client.close()
            }
        }
        pumps = [
            Self.pump(from: clientChannel, to: serverChannel), Self.pump(from: serverChannel, to: clientChannel),
            Self.clock(serverChannel.testingEventLoop), Self.clock(clientChannel.testingEventLoop),
        ]
    }

    private static func pump(from: NIOAsyncTestingChannel, to: NIOAsyncTestingChannel) -> Task<Void, Never> {
        Task {
            while !Task.isCancelled {
                guard let bytes = try? await from.waitForOutboundWrite(as: ByteBuffer.self) else { return }
                try? await to.writeInbound(bytes)
            }
        }
    }

    /// Testing event loops keep virtual time; advance it with the real clock so deadlines
    /// and keepalive timers fire as they would on a real loop.
    private static func clock(_ loop: NIOAsyncTestingEventLoop) -> Task<Void, Never> {
        Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(5))
                await loop.advanceTime(by: .milliseconds(5))
            }
        }
    }

    /// Writes raw bytes to the server as if the client had sent them.
    func injectToServer(_ bytes: ByteBuffer) async throws {
        try await serverChannel.writeInbound(bytes)
    }

    func close() async {
        for p in pumps { p.cancel() }
        _ = try? await serverChannel.finish()
        _ = try? await clientChannel.finish()
    }
}
