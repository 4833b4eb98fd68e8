import GridTLS
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Wire

/// Dials a GridLedger node over mutual TLS and returns Wire's `RPCClient` (wrap it in a
/// `ChainClient` for typed calls).
///
/// The one way anything in the package dials a node: `gridnode status`, the simulator and
/// benchmarks (GridTools), and node-to-node traffic (Raft, anchoring, leader forwarding,
/// block transfer). The caller owns the returned client and closes it (`RPCClient.close()`).
public enum GridConnection {
    /// Connects to `address` (`host:port`) with the party's certificate and key, trusting
    /// only `ca`. The server must present a `node` certificate naming `serverName` (default:
    /// the host dialled). Throws `TLSError` when the handshake or the server's identity
    /// fails, NIO's connect errors when nothing listens, and `HostPort.Invalid` when
    /// `address` is not `host:port`. `ConnectionErrorText` turns any of them into a sentence.
    public static func connect(
        to address: String, certificate: String, key: String, ca: String, serverName: String? = nil,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        connectTimeout: TimeAmount = .seconds(10),
        limits: FrameLimits = FrameLimits(),
        logger: Logger = Logger(label: "gridledger.client")
    ) async throws -> RPCClient {
        let (host, port) = try HostPort.parse(address)
        let context = try TLSContext(
            configuration: TLSConfiguration(
                certificatePath: certificate, privateKeyPath: key, trustRootPath: ca, handshakeTimeout: connectTimeout),
            mode: .client)
        return try await connect(host: host, port: port, tls: context, serverName: serverName ?? host,
                                 group: group, connectTimeout: connectTimeout, limits: limits, logger: logger)
    }

    /// Connects with an already built client `TLSContext` (reused across connections, as
    /// the node does for its peers). `serverName` nil skips the host-name check (the peer's
    /// role is still checked); errors as above.
    public static func connect(
        host: String, port: Int, tls: TLSContext, serverName: String?,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        connectTimeout: TimeAmount = .seconds(10),
        limits: FrameLimits = FrameLimits(),
        logger: Logger = Logger(label: "gridledger.client")
    ) async throws -> RPCClient {
        let handlerBox = Mutex<NIOLoopBound<RPCClientHandler>?>(nil)
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        TLSHandler.clientHandler(context: tls, serverHostname: serverName, logger: logger))
                    let handler = try RPCClient.addHandlers(to: channel.pipeline, limits: limits)
                    handlerBox.withLock { $0 = handler }
                }
            }
            .connect(host: host, port: port)
            .get()
        let handler = handlerBox.withLock { $0! }
        do {
            return try await RPCClient.connect(channel: channel, handler: handler)
        } catch {
            try? await channel.close()
            throw error
        }
    }
}
