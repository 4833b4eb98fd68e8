import GridProto
import Identity
import Logging
import NIOCore
import NIOEmbedded
import XCTest
@testable import Wire

/// Docs/wire-protocol.md, "Connection management": keepalive pings, keepalive timeout,
/// idle timeout.
final class ConnectionTimersTests: XCTestCase {
    /// A connection without open calls past the idle timeout gets GOAWAY(OK, "idle") and is
    /// closed.
    func testIdleConnectionGetsGoAwayAndIsClosed() async throws {
        var config = RPCServerConfiguration()
        config.idleTimeout = .milliseconds(150)
        let rpc = try await InMemoryRPC(router: RPCSemanticsTests.router(), configuration: config)
        _ = try await rpc.client.unary(RPCSemanticsTests.echo, MetadataEntry(key: "x", value: []), as: MetadataEntry.self)
        let closed = rpc.serverChannel.closeFuture
        try await withTimeout(.seconds(5)) { try await closed.get() }
        await rpc.close()
    }

    /// A silent peer is pinged after the keepalive interval and dropped when it does not
    /// answer within the keepalive timeout. A peer that answers stays connected.
    func testKeepalivePingsAndDropsASilentPeer() async throws {
        var config = RPCServerConfiguration()
        config.keepaliveInterval = .milliseconds(100)
        config.keepaliveTimeout = .milliseconds(100)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let handler = RPCServerHandler(router: RPCRouter(), configuration: config, stats: RPCServerStats(), logger: logger)
        let channel = await NIOAsyncTestingChannel(handlers: [ByteToMessageHandler(FrameDecoder()), handler])
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9))
        channel.pipeline.fireUserInboundEventTriggered(PeerAuthenticatedEvent(
            peer: PeerIdentity(name: "silent", role: .ops, serial: "01"), applicationProtocol: "gridledger/1"))
        // Advance virtual time: the server must write a PING, then close.
        var sawPing = false
        for _ in 0..<100 where channel.isActive {
            await channel.testingEventLoop.advanceTime(by: .milliseconds(20))
            while let out = try await channel.readOutbound(as: ByteBuffer.self) {
                var buffer = out
                var machine = FrameDecoderStateMachine(limits: FrameLimits())
                while let event = try machine.next(&buffer) {
                    if case .frame(let f) = event, f.type == .ping, !f.flags.contains(.ack) { sawPing = true }
                }
            }
        }
        XCTAssertTrue(sawPing, "server must ping a silent connection")
        XCTAssertFalse(channel.isActive, "server must close a connection that does not answer its ping")
    }

    func testPeerAnsweringPingsStaysConnected() async throws {
        var config = RPCServerConfiguration()
        config.keepaliveInterval = .milliseconds(50)
        config.keepaliveTimeout = .milliseconds(200)
        let rpc = try await InMemoryRPC(router: RPCSemanticsTests.router(), configuration: config)
        try await Task.sleep(for: .milliseconds(800))
        XCTAssertTrue(rpc.serverChannel.isActive)
        let r = try await rpc.client.unary(RPCSemanticsTests.echo, MetadataEntry(key: "alive", value: []), as: MetadataEntry.self)
        XCTAssertEqual(r.key, "alive!client-1")
        await rpc.close()
    }

    private func withTimeout(_ limit: Duration, _ body: @escaping @Sendable () async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { try await body(); return true }
            group.addTask { try await Task.sleep(for: limit); return false }
            let finished = try await group.next()!
            group.cancelAll()
            XCTAssertTrue(finished, "timed out")
        }
    }
}
